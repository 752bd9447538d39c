"""Browser tests (dash_duo on headless Debian Chromium, offline). Mark them ``@pytest.mark.browser``.

Run: ``python -m pytest --headless tests/browser`` (headless is also forced here when there is no
display). Fixtures: ``nanoorg_app`` (the session's app from tests.web.support, tables emptied
before each test), ``browser_user`` (an account with a known password).
"""

from __future__ import annotations

import ctypes
import os
import shutil
import threading
import time
from pathlib import Path

import pytest

from tests.web import support

os.environ.setdefault("DASH_TEST_CHROMEPATH", "/usr/bin/chromium")
os.environ.setdefault("SE_OFFLINE", "true")          # selenium manager must not phone home


def _stop_server_thread_only(self):
    """dash_duo stops a Flask app by raising SystemExit in *every* thread started since the server
    (request threads, our job threads, warm-up threads). One caught inside numba's compiler lock
    leaves that process-wide lock held by a dead thread, and every later compilation waits for
    ever (seen as a hung browser suite). Stop only the server's own thread: its accept loop ends,
    the socket closes, and request and job threads finish on their own."""
    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_long(self.ident), ctypes.py_object(SystemExit))


# The test servers' first port. Below Linux's ephemeral range (32768-60999): a port there can be taken
# by any outgoing connection (Chromium's, chromedriver's) between the check that it is free and the
# server's bind. Several suites may run at once on one machine (worktrees): NANOORG_TEST_PORT_BASE
# moves their ports.
TEST_PORT_BASE = int(os.environ.get("NANOORG_TEST_PORT_BASE", "28050"))


def pytest_configure(config):
    from dash.testing.application_runners import BaseDashRunner, KillerThread

    BaseDashRunner._next_port = TEST_PORT_BASE
    KillerThread.kill = _stop_server_thread_only
    # selenium 4.2 (pinned by dash[testing]) calls urllib3's deprecated getheader() on every command
    config.addinivalue_line("filterwarnings", "ignore:HTTPResponse.getheader:DeprecationWarning")


def console_errors(dash_duo) -> list[dict]:
    """The browser console's errors, less the 409 answers of the resumable upload: by its protocol
    (server/routes_upload.py) a 409 tells the client which byte offset to resume from, and the
    client does (assets/chunked_upload.js), yet Chromium logs every 4xx response as an error."""
    return [entry for entry in dash_duo.get_logs()
            if not ("/upload/chunk/" in entry.get("message", "") and "409" in entry.get("message", ""))]


def pytest_setup_options():
    """Chrome options for dash_duo: the Debian binary, no background network traffic."""
    from selenium.webdriver.chrome.options import Options

    options = Options()
    options.binary_location = os.environ["DASH_TEST_CHROMEPATH"]
    for argument in ("--disable-background-networking", "--disable-component-update", "--disable-sync",
                     "--no-first-run", "--disable-quic", "--disable-default-apps", "--window-size=1280,1000"):
        options.add_argument(argument)
    if not os.environ.get("DISPLAY"):
        options.add_argument("--headless")
    return options


@pytest.fixture(scope="session", autouse=True)
def _compiled_kernels():
    """Compile the numba kernels (rendering, clusters, similarity) once before any flow: on a fresh
    clone their cache is empty, and a first compilation inside a flow would eat its time-outs."""
    import numpy as np

    from compute import similarity
    from compute.warm_up import warm_up

    warm_up()
    tiles = similarity.Fingerprints.from_histograms([np.array([9000, 1000]), np.array([9500, 400, 100])], [1, 1])
    similarity.search_bank(tiles, tiles, np.zeros(2, dtype=np.int64), 1)
    # one ingest, export and viewer analysis of a small file in a throwaway instance: the readers',
    # tiling, fingerprint and export kernels compile here, with the dtypes the flows use
    import tempfile

    from config import load_settings
    from databank import analysis, exports
    from databank.core import make_data_app
    from databank.ingest import ingest_dataset
    from databank.models import db
    from databank.users import create_user
    from tests.web.helpers_datasets import make_files

    with tempfile.TemporaryDirectory() as folder:
        settings = load_settings(instance_dir=Path(folder) / "instance", seed_demo=False, secret_key="warm")
        app = make_data_app(settings)
        with app.app_context():
            owner = create_user("warm", "warm@example.org", "warm password 123")
            dataset = ingest_dataset(make_files(Path(folder) / "files", "warm"), {"title": "warm", "modality": "PALM",
                                     "software": "other"}, owner, settings=settings)
            store = exports.current_store()
            exports.dataset_zip("gridded", dataset, store, Path(folder)).unlink()
            data_file = dataset.files[0]
            region = analysis.select_region(data_file, store.load_locs(data_file), analysis.RegionSpec("all"))
            analysis.run_dbscan(region, 50, 5)
            db.session.remove()


@pytest.fixture(scope="session", autouse=True)
def _fast_password_hashing_browser():
    with pytest.MonkeyPatch.context() as patch:
        support.use_fast_password_hashing(patch)
        yield


@pytest.fixture
def nanoorg_app():
    """The session's app with its tables emptied and no staged uploads (user ids restart after the
    wipe, so a new user would otherwise meet the previous test's staging folder)."""
    app = support.shared_app()
    support.wipe_database(app)
    staging = Path(app.nanoorg_settings.staging_dir)
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True, exist_ok=True)
    return app


@pytest.fixture(autouse=True)
def _jobs_finish_before_the_next_test():
    """The server thread alone is stopped between tests, so background jobs a flow started run on:
    let them end (at most 60 s) before the next flow shares the app with them."""
    yield
    deadline = time.monotonic() + 60
    for thread in threading.enumerate():
        if thread.name.startswith("nanoorg-job-"):
            thread.join(max(0.0, deadline - time.monotonic()))


@pytest.fixture
def browser_user(nanoorg_app):
    return support.add_user(nanoorg_app, "browser_alice")
