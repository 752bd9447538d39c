"""Every setting nano-org reads, in one place (environment variables with embedded defaults).

| variable | default | meaning |
|---|---|---|
| NANOORG_INSTANCE | ./instance | folder holding the SQLite database, the file store, staging and caches |
| DATABASE_URL | sqlite:///<instance>/nanoorg.sqlite | SQLAlchemy URL (PostgreSQL when scaled out) |
| SECRET_KEY | generated once into <instance>/secret_key | signs sessions and CSRF tokens |
| REDIS_URL | (unset) | when set, background jobs run on Celery workers via Redis |
| NANOORG_DEMO_DATA | data/ in the repository | real files used by ``seed-demo`` |
| NANOORG_MAX_UPLOAD_MB | 1024 | largest detection file accepted by the upload |
| NANOORG_SEED_DEMO | 1 | seed the demo bank on first start of the app |
| NANOORG_MAX_PAIRS | 20000 | tile pairs sampled per dataset comparison |
| NANOORG_THINNING_TARGETS | 30,100 | thinning densities (loc/um^2) computed and stored |
| NANOORG_DEFAULT_THINNING | 30 | the one shown first (the user guide's figure) |
| NANOORG_LAMBDA_MODE | critical | critical (D/D_crit at 5 %) or kolmogorov |
| NANOORG_CONTACT_EMAIL | (unset) | address behind the footer's contact link |
| NANOORG_SECURE_COOKIES | 0 | 1 behind HTTPS: session cookies only over TLS |
| NANOORG_UPLOAD_QUOTA_MB | 4 x max upload | staging space one user may hold at once |
| NANOORG_JOB_WORKERS | 2 | background jobs (ingest, similarity, viewer) running at once per host; others queue. Embedded: threads of the web process; Celery: each worker's concurrency |
| NANOORG_DEMO_PASSWORD | nanoorg-demo | password of the demo bank's owner 'demo' (set at first seed) |
| NANOORG_HOST, NANOORG_PORT | 127.0.0.1, 8050 | where the web server listens (gunicorn.conf.py, ``python app.py``) |
| NANOORG_WEB_WORKERS | 1 | gunicorn worker processes (more need PostgreSQL and Redis: README "Scaling out") |
| NANOORG_WEB_THREADS | 8 | threads per gunicorn worker |
| NANOORG_VIEWER_WARMUP | 1 (0 under pytest) | compile the viewer's kernels in a background thread at start |
"""

from __future__ import annotations

import os
import secrets
import sys
from dataclasses import dataclass
from pathlib import Path

__version__ = "0.1.0"            # written into every export's provenance header

PROJECT_ROOT = Path(__file__).resolve().parent
DATA_DIR = PROJECT_ROOT / "data"   # the repository's real SMLM files (data/README.md: source, licence, sha256)


def _int_list(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split(",") if part.strip())


@dataclass
class Settings:
    instance_dir: Path
    database_url: str
    secret_key: str
    redis_url: str | None = None
    demo_data_dir: Path = DATA_DIR
    max_upload_mb: int = 1024
    seed_demo: bool = True
    max_pairs: int = 20000
    thinning_targets: tuple[int, ...] = (30, 100)
    default_thinning: int = 30
    lambda_mode: str = "critical"
    contact_email: str | None = None
    secure_cookies: bool = False
    upload_quota_mb: int | None = None
    job_workers: int = 2
    demo_password: str = "nanoorg-demo"
    host: str = "127.0.0.1"
    port: int = 8050
    web_workers: int = 1
    web_threads: int = 8
    viewer_warmup: bool = True

    @property
    def store_dir(self) -> Path:
        return self.instance_dir / "store"

    @property
    def staging_dir(self) -> Path:
        return self.instance_dir / "staging"

    @property
    def cache_dir(self) -> Path:
        return self.instance_dir / "cache"

    def ensure_dirs(self) -> None:
        for folder in (self.instance_dir, self.store_dir, self.staging_dir, self.cache_dir):
            folder.mkdir(parents=True, exist_ok=True)


def _secret_key(instance_dir: Path) -> str:
    """SECRET_KEY from the environment, else one generated once and kept in the instance folder."""
    if os.environ.get("SECRET_KEY"):
        return os.environ["SECRET_KEY"]
    key_file = instance_dir / "secret_key"
    if not key_file.exists():
        instance_dir.mkdir(parents=True, exist_ok=True)
        key_file.write_text(secrets.token_hex(32))
    return key_file.read_text().strip()


def load_settings(**overrides) -> Settings:
    """Settings from the environment; keyword overrides win (tests use them)."""
    env = os.environ
    instance_dir = Path(overrides.pop("instance_dir", None) or env.get("NANOORG_INSTANCE")
                        or PROJECT_ROOT / "instance").resolve()
    values = dict(
        instance_dir=instance_dir,
        database_url=env.get("DATABASE_URL") or f"sqlite:///{instance_dir / 'nanoorg.sqlite'}",
        secret_key=None,
        redis_url=env.get("REDIS_URL") or None,
        demo_data_dir=Path(env.get("NANOORG_DEMO_DATA") or DATA_DIR),
        max_upload_mb=int(env.get("NANOORG_MAX_UPLOAD_MB", 1024)),
        seed_demo=env.get("NANOORG_SEED_DEMO", "1") not in ("0", "false", "no"),
        max_pairs=int(env.get("NANOORG_MAX_PAIRS", 20000)),
        thinning_targets=_int_list(env.get("NANOORG_THINNING_TARGETS", "30,100")),
        default_thinning=int(env.get("NANOORG_DEFAULT_THINNING", 30)),
        lambda_mode=env.get("NANOORG_LAMBDA_MODE", "critical"),
        contact_email=env.get("NANOORG_CONTACT_EMAIL") or None,
        secure_cookies=env.get("NANOORG_SECURE_COOKIES", "0").lower() in ("1", "true", "yes"),
        upload_quota_mb=int(env["NANOORG_UPLOAD_QUOTA_MB"]) if env.get("NANOORG_UPLOAD_QUOTA_MB") else None,
        job_workers=max(1, int(env.get("NANOORG_JOB_WORKERS", 2))),
        demo_password=env.get("NANOORG_DEMO_PASSWORD") or "nanoorg-demo",
        host=env.get("NANOORG_HOST", "127.0.0.1"),
        port=int(env.get("NANOORG_PORT", 8050)),
        web_workers=int(env.get("NANOORG_WEB_WORKERS", 1)),
        web_threads=int(env.get("NANOORG_WEB_THREADS", 8)),
        viewer_warmup=env.get("NANOORG_VIEWER_WARMUP", "0" if "pytest" in sys.modules else "1").strip().lower()
        not in ("0", "false", "no"),
    )
    values.update(overrides)
    if not values["secret_key"]:
        values["secret_key"] = _secret_key(instance_dir)
    if values["default_thinning"] not in values["thinning_targets"]:
        raise ValueError("NANOORG_DEFAULT_THINNING must be one of NANOORG_THINNING_TARGETS")
    return Settings(**values)
