"""A background job's result goes only to the request that started it (issue 8, item 1).

Dash keys a background result by a hash of the callback and its inputs; the user was not part of
it, so an anonymous client asking the same question as the owner of a private dataset collected
the owner's similarity table. Here every job kind is run over HTTP exactly as the renderer does
(``tests.web.support.BackgroundJob``: POST with the page's ``endId``, then polls with the signed
``cacheKey``/``job`` handles), by the owner and by another client (another user, or anonymous)
with the same inputs. The other job starts only once the owner's result is stored and waiting,
the moment the leak happened: the other client must get its own answer, the owner hers, and a
client replaying the owner's handles (even with the owner's ``endId``) gets nothing.
"""

from __future__ import annotations

import json
import logging
import re
import time

import dash
import pytest

import ids
from databank import jobs
from databank.ingest import new_ingest_key
from databank.models import Dataset, db
from server import routes_upload
from server.dash_jobs import OwnedResultKeys, ThreadJobManager
from tests.web import support

SECRET_TITLE = "SECRET private dataset of the owner"


@pytest.fixture
def clients(app, make_user, signed_in):
    owner, other = make_user("owner"), make_user("other")
    return {"owner": signed_in(owner), "other": signed_in(other), "anonymous": app.server.test_client(),
            "accounts": {"owner": owner, "other": other}}


def wait_stored(manager, key: str, timeout: float = 60.0) -> None:
    """Wait until a job's result is stored, not collected (server side)."""
    end = time.monotonic() + timeout
    while not manager.result_ready(key):
        assert time.monotonic() < end, "the owner's job did not finish"
        time.sleep(0.05)


def race(app, owner_client, other_client, outputs, inputs, state, path):
    """The owner's job finishes first (result waiting); then the other client runs the same inputs.

    Returns (owner's outputs, other's outputs) after checking that replayed handles get nothing."""
    manager = app.nanoorg_job_manager
    owner = support.BackgroundJob(owner_client, outputs, inputs, state, path=path)
    owner.start()
    wait_stored(manager, owner.cache_key)
    other = support.BackgroundJob(other_client, outputs, inputs, state, path=path)
    other.start()
    assert other.cache_key != owner.cache_key
    other_result = other.result()
    # the other client replays the owner's signed handles: with its own page token (Dash refuses the
    # signature), then with the owner's page token too (the result belongs to another user)
    for end_id in (other.end_id, owner.end_id):
        other.end_id = end_id
        status, body = other.poll(owner.handles)
        assert not (body and "response" in body), (status, body)
    assert manager.result_ready(owner.cache_key)          # still there for its owner
    return owner.result(), other_result


def background_outputs(app, output: str) -> list[tuple[str, str]]:
    """The (id, property) outputs of the background callback writing ``output``, as the renderer
    names them (``allow_duplicate`` outputs carry Dash's ``@<hash>`` suffix)."""
    key = next(k for k, spec in app.callback_map.items() if spec.get("background") and output in k)
    return [tuple(part.rsplit(".", 1)) for part in key.strip(".").split("...")]


def text(value) -> str:
    return json.dumps(value)


@pytest.mark.parametrize("other", ["other", "anonymous"])
def test_similarity_search_result_goes_to_its_requester_only(app, clients, ingest, other, caplog):
    caplog.set_level(logging.INFO, logger="nanoorg.jobs")
    accounts = clients["accounts"]
    query_id = ingest(accounts["owner"], title="Public query", visibility="public", seed=1)
    ingest(accounts["owner"], title=SECRET_TITLE, visibility="private", seed=2, protein="SECRETPROT")
    outputs = [(ids.Similarity.GRID, "rowData"), (ids.Similarity.STATUS, "children")]
    inputs = [(ids.Similarity.RUN, "n_clicks", 1), (ids.Similarity.TARGET, "value", 30),
              (ids.Similarity.FILTER_PROTEIN, "value", None), (ids.Similarity.FILTER_CELL_TYPE, "value", None),
              (ids.Similarity.FILTER_MODALITY, "value", None), (ids.Similarity.FILTER_TAGS, "value", None)]
    state = [(ids.Similarity.DATASET, "data", str(query_id))]
    mine, theirs = race(app, clients["owner"], clients[other], outputs, inputs, state, f"/dataset/{query_id}")
    owner_rows = mine[ids.Similarity.GRID]["rowData"]
    other_rows = theirs[ids.Similarity.GRID]["rowData"]
    assert SECRET_TITLE in {row["title"] for row in owner_rows}
    assert SECRET_TITLE not in text(theirs) and "SECRETPROT" not in text(theirs)
    assert len(other_rows) == len(owner_rows) - 1
    # one start and one outcome line per job, with kind, user and duration
    lines = [r.getMessage() for r in caplog.records if r.name == "nanoorg.jobs"]
    owner_id = clients["accounts"]["owner"].id
    other_user = "anonymous" if other == "anonymous" else str(clients["accounts"]["other"].id)
    for user in (str(owner_id), other_user):
        assert sum(f"start: kind=similarity-search user={user}" in line for line in lines) == 1, lines
        assert sum(re.search(rf"done: kind=similarity-search user={user} duration=\d+\.\d\ds$", line) is not None
                   for line in lines) == 1, lines


