"""Every malformed input of ``malformed_corpus`` gets a precise message (the file, the line or column
when there is one, and "Fix: ...") through the command line (``nanoorg ingest``) and through the upload
page (chunked upload routes + the ingest job), and leaves the database and the file store
byte-for-byte unchanged (an SQL dump of every table, and a hash of every stored file).

The JSON API reads only (GET); it accepts no files, so there is no third path to test.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
import tracemalloc
from pathlib import Path

import pytest

import cli
from tests.security.malformed_corpus import CASES, write_case
from tests.web.conftest import _empty_tables, _fast_password_hashing, app, make_user, server, settings, signed_in  # noqa: F401
from tests.web.test_upload import GOOD_META, request_for, run_job, stage, text_of
from server import routes_upload

CASE_IDS = [case.name for case in CASES]
META = {key: value for key, value in GOOD_META.items() if key != "pixel_size_nm"}   # pixel-size cases must fail


def bank_snapshot(settings) -> tuple[str, str]:
    """(sha256 of an SQL dump of the database, sha256 of every stored file's path and bytes)."""
    with sqlite3.connect(f"file:{Path(settings.instance_dir) / 'nanoorg.sqlite'}?mode=ro", uri=True) as conn:
        dump = "\n".join(conn.iterdump())
    store = hashlib.sha256()
    for path in sorted(Path(settings.store_dir).rglob("*")):
        store.update(str(path.relative_to(settings.store_dir)).encode())
        if path.is_file():
            store.update(hashlib.sha256(path.read_bytes()).digest())
    return hashlib.sha256(dump.encode()).hexdigest(), store.hexdigest()


def leftovers(settings) -> list[str]:
    """Ingest staging folders or lock files anywhere under the staging folder."""
    return sorted(str(p) for p in Path(settings.staging_dir).rglob("ingest-*"))


def assert_precise(message: str, case) -> None:
    missing = [word for word in case.expect if word not in message]
    assert not missing, f"{case.name}: {missing} not in {message!r}"
    assert "Traceback" not in message and "server" not in message.lower(), message


def test_the_corpus_has_at_least_30_cases_each_distinct():
    assert len(CASES) >= 30 and len(set(CASE_IDS)) == len(CASES)


# --------------------------------------------------------------------------------------------
# command line: nanoorg ingest FOLDER

@pytest.fixture(scope="module")
def cli_instance(tmp_path_factory):
    """An instance folder with user alice, used by ``nanoorg`` through NANOORG_INSTANCE."""
    root = tmp_path_factory.mktemp("cli-instance")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("NANOORG_INSTANCE", str(root / "instance"))
        patch.setenv("NANOORG_SEED_DEMO", "0")
        patch.delenv("DATABASE_URL", raising=False)
        assert cli.main(["create-user", "alice", "--email", "alice@example.org",
                         "--password", "correct horse battery"]) == 0
        from config import load_settings
        yield load_settings()


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_cli_ingest_names_the_problem_and_changes_nothing(case, cli_instance, tmp_path, capsys):
    folder = tmp_path / "upload"
    write_case(case, folder)
    meta = tmp_path / "meta.json"
    meta.write_text(json.dumps(dict(META, title=f"CLI {case.name}")))
    before = bank_snapshot(cli_instance)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("NANOORG_INSTANCE", str(cli_instance.instance_dir))
        patch.setenv("NANOORG_SEED_DEMO", "0")
        code = cli.main(["ingest", str(folder), "--metadata", str(meta), "--owner", "alice", "--quiet"])
    err = capsys.readouterr().err
    assert code == cli.EXIT_BAD_INPUT, err
    assert err.startswith("nanoorg ingest: ")
    assert_precise(err, case)
    assert bank_snapshot(cli_instance) == before
    assert leftovers(cli_instance) == []


def test_a_60_byte_csv_spanning_5_mm_allocates_no_tile_grid(tmp_path, capsys):
    """Item 2: the 3-row CSV spanning 5 mm (and 50 mm) is refused before any tile is allocated."""
    for extent_nm in (5_000_000, 50_000_000):
        path = tmp_path / f"huge_{extent_nm}.csv"
        path.write_text(f"x [nm],y [nm]\n0,0\n{extent_nm},0\n0,{extent_nm}\n")
        assert path.stat().st_size <= 60
        tracemalloc.start()
        try:
            code = cli.main(["analyse", str(path)])
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        err = capsys.readouterr().err
        assert code == cli.EXIT_BAD_INPUT and "the limit is 1,000 um per side" in err
        assert f"{extent_nm / 1000:,.0f} x {extent_nm / 1000:,.0f} um" in err and path.name in err
        # (5 mm / 3 um)^2 = 2.8 million tiles would need > 40 MB for their origins alone
        assert peak < 20 * 1024 * 1024, peak


# --------------------------------------------------------------------------------------------
# upload page: chunked upload + the ingest background job

@pytest.fixture
def alice(make_user, signed_in, settings):
    saved = settings.max_upload_mb, settings.upload_quota_mb
    settings.max_upload_mb, settings.upload_quota_mb = 64, None
    shutil.rmtree(routes_upload.uploads_root(settings), ignore_errors=True)
    yield signed_in(make_user("alice"))
    settings.max_upload_mb, settings.upload_quota_mb = saved
    shutil.rmtree(routes_upload.uploads_root(settings), ignore_errors=True)


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_upload_names_the_problem_and_changes_nothing(case, alice, app, settings, tmp_path):
    named = {path.name: path.read_bytes() for path in write_case(case, tmp_path / "files")}
    before = bank_snapshot(settings)
    upload_id = stage(alice, named)
    (card, _, consumed), progress = run_job(app, alice, request_for(upload_id, named, META))
    text = text_of(card)
    assert "The upload failed: nothing was added to the databank" in text, text
    assert_precise(text, case)
    assert consumed["outcome"] == "failed"
    assert progress[-1][2] == "Failed: nothing was added to the databank."
    assert bank_snapshot(settings) == before
    assert leftovers(settings) == []
    assert not routes_upload.upload_dir(settings, consumed_user(app), upload_id).exists()


def consumed_user(app) -> int:
    from databank.users import find_user

    with app.server.app_context():
        return find_user("alice").id
