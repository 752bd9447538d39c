"""Fault tests: ``nanoorg ingest`` killed with SIGKILL at 12 points, and cancelling an ingest.

Each child (``tests.security.ingest_child``) runs the real command line on a shared instance and
stops dead at one phase (or after a random delay); the test kills it with SIGKILL. After every kill
the database holds no partial dataset (each dataset row has all its file rows, the bank version
counts the committed ingests). After all kills one real restart (``app.prepare_bank`` in a new
process, as gunicorn's master runs it) must leave no staging folder, no lock file and no store folder
without its row, every dataset's files on disk, and SQLite's ``integrity_check`` ok.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from config import load_settings
from databank.core import make_data_app
from databank.ingest import IngestCancelled, StagedFile, cancel_ingest, ingest_dataset, new_ingest_key
from databank.models import db
from databank.users import create_user, find_user
from tests.databank.conftest import rectangle_um, write_csr_file

ROOT = Path(__file__).resolve().parents[2]
KILL_POINTS = [("locked", 1), ("read", 1), ("roi", 1), ("grid", 1), ("fingerprint", 1), ("copy", 1),
               ("copy", 2), ("normalise", 1), ("read", 2), ("rows", 1), ("moved", 1), ("committed", 1)]
RANDOM_KILLS = 4
PAUSE_TIMEOUT_S = 60


def child_env(instance: Path) -> dict:
    env = dict(os.environ, NANOORG_INSTANCE=str(instance), NANOORG_SEED_DEMO="0", PYTHONPATH=str(ROOT))
    env.pop("DATABASE_URL", None)
    return env


class Forker:
    """The ``ingest_child`` server: imports once, forks one child per ingest (a fresh process each)."""

    def __init__(self, instance: Path):
        self.process = subprocess.Popen([sys.executable, "-m", "tests.security.ingest_child"], cwd=ROOT,
                                        env=child_env(instance), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        text=True, bufsize=1)

    def start(self, folder: Path, meta: Path, phase: str, count: int) -> int:
        args = ["ingest", str(folder), "--metadata", str(meta), "--owner", "alice", "--quiet"]
        self.process.stdin.write(json.dumps([phase, count, args]) + "\n")
        self.process.stdin.flush()
        return int(self.expect("CHILD")[1])

    def expect(self, word: str) -> list[str]:
        """The next line starting with ``word`` (split); the child's own output lines are skipped."""
        while True:
            line = self.process.stdout.readline()
            assert line, "the ingest_child server stopped"
            if line.startswith(word + " "):
                return line.split()

    def kill_at(self, folder: Path, meta: Path, phase: str, count: int) -> None:
        """Run an ingest until it reports PAUSED at (phase, count), then SIGKILL it."""
        pid = self.start(folder, meta, phase, count)
        assert self.expect("PAUSED")[1:] == [phase, str(count)]
        os.kill(pid, signal.SIGKILL)
        _, exited, status = self.expect("EXIT")
        assert int(exited) == pid and os.WIFSIGNALED(int(status)) and os.WTERMSIG(int(status)) == signal.SIGKILL

    def kill_after(self, folder: Path, meta: Path, delay_s: float) -> None:
        pid = self.start(folder, meta, "none", 0)
        time.sleep(delay_s)
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:      # it finished first: a complete ingest
            pass
        assert int(self.expect("EXIT")[1]) == pid

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait(30)


@pytest.fixture(scope="module")
def forker(bank):
    server = Forker(bank["instance"])
    yield server
    server.close()


def database_state(instance: Path) -> dict:
    """Datasets with their file counts, the bank version, and SQLite's integrity check."""
    with sqlite3.connect(f"file:{instance / 'nanoorg.sqlite'}?mode=ro", uri=True) as conn:
        datasets = conn.execute("SELECT d.id, d.storage_key, d.n_files, COUNT(f.id) FROM datasets d "
                                "LEFT JOIN data_files f ON f.dataset_id = d.id GROUP BY d.id").fetchall()
        files = conn.execute("SELECT d.storage_key, f.storage_key FROM data_files f "
                             "JOIN datasets d ON d.id = f.dataset_id").fetchall()
        version = conn.execute("SELECT COALESCE(MAX(version), 0) FROM bank_state").fetchone()[0]
        integrity = conn.execute("PRAGMA integrity_check").fetchone()[0]
    return dict(datasets=datasets, files=files, version=version, integrity=integrity)


def assert_no_partial_dataset(state: dict) -> None:
    assert state["integrity"] == "ok"
    for dataset_id, _, n_files, n_rows in state["datasets"]:
        assert n_files == n_rows == 2, f"dataset {dataset_id} has {n_rows} of its {n_files} files"
    assert state["version"] == len(state["datasets"]), "the bank version must count the committed ingests"


@pytest.fixture(scope="module")
def bank(tmp_path_factory):
    """A fresh instance (user alice) and one upload folder: cellA.csv with a ROI file, cellB.csv without."""
    root = tmp_path_factory.mktemp("faults")
    instance = root / "instance"
    settings = load_settings(instance_dir=instance, seed_demo=False)
    app = make_data_app(settings)
    with app.app_context():
        create_user("alice", "alice@example.org", "correct horse battery")
        db.session.remove()
    folder = root / "upload"
    write_csr_file(folder, "cellA", density=50, size_nm=12_000, seed=1, rois=[rectangle_um(0.5, 0.5, 11, 11)])
    write_csr_file(folder, "cellB", density=50, size_nm=12_000, seed=2)
    return dict(root=root, instance=instance, settings=settings, app=app, folder=folder)