@pytest.mark.parametrize("other", ["other", "anonymous"])
def test_viewer_sweep_result_goes_to_its_requester_only(app, clients, ingest, other):
    dataset_id = ingest(clients["accounts"]["owner"], title=SECRET_TITLE, visibility="private", seed=3)
    with app.server.app_context():
        file_id = db.session.get(Dataset, dataset_id).files[0].id
        db.session.remove()
    path = f"/file/{file_id}"
    outputs = [(ids.Viewer.SWEEP_GRAPH, "figure"), (ids.Viewer.SWEEP_STATUS, "children")]
    inputs = [(ids.Viewer.SWEEP_RUN, "n_clicks", 1)]
    state = [(ids.Viewer.SWEEP_EPS, "value", [20, 80]), (ids.Viewer.SWEEP_MIN, "value", [3, 10]),
             (ids.Viewer.REGION_STORE, "data", "tile:0"), (ids.Viewer.URL, "pathname", path)]
    mine, theirs = race(app, clients["owner"], clients[other], outputs, inputs, state, path)
    assert mine[ids.Viewer.SWEEP_GRAPH]["figure"]["data"][0]["type"] == "heatmap"
    assert "DBSCAN runs" in text(mine[ids.Viewer.SWEEP_STATUS])
    assert ids.Viewer.SWEEP_GRAPH not in theirs                   # no figure, only the refusal
    assert "heatmap" not in text(theirs) and "DBSCAN runs" not in text(theirs)


@pytest.mark.parametrize("other", ["other", "anonymous"])
def test_upload_ingest_result_goes_to_its_requester_only(app, clients, settings, tmp_path, other):
    owner = clients["owner"]
    headers = {"X-CSRFToken": support.csrf_cookie(owner)}
    upload_id = owner.post("/upload/start", headers=headers).json["upload_id"]
    paths = support.write_small_files(tmp_path, "cell1", seed=4)
    for index, path in enumerate(paths):
        data = path.read_bytes()
        response = owner.post(f"/upload/chunk/{upload_id}", headers=headers, data=data, query_string={
            "index": index, "offset": 0, "size": len(data), "last": 1, "name": path.name})
        assert response.status_code == 200, response.json
    request = dict(upload_id=upload_id, files=[p.name for p in paths], visibility="private", shared_with=[],
                   ingest_key=new_ingest_key(),
                   metadata=dict(title=SECRET_TITLE, modality="PALM", software="ThunderSTORM", protein="SLP76"))
    outputs = background_outputs(app, "upload-consumed.data")
    inputs = [("upload-request", "data", request)]
    try:
        mine, theirs = race(app, owner, clients[other], outputs, inputs, (), "/upload")
    finally:
        with app.server.app_context():
            routes_upload.discard_upload(clients["accounts"]["owner"].id, upload_id)
    assert "Dataset uploaded" in text(mine) and SECRET_TITLE in text(mine)
    assert mine["upload-consumed"]["data"]["outcome"] == "done"
    assert SECRET_TITLE not in text(theirs) and "Dataset uploaded" not in text(theirs)
    with app.server.app_context():
        assert [d.title for d in Dataset.query.all()] == [SECRET_TITLE]      # ingested once, by its owner
        db.session.remove()


# --------------------------------------------------------------------------------------------
# the key function

def test_result_key_is_per_user_and_per_job():
    base = "a" * 64
    assert jobs.result_key(base, 7, "n1") == jobs.result_key(base, 7, "n1")            # deterministic
    keys = {jobs.result_key(base, user, nonce) for user in (None, 7, 42) for nonce in ("n1", "n2")}
    assert len(keys) == 6                                  # every user and every job: its own key
    assert jobs.result_key(base, 7, "n1").startswith("user7-")
    assert jobs.result_key(base, None, "n1").startswith("anonymous-")
    key7, key42 = jobs.result_key(base, 7, "n"), jobs.result_key(base, 42, "n")
    assert jobs.result_belongs_to(key7, 7) and not jobs.result_belongs_to(key7, 4)
    assert not jobs.result_belongs_to(key42, 4) and not jobs.result_belongs_to(key7, None)
    assert not jobs.result_belongs_to(jobs.result_key(base, None, "n"), 7)
    assert not jobs.result_belongs_to(None, None) and not jobs.result_belongs_to("", None)


