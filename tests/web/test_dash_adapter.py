"""Pins the Dash internals that ``server.dash_jobs`` relies on; fails if a Dash upgrade changes them.

- the two private names (``dash._callback_context.context_value``, ``dash._utils.AttributeDict``)
  still make ``dash.ctx`` answer inside ``callback_context``;
- the background-manager protocol (``BaseBackgroundCallbackManager``'s methods and signatures,
  Dash's markers for "no update" and for a job's error) is the one the managers implement, and a
  real Dash app runs a job on ``ThreadJobManager`` end to end over HTTP: progress, result, error,
  ``PreventUpdate`` and cancel;
- no other file of the repository imports a private Dash module.
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
ADAPTER = ROOT / "server" / "dash_jobs.py"
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
        with dash_jobs.callback_context(cookies={"session": "s"},
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


def test_no_private_dash_import_outside_the_adapter():
    offenders = []
    for path in ROOT.rglob("*.py"):
        if any(part.startswith(".") or part in ("node_modules", "instance") for part in path.relative_to(ROOT).parts):
            continue
        if path in (ADAPTER, Path(__file__).resolve()):
            continue
        if PRIVATE_DASH.search(path.read_text(encoding="utf-8", errors="replace")):
            offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []
    assert PRIVATE_DASH.search(ADAPTER.read_text())        # the pattern does find them


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
        manager.handle.set(manager._state_key(job), state)
    assert {job: manager.job_running(job) for job in states} == {"alive": True, "dead": False, "reused": False,
                                                                  "finished": True}
