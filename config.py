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
    query_max_mb: int = 20                    # "search with your own file": all its files together (sent
                                              # base64 in one callback POST: must fit max_request_mb)
    seed_demo: bool = True
    max_pairs: int = 20000
    thinning_targets: tuple[int, ...] = (30, 100)
    default_thinning: int = 30
    thinning_repeats: int = 1                 # independent thinnings stored per tile and target
    thinning_mode: str = "tile"               # "tile" (exact count per tile) or "bernoulli" (file-level)
    lambda_mode: str = "critical"
    contact_email: str | None = None
    secure_cookies: bool = False
    upload_quota_mb: int | None = None        # None = 4 x max_upload_mb
    job_workers: int = 2                      # background jobs at once per host (threads, or per Celery worker)
    demo_password: str | None = None          # None = generated at first seed, kept in <instance>/demo_password
    max_request_mb: int = 32                  # largest HTTP request body; files go through the chunked upload
    proxy_hops: int = 0                       # reverse proxies whose X-Forwarded-For is trusted
    host: str = "127.0.0.1"
    port: int = 8050
    web_workers: int = 1
    web_threads: int = 8
    viewer_warmup: bool = True                # compile the viewer's kernels in a thread of a serving process

    def __post_init__(self) -> None:
        self.instance_dir = Path(self.instance_dir).resolve()
        self.demo_data_dir = Path(self.demo_data_dir)
        if not self.database_url:
            self.database_url = f"sqlite:///{self.instance_dir / 'nanoorg.sqlite'}"
        if not self.secret_key:
            self.secret_key = _secret_key(self.instance_dir)
        if self.default_thinning not in self.thinning_targets:
            raise ValueError("NANOORG_DEFAULT_THINNING must be one of NANOORG_THINNING_TARGETS")
        if self.job_workers < 1:
            raise ValueError("NANOORG_JOB_WORKERS must be 1 or more")
        if self.thinning_repeats < 1:
            raise ValueError("NANOORG_THINNING_REPEATS must be 1 or more")
        if self.thinning_mode not in ("tile", "bernoulli"):
            raise ValueError("NANOORG_THINNING_MODE must be 'tile' or 'bernoulli'")
        if self.query_max_mb * 4 / 3 + 1 > self.max_request_mb:
            raise ValueError(f"NANOORG_QUERY_MAX_MB={self.query_max_mb} does not fit in one request of "
                             f"NANOORG_MAX_REQUEST_MB={self.max_request_mb} (files travel base64-encoded, "
                             "4/3 of their size): lower the first or raise the second")

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
        if not self.instance_dir.exists():
            self.instance_dir.mkdir(parents=True, mode=0o700)      # a new instance is the owner's alone
        for folder in (self.store_dir, self.staging_dir, self.cache_dir):
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
    "NANOORG_THINNING_REPEATS": ("thinning_repeats", int),
    "NANOORG_THINNING_MODE": ("thinning_mode", str),
    "NANOORG_LAMBDA_MODE": ("lambda_mode", str),
    "NANOORG_CONTACT_EMAIL": ("contact_email", str),
    "NANOORG_SECURE_COOKIES": ("secure_cookies", _flag),
    "NANOORG_UPLOAD_QUOTA_MB": ("upload_quota_mb", int),
    "NANOORG_JOB_WORKERS": ("job_workers", int),
    "NANOORG_DEMO_PASSWORD": ("demo_password", str),
    "NANOORG_MAX_REQUEST_MB": ("max_request_mb", int),
    "NANOORG_PROXY_HOPS": ("proxy_hops", int),
    "NANOORG_HOST": ("host", str),
    "NANOORG_PORT": ("port", int),
    "NANOORG_WEB_WORKERS": ("web_workers", int),
    "NANOORG_WEB_THREADS": ("web_threads", int),
    "NANOORG_VIEWER_WARMUP": ("viewer_warmup", _flag),
}


def private_file(path: Path, make_text=None) -> Path:
    """Make ``path`` readable by its owner only (0600), creating it first with ``make_text()`` if it
    does not exist (created 0600 from the start, never briefly readable by others)."""
    if make_text is not None and not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:        # another process made it first: keep theirs
            pass
        else:
            with os.fdopen(descriptor, "w") as handle:
                handle.write(make_text())
    if path.exists() and path.stat().st_mode & 0o077:
        path.chmod(0o600)
    return path


def _secret_key(instance_dir: Path) -> str:
    """A key generated once and kept (0600) in the instance folder (when SECRET_KEY is not set)."""
    key_file = private_file(instance_dir / "secret_key", lambda: secrets.token_hex(32))
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
