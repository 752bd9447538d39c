"""What a background job in a thread of the web process costs the requests served beside it.

The embedded job backend (``server.dash_jobs.ThreadJobManager``) runs jobs in threads of the web
process instead of forking it (a fork of the multi-threaded web process hung on SQLite's locks).
The price: while a numba kernel runs it holds the GIL, so a request thread waits. This script
measures that wait: the main thread sleeps 1 ms in a loop (a stand-in for a short request) and
records how late it wakes, with no job, with a whole-region DBSCAN (the viewer's heaviest job)
running in a thread, and with the same job in a separate process started by ``spawn`` (the
reference: no shared GIL). Prints a table of region sizes x wake-up delay (median, p95, max, ms).

    PYTHONPATH=. python bench/bench_jobs.py [--sizes 100000,300000] [--seconds 4]
"""

from __future__ import annotations

import argparse
import multiprocessing
import threading
import time

import numpy as np


def _points(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    return rng.uniform(0, 20_000, n), rng.uniform(0, 20_000, n)      # nm, 20 x 20 µm


def _dbscan_forever(n: int, stop) -> None:
    from compute import clusters

    x, y = _points(n)
    while not stop.is_set():
        clusters.dbscan_labels(x, y, 50.0, 5)


def _wake_delays(seconds: float) -> np.ndarray:
    """How late (ms) a 1 ms sleep returns, over ``seconds`` s."""
    delays = []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        start = time.perf_counter()
        time.sleep(0.001)
        delays.append((time.perf_counter() - start) * 1000 - 1.0)
    return np.array(delays)


def _row(label: str, n: int, delays: np.ndarray) -> str:
    return (f"| {n:>9,} | {label:<26} | {np.median(delays):7.2f} | {np.percentile(delays, 95):7.2f} "
            f"| {delays.max():7.1f} |")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="100000,300000")
    parser.add_argument("--seconds", type=float, default=4.0)
    args = parser.parse_args(argv)
    from compute import clusters

    x, y = _points(1000)
    clusters.dbscan_labels(x, y, 50.0, 5)                     # compile (or load) the kernels first
    print("| localisations | job | wake-up delay median (ms) | p95 (ms) | max (ms) |")
    print("|---:|---|---:|---:|---:|")
    idle = _wake_delays(args.seconds)
    print(_row("none", 0, idle))
    for n in (int(s) for s in args.sizes.split(",")):
        px, py = _points(n)
        start = time.perf_counter()
        clusters.dbscan_labels(px, py, 50.0, 5)
        print(f"|  (one DBSCAN of {n:,} points: {time.perf_counter() - start:.2f} s) | | | | |")
        stop = threading.Event()
        worker = threading.Thread(target=_dbscan_forever, args=(n, stop))
        worker.start()
        in_thread = _wake_delays(args.seconds)
        stop.set()
        worker.join()
        print(_row("thread of this process", n, in_thread))
        context = multiprocessing.get_context("spawn")
        stop_process = context.Event()
        process = context.Process(target=_dbscan_forever, args=(n, stop_process))
        process.start()
        time.sleep(3.0)                                       # let the child import and start
        in_process = _wake_delays(args.seconds)
        stop_process.set()
        process.join(30)
        print(_row("spawned process (reference)", n, in_process))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