def meta_file(bank, title: str) -> Path:
    path = bank["root"] / f"{title}.json"
    path.write_text(json.dumps(dict(title=title, modality="dSTORM", software="ThunderSTORM")))
    return path


def test_sigkill_at_12_points_then_restart_leaves_a_consistent_bank(bank, forker):
    instance, settings = bank["instance"], bank["settings"]
    committed_before = len(database_state(instance)["datasets"])
    for number, (phase, count) in enumerate(KILL_POINTS):
        forker.kill_at(bank["folder"], meta_file(bank, f"kill {number} {phase} {count}"), phase, count)
        state = database_state(instance)
        assert_no_partial_dataset(state)
        expected = committed_before + (1 if phase == "committed" else 0)
        assert len(state["datasets"]) == expected, (phase, count)
    for number, delay in enumerate(np.random.default_rng(8).uniform(0.05, 1.0, RANDOM_KILLS)):
        forker.kill_after(bank["folder"], meta_file(bank, f"random kill {number}"), float(delay))
        assert_no_partial_dataset(database_state(instance))
    leftovers = list(Path(settings.staging_dir).rglob("ingest-*"))
    assert leftovers, "the kills must have left staging folders or lock files for the restart to remove"

    restart = subprocess.run([sys.executable, "-c", "from app import create_app, prepare_bank; from config import "
                              "load_settings; prepare_bank(create_app(load_settings()))"],
                             cwd=ROOT, env=child_env(instance), capture_output=True, text=True, timeout=120)
    assert restart.returncode == 0, restart.stderr
    assert "leftover folder(s) of interrupted ingests" in restart.stdout

    state = database_state(instance)
    assert_no_partial_dataset(state)
    assert list(Path(settings.staging_dir).rglob("ingest-*")) == []
    store = Path(settings.store_dir)
    assert sorted(p.name for p in store.iterdir()) == sorted(key for _, key, _, _ in state["datasets"])
    on_disk = sorted((d.name, f.name) for d in store.iterdir() for f in d.iterdir())
    assert on_disk == sorted(state["files"])
    for dataset_key, file_key in state["files"]:
        assert {"original", "x.npy", "y.npy"} <= {p.name for p in (store / dataset_key / file_key).iterdir()}


# --------------------------------------------------------------------------------------------
# cancel: truthful, and nothing left behind

def the_lock(settings) -> Path:
    [lock] = Path(settings.staging_dir).glob("ingest-*.lock")
    return lock


@pytest.mark.parametrize("phase, committed", [("copy", False), ("moved", False), ("committed", True)])
def test_cancel_after_the_job_was_killed_says_what_was_added(bank, forker, phase, committed):
    instance, settings = bank["instance"], bank["settings"]
    with bank["app"].app_context():
        before = database_state(instance)
        title = f"cancel {phase}"
        forker.kill_at(bank["folder"], meta_file(bank, title), phase, 1)
        lock = the_lock(settings)
        key = lock.name[len("ingest-"):-len(".lock")]
        dataset = cancel_ingest(key, find_user("alice"), settings=settings, wait_s=5)
        after = database_state(instance)
        if committed:
            assert dataset is not None and dataset.title == title and dataset.storage_key == key
            assert len(after["datasets"]) == len(before["datasets"]) + 1
            assert (Path(settings.store_dir) / key).is_dir()
        else:
            assert dataset is None
            assert after == before
            assert not (Path(settings.store_dir) / key).exists()
        assert list(Path(settings.staging_dir).rglob("ingest-*")) == []
        db.session.remove()


def test_cancel_during_the_ingest_stops_it_before_the_commit(bank, tmp_path):
    """The job is not killed (e.g. the kill is late): it sees the cancel mark at its next step."""
    settings, app = bank["settings"], bank["app"]
    key = new_ingest_key()
    lock = Path(settings.staging_dir) / f"ingest-{key}.lock"
    outcome = {}

    def wait_for_the_cancel_mark(fraction, message):
        while lock.exists() and lock.stat().st_size == 0:
            time.sleep(0.01)

    def job():
        with app.app_context():
            files = [StagedFile(p, p.name) for p in sorted(bank["folder"].iterdir())]
            try:
                ingest_dataset(files, dict(title="cancelled in flight", modality="dSTORM", software="ThunderSTORM"),
                               find_user("alice"), settings=settings, key=key, progress=wait_for_the_cancel_mark)
                outcome["result"] = "committed"
            except IngestCancelled:
                outcome["result"] = "cancelled"
            db.session.remove()

    with app.app_context():
        before = database_state(bank["instance"])
        thread = threading.Thread(target=job)
        thread.start()
        deadline = time.monotonic() + 30
        while not lock.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert cancel_ingest(key, find_user("alice"), settings=settings, wait_s=30) is None
        thread.join(30)
        assert outcome == {"result": "cancelled"}
        assert database_state(bank["instance"]) == before
        assert list(Path(settings.staging_dir).rglob("ingest-*")) == []
        db.session.remove()
