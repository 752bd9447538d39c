"""Pins the Dash behaviour that ``server.dash_jobs`` and the tests rely on; fails if a Dash upgrade changes it.

- the two private names of Dash's unit-testing recipe (``dash._callback_context.context_value``,
  ``dash._utils.AttributeDict``) still make ``dash.ctx`` answer inside the tests' ``callback_context``;
- the background-manager protocol (``BaseBackgroundCallbackManager``'s methods and signatures,
  Dash's markers for "no update" and for a job's error) is the one the managers implement, and a
  real Dash app runs a job on ``ThreadJobManager`` end to end over HTTP: progress, result, error,
  ``PreventUpdate`` and cancel;
- no file of the application imports a private Dash module (only ``tests/web/support.py`` does).
"""

from __future__ import annotations

import contextvars
import inspect
import re
import threading
import time
from pathlib import Path

import dash
import pytest
from dash import Dash, Input, Output, html
from dash.background_callback.managers import BaseBackgroundCallbackManager

from server import dash_jobs
from tests.web import support

ROOT = Path(__file__).resolve().parents[2]
TESTING_RECIPE = ROOT / "tests" / "web" / "support.py"
PRIVATE_DASH = re.compile(r"^\s*(from|import)\s+dash\.(_\w+|\w+(\.\w+)*\._\w+)", re.M)

PROTOCOL = {
    "build_cache_key": ["self", "fn", "args", "cache_args_to_ignore", "triggered"],
    "make_job_fn": ["self", "fn", "progress", "key"],
    "call_job_fn": ["self", "key", "job_fn", "args", "context"],
    "get_progress": ["self", "key"],
    "result_ready": ["self", "key"],
    "get_result": ["self", "key", "job"],
    "get_updated_props": ["self", "key"],
    "job_running": ["self", "job"],
    "terminate_job": ["self", "job"],
    "terminate_unhealthy_job": ["self", "job"],
}


def test_dash_is_the_major_version_the_adapter_was_written_for():
    assert dash.__version__.split(".")[0] == "4", dash.__version__


def test_private_callback_context_still_drives_dash_ctx():
    from dash._callback_context import context_value
    from dash._utils import AttributeDict

    assert isinstance(context_value, contextvars.ContextVar)
    assert issubclass(AttributeDict, dict) and AttributeDict(a=1).a == 1

    def inside():
        with support.callback_context(cookies={"session": "s"},
                                        triggered_inputs=[{"prop_id": "btn.n_clicks", "value": 1}]):
            assert dash.ctx.cookies == {"session": "s"}
            assert dash.ctx.triggered_id == "btn"
        with pytest.raises(dash.exceptions.MissingCallbackContextException):
            dash.ctx.cookies                    # the context is reset afterwards
    contextvars.copy_context().run(inside)


def test_manager_protocol_is_unchanged():
    for name, parameters in PROTOCOL.items():
        method = getattr(BaseBackgroundCallbackManager, name)
        assert list(inspect.signature(method).parameters) == parameters, name
    assert BaseBackgroundCallbackManager.UNDEFINED is not None
    # how Dash's managers store "no update" and a job's error, which ThreadJobRunner stores too
    assert type(dash.no_update).is_no_update(dash_jobs.NO_UPDATE)
    source = inspect.getsource(dash.background_callback.managers.diskcache_manager)
    assert '"_dash_no_update": "_dash_no_update"' in source and '"background_callback_error"' in source
    assert '"msg"' in source and '"tb"' in source


def test_no_private_dash_import_outside_the_testing_recipe():
    offenders = []
    for path in ROOT.rglob("*.py"):
        if any(part.startswith(".") or part in ("node_modules", "instance") for part in path.relative_to(ROOT).parts):
            continue
        if path in (TESTING_RECIPE, Path(__file__).resolve()):
            continue
        if PRIVATE_DASH.search(path.read_text(encoding="utf-8", errors="replace")):
            offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []
    assert PRIVATE_DASH.search(TESTING_RECIPE.read_text())     # the pattern does find them


# --------------------------------------------------------------------------------------------
# a real Dash app on ThreadJobManager, over HTTP

