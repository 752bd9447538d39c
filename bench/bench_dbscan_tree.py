"""Benchmark of compute.dbscan_tree: precompute once per (points, minPts), then labels for any eps.

Run from the repository root:  python bench/bench_dbscan_tree.py [--quick]

Data: the synthetic SMLM-like pattern of bench/bench_clusters.py (Thomas clusters, sigma 25 nm,
plus CSR background) at 1,000 loc/um^2, minPts 10, tree for every eps up to 200 nm (the viewer's
slider range). For each size:

* precompute: ``DbscanTree.build`` wall time (median of runs; 1 run at 10^6);
* per eps: ``tree.labels(eps)`` for each eps of EPS_NM, median over runs, then the median over eps;
  "move" is the viewer's whole work on a slider move once the tree is cached: labels, cluster table
  and summary (``databank.analysis.run_dbscan``) and the cluster-label image of the whole region;
* references per eps, same eps values, same run: our direct ``compute.clusters.dbscan_labels`` and
  ``sklearn.cluster.DBSCAN`` (the sklearn column uses SKLEARN_EPS_NM, fewer runs at 10^6);
* labels identical to sklearn's at every eps where sklearn ran.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_clusters import synthetic_pattern  # noqa: E402

DENSITY_PER_UM2 = 1000
MIN_SAMPLES = 10
EPS_MAX_NM = 200.0
EPS_NM = (20.0, 45.0, 70.0, 95.0, 120.0, 160.0, 200.0)
SKLEARN_EPS_NM = (20.0, 45.0, 95.0)


def median_time(fn, runs: int):
    times, out = [], None
    for _ in range(runs):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def whole_region(x, y, side):
    """A viewer region holding every point of the square (what the viewer's 'all' region is)."""
    from databank import analysis
    from databank.analysis_inputs import RegionSpec

    return analysis.Region(spec=RegionSpec("all"), label="All", cache_key=("bench", x.size), index=np.arange(x.size),
                           x=x, y=y, window=(0.0, 0.0, side, side), area_um2=side * side / 1e6,
                           bounds=(0.0, 0.0, side, side))


def bench_size(n: int, runs: int) -> str:
    from sklearn.cluster import DBSCAN

    from compute import clusters
    from compute.dbscan_tree import DbscanTree
    from databank import analysis, viewer_render

    x, y, side = synthetic_pattern(n, DENSITY_PER_UM2)
    DbscanTree.build(x[:2000], y[:2000], MIN_SAMPLES, EPS_MAX_NM).labels(50.0)   # JIT load
    clusters.dbscan_labels(x[:2000], y[:2000], 50.0, MIN_SAMPLES)
    build_s, tree = median_time(lambda: DbscanTree.build(x, y, MIN_SAMPLES, EPS_MAX_NM), 1 if n >= 10**6 else runs)
    region = whole_region(x, y, side)
    analysis._TREES.put(analysis._tree_key(region, MIN_SAMPLES), tree)   # what the viewer's job leaves
    region.by_xy                               # the region's x, y order: computed once per region

    def move(eps):
        """The viewer's work on an eps move: labels cut from the tree, cluster table and summary
        (databank.analysis.run_dbscan), and the cluster-label image of the whole region."""
        analysis._DBSCAN.clear()
        result = analysis.run_dbscan(region, eps, MIN_SAMPLES)
        viewer_render.render_cluster_overlay(region, result, (0.0, side), (0.0, side))
        return result

    move(EPS_NM[0])  # JIT load of the table and image kernels
    cut, moves, direct, labels_at = [], [], [], {}
    for eps in EPS_NM:
        seconds, labels_at[eps] = median_time(lambda: tree.labels(eps), runs)
        cut.append(seconds)
        moves.append(median_time(lambda: move(eps), runs)[0])
        direct.append(median_time(lambda: clusters.dbscan_labels(x, y, eps, MIN_SAMPLES), runs)[0])
    sk_times, identical = [], True
    xy = np.column_stack([x, y])
    for eps in SKLEARN_EPS_NM:
        seconds, reference = median_time(lambda: DBSCAN(eps=eps, min_samples=MIN_SAMPLES).fit_predict(xy),
                                         1 if n >= 10**6 else min(runs, 3))
        sk_times.append(seconds)
        identical &= bool(np.array_equal(labels_at[eps], reference))
    cut_s, move_s, direct_s, sk_s = (statistics.median(v) for v in (cut, moves, direct, sk_times))
    return (f"| {n:>9,d} | {build_s:7.2f} | {cut_s * 1e3:7.1f} ({min(cut) * 1e3:.0f}-{max(cut) * 1e3:.0f}) | "
            f"{move_s * 1e3:7.1f} | {direct_s * 1e3:8.1f} | {sk_s * 1e3:9.0f} | {sk_s / cut_s:7.0f}x | "
            f"{build_s / sk_s:5.1f} | {identical} |")


def main(quick: bool, runs: int) -> None:
    import numba

    sizes = (10_000, 100_000) if quick else (10_000, 100_000, 1_000_000)
    print(f"compute.dbscan_tree benchmark: {numba.get_num_threads()} numba threads, {DENSITY_PER_UM2} loc/um2, "
          f"minPts {MIN_SAMPLES}, tree for eps <= {EPS_MAX_NM:g} nm; eps {', '.join(f'{e:g}' for e in EPS_NM)} nm "
          f"(sklearn: {', '.join(f'{e:g}' for e in SKLEARN_EPS_NM)} nm)")
    print(f"wall-clock, median of {runs} runs per eps (precompute and sklearn: 1 run at 10^6), then median over eps; "
          f"load average at start {' '.join(f'{v:.1f}' for v in os.getloadavg())}")
    print()
    print("| n | precompute s | labels per eps ms (min-max) | move ms (labels + table + summary + image) | "
          "direct DBSCAN ms | sklearn ms | sklearn / labels | precompute / sklearn-eps | identical to sklearn |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for n in sizes:
        print(bench_size(n, runs), flush=True)
    print(f"load average at end: {' '.join(f'{v:.1f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="10^4 and 10^5 only")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    main(args.quick, args.runs)
