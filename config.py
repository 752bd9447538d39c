"""Every setting nano-org reads, in one place.

Defaults are written once, as the field defaults of ``Settings``; ``ENVIRONMENT`` says which
environment variable sets which field (README's Configuration table lists them for users, and a
test keeps the two in step). Nothing else in the project reads ``os.environ`` for a setting.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

__version__ = "0.1.0"            # written into every export's provenance header

PROJECT_ROOT = Path(__file__).resolve().parent
DATA_DIR = PROJECT_ROOT / "data"   # the repository's real SMLM files (data/README.md: source, licence, sha256)


def _int_list(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split(",") if part.strip())


def _flag(text: str) -> bool:
    return text.strip().lower() in ("1", "true", "yes", "on")


@dataclass
class Settings:
    """Every setting of one nano-org instance. The defaults written here are the only ones."""
    instance_dir: Path = PROJECT_ROOT / "instance"
    database_url: str = ""                    # "" = SQLite in the instance folder
    secret_key: str = ""                      # "" = generated once into the instance folder
    redis_url: str | None = None
    demo_data_dir: Path = DATA_DIR
    max_upload_mb: int = 1024
    query_max_mb: int = 100                   # "search with your own file": all its files together
    seed_demo: bool = True
    max_pairs: int = 20000
    thinning_targets: tuple[int, ...] = (30, 100)
    default_thinning: int = 30
    lambda_mode: str = "critical"
    contact_email: str | None = None
    secure_cookies: bool = False
    upload_quota_mb: int | None = None        # None = 4 x max_upload_mb
    max_concurrent_jobs: int = 2
    demo_password: str = "nanoorg-demo"
    host: str = "127.0.0.1"
    port: int = 8050
    web_workers: int = 1
    web_threads: int = 8

    def __post_init__(self) -> None:
        self.instance_dir = Path(self.instance_dir).resolve()
        self.demo_data_dir = Path(self.demo_data_dir)
        if not self.database_url:
            self.database_url = f"sqlite:///{self.instance_dir / 'nanoorg.sqlite'}"
        if not self.secret_key:
            self.secret_key = _secret_key(self.instance_dir)
        if self.default_thinning not in self.thinning_targets:
            raise ValueError("NANOORG_DEFAULT_THINNING must be one of NANOORG_THINNING_TARGETS")

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


# environment variable -> (Settings field, parser); an unset or empty variable keeps the default
ENVIRONMENT: dict[str, tuple[str, object]] = {
    "NANOORG_INSTANCE": ("instance_dir", Path),
    "DATABASE_URL": ("database_url", str),
    "SECRET_KEY": ("secret_key", str),
    "REDIS_URL": ("redis_url", str),
    "NANOORG_DEMO_DATA": ("demo_data_dir", Path),
    "NANOORG_MAX_UPLOAD_MB": ("max_upload_mb", int),
    "NANOORG_QUERY_MAX_MB": ("query_max_mb", int),
    "NANOORG_SEED_DEMO": ("seed_demo", _flag),
    "NANOORG_MAX_PAIRS": ("max_pairs", int),
    "NANOORG_THINNING_TARGETS": ("thinning_targets", _int_list),
    "NANOORG_DEFAULT_THINNING": ("default_thinning", int),
    "NANOORG_LAMBDA_MODE": ("lambda_mode", str),
    "NANOORG_CONTACT_EMAIL": ("contact_email", str),
    "NANOORG_SECURE_COOKIES": ("secure_cookies", _flag),
    "NANOORG_UPLOAD_QUOTA_MB": ("upload_quota_mb", int),
    "NANOORG_MAX_JOBS": ("max_concurrent_jobs", int),
    "NANOORG_DEMO_PASSWORD": ("demo_password", str),
    "NANOORG_HOST": ("host", str),
    "NANOORG_PORT": ("port", int),
    "NANOORG_WEB_WORKERS": ("web_workers", int),
    "NANOORG_WEB_THREADS": ("web_threads", int),
}


def _secret_key(instance_dir: Path) -> str:
    """A key generated once and kept in the instance folder (when SECRET_KEY is not set)."""
    key_file = instance_dir / "secret_key"
    if not key_file.exists():
        instance_dir.mkdir(parents=True, exist_ok=True)
        key_file.write_text(secrets.token_hex(32))
    return key_file.read_text().strip()


def load_settings(**overrides) -> Settings:
    """Settings from the environment (``ENVIRONMENT``); keyword overrides win (tests use them)."""
    values = {}
    for variable, (name, parse) in ENVIRONMENT.items():
        text = os.environ.get(variable, "").strip()
        if text:
            try:
                values[name] = parse(text)
            except ValueError:
                raise ValueError(f"{variable}={text!r} is not valid for this setting") from None
    values.update(overrides)
    return Settings(**values)


@dataclass(frozen=True)
class RuntimeOptions:
    """Process-wide options needed at import time, before any Settings exist."""
    redis_url: str | None
    thread_jobs: int
    viewer_jobs: str
    viewer_warmup: bool


def runtime_options() -> RuntimeOptions:
    import sys
    env = os.environ
    warmup_default = "0" if "pytest" in sys.modules else "1"
    viewer_jobs = env.get("NANOORG_VIEWER_JOBS", "processes").strip().lower()
    if viewer_jobs not in ("processes", "threads"):
        raise ValueError("NANOORG_VIEWER_JOBS must be 'processes' or 'threads'")
    return RuntimeOptions(redis_url=env.get("REDIS_URL") or None,
                          thread_jobs=int(env.get("NANOORG_THREAD_JOBS", 2)),
                          viewer_jobs=viewer_jobs,
                          viewer_warmup=env.get("NANOORG_VIEWER_WARMUP", warmup_default).strip().lower()
                          not in ("0", "false", "no"))
