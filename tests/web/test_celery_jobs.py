"""The Celery job runner's own logic (server.dash_jobs.CeleryJobRunner) without a broker: a fake
Redis client records what a job writes. The whole backend runs on real Redis and Celery in
tests/scaleout."""

from __future__ import annotations

from types import SimpleNamespace

import celery
import pytest
from dash.exceptions import PreventUpdate

from server.dash_jobs import CeleryJobRunner, job_key


class FakeRedis:
    def __init__(self):
        self.values, self.writes = {}, []

    def set(self, key, value, ex=None):
        self.values[key] = value
        self.writes.append(key)

    def exists(self, key):
        return int(key in self.values)

    def delete(self, key):
        self.values.pop(key, None)


@pytest.fixture
def runner(monkeypatch):
    monkeypatch.setattr(celery, "current_task", SimpleNamespace(request=SimpleNamespace(id="job-1")))
    runner = CeleryJobRunner.__new__(CeleryJobRunner)            # no broker: only what the job logic touches
    revoked = []
    runner.handle = SimpleNamespace(backend=SimpleNamespace(client=FakeRedis()),
                                    control=SimpleNamespace(revoke=revoked.append,
                                                            terminate=lambda job: pytest.fail("terminate used")))
    runner.revoked = revoked
    return runner


def test_a_running_job_is_never_seen_started_without_a_heartbeat(runner):
    """A poll between the two writes once reported a just-started job as lost; Dash then cancelled it."""
    client = runner.handle.backend.client
    seen = {}

    def body(set_progress):
        seen["lost while running"] = runner._lost("job-1")
        set_progress([0.5, "half"])
        return "result"
    assert runner._as_job(body, progress=True)(lambda value: seen.setdefault("progress", value)) == "result"
    assert client.writes.index(job_key("job-1", "alive")) < client.writes.index(job_key("job-1", "started"))
    assert seen == {"lost while running": False, "progress": [0.5, "half"]}


def test_cancel_flags_the_job_and_it_stops_at_its_next_progress_report(runner):
    cleaned = []

    def body(set_progress):
        set_progress(0.1)
        runner.terminate_job("job-1")             # the Cancel button, while the job runs
        try:
            set_progress(0.2)
        finally:
            cleaned.append("staging removed")
        return "never"
    with pytest.raises(PreventUpdate):            # stored by Dash as "no update"
        runner._as_job(body, progress=True)(lambda value: None)
    assert cleaned == ["staging removed"] and runner.revoked == ["job-1"]   # a plain revoke, never terminate


def test_a_job_cancelled_while_queued_never_runs(runner):
    runner.terminate_job("job-1")
    with pytest.raises(PreventUpdate):
        runner._as_job(lambda: pytest.fail("the body ran"), progress=False)()
