"""Benchmark: the embedded default against the scaled-out setup, under the same load, in one run.

    python bench/bench_scale.py [--seconds 60] [--readers 20] [--uploads 2] [--port-base 28130]

Setups (each on a fresh instance folder, the demo bank seeded before the clock starts):
- embedded: ``gunicorn -c gunicorn.conf.py app:server`` (what ``make run`` starts: 1 web worker,
  SQLite, background jobs in the web process);
- scaled: ``bin/scale-out-example.sh start`` (README "Scaling out": PostgreSQL, Redis, 2 gunicorn
  web workers, 1 Celery job worker).

Both setups run side by side; the load alternates between them in ``--rounds`` rounds each (the
machine's other work weighs on both alike). Load, for ``--seconds`` per setup in all: ``--readers`` threads, each looping over the four read kinds
(anonymous, public demo datasets): ``page`` (the dataset page's content callback), ``grid`` (one
databank AG Grid block of 100 rows), ``api`` (GET /api/datasets?limit=50 and /api/datasets/<id>)
and ``similarity`` (GET /api/datasets/<id>/similar); plus, in each setup's first round, ``--uploads``
users each uploading one dataset (2 files of ~0.3 M localisations) through the browser's path
(chunked upload, then the ingest job with progress polling) from second 5. Printed: requests per second, p50/p95 latency per kind,
reads while the uploads were running, upload durations, errors (HTTP status >= 400 or a failed
job; must be 0).
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import requests  # noqa: E402

from databank.ingest import new_ingest_key  # noqa: E402
from tests.databank.conftest import rectangle_um, write_csr_file  # noqa: E402
from tests.scaleout.http import WebClient, free_ports  # noqa: E402

PASSWORD = "correct horse battery"
READ_KINDS = ("page", "grid", "api", "similarity")


def base_env(folder: Path, port: int) -> dict:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("NANOORG_") and k not in ("DATABASE_URL", "REDIS_URL", "SECRET_KEY")}
    env.update(PATH=f"{Path(sys.executable).parent}:{env.get('PATH', '')}", PYTHONPATH=str(ROOT),
               NANOORG_PORT=str(port), NANOORG_VIEWER_WARMUP="0")
    return env


class Setup:
    """One running setup: ``url``, ``env`` (for nanoorg commands), ``stop()``."""

    def __init__(self, name: str, port_base: int):
        self.name = name
        self.folder = Path(tempfile.mkdtemp(prefix=f"nanoorg-bench-{name}-"))
        self.folder.chmod(0o755)
        if name == "embedded":
            (port,) = free_ports(1, port_base)
            self.env = base_env(self.folder, port)
            self.env.update(NANOORG_INSTANCE=str(self.folder / "instance"))
            self.process = subprocess.Popen(["gunicorn", "-c", "gunicorn.conf.py", "app:server"], cwd=ROOT,
                                            env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        else:
            pg_port, redis_port, port = free_ports(3, port_base)
            self.env = base_env(self.folder, port)
            self.env.update(SCALE_DIR=str(self.folder), PG_PORT=str(pg_port), REDIS_PORT=str(redis_port),
                            NANOORG_WEB_WORKERS="2", NANOORG_INSTANCE=str(self.folder / "instance"),
                            DATABASE_URL=f"postgresql+psycopg://nanoorg@127.0.0.1:{pg_port}/nanoorg",
                            REDIS_URL=f"redis://127.0.0.1:{redis_port}/0")
            subprocess.run(["bash", "bin/scale-out-example.sh", "start"], cwd=ROOT, env=self.env, check=True,
                           stdout=subprocess.DEVNULL)
            self.process = None
        self.url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 900
        while time.monotonic() < deadline:
            try:
                if requests.get(self.url + "/healthz", timeout=10).json()["status"] == "ok":
                    return
            except (requests.RequestException, ValueError):
                pass
            time.sleep(1)
        raise RuntimeError(f"{name}: {self.url}/healthz never reported ok")

    def nanoorg(self, *args: str) -> str:
        return subprocess.run(["nanoorg", *args, "--json"], cwd=ROOT, env=self.env, check=True,
                              capture_output=True, text=True).stdout

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(60)
        else:
            subprocess.run(["bash", "bin/scale-out-example.sh", "stop"], cwd=ROOT, env=self.env)
        shutil.rmtree(self.folder, ignore_errors=True)


def reader(url: str, dataset_ids: list[int], stop_at: float, seed: int, samples: list, errors: list) -> None:
    rng = random.Random(seed)
    client = WebClient(url)
    client.get("/")
    kinds = list(READ_KINDS)
    while time.monotonic() < stop_at:
        rng.shuffle(kinds)
        for kind in kinds:
            dataset_id = rng.choice(dataset_ids)
            started = time.monotonic()
            try:
                if kind == "page":
                    response = client.callback("_pages_location", "pathname", f"/dataset/{dataset_id}",
                                               {"_pages_location.search": ""}, output="_pages_content")
                elif kind == "grid":
                    response = client.callback("databank-grid", "getRowsRequest",
                                               {"startRow": 0, "endRow": 100, "sortModel": [], "filterModel": {}},
                                               {"databank-search.value": ""})
                elif kind == "api":
                    path = "/api/datasets?limit=50" if rng.random() < 0.5 else f"/api/datasets/{dataset_id}"
                    response = client.get(path)
                else:
                    response = client.get(f"/api/datasets/{dataset_id}/similar")
                failed = response.status_code >= 400
            except requests.RequestException as exc:
                failed, response = True, exc
            ended = time.monotonic()
            samples.append((kind, started, ended - started))
            if failed:
                errors.append(f"{kind}: {getattr(response, 'status_code', response)}")


def uploader(setup: Setup, files: list[Path], start_at: float, durations: list, errors: list) -> None:
    name = "bench_" + uuid.uuid4().hex[:6]
    setup.nanoorg("create-user", name, "--email", f"{name}@example.org", "--password", PASSWORD)
    client = WebClient(setup.url).login(name, PASSWORD)
    time.sleep(max(0.0, start_at - time.monotonic()))
    started = time.monotonic()
    request = dict(upload_id=client.upload(files), files=[p.name for p in files], visibility="private",
                   shared_with=[], ingest_key=new_ingest_key(), metadata=dict(title=f"Bench upload {name}", modality="PALM",
                                                 software="ThunderSTORM"), submitted=time.time())
    job = client.start_background("upload-request", "data", request)
    while True:
        _progress, result = job.poll()
        if result is not None:
            break
        time.sleep(0.5)
    durations.append((started, time.monotonic()))
    if (result.get("upload-consumed") or {}).get("data", {}).get("outcome") != "done":
        errors.append(f"upload {name}: {str(result)[:300]}")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def load_round(setup: Setup, dataset_ids: list[int], args, seconds: float, uploads: list[list[Path]],
               result: dict) -> None:
    """``args.readers`` readers for ``seconds`` against ``setup``; the uploads (if any) start at 5 s."""
    begin = time.monotonic()
    threads = [threading.Thread(target=reader, args=(setup.url, dataset_ids, begin + seconds, k + len(result["samples"]),
                                                     result["samples"], result["errors"]))
               for k in range(args.readers)]
    threads += [threading.Thread(target=uploader, args=(setup, files, begin + 5, result["durations"], result["errors"]))
                for files in uploads]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def run_both(args, uploads: list[list[Path]]) -> dict:
    """Both setups started (and warmed) first, then the load in alternating rounds of equal length,
    so that whatever else the machine does at the time weighs on both alike."""
    setups = {}
    try:
        for offset, name in enumerate(("embedded", "scaled")):
            print(f"== {name}: starting (seeding the demo bank) ...", flush=True)
            setups[name] = Setup(name, args.port_base + 10 * offset)
        ids = {}
        for name, setup in setups.items():
            ids[name] = [row["id"] for row in requests.get(setup.url + "/api/datasets?limit=500", timeout=60).json()["datasets"]]
            for dataset_id in ids[name]:          # the similarity index and caches are warm in both setups
                requests.get(f"{setup.url}/api/datasets/{dataset_id}/similar", timeout=120)
        results = {name: dict(samples=[], errors=[], durations=[], seconds=args.seconds) for name in setups}
        for number in range(args.rounds):
            for name, setup in setups.items():
                print(f"== round {number + 1}/{args.rounds}: {name}, {args.seconds / args.rounds:.0f} s", flush=True)
                load_round(setup, ids[name], args, args.seconds / args.rounds, uploads if number == 0 else [],
                           results[name])
        return results
    finally:
        for setup in setups.values():
            setup.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--readers", type=int, default=20)
    parser.add_argument("--uploads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds per setup (seconds split evenly)")
    parser.add_argument("--port-base", type=int, default=int(os.environ.get("NANOORG_TEST_PORT_BASE", "28050")) + 80)
    args = parser.parse_args()
    data = Path(tempfile.mkdtemp(prefix="nanoorg-bench-files-"))
    uploads = [[path for j in (1, 2)
                for path in write_csr_file(data / f"upload{k}", f"cell{j}", density=700.0, size_nm=21_000.0,
                                           seed=100 + 2 * k + j, rois=[rectangle_um(0.5, 0.5, 20.5, 20.5)])]
               for k in range(args.uploads)]
    results = run_both(args, uploads)
    shutil.rmtree(data, ignore_errors=True)

    print(f"\n{args.readers} readers for {args.seconds} s per setup ({args.rounds} alternating rounds), "
          f"{args.uploads} uploads of 2 files (~0.3 M localisations each) from 5 s; latency in ms")
    print(f"{'setup':<9} {'kind':<11} {'requests':>8} {'req/s':>7} {'p50':>7} {'p95':>7} {'errors':>6}")
    for name, result in results.items():
        samples = result["samples"]
        for kind in READ_KINDS + ("all reads", "during uploads"):
            if kind == "all reads":
                chosen = samples
            elif kind == "during uploads":
                spans = result["durations"]
                first, last = (min(s for s, _ in spans), max(e for _, e in spans)) if spans else (0, 0)
                chosen = [s for s in samples if first <= s[1] <= last]
            else:
                chosen = [s for s in samples if s[0] == kind]
            latencies = [1000 * s[2] for s in chosen]
            errors = sum(1 for e in result["errors"] if kind in ("all reads",) or e.startswith(kind))
            rate = len(chosen) / result["seconds"] if kind != "during uploads" else float("nan")
            if latencies:
                print(f"{name:<9} {kind:<11} {len(chosen):>8} {rate:>7.1f} {percentile(latencies, .5):>7.0f} "
                      f"{percentile(latencies, .95):>7.0f} {errors:>6}")
        uploads = [end - start for start, end in result["durations"]]
        print(f"{name:<9} {'uploads':<11} {len(uploads):>8} {'':>7} "
              f"{statistics.median(uploads) * 1000 if uploads else float('nan'):>7.0f} "
              f"{max(uploads) * 1000 if uploads else float('nan'):>7.0f} "
              f"{sum(1 for e in result['errors'] if e.startswith('upload')):>6}   (p50/p95 columns: median/max duration)")
    total_errors = sum(len(r["errors"]) for r in results.values())
    print(f"errors: {total_errors}" + ("" if not total_errors else " -> " + "; ".join(
        e for r in results.values() for e in r["errors"][:5])))


if __name__ == "__main__":
    main()
