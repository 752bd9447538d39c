"""Staging quota (issue 8, item 7) and a truthful cancel on the upload page (item 11).

Attack that got through: 1,000 empty uploads made 2,201 files and used no quota. Now every staged
file and folder costs its bytes plus ``FILE_OVERHEAD_BYTES``, a user holds at most
``MAX_OPEN_UPLOADS`` uploads and ``MAX_STAGED_FILES`` files, chunks go only to started uploads.
"""

from __future__ import annotations

import os
import shutil
import time
import uuid
from pathlib import Path

import pytest
from flask_login import login_user

from callbacks import upload as cb
from databank.models import Dataset, db
from databank.users import find_user
from server import routes_upload
from tests.web.conftest import _empty_tables, _fast_password_hashing, app, make_user, server, settings, signed_in  # noqa: F401
from tests.web.test_upload import GOOD_META, csrf, request_for, run_job, stage, start, text_of, thunderstorm_csv

KiB = 1024


@pytest.fixture
def alice(make_user, signed_in, settings):
    saved = settings.max_upload_mb, settings.upload_quota_mb
    settings.max_upload_mb, settings.upload_quota_mb = 2, 1
    shutil.rmtree(routes_upload.uploads_root(settings), ignore_errors=True)
    yield signed_in(make_user("alice"))
    settings.max_upload_mb, settings.upload_quota_mb = saved
    shutil.rmtree(routes_upload.uploads_root(settings), ignore_errors=True)


def alice_dir(app, settings) -> Path:
    with app.server.app_context():
        return routes_upload.user_dir(settings, find_user("alice").id)


def send_empty(client, upload_id, index):
    return client.post(f"/upload/chunk/{upload_id}", query_string={"index": index, "offset": 0, "size": 0,
                                                                   "last": 1, "name": f"empty{index}.csv"},
                       data=b"", headers=csrf(client))


def test_staged_usage_counts_bytes_and_every_file_and_folder(tmp_path):
    root = tmp_path / "user"
    (root / "a").mkdir(parents=True)
    (root / "a" / "0.part").write_bytes(b"")
    (root / "a" / "0.json").write_text('{"name": "x"}')
    (root / "ingest-k" / "f").mkdir(parents=True)
    (root / "ingest-k" / "f" / "original").write_bytes(b"x" * 1000)
    paths = list(root.rglob("*"))
    expected_bytes = sum(p.stat().st_size for p in paths if p.is_file()) + routes_upload.FILE_OVERHEAD_BYTES * len(paths)
    assert routes_upload.staged_usage(root) == (expected_bytes, 1)


def test_empty_files_fill_the_quota(alice, app, settings):
    """1 MB quota: empty files cost 2 x 4 KiB each (sidecar + part), so about 128 fit, not unlimited."""
    upload_id = start(alice)
    accepted = 0
    for index in range(routes_upload.MAX_FILES_PER_UPLOAD):
        response = send_empty(alice, upload_id, index)
        if response.status_code != 200:
            break
        accepted += 1
    assert response.status_code == 413 and "counting every staged file" in response.json["error"]
    per_file = 2 * routes_upload.FILE_OVERHEAD_BYTES
    assert 1024 * KiB // per_file - 4 <= accepted <= 1024 * KiB // per_file
    used, n_files = routes_upload.staged_usage(alice_dir(app, settings))
    assert n_files == accepted and used <= 1024 * KiB


def test_open_uploads_are_capped_and_idle_ones_make_room(alice, app, settings):
    ids = [start(alice) for _ in range(routes_upload.MAX_OPEN_UPLOADS)]
    refused = alice.post("/upload/start", headers=csrf(alice))
    assert refused.status_code == 429 and f"at most {routes_upload.MAX_OPEN_UPLOADS}" in refused.json["error"]
    assert len(list(alice_dir(app, settings).iterdir())) == routes_upload.MAX_OPEN_UPLOADS
    oldest = alice_dir(app, settings) / ids[0]
    idle = time.time() - routes_upload.IDLE_UPLOAD_SECONDS - 60
    os.utime(oldest, (idle, idle))
    assert alice.post("/upload/start", headers=csrf(alice)).status_code == 200
    assert not oldest.exists() and len(list(alice_dir(app, settings).iterdir())) == routes_upload.MAX_OPEN_UPLOADS


