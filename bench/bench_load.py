"""Load test: concurrent readers and uploads against a running nano-org, then a bank integrity check.

    python bench/bench_load.py [--port 59350] [--readers 20] [--uploads 2] [--duration 60]
                               [--instance DIR] [--keep]

Starts gunicorn (``gunicorn.conf.py``, the production entry point) on 127.0.0.1:``--port`` with a
temporary instance folder (or ``--instance``), which seeds the demo bank on first start, then for
``--duration`` seconds runs

- ``--readers`` reader threads, each its own browser-like session (half of them signed in), cycling
  through: the app shell (``GET /dataset/<id>``), a page's content through Dash's router callback,
  a databank grid block (the grid callback), ``GET /api/datasets``, ``GET /api/datasets/<id>`` and
  the similarity table ``GET /api/datasets/<id>/similar``;
- ``--uploads`` uploader threads, each signed in as its own user, repeatedly uploading a small
  synthetic dataset exactly as the browser does: chunked upload (``/upload/start``,
  ``/upload/chunk``), the submit callback, then the ingest background callback polled to the end.

It prints one table row per endpoint (requests, errors, median and p95 latency in ms) and the
number of datasets ingested, then stops the server and checks the bank: every data-file row has its
stored files, the store holds no orphan dataset folders, and SQLite's ``PRAGMA integrity_check``
answers ``ok``. An error is any status other than 200 (302 for the sign-in form) or a callback
answer without the expected output. Exit status 1 when there were errors or the check failed.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import defaultdict
from pathlib import Path

import numpy as np
import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PASSWORD = "load-test-password"


# --------------------------------------------------------------------------------------------
# recording

class Recorder:
    """Latencies (s) and errors per endpoint, shared by all threads."""

    def __init__(self):
        self.lock = threading.Lock()
        self.times: dict[str, list[float]] = defaultdict(list)
        self.errors: dict[str, list[str]] = defaultdict(list)

    def call(self, name: str, send, ok=lambda r: r.status_code == 200):
        start = time.perf_counter()
        try:
            response = send()
            good = ok(response)
            problem = None if good else f"{response.status_code} {response.text[:200]!r}"
        except Exception as exc:  # a failed request is an error to count, not a crash
            response, problem = None, f"{type(exc).__name__}: {exc}"
        elapsed = time.perf_counter() - start
        with self.lock:
            self.times[name].append(elapsed)
            if problem:
                self.errors[name].append(problem)
        return response if problem is None else None


# --------------------------------------------------------------------------------------------
# a browser-like client

class Browser:
    """A requests session that behaves like the Dash renderer: CSRF header from the cookie."""

    def __init__(self, base: str, recorder: Recorder, dependencies: list[dict]):
        self.base, self.recorder, self.dependencies = base, recorder, dependencies
        self.http = requests.Session()

    def csrf(self) -> str:
        token = self.http.cookies.get("_csrf_token")
        if token is None:
            self.http.get(self.base + "/", timeout=60)
            token = self.http.cookies.get("_csrf_token")
        return token

    def register(self, username: str) -> None:
        page = self.http.get(self.base + "/register", timeout=60)
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
        response = self.http.post(self.base + "/register", allow_redirects=False, timeout=60, data=dict(
            csrf_token=token, username=username, email=f"{username}@example.org", password=PASSWORD,
            password2=PASSWORD))
        if response.status_code != 302:
            raise RuntimeError(f"could not register {username}: {response.status_code} {response.text[:300]}")

    def output_of(self, input_id: str, output_hint: str) -> str:
        """The registered 'output' string of the callback with this input (handles allow_duplicate)."""
        for dependency in self.dependencies:
            if any(i["id"] == input_id.split(".")[0] and i["property"] == input_id.split(".")[1]
                   for i in dependency["inputs"]) and output_hint in dependency["output"]:
                return dependency["output"]
        raise LookupError(f"no callback with input {input_id} and output {output_hint}")

    def callback(self, name: str, output: str, inputs: list, state: list = (), query: str = "", expect=None):
        outputs = [dict(zip(("id", "property"), part.rsplit(".", 1)))
                   for part in output.strip(".").split("...")]
        for item in outputs:
            if "@" in item["property"]:
                item["property"] = item["property"].split("@")[0]
        body = dict(output=output, outputs=outputs if len(outputs) > 1 else outputs[0], inputs=list(inputs),
                    state=list(state), changedPropIds=[f"{inputs[0]['id']}.{inputs[0]['property']}"])
        headers = {"X-CSRFToken": self.csrf()}

        def ok(response):
            if response.status_code == 204:
                return expect is None
            if response.status_code != 200:
                return False
            answer = response.json()
            return expect is None or expect(answer)
        return self.recorder.call(name, lambda: self.http.post(self.base + "/_dash-update-component" + query,
                                                               json=body, headers=headers, timeout=120), ok)


# --------------------------------------------------------------------------------------------
# readers

def reader(browser: Browser, dataset_ids: list[int], stop: threading.Event, seed: int) -> None:
    rng = random.Random(seed)
    base = browser.base
    grid_output = browser.output_of("databank-grid.getRowsRequest", "getRowsResponse")
    page_output = browser.output_of("_pages_location.pathname", "_pages_content")
    while not stop.is_set():
        dataset_id = rng.choice(dataset_ids)
        browser.recorder.call("GET /dataset/<id> (shell)",
                              lambda: browser.http.get(f"{base}/dataset/{dataset_id}", timeout=120))
        browser.callback("page content /dataset/<id>", page_output,
                         [{"id": "_pages_location", "property": "pathname", "value": f"/dataset/{dataset_id}"},
                          {"id": "_pages_location", "property": "search", "value": ""}],
                         expect=lambda answer: "_pages_content" in answer.get("response", {}))
        start = rng.randrange(0, 3) * 100
        browser.callback("databank grid block", grid_output,
                         [{"id": "databank-grid", "property": "getRowsRequest",
                           "value": {"startRow": start, "endRow": start + 100,
                                     "sortModel": [{"colId": rng.choice(["title", "density", "n_locs"]),
                                                    "sort": rng.choice(["asc", "desc"])}], "filterModel": {}}}],
                         [{"id": "databank-search", "property": "value", "value": rng.choice(["", "EGFR", "HeLa"])}],
                         expect=lambda answer: "rowData" in json.dumps(answer))
        browser.recorder.call("GET /api/datasets", lambda: browser.http.get(f"{base}/api/datasets?limit=50", timeout=120))
        browser.recorder.call("GET /api/datasets/<id>",
                              lambda: browser.http.get(f"{base}/api/datasets/{dataset_id}", timeout=120))
        browser.recorder.call("GET /api/datasets/<id>/similar",
                              lambda: browser.http.get(f"{base}/api/datasets/{dataset_id}/similar?limit=20",
                                                       timeout=120))


# --------------------------------------------------------------------------------------------
# uploaders

def synthetic_files(seed: int) -> list[tuple[str, bytes]]:
    """A ThunderSTORM CSV (8,000 uniform points in 12 x 12 um) and its Fiji ROI (X,Y in um)."""
    rng = np.random.default_rng(seed)
    x, y = rng.uniform(0, 12_000, 8000), rng.uniform(0, 12_000, 8000)
    lines = ['"frame","x [nm]","y [nm]","uncertainty [nm]"'] + [
        f"{k + 1},{a:.1f},{b:.1f},12.5" for k, (a, b) in enumerate(zip(x, y))]
    detection = ("\n".join(lines) + "\n").encode()
    roi = b"X,Y\n0.5,0.5\n11.5,0.5\n11.5,11.5\n0.5,11.5\n"
    return [(f"load{seed}.csv", detection), (f"load{seed}_ROI_1.csv", roi)]


def upload_once(browser: Browser, number: int, submit_output: str, ingest_output: str) -> bool:
    """One dataset through the real browser path; True if it ended in the databank."""
    rec, base = browser.recorder, browser.base
    started = rec.call("POST /upload/start", lambda: browser.http.post(
        f"{base}/upload/start", headers={"X-CSRFToken": browser.csrf()}, timeout=60))
    if started is None:
        return False
    upload_id = started.json()["upload_id"]
    files = synthetic_files(number)
    for index, (name, content) in enumerate(files):
        sent = rec.call("POST /upload/chunk", lambda: browser.http.post(
            f"{base}/upload/chunk/{upload_id}", params=dict(index=index, offset=0, size=len(content), last=1,
                                                             name=name),
            data=content, headers={"X-CSRFToken": browser.csrf(), "Content-Type": "application/octet-stream"},
            timeout=120))
        if sent is None:
            return False
    staged = {"upload_id": upload_id, "files": [{"name": name, "size": len(c)} for name, c in files]}
    selection = {"files": [{"index": i, "name": name, "size": len(c)} for i, (name, c) in enumerate(files)]}
    meta = dict(title=f"Load test {uuid.uuid4().hex[:10]}", modality="PALM", software="ThunderSTORM",
                protein="LOADP", cell_type="HeLa")
    meta_ids = [{"type": "upload-meta", "field": key} for key in meta]
    submitted = browser.callback(
        "upload submit callback", submit_output, [{"id": "upload-submit", "property": "n_clicks", "value": 1}],
        [{"id": "upload-staged", "property": "data", "value": staged},
         {"id": "upload-selection", "property": "data", "value": selection},
         [{"id": i, "property": "value", "value": v} for i, v in zip(meta_ids, meta.values())],
         [{"id": i, "property": "id", "value": i} for i in meta_ids], [], [],
         {"id": "upload-visibility", "property": "value", "value": "private"},
         {"id": "upload-share-with", "property": "value", "value": ""}],
        expect=lambda answer: bool(answer["response"].get("upload-request", {}).get("data")))
    if submitted is None:
        return False
    request_data = submitted.json()["response"]["upload-request"]["data"]
    inputs = [{"id": "upload-request", "property": "data", "value": request_data}]
    first = browser.callback("ingest job start", ingest_output, inputs,
                             expect=lambda answer: "cacheKey" in answer)
    if first is None:
        return False
    handles = first.json()
    query = f"?cacheKey={handles['cacheKey']}&job={handles['job']}"
    deadline = time.time() + 300
    while time.time() < deadline:
        time.sleep(0.5)
        polled = browser.callback("ingest job poll", ingest_output, inputs, query=query,
                                  expect=lambda answer: True)
        if polled is None:
            return False
        if polled.status_code == 200 and "response" in polled.json():
            done = "upload-success" in polled.text
            if not done:
                with rec.lock:
                    rec.errors["ingest job result"].append(polled.text[:300])
            return done
    with rec.lock:
        rec.errors["ingest job result"].append("no result within 300 s")
    return False


def uploader(browser: Browser, stop: threading.Event, first_number: int, counts: list) -> None:
    submit_output = browser.output_of("upload-submit.n_clicks", "upload-request.data")
    ingest_output = browser.output_of("upload-request.data", "upload-consumed.data")
    number = first_number
    while not stop.is_set():
        if upload_once(browser, number, submit_output, ingest_output):
            counts.append(number)
        number += 1


# --------------------------------------------------------------------------------------------
# server and integrity

def start_server(instance: Path, port: int) -> subprocess.Popen:
    env = dict(os.environ, NANOORG_INSTANCE=str(instance), NANOORG_HOST="127.0.0.1", NANOORG_PORT=str(port),
               NANOORG_SEED_DEMO="1", PYTHONPATH=str(ROOT))
    gunicorn = Path(sys.executable).with_name("gunicorn")
    log = open(instance.parent / "gunicorn.log", "w")
    return subprocess.Popen([str(gunicorn), "-c", "gunicorn.conf.py", "app:server"], cwd=ROOT, env=env,
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def stop_server(process: subprocess.Popen) -> None:
    """SIGTERM to gunicorn's process group, then SIGKILL to whatever is left in it (job processes)."""
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        pass
    time.sleep(2)
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def wait_until_up(base: str, process: subprocess.Popen, timeout: float = 1800) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if process.poll() is not None:
            raise RuntimeError("gunicorn exited; see gunicorn.log next to the instance folder")
        try:
            if requests.get(base + "/api/datasets?limit=1", timeout=10).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(2)
    raise TimeoutError("the server did not answer in time")


