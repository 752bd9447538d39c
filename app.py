"""nano-org web app: ``python app.py`` serves http://127.0.0.1:8050 (``gunicorn 'app:server'`` to scale).

On first start, when the bank is empty and NANOORG_SEED_DEMO is on (default), the demo bank is
seeded (real example files and simulated datasets), printing one progress line per dataset.
"""

from __future__ import annotations

import os

from nanoorg.config import load_settings
from nanoorg.web.app import create_app

settings = load_settings()
app = create_app(settings)
server = app.server


def seed_if_empty() -> None:
    """Seed the demo bank when it is empty (the lead's nanoorg.databank.demo)."""
    if not settings.seed_demo:
        return
    try:
        from nanoorg.databank import demo
    except ImportError:
        print("Demo bank not available (nanoorg.databank.demo missing): starting with an empty bank.")
        return
    if not hasattr(demo, "seed_demo"):
        return
    from sqlalchemy import func, select

    from nanoorg.databank.models import Dataset, db

    with server.app_context():
        if db.session.scalar(select(func.count(Dataset.id))):
            return
        print("Seeding the demo bank (first start; this takes a minute or two) ...", flush=True)
        created = demo.seed_demo(settings, progress=lambda message: print("  " + message, flush=True))
        print(f"Demo bank ready: {len(created)} datasets.", flush=True)


if __name__ == "__main__":
    seed_if_empty()
    host = os.environ.get("NANOORG_HOST", "127.0.0.1")
    port = int(os.environ.get("NANOORG_PORT", "8050"))
    print(f"nano-org on http://{host}:{port}/", flush=True)
    app.run(host=host, port=port, debug=False)
