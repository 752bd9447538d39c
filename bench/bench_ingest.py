"""Ingest benchmark: a 10^6-localisation ThunderSTORM CSV with 2 ROI files, end to end
(parse, normalise, stats, tiles, fingerprints, database commit), in a subprocess per run so peak
memory (ru_maxrss) is measured per ingest. Target: <= 10 s and <= 2 GB.

Naive reference measured in the same run: reading the same CSV with pandas' python engine
(`sep=None`, the "sniff everything" reader) + shapely point-in-polygon one point at a time on a
sample, extrapolated — what a straightforward implementation would do.

    python bench/bench_ingest.py [--runs 3] [--n 1000000]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CHILD = r"""
import json, resource, sys, time
from pathlib import Path
from config import load_settings
from databank.core import make_data_app
from databank.ingest import StagedFile, ingest_dataset
from databank.users import create_user
folder, instance, run = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
app = make_data_app(load_settings(instance_dir=instance, seed_demo=False, secret_key="bench"))
with app.app_context():
    owner = create_user(f"bench{run}", "b@example.org", "benchmark-pw")
    files = [StagedFile(p, p.name) for p in sorted(folder.iterdir())]
    start = time.perf_counter()
    dataset = ingest_dataset(files, dict(title=f"bench {run}", modality="dSTORM", software="ThunderSTORM"), owner)
    seconds = time.perf_counter() - start
print(json.dumps(dict(seconds=seconds, maxrss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                      n_locs=dataset.n_locs, n_tiles=dataset.n_tiles)))
"""


def make_input(folder: Path, n: int) -> None:
    from compute import simulate
    from databank.demo import write_fiji_roi, write_thunderstorm_csv
    side = float(np.sqrt(n / 1000.0)) * 1000.0      # 1,000 loc/um^2 field
    pattern = simulate.simulate_clustered(1000.0, side, side, seed=7)
    write_thunderstorm_csv(folder / "big.csv", pattern)
    s = side / 1000.0
    write_fiji_roi(folder / "big_ROI_1.csv", np.array([(0.05 * s, 0.05 * s), (0.48 * s, 0.05 * s), (0.48 * s, 0.95 * s), (0.05 * s, 0.95 * s)]))
    write_fiji_roi(folder / "big_ROI_2.csv", np.array([(0.52 * s, 0.1 * s), (0.95 * s, 0.3 * s), (0.9 * s, 0.9 * s), (0.55 * s, 0.8 * s)]))


def naive_reference(folder: Path, sample: int = 20000) -> float:
    """pandas python-engine parse + per-point shapely covers test (sampled, extrapolated)."""
    import pandas as pd
    import shapely
    start = time.perf_counter()
    table = pd.read_csv(folder / "big.csv", sep=None, engine="python")
    parse = time.perf_counter() - start
    polygon = shapely.Polygon(np.loadtxt(folder / "big_ROI_1.csv", delimiter=",", skiprows=1) * 1000)
    xs, ys = table["x [nm]"].to_numpy()[:sample], table["y [nm]"].to_numpy()[:sample]
    start = time.perf_counter()
    for x, y in zip(xs, ys):
        polygon.covers(shapely.Point(x, y))
    per_point = (time.perf_counter() - start) / sample
    return parse + per_point * len(table) * 2


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--n", type=int, default=1_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "input"
        folder.mkdir()
        make_input(folder, args.n)
        size_mb = (folder / "big.csv").stat().st_size / 1e6
        results = []
        for run in range(args.runs + 1):      # run 0 warms the numba cache, not counted
            out = subprocess.run([sys.executable, "-c", CHILD, str(folder), str(Path(tmp) / f"inst{run}"), str(run)],
                                 capture_output=True, text=True, check=True, cwd=ROOT)
            if run:
                results.append(json.loads(out.stdout.strip().splitlines()[-1]))
        naive = statistics.median(naive_reference(folder) for _ in range(args.runs))
    seconds = statistics.median(r["seconds"] for r in results)
    memory = max(r["maxrss_mb"] for r in results)
    print(f"| localisations | CSV MB | tiles | ingest median s ({args.runs} runs) | peak RSS MB | naive parse+contains s | ratio |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    print(f"| {results[0]['n_locs']:,} | {size_mb:.0f} | {results[0]['n_tiles']} | {seconds:.2f} | {memory:.0f} | "
          f"{naive:.1f} | {naive / seconds:.1f}x |")
    print(f"targets: <= 10 s ({'met' if seconds <= 10 else 'NOT met'}), <= 2048 MB ({'met' if memory <= 2048 else 'NOT met'})")


if __name__ == "__main__":
    main()
