"""Jobs on the Celery worker of the scale-out deployment, driven through HTTP as the browser does:
an upload ingested by the job worker and then served by both web workers, a similarity search
job with progress and cancel, and a job worker killed in the middle of an ingest."""

from __future__ import annotations

import hashlib
import json
import time
import uuid

import pandas as pd
import pytest
from sqlalchemy import create_engine, text

from databank.ingest import new_ingest_key
from tests.databank.conftest import rectangle_um, write_csr_file
from tests.scaleout.conftest import wait_until
from tests.scaleout.http import BackgroundJob, WebClient

pytestmark = pytest.mark.scaleout
PASSWORD = "correct horse battery"
JOB_TIMEOUT_S = 300


@pytest.fixture(scope="module")
def uploader(deployment):
    """A user registered through the web form (``name``)."""
    name = "uploader_" + uuid.uuid4().hex[:6]
    WebClient(deployment.url).register(name, PASSWORD)
    return dict(name=name)


def upload_request(client: WebClient, paths, title: str, visibility: str = "private") -> dict:
    """What the upload page's submit callback hands to the ingest job, after the chunked upload."""
    upload_id = client.upload(paths)
    return dict(upload_id=upload_id, files=[p.name for p in paths], visibility=visibility, shared_with=[],
                ingest_key=new_ingest_key(),
                metadata=dict(title=title, modality="dSTORM", software="ThunderSTORM", protein="EGFR",
                              cell_type="COS-7"), submitted=time.time())


def run_to_end(job, timeout_s: float = JOB_TIMEOUT_S, poll_s: float = 0.3):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        _progress, result = job.poll()
        if result is not None:
            return result
        time.sleep(poll_s)
    raise AssertionError(f"the job did not end within {timeout_s:.0f} s (progress seen: {job.progress[-3:]})")


def datasets_titled(deployment, title: str) -> int:
    engine = create_engine(deployment.database_url)
    with engine.connect() as connection:
        count = connection.execute(text("SELECT count(*) FROM datasets WHERE title = :t"), {"t": title}).scalar_one()
    engine.dispose()
    return count


def test_upload_ingested_by_the_job_worker_then_served_by_both_web_workers(deployment, uploader, tmp_path):
    paths = write_csr_file(tmp_path / "files", "cell1", density=150.0, rois=[rectangle_um(0.5, 0.5, 11.5, 11.5)])
    rows_in_file = len(pd.read_csv(paths[0]))                       # independent of nano-org's readers
    title = f"Uploaded through Celery {uuid.uuid4().hex[:6]}"
    client = WebClient(deployment.url).login(uploader["name"], PASSWORD)
    job = client.start_background("upload-request", "data", upload_request(client, paths, title))
    result = run_to_end(job)

    consumed = result["upload-consumed"]["data"]
    assert consumed["outcome"] == "done", json.dumps(result)[:2000]
    dataset_id = consumed["dataset_id"]
    messages = [p.get("upload-progress-message.children") for p in job.progress]
    assert messages[-1] == f"Done: 1 file(s), {rows_in_file:,} localisations", messages  # progress from the worker
    # the ingest ran in the job worker (its log line), not in a web worker
    assert f"title {title!r}" in deployment.log("celery.log")
    assert f"title {title!r}" not in deployment.log("gunicorn.log")
    for pid in deployment.web_workers:
        response = client.get(f"/api/datasets/{dataset_id}", worker=pid)
        assert response.status_code == 200, response.text
        served = response.json()
        assert served["title"] == title and len(served["files"]) == 1
        assert served["files"][0]["sha256"] == hashlib.sha256(paths[0].read_bytes()).hexdigest()
        assert served["files"][0]["n_locs"] == rows_in_file
        anonymous = WebClient(deployment.url).get(f"/api/datasets/{dataset_id}", worker=pid)
        assert anonymous.status_code == 404                     # private: nobody else sees it


def test_similarity_search_job_runs_on_the_job_worker_with_progress(deployment):
    client = WebClient(deployment.url)
    public_ids = sorted(row["id"] for row in client.get("/api/datasets?limit=500").json()["datasets"])
    reference = public_ids[0]
    finished_before = deployment.log("celery.log").count(" succeeded in ")
    job = client.start_background("sim-run", "n_clicks", 1, {"sim-target.value": 30, "sim-dataset-id.data": reference})
    result = run_to_end(job, poll_s=0.05)
    messages = [p["sim-progress-text.children"] for p in job.progress]
    assert messages and messages[-1].startswith("Done"), (messages, result, deployment.log("celery.log")[-3000:])
    assert [p["sim-progress.value"] for p in job.progress] == sorted(p["sim-progress.value"] for p in job.progress)
    rows = result["sim-grid"]["rowData"]
    api = client.get(f"/api/datasets/{reference}/similar?target=30").json()["results"]
    assert [(r["dataset_id"], r["thinned_mean"]) for r in rows] == [(r["dataset_id"], r["thinned_mean"]) for r in api]
    wait_until(lambda: deployment.log("celery.log").count(" succeeded in ") > finished_before, 30,
               "the job worker to log the finished search")


def big_upload(folder) -> list:
    """Four files of 810,000 localisations: the ingest runs for several seconds on the job worker,
    long enough to be cancelled or killed while it reads them."""
    paths = []
    for k in range(4):
        paths += write_csr_file(folder, f"cell{k + 1}", density=900.0, size_nm=30_000.0, seed=k + 10,
                                rois=[rectangle_um(0.5, 0.5, 29.5, 29.5)])
    return paths


