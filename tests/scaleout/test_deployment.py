"""The scale-out deployment end to end through HTTP: PostgreSQL, Redis, a Celery job worker and
gunicorn with 2 web workers (fixture ``deployment``, tests/scaleout/conftest.py)."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid

import pytest
from sqlalchemy import create_engine, text

from databank.demo import REAL_FILES, SIMULATED
from databank.schema import head_revision
from tests.databank.conftest import rectangle_um, write_csr_file
from tests.scaleout.conftest import ROOT, wait_until
from tests.scaleout.http import WebClient

pytestmark = pytest.mark.scaleout
PASSWORD = "correct horse battery"


@pytest.fixture(scope="module")
def accounts(deployment):
    """Two users registered through the web form, each a signed-in client."""
    return {role: WebClient(deployment.url).register(f"{role}_{uuid.uuid4().hex[:6]}", PASSWORD)
            for role in ("alice", "bob")}


def test_schema_created_on_empty_postgresql_and_demo_bank_seeded(deployment):
    health = wait_until(lambda: (h := deployment.health())["status"] == "ok" and h, 60, "/healthz to report ok")
    assert health["database"] == dict(ok=True, backend="postgresql", schema=head_revision(), error=None)
    assert health["redis"]["ok"] and health["job_workers"]["ok"] and health["job_workers"]["names"]
    engine = create_engine(deployment.database_url)
    with engine.connect() as connection:
        assert connection.execute(text("SELECT version_num FROM alembic_version")).scalar_one() == head_revision()
        demo_titles = set(connection.execute(text(
            "SELECT d.title FROM datasets d JOIN users u ON u.id = d.owner_id WHERE u.username = 'demo'")).scalars())
    engine.dispose()
    expected = {entry["metadata"]["title"] for entry in REAL_FILES} | {spec.title for spec in SIMULATED}
    assert demo_titles == expected
    listed = WebClient(deployment.url).get("/api/datasets?limit=500").json()
    assert expected <= {row["title"] for row in listed["datasets"]}
    assert f"database schema: (none) -> {head_revision()}" in deployment.start_output   # `nanoorg migrate`


def test_every_web_worker_answers_and_only_checks_the_schema(deployment):
    assert len(deployment.web_workers) == 2
    client = WebClient(deployment.url)
    for pid in deployment.web_workers:
        response = client.get("/healthz", worker=pid)
        assert response.json()["pid"] == pid and response.json()["database"]["schema"] == head_revision()
    # the master migrated and seeded once before forking; the workers logged no migration of their own
    assert deployment.log("gunicorn.log").count("Booting worker") >= 2


def _similar_ids(client: WebClient, dataset_id: int, pid: int) -> set[int]:
    response = client.get(f"/api/datasets/{dataset_id}/similar", worker=pid)
    assert response.status_code == 200, response.text
    return {row["dataset_id"] for row in response.json()["results"]}


def test_similarity_index_consistent_across_web_workers(deployment, accounts, tmp_path):
    alice, bob = accounts["alice"], accounts["bob"]
    anonymous = WebClient(deployment.url)
    reference = anonymous.get("/api/datasets?limit=1&sort=id").json()["datasets"][0]["id"]
    for pid in deployment.web_workers:          # every worker builds its index before the bank changes
        assert reference not in _similar_ids(anonymous, reference, pid)

    # add: a private dataset ingested by another process (the CLI)
    folder = tmp_path / "upload"
    write_csr_file(folder, "cell1", density=150.0, rois=[rectangle_um(0.5, 0.5, 11.5, 11.5)])
    meta = tmp_path / "meta.json"
    meta.write_text(json.dumps(dict(title=f"Private CSR {uuid.uuid4().hex[:6]}", modality="dSTORM",
                                    software="ThunderSTORM", protein="EGFR", visibility="private")))
    added = deployment.nanoorg("ingest", str(folder), "--metadata", str(meta), "--owner", alice.username, "--quiet")["id"]

    def seen_by(pid):
        return {name: added in _similar_ids(client, reference, pid)
                for name, client in (("alice", alice), ("bob", bob), ("anonymous", anonymous))}

    for pid in deployment.web_workers:
        assert seen_by(pid) == dict(alice=True, bob=False, anonymous=False), f"web worker {pid}"

    # visibility change through the dataset page's callback, on whichever worker answers
    def set_visibility(choice):
        response = alice.callback("dataset-visibility-save", "n_clicks", 1, {
            "dataset-visibility-choice.value": choice, "dataset-url.pathname": f"/dataset/{added}"})
        assert response.status_code == 200, response.text
        assert response.json()["response"]["dataset-visibility-modal"]["is_open"] is False, response.text

    set_visibility("public")
    for pid in deployment.web_workers:
        assert seen_by(pid) == dict(alice=True, bob=True, anonymous=True), f"web worker {pid}"
    set_visibility("private")
    for pid in deployment.web_workers:               # no private row leaking from a stale index
        assert seen_by(pid) == dict(alice=True, bob=False, anonymous=False), f"web worker {pid}"

    # delete through the dataset page's callback
    response = alice.callback("dataset-delete-confirm", "n_clicks", 1, {"dataset-url.pathname": f"/dataset/{added}"})
    assert response.status_code == 200, response.text
    assert response.json()["response"]["dataset-url"]["href"] == "/databank", response.text
    for pid in deployment.web_workers:
        assert seen_by(pid) == dict(alice=False, bob=False, anonymous=False), f"web worker {pid}"
        assert alice.get(f"/api/datasets/{added}", worker=pid).status_code == 404


# The suites that check access rules, re-run with the data layer on this deployment's PostgreSQL
# (their jobs run in the test process's threads: who may collect a Celery job's result is checked
# against the live deployment in test_jobs.py).
ACCESS_SUITES = ("tests/security", "tests/databank/test_access.py", "tests/web/test_auth.py", "tests/web/test_api.py",
                 "tests/web/test_job_ownership.py")


def test_access_rules_identical_on_postgresql(deployment):
    engine = create_engine(deployment.database_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(text("DROP DATABASE IF EXISTS access_rules"))
        connection.execute(text("CREATE DATABASE access_rules"))
    engine.dispose()
    suites = [path for path in ACCESS_SUITES if (ROOT / path).exists()]
    database = deployment.database_url.rsplit("/", 1)[0] + "/access_rules"
    env = {key: value for key, value in deployment.env.items() if key not in ("REDIS_URL", "DATABASE_URL")}
    # tests/security's bank_snapshot reads the SQLite file itself (an SQL dump): SQLite-only by design
    sqlite_only = ["--deselect", "tests/security/test_malformed_inputs.py::test_upload_names_the_problem_and_changes_nothing"]
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *suites, *sqlite_only],
                            cwd=ROOT, env={**env, "NANOORG_TEST_DATABASE_URL": database},
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert " passed" in result.stdout and " skipped" not in result.stdout, result.stdout[-2000:]


def test_readme_commands_are_the_ones_the_suite_runs():
    """README "Scaling out": from the first `export` on, every command is in bin/scale-out-example.sh."""
    readme = (ROOT / "README.md").read_text()
    block = readme.split("### Scaling out", 1)[1].split("```bash\n", 1)[1].split("```", 1)[0]
    lines = block.splitlines()
    first = next(k for k, line in enumerate(lines) if line.startswith("export "))
    commands = [line.split("  #", 1)[0].strip() for line in lines[first:] if not line.startswith("#")]
    script = (ROOT / "bin" / "scale-out-example.sh").read_text()
    assert len(commands) >= 10
    assert [command for command in commands if command not in script] == []
    order = [script.index(command) for command in commands]
    assert order == sorted(order), "README lists the commands in another order than the script runs them"