def integrity_check(instance: Path) -> list[str]:
    """Problems found in the bank (empty list: none)."""
    problems = []
    connection = sqlite3.connect(instance / "nanoorg.sqlite")
    verdict = connection.execute("PRAGMA integrity_check").fetchone()[0]
    if verdict != "ok":
        problems.append(f"integrity_check: {verdict}")
    rows = connection.execute("SELECT d.storage_key, f.storage_key, f.id FROM data_files f "
                              "JOIN datasets d ON d.id = f.dataset_id").fetchall()
    dataset_keys = {row[0] for row in connection.execute("SELECT storage_key FROM datasets")}
    connection.close()
    store = instance / "store"
    for dataset_key, file_key, file_id in rows:      # layout: databank/store.py
        folder = store / dataset_key / file_key
        missing = [name for name in ("original", "x.npy", "y.npy") if not (folder / name).is_file()]
        if missing:
            problems.append(f"file row {file_id}: {', '.join(missing)} missing in {folder}")
    if store.is_dir():
        for folder in store.iterdir():
            if folder.is_dir() and folder.name not in dataset_keys:
                problems.append(f"orphan store folder {folder.name}")
    return problems, len(rows)


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q)) if values else float("nan")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, default=59350)
    parser.add_argument("--readers", type=int, default=20)
    parser.add_argument("--uploads", type=int, default=2)
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--instance", type=Path, help="instance folder (default: a new temporary one)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary instance folder")
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="nanoorg-load-"))
    instance = (args.instance or root / "instance").resolve()
    base = f"http://127.0.0.1:{args.port}"
    process = start_server(instance, args.port)
    try:
        began = time.time()
        wait_until_up(base, process)
        print(f"server up after {time.time() - began:.0f} s (demo bank seeded) on {base}", flush=True)
        dependencies = requests.get(base + "/_dash-dependencies", timeout=60).json()
        listing = requests.get(base + "/api/datasets?limit=100", timeout=60).json()
        dataset_ids = [row["id"] for row in listing["datasets"]]
        recorder = Recorder()
        stop = threading.Event()
        threads, uploaded = [], []
        for k in range(args.readers):
            browser = Browser(base, recorder, dependencies)
            if k % 2:
                browser.register(f"reader_{k}_{uuid.uuid4().hex[:6]}")
            threads.append(threading.Thread(target=reader, args=(browser, dataset_ids, stop, k), daemon=True))
        for k in range(args.uploads):
            browser = Browser(base, recorder, dependencies)
            browser.register(f"uploader_{k}_{uuid.uuid4().hex[:6]}")
            threads.append(threading.Thread(target=uploader, args=(browser, stop, 1000 * (k + 1), uploaded),
                                            daemon=True))
        start = time.time()
        for thread in threads:
            thread.start()
        time.sleep(args.duration)
        stop.set()
        for thread in threads:
            thread.join(timeout=900)
        wall = time.time() - start
    finally:
        stop_server(process)

    print(f"\n{args.readers} readers + {args.uploads} uploaders for {args.duration:.0f} s "
          f"(all finished after {wall:.0f} s); datasets uploaded and ingested: {len(uploaded)}\n")
    print(f"| endpoint | requests | errors | median ms | p95 ms |")
    print("|---|---:|---:|---:|---:|")
    total_errors = 0
    for name in sorted(set(recorder.times) | set(recorder.errors)):
        times = recorder.times.get(name, [])
        errors = recorder.errors.get(name, [])
        total_errors += len(errors)
        print(f"| {name} | {len(times)} | {len(errors)} | {1000 * statistics.median(times) if times else float('nan'):.0f} "
              f"| {1000 * percentile(times, 95):.0f} |")
    for name, errors in recorder.errors.items():
        for problem in errors[:3]:
            print(f"  error {name}: {problem}")
    problems, n_files = integrity_check(instance)
    print(f"\nintegrity: {n_files} file rows checked; "
          + ("ok (PRAGMA integrity_check ok, every file row has its store files, no orphan folders)"
             if not problems else f"{len(problems)} problem(s)"))
    for problem in problems[:20]:
        print("  " + problem)
    print(f"total errors: {total_errors}")
    if not args.keep and args.instance is None:
        shutil.rmtree(root, ignore_errors=True)
    return 1 if total_errors or problems else 0


if __name__ == "__main__":
    sys.exit(main())
