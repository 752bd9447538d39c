"""The scale-out deployment under test: PostgreSQL, Redis, a Celery job worker and gunicorn with 2
web workers, started by ``bin/scale-out-example.sh`` (README "Scaling out": the same commands an
operator runs) in a throwaway folder, on free local ports, once per test session.

The services come from the Debian packages ``postgresql`` and ``redis-server`` (.ci/run installs
them; ``make services`` does it on a developer's machine). Without them the suite FAILS, never skips.
Ports: free ones from TEST_PORT_BASE + 60 upwards (tests/browser/conftest.py: below the ephemeral range).
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from tests.browser.conftest import TEST_PORT_BASE, pytest_configure, pytest_setup_options  # noqa: F401  (dash_duo: Debian Chromium, offline)
from tests.scaleout.http import free_ports, worker_pids

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "bin" / "scale-out-example.sh"
WEB_WORKERS = 2
START_TIMEOUT_S = 600            # seeding the demo bank on 2 busy cores takes a minute or two
MISSING_SERVICES = ("tests/scaleout needs PostgreSQL and Redis from Debian: run `make services` (as root), "
                    "or `apt-get install -y postgresql redis-server`")

pytestmark = pytest.mark.scaleout


@dataclass
class Deployment:
    url: str
    scale_dir: Path
    env: dict
    database_url: str
    redis_url: str
    web_workers: list[int]
    start_output: str = ""

    def run(self, *command: str, check: bool = True, extra_env: dict | None = None) -> subprocess.CompletedProcess:
        result = subprocess.run(command, cwd=ROOT, env={**self.env, **(extra_env or {})}, capture_output=True,
                                text=True, timeout=900)
        if check and result.returncode != 0:
            raise AssertionError(f"{' '.join(command)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
        return result

    def nanoorg(self, *args: str) -> dict:
        """A ``nanoorg`` command against the deployment's database, its --json output."""
        return json.loads(self.run("nanoorg", *args, "--json").stdout)

    def log(self, name: str) -> str:
        path = self.scale_dir / "logs" / name
        return path.read_text(errors="replace") if path.exists() else ""

    def started(self) -> bool:
        """True once /healthz reports ok; fails at once if gunicorn's master gave up (port taken ...)."""
        if any(sign in self.log("gunicorn.log") for sign in ("Shutting down: Master", "Can't connect to")):
            raise AssertionError("gunicorn stopped:\n" + "\n".join(self.log("gunicorn.log").splitlines()[-15:]))
        return self.health()["status"] == "ok"

    def health(self) -> dict:
        return requests.get(self.url + "/healthz", timeout=30).json()

    def kill_job_worker(self) -> None:
        """SIGKILL the Celery worker (its main process and pool processes: one process group)."""
        pid = int((self.scale_dir / "celery.pid").read_text())
        os.killpg(os.getpgid(pid), signal.SIGKILL)
        (self.scale_dir / "celery.pid").unlink()

    def start_job_worker(self) -> None:
        self.run("celery", "-A", "app:celery_app", "worker", "--loglevel", "INFO", "--detach",
                 "--pidfile", str(self.scale_dir / "celery.pid"), "--logfile", str(self.scale_dir / "logs" / "celery.log"))
        wait_until(lambda: self.health()["job_workers"]["ok"], 120, "the Celery worker to answer /healthz")


def wait_until(condition, timeout_s: float, what: str, poll_s: float = 0.5):
    deadline = time.monotonic() + timeout_s
    last_error = None
    while time.monotonic() < deadline:
        try:
            value = condition()
            if value:
                return value
        except AssertionError:
            raise
        except Exception as exc:  # not up yet
            last_error = exc
        time.sleep(poll_s)
    raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what} (last error: {last_error})")


@pytest.fixture(scope="session")
def deployment():
    if not glob.glob("/usr/lib/postgresql/*/bin/initdb") or shutil.which("redis-server") is None:
        pytest.fail(MISSING_SERVICES)
    base = TEST_PORT_BASE + 60
    pg_port, redis_port, web_port = free_ports(3, base)
    scale_dir = Path(tempfile.mkdtemp(prefix="nanoorg-scaleout-"))
    venv_bin = str(Path(sys.executable).parent)
    env = {key: value for key, value in os.environ.items()
           if not key.startswith("NANOORG_") and key not in ("DATABASE_URL", "REDIS_URL", "SECRET_KEY")}
    env.update(PATH=f"{venv_bin}:{env.get('PATH', '')}", PYTHONPATH=str(ROOT), SCALE_DIR=str(scale_dir),
               PG_PORT=str(pg_port), REDIS_PORT=str(redis_port), NANOORG_PORT=str(web_port),
               NANOORG_WEB_WORKERS=str(WEB_WORKERS), NANOORG_VIEWER_WARMUP="0")
    database_url = f"postgresql+psycopg://nanoorg@127.0.0.1:{pg_port}/nanoorg"
    redis_url = f"redis://127.0.0.1:{redis_port}/0"
    # what the script exports for the processes it starts; the test's own nanoorg/celery commands need it too
    env.update(DATABASE_URL=database_url, REDIS_URL=redis_url, NANOORG_INSTANCE=str(scale_dir / "instance"))
    url = f"http://127.0.0.1:{web_port}"
    deployment = Deployment(url, scale_dir, env, database_url, redis_url, [])
    try:
        deployment.start_output = deployment.run("bash", str(SCRIPT), "start").stdout
        wait_until(lambda: deployment.started(), START_TIMEOUT_S, f"{url}/healthz to report ok")
        deployment.web_workers = worker_pids(url, WEB_WORKERS)
    except BaseException:
        for name in ("gunicorn.log", "celery.log"):
            print(f"---- {name} (last lines)\n" + "\n".join(deployment.log(name).splitlines()[-40:]))
        deployment.run("bash", str(SCRIPT), "stop", check=False)
        shutil.rmtree(scale_dir, ignore_errors=True)
        raise
    try:
        yield deployment
    finally:
        deployment.run("bash", str(SCRIPT), "stop", check=False)
        shutil.rmtree(scale_dir, ignore_errors=True)
