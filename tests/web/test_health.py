"""GET /healthz in the embedded default (SQLite, no Redis): what it reports, and 503 when degraded."""

from __future__ import annotations

import os

from databank.schema import head_revision


def test_healthz_reports_database_schema_bank_version_and_pid(client, settings):
    response = client.get("/healthz")
    backend = settings.database_url.split(":")[0].split("+")[0]          # sqlite, or postgresql (tests/databases.py)
    assert response.status_code == 200
    assert response.json == dict(status="ok", bank_version=response.json["bank_version"], pid=os.getpid(),
                                 database=dict(ok=True, backend=backend, schema=head_revision(), error=None),
                                 redis=None, job_workers=None)
    assert "Set-Cookie" not in response.headers               # no session for health checks
    assert "X-Nanoorg-Worker-Pid" not in response.headers     # one web worker: no worker header


def test_healthz_is_503_when_the_schema_is_out_of_date(client, monkeypatch):
    from server import health
    from databank.schema import SchemaOutOfDate

    def out_of_date(_engine):
        raise SchemaOutOfDate("The database schema is at revision old, run `nanoorg migrate`")

    monkeypatch.setattr(health, "check_schema", out_of_date)
    response = client.get("/healthz")
    assert response.status_code == 503 and response.json["status"] == "degraded"
    assert response.json["database"]["ok"] is False
    assert response.json["database"]["error"].startswith("SchemaOutOfDate: The database schema is at revision old")