@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A Dash app with one background callback: progress per step; n=0 raises, n<0 prevents update."""
    manager = dash_jobs.ThreadJobManager(tmp_path_factory.mktemp("adapter") / "jobs")
    app = Dash(__name__, background_callback_manager=manager)
    # Dash signs job handles with the secret of ``dash.get_app()``, which in a process holding several
    # apps (the test session's app too) may answer another one: use the same secret as that app
    app.server.secret_key = support.TEST_SECRET
    app.server.config["PROPAGATE_EXCEPTIONS"] = False       # a job error answers 500
    app.layout = html.Div([html.Button(id="go"), html.Button(id="stop"), html.Div(id="out"), html.Div(id="bar")])
    release = threading.Event()

    @app.callback(Output("out", "children"), Input("go", "n_clicks"), background=True,
                  progress=[Output("bar", "children")], cancel=[Input("stop", "n_clicks")],
                  prevent_initial_call=True)
    def steps(set_progress, n):
        if n == 0:
            raise RuntimeError("broken job")
        if n < 0:
            raise dash.exceptions.PreventUpdate
        for k in range(n):
            set_progress(f"step {k + 1} of {n}")
            if k == 0:
                release.wait(10)
        return f"done {n}"

    return app, release, manager


def _job(app, n):
    client = app.server.test_client()
    job = support.BackgroundJob(client, [("out", "children")], [("go", "n_clicks", n)], csrf=False)
    job.start()
    return job


def test_thread_manager_end_to_end_over_http(tiny):
    app, release, manager = tiny
    release.clear()
    job = _job(app, 3)
    end = time.monotonic() + 10
    seen = None
    while seen is None and time.monotonic() < end:           # progress while the job waits
        status, body = job.poll()
        assert status in (200, 202, 204)
        seen = (body or {}).get("progress")
        time.sleep(0.05)
    assert seen == {"bar.children": "step 1 of 3"}
    release.set()
    assert job.result() == {"out": {"children": "done 3"}}

    failing = _job(app, 0)
    end = time.monotonic() + 10
    while time.monotonic() < end:
        status, body = failing.poll()
        if status == 500:
            break
        time.sleep(0.05)
    assert status == 500                                      # Dash raises the job's error

    prevented = _job(app, -1)
    end = time.monotonic() + 10
    while manager.job_running(prevented.job_id) and time.monotonic() < end:
        status, body = prevented.poll()
        assert status in (200, 202, 204) and "response" not in (body or {})     # no update, no error
        time.sleep(0.05)
    assert not manager.job_running(prevented.job_id) and not manager.result_ready(prevented.cache_key)


def test_thread_manager_cancel_over_http(tiny):
    app, release, manager = tiny
    release.clear()
    job = _job(app, 3)
    job_id = job.job_id
    response = support.dash_post(job.client, [("stop", "id")], [("stop", "n_clicks", 1)], csrf=False,
                                 query={"endId": job.end_id, "cancelJob": job.handles["job"]})
    assert response.status_code in (200, 204)
    release.set()
    end = time.monotonic() + 10
    while manager.job_running(job_id) and time.monotonic() < end:
        time.sleep(0.05)
    assert not manager.job_running(job_id)                   # stopped at its next progress report
    assert manager.get_result(job.cache_key, job_id) is manager.UNDEFINED


def test_a_job_whose_process_died_is_not_running(tmp_path):
    from databank import jobs

    manager = dash_jobs.ThreadJobManager(tmp_path / "jobs")
    here = jobs.process_identity()
    states = {"alive": dict(here, state="running"),
              "dead": dict(here, pid=2 ** 22 + 12345, state="running"),       # above Linux's largest pid
              "reused": dict(here, started=here["started"] - 3600, state="running"),   # same pid, other process
              "finished": {"state": "finished"}}
    for job, state in states.items():
        manager.handle.set(dash_jobs.job_key(job, "state"), state)
    assert {job: manager.job_running(job) for job in states} == {"alive": True, "dead": False, "reused": False,
                                                                  "finished": True}


class _FakeRedis:
    """The few Redis commands the Celery result backend and the heartbeat use (no server)."""

    def __init__(self):
        self.values, self.writes = {}, []       # writes: the keys set, in order

    def get(self, key):
        return self.values.get(key if isinstance(key, bytes) else str(key).encode())

    def set(self, key, value, ex=None, **_):
        key = str(key).encode() if not isinstance(key, bytes) else key
        self.values[key] = value if isinstance(value, bytes) else str(value).encode()
        self.writes.append(key)

    def setex(self, key, _ttl, value):
        self.set(key, value)

    def delete(self, *keys):
        for key in keys:
            self.values.pop(key if isinstance(key, bytes) else str(key).encode(), None)

    def exists(self, key):
        return int((key if isinstance(key, bytes) else str(key).encode()) in self.values)

    def expire(self, *_):
        return True


def test_celery_job_whose_worker_died_is_reported_failed():
    from celery import Celery

    celery_app = Celery("lost-test", broker="memory://", backend="redis://127.0.0.1:9/0")
    fake = _FakeRedis()
    celery_app.backend.__dict__["client"] = fake            # the backend's cached Redis client
    manager = dash_jobs.CeleryJobRunner(celery_app)
    started, alive = dash_jobs.job_key("t1", "started"), dash_jobs.job_key("t1", "alive")

    assert manager.job_running("t1")                          # queued (PENDING), never started: waiting
    fake.set(started, 1)
    fake.set(alive, 1)
    assert manager.job_running("t1") and manager.get_result("k1", "t1") is manager.UNDEFINED
    fake.delete(alive)                                        # started, heartbeat expired: the worker died
    assert not manager.job_running("t1")
    lost = manager.get_result("k1", "t1")
    assert lost == {"background_callback_error": {"msg": dash_jobs.LOST_MESSAGE, "tb": ""}}
    assert manager.get_result("k1", "t1") is manager.UNDEFINED  # reported once
    fake.set(dash_jobs.job_key("t2", "started"), 1)
    fake.set("k2", '["done"]')                                 # a result stored before the heartbeat expired
    assert manager.get_result("k2", "t2") == ["done"]


# --------------------------------------------------------------------------------------------
# the Celery job wrapper (CeleryJobRunner._as_job) without a broker

@pytest.fixture
def celery_runner(monkeypatch):
    import celery
    from types import SimpleNamespace

    monkeypatch.setattr(celery, "current_task", SimpleNamespace(request=SimpleNamespace(id="job-1")))
    runner = dash_jobs.CeleryJobRunner.__new__(dash_jobs.CeleryJobRunner)     # only what the wrapper touches
    revoked = []
    runner.handle = SimpleNamespace(backend=SimpleNamespace(client=_FakeRedis()),
                                    control=SimpleNamespace(revoke=revoked.append,
                                                            terminate=lambda job: pytest.fail("terminate used")))
    runner.revoked = revoked
    return runner


def test_a_running_celery_job_is_never_seen_started_without_a_heartbeat(celery_runner):
    """A poll between the two writes once reported a just-started job as lost; Dash then cancelled it."""
    client = celery_runner.handle.backend.client
    seen = {}

    def body(set_progress):
        seen["lost while running"] = celery_runner._lost("job-1")
        set_progress([0.5, "half"])
        return "result"
    assert celery_runner._as_job(body, progress=True)(lambda value: seen.setdefault("progress", value)) == "result"
    order = [key.decode() for key in client.writes]
    assert order.index(dash_jobs.job_key("job-1", "alive")) < order.index(dash_jobs.job_key("job-1", "started"))
    assert seen == {"lost while running": False, "progress": [0.5, "half"]}


def test_a_cancelled_celery_job_stops_at_its_next_progress_report(celery_runner):
    cleaned = []

    def body(set_progress):
        set_progress(0.1)
        celery_runner.terminate_job("job-1")     # the Cancel button, while the job runs
        try:
            set_progress(0.2)
        finally:
            cleaned.append("staging removed")
        return "never"
    with pytest.raises(dash.exceptions.PreventUpdate):      # stored by Dash as "no update"
        celery_runner._as_job(body, progress=True)(lambda value: None)
    assert cleaned == ["staging removed"] and celery_runner.revoked == ["job-1"]   # a plain revoke, never terminate


def test_a_celery_job_cancelled_while_queued_never_runs(celery_runner):
    celery_runner.terminate_job("job-1")
    with pytest.raises(dash.exceptions.PreventUpdate):
        celery_runner._as_job(lambda: pytest.fail("the body ran"), progress=False)()