def test_chunks_only_go_to_started_uploads(alice, app, settings):
    invented = uuid.uuid4().hex
    response = send_empty(alice, invented, 0)
    assert response.status_code == 404 and "not open" in response.json["error"]
    assert not (alice_dir(app, settings) / invented).exists()


def test_staged_files_are_capped_per_user(alice, monkeypatch):
    monkeypatch.setattr(routes_upload, "MAX_STAGED_FILES", 5)
    first, second = start(alice), start(alice)
    assert all(send_empty(alice, first, i).status_code == 200 for i in range(3))
    assert all(send_empty(alice, second, i).status_code == 200 for i in range(2))
    refused = send_empty(alice, second, 2)
    assert refused.status_code == 429 and "at most 5 at once" in refused.json["error"]


# --------------------------------------------------------------------------------------------
# cancel on the upload page

@pytest.fixture
def files(tmp_path) -> dict[str, bytes]:
    return {"cell1.csv": thunderstorm_csv(tmp_path / "cell1.csv", field_um=9.0, density_per_um2=50).read_bytes()}


def cancel_as_alice(app, request):
    with app.server.test_request_context("/upload"):
        login_user(find_user("alice"))
        return cb.cancel_ingest(1, request)


def test_cancel_after_the_commit_says_the_dataset_was_added(alice, app, settings, files):
    settings.upload_quota_mb = None
    upload_id = stage(alice, files)
    request = request_for(upload_id, files, GOOD_META)
    (card, _, consumed), _ = run_job(app, alice, request)
    assert consumed["outcome"] == "done"
    message, outcome = cancel_as_alice(app, request)
    text = text_of(message)
    assert "had already finished" in text and f"[/dataset/{consumed['dataset_id']}]" in text
    assert request["metadata"]["title"] in text and "nothing was added" not in text
    assert outcome["outcome"] == "done" and outcome["dataset_id"] == consumed["dataset_id"]
    with app.server.app_context():
        assert db.session.get(Dataset, consumed["dataset_id"]).storage_key == request["ingest_key"]
    assert list(alice_dir(app, settings).rglob("ingest-*")) == []


def test_cancel_before_the_commit_says_nothing_was_added_and_removes_everything(alice, app, settings, files):
    settings.upload_quota_mb = None
    upload_id = stage(alice, files)
    request = request_for(upload_id, files, GOOD_META)
    # what a job killed while staging leaves: its staging copy and its (free) lock file
    leftover = alice_dir(app, settings) / f"ingest-{request['ingest_key']}"
    (leftover / "file").mkdir(parents=True)
    (leftover / "file" / "original").write_bytes(files["cell1.csv"])
    leftover.with_name(leftover.name + ".lock").write_bytes(b"")
    used_before, _ = routes_upload.staged_usage(alice_dir(app, settings))
    assert used_before > len(files["cell1.csv"]) * 2        # the staging copy counts in the quota
    message, outcome = cancel_as_alice(app, request)
    assert "nothing was added to the databank" in text_of(message) and outcome["outcome"] == "cancelled"
    assert list(alice_dir(app, settings).iterdir()) == []
    with app.server.app_context():
        assert db.session.query(Dataset).count() == 0
    # the job, if it starts after all, finds the cancel: nothing is added
    (card, _, consumed), _ = run_job(app, alice, request)
    assert consumed["outcome"] == "failed" and "failed" in text_of(card)


def test_a_killed_ingest_copy_leaves_the_quota_at_the_next_upload(alice, app, settings):
    from databank.ingest import _hold_lock, new_ingest_key

    start(alice)
    folder = alice_dir(app, settings)
    dead, running = new_ingest_key(), new_ingest_key()
    for key in (dead, running):
        (folder / f"ingest-{key}" / "file").mkdir(parents=True)
        (folder / f"ingest-{key}" / "file" / "original").write_bytes(b"x" * 50_000)
    (folder / f"ingest-{dead}.lock").write_bytes(b"")          # its process was killed: the lock is free
    held = _hold_lock(folder / f"ingest-{running}.lock")        # a running ingest holds its lock
    try:
        used_before, _ = routes_upload.staged_usage(folder)
        assert start(alice)
        used_after, _ = routes_upload.staged_usage(folder)
        assert not (folder / f"ingest-{dead}").exists() and not (folder / f"ingest-{dead}.lock").exists()
        assert (folder / f"ingest-{running}" / "file" / "original").exists()
        assert used_before - used_after >= 50_000
    finally:
        held.close()