def test_manager_key_mixes_the_cookie_user_and_a_nonce(app, clients, tmp_path):
    manager = ThreadJobManager(tmp_path / "jobs")
    assert isinstance(manager, OwnedResultKeys)

    def body(n_clicks, value):
        return value

    owner_cookie = clients["owner"].get_cookie("session").value
    with app.server.test_request_context("/_dash-update-component", method="POST",
                                         headers={"Cookie": f"session={owner_cookie}"}):
        first = manager.build_cache_key(body, [1, "x"], [], None)
        second = manager.build_cache_key(body, [1, "x"], [], None)
    with app.server.test_request_context("/_dash-update-component", method="POST",
                                         headers={"Cookie": "session=forged.value.sig"}):
        forged = manager.build_cache_key(body, [1, "x"], [], None)
    owner_id = clients["accounts"]["owner"].id
    assert first.startswith(f"user{owner_id}-") and second.startswith(f"user{owner_id}-")
    assert first != second                                 # same request twice: two jobs, two keys
    assert forged.startswith("anonymous-")                 # a forged cookie is nobody


# --------------------------------------------------------------------------------------------
# every job goes through the job layer

def test_every_background_callback_is_a_recorded_job(app):
    from dash.background_callback.managers import BaseBackgroundCallbackManager

    background = [k for k, spec in app.callback_map.items() if spec.get("background")]
    assert len(background) == 8             # ingest; search, own file, compare; DBSCAN, Ripley, envelope, sweep
    ours = [fn for _, fn, _ in BaseBackgroundCallbackManager.functions
            if getattr(fn, "__module__", "").startswith("callbacks.")]
    kinds = {getattr(fn, "nanoorg_job_kind", None) for fn in ours}
    assert kinds == {"ingest", "similarity-search", "similarity-own-file", "similarity-compare", "viewer-dbscan",
                     "viewer-ripley", "viewer-envelope", "viewer-sweep"}


def test_job_record_logs_each_outcome_once(caplog):
    caplog.set_level(logging.INFO, logger="nanoorg.jobs")
    with jobs.recorded("test-kind", 5):
        pass
    with pytest.raises(jobs.JobCancelled):
        with jobs.recorded("test-kind", None):
            raise jobs.JobCancelled()
    with pytest.raises(ValueError):
        with jobs.recorded("test-kind", 6):
            raise ValueError("bad input")
    lines = [r.getMessage() for r in caplog.records if r.name == "nanoorg.jobs"]
    outcomes = [re.sub(r"job \w+ ", "", line) for line in lines]
    assert [o.split(" duration=")[0] for o in outcomes] == [
        "start: kind=test-kind user=5", "done: kind=test-kind user=5",
        "start: kind=test-kind user=anonymous", "cancelled: kind=test-kind user=anonymous",
        "start: kind=test-kind user=6", "failed: kind=test-kind user=6"]
    assert outcomes[-1].endswith("(ValueError: bad input)")
    assert [r.levelname for r in caplog.records if r.name == "nanoorg.jobs"][-1] == "WARNING"


def test_a_failing_job_shows_why_and_never_answers_500(app, clients, ingest, monkeypatch):
    """A job whose body raises (a database gone, a bug) answers the poll with its failure in the
    page's status line (the error's text stays in the server log), on every job kind: job_callback
    refuses a job with nowhere to show its failure."""
    import callbacks.similarity
    from server.dash_jobs import FAILED_MESSAGE, job_callback

    query_id = ingest(clients["accounts"]["owner"], title="Public query", visibility="public", seed=1)

    def broken_search(*_args, **_kwargs):
        raise RuntimeError("connection to server at 10.0.0.7 lost")
    monkeypatch.setattr(callbacks.similarity, "run_search", broken_search)
    job = support.BackgroundJob(
        clients["anonymous"], [(ids.Similarity.GRID, "rowData"), (ids.Similarity.STATUS, "children")],
        [(ids.Similarity.RUN, "n_clicks", 1), (ids.Similarity.TARGET, "value", 30),
         (ids.Similarity.FILTER_PROTEIN, "value", None), (ids.Similarity.FILTER_CELL_TYPE, "value", None),
         (ids.Similarity.FILTER_MODALITY, "value", None), (ids.Similarity.FILTER_TAGS, "value", None)],
        [(ids.Similarity.DATASET, "data", str(query_id))], path=f"/dataset/{query_id}")
    job.start()
    end = time.monotonic() + 60
    while True:
        status, body = job.poll()
        assert status != 500
        if body and "sideUpdate" in body:
            break
        assert time.monotonic() < end, "the failed job was never reported"
        time.sleep(0.05)
    shown = text(body["sideUpdate"][ids.Similarity.STATUS]["children"])
    assert "Failed." in shown and FAILED_MESSAGE in shown and "10.0.0.7" not in shown
    with pytest.raises(TypeError, match="failure_status"):
        job_callback(app, "no-status", dash.Output("x", "children"), dash.Input("y", "n_clicks"))
