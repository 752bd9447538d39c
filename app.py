"""nano-org web app: ``python app.py`` serves http://127.0.0.1:8050 (``gunicorn 'app:server'`` to scale).

On start, leftovers of interrupted ingests are swept away; on first start, when the bank is empty and
NANOORG_SEED_DEMO is on (default), the demo bank is seeded, printing one progress line per dataset.
"""

from __future__ import annotations

import os

from dash import CeleryManager

from nanoorg.config import load_settings
from nanoorg.databank.demo import seed_demo
from nanoorg.databank.ingest import sweep_orphans
from nanoorg.databank.search import warm_bank_index
from nanoorg.web.app import create_app

settings = load_settings()
app = create_app(settings)
server = app.server
# With REDIS_URL set, background jobs go to Celery workers started with:  celery -A app:celery_app worker
_manager = getattr(app, "_background_manager", None)
celery_app = _manager.handle if isinstance(_manager, CeleryManager) else None


def prepare_bank() -> None:
    with server.app_context():
        removed = sweep_orphans(settings)
        if removed:
            print(f"Removed {len(removed)} leftover folder(s) of interrupted ingests.", flush=True)
        if settings.seed_demo:
            created = seed_demo(settings, progress=lambda message: print("  seeding demo bank " + message, flush=True))
            if created:
                print(f"Demo bank ready: {len(created)} datasets.", flush=True)
    warm_bank_index(server)      # load the similarity index and compile its kernels in the background


if __name__ == "__main__":
    prepare_bank()
    host = os.environ.get("NANOORG_HOST", "127.0.0.1")
    port = int(os.environ.get("NANOORG_PORT", "8050"))
    print(f"nano-org on http://{host}:{port}/", flush=True)
    app.run(host=host, port=port, debug=False)