def start_big_ingest(deployment, client: WebClient, folder, title: str):
    """(job, request): the ingest of ``big_upload`` started, once the worker reports reading the files."""
    request = upload_request(client, big_upload(folder), title)
    job = client.start_background("upload-request", "data", request)
    wait_until(lambda: any((p.get("upload-progress-message.children") or "").startswith("Reading and analysing")
                           for p in ([job.poll()[0] or {}])), 120, "the ingest to start on the job worker", 0.2)
    return job, request


def store_folders(deployment) -> set:
    return {p.name for p in (deployment.scale_dir / "instance" / "store").rglob("*") if p.is_dir()}


def test_cancelling_an_ingest_terminates_it_on_the_job_worker_and_leaves_nothing(deployment, uploader, tmp_path):
    """Cancel as the page does: Dash's cancel callback flags the job (it stops at its next progress
    report, server.dash_jobs.CeleryJobRunner), and the page's own cancel callback reports what was
    added: nothing. No pool process is ever signalled."""
    client = WebClient(deployment.url).login(uploader["name"], PASSWORD)
    title = f"Cancelled ingest {uuid.uuid4().hex[:6]}"
    store_before = store_folders(deployment)
    cancelled_before = deployment.log("celery.log").count("cancelled: kind=ingest")
    job, request = start_big_ingest(deployment, client, tmp_path / "files", title)
    job.cancel("upload-cancel-job", output="upload-cancel-job.id")
    answer = client.callback("upload-cancel-job", "n_clicks", 1, state={"upload-request.data": request},
                             output="upload-result.children")
    assert answer.status_code == 200, answer.text
    assert "nothing was added to the databank" in answer.text, answer.text[:2000]
    assert run_to_end(job) == {}                          # no update: the job ended without a result
    wait_until(lambda: deployment.log("celery.log").count("cancelled: kind=ingest") == cancelled_before + 1, 30,
               "the job worker to log the cancelled ingest")
    assert "Terminating " not in deployment.log("celery.log")
    assert datasets_titled(deployment, title) == 0
    assert store_folders(deployment) == store_before
    # the worker goes on serving: the same files, uploaded again, are ingested
    again = client.start_background("upload-request", "data",
                                    upload_request(client, sorted((tmp_path / "files").iterdir())[:2], title))
    assert run_to_end(again)["upload-consumed"]["data"]["outcome"] == "done"
    assert datasets_titled(deployment, title) == 1


def test_job_results_belong_to_the_request_that_started_them(deployment, uploader, tmp_path):
    """Same search, same inputs, owner of a private dataset and an anonymous visitor: each gets its
    own table, and the visitor holding the owner's job handles gets nothing (Celery backend)."""
    write_csr_file(tmp_path / "private", "cell1", density=150.0, rois=[rectangle_um(0.5, 0.5, 11.5, 11.5)])
    meta = tmp_path / "meta.json"
    meta.write_text(json.dumps(dict(title=f"Owner's private {uuid.uuid4().hex[:6]}", modality="dSTORM",
                                    software="ThunderSTORM", visibility="private")))
    private = deployment.nanoorg("ingest", str(tmp_path / "private"), "--metadata", str(meta),
                                 "--owner", uploader["name"], "--quiet")["id"]
    owner = WebClient(deployment.url).login(uploader["name"], PASSWORD)
    visitor = WebClient(deployment.url)
    reference = min(row["id"] for row in visitor.get("/api/datasets?limit=500").json()["datasets"])
    inputs = {"sim-target.value": 30, "sim-dataset-id.data": reference}

    owners_job = owner.start_background("sim-run", "n_clicks", 7, inputs)
    stolen = BackgroundJob(visitor, owners_job.body, owners_job.end_id, owners_job.cache_key, owners_job.job)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:                     # the owner's job finishes meanwhile
        _progress, result = stolen.poll()
        assert result in (None, {}), "a stolen job handle collected the owner's result"
        time.sleep(0.2)
    assert stolen.progress == []
    owners_rows = run_to_end(owners_job)["sim-grid"]["rowData"]
    visitors_rows = run_to_end(visitor.start_background("sim-run", "n_clicks", 7, inputs))["sim-grid"]["rowData"]
    assert private in {row["dataset_id"] for row in owners_rows}
    assert {row["dataset_id"] for row in visitors_rows} == \
        {row["dataset_id"] for row in owners_rows if row["visibility"] == "public"}   # the owner's private ones removed


def test_killing_the_job_worker_during_an_ingest_leaves_nothing_and_reports_failure(deployment, uploader, tmp_path):
    title = f"Killed ingest {uuid.uuid4().hex[:6]}"
    client = WebClient(deployment.url).login(uploader["name"], PASSWORD)
    store_before = store_folders(deployment)
    job, _request = start_big_ingest(deployment, client, tmp_path / "files", title)
    deployment.kill_job_worker()
    try:
        result = run_to_end(job, timeout_s=90)
        text_of_result = json.dumps(result)
        assert "failed" in text_of_result.lower(), text_of_result[:2000]
    finally:
        deployment.start_job_worker()
    assert datasets_titled(deployment, title) == 0
    assert store_folders(deployment) == store_before        # no partial dataset in the file store either
