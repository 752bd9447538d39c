"""Benchmark of tiles and similarity: ours against a naive reference measured in the same run.

Rows: search_bank (100 query tiles against a 10^5-tile bank), self_similarity over all pairs of
10^4 tiles, file_fingerprints on 10^6 localisations with 2 ROIs, points_in_tiles on 10^7 points.
Fingerprints are realistic: tiles of simulated CSR and clustered fields at 50-1000 loc/um²; the
10^5-tile bank resamples that pool. Numba is warmed on tiny inputs first (reported as JIT time:
compile, or load from the on-disk cache). The naive similarity reference is scipy.stats.ks_2samp on
the expanded per-bin count samples of a subset of pairs, extrapolated per pair. Columns: median
wall and process-CPU seconds of ours (CPU is summed over the numba threads; on a shared, loaded
machine wall >> CPU / threads), reference wall seconds, ratio = reference wall / our wall.

    python bench/bench_similarity.py [--repeats 3] [--cold]     (--cold: empty numba cache, true compile time)
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

if "--cold" in sys.argv:                    # must precede the first numba import
    os.environ["NUMBA_CACHE_DIR"] = tempfile.mkdtemp(prefix="numba_cold_")

import numba  # noqa: E402
import numpy as np  # noqa: E402
from scipy.stats import ks_2samp  # noqa: E402
from shapely.geometry import box  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from compute import similarity, simulate, tiles  # noqa: E402

N_POOL_FIELDS = 40
REFERENCE_PAIRS = 2000


@dataclass
class Timing:
    """Medians over runs: wall-clock seconds and process CPU seconds (summed over threads)."""

    wall_s: float
    cpu_s: float


@dataclass
class Row:
    task: str
    size: str
    ours: Timing
    reference_s: float
    reference_how: str

    def line(self) -> str:
        ratio = self.reference_s / self.ours.wall_s
        return (f"| {self.task:<17} | {self.size:<40} | {self.ours.wall_s:7.3f} | {self.ours.cpu_s:7.3f} "
                f"| {self.reference_s:11.2f} | {ratio:8.0f}x | {self.reference_how} |")


HEADER = ("| task              | size                                     |  wall s |   cpu s | reference s "
          "|    ratio | reference |\n|---|---|---|---|---|---|---|")


def median_time(function, repeats: int) -> Timing:
    """Median wall and CPU time of ``repeats`` calls."""
    walls, cpus = [], []
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        function()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return Timing(statistics.median(walls), statistics.median(cpus))


def fingerprint_pool(n_fields: int, seed: int = 0) -> similarity.Fingerprints:
    """Unthinned fingerprints of the tiles of simulated 15 x 15 um fields (25 tiles each)."""
    rng = np.random.default_rng(seed)
    grid = tiles.grid_tiles([box(0, 0, 15_000, 15_000)])
    parts = []
    for k in range(n_fields):
        density = float(np.exp(rng.uniform(np.log(50), np.log(1000))))
        if k % 3 == 0:
            pattern = simulate.simulate_csr(density, 15_000, 15_000, seed=k)
        else:
            pattern = simulate.simulate_clustered(
                density, 15_000, 15_000, cluster_radius_nm=float(rng.uniform(20, 120)),
                locs_per_cluster=float(rng.uniform(5, 60)), fraction_clustered=float(rng.uniform(0.3, 0.9)),
                process="thomas" if k % 2 else "matern", seed=k)
        parts.append(similarity.file_fingerprints(pattern.x, pattern.y, grid, targets=()).unthinned)
    return similarity.Fingerprints.concatenate(parts)


def ks_reference_per_pair(pool: similarity.Fingerprints, n_pairs: int, seed: int = 1) -> float:
    """Seconds per pair of scipy.stats.ks_2samp on the expanded 10,000-value per-bin count samples."""
    rng = np.random.default_rng(seed)
    samples = [np.repeat(np.arange(h.size), h) for h in pool.hist]
    first, second = rng.integers(0, len(samples), (2, n_pairs))
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)          # "exact calculation unsuccessful"
        for i, j in zip(first, second):
            ks_2samp(samples[i], samples[j])                     # default method (fastest here)
    return (time.perf_counter() - start) / n_pairs


def naive_points_in_tiles(x: np.ndarray, y: np.ndarray, grid: tiles.TileGrid) -> list[np.ndarray]:
    """One full-scan boolean mask per tile."""
    t = grid.tile_nm
    return [np.flatnonzero((x >= x0) & (x < x0 + t) & (y >= y0) & (y < y0 + t)) for x0, y0 in grid.origins]


def naive_file_fingerprints(x: np.ndarray, y: np.ndarray, grid: tiles.TileGrid) -> list[np.ndarray]:
    """Per tile: full-scan mask, histogram2d, bincount, thinning by rng.choice (the obvious code)."""
    t = grid.tile_nm
    out = []
    for k, ((x0, y0), inside) in enumerate(zip(grid.origins, naive_points_in_tiles(x, y, grid))):
        for n_keep in (None, 270, 900):
            if inside.size < (n_keep or similarity.MIN_TILE_LOCS):
                continue
            pick = inside if n_keep is None else np.random.default_rng(k).choice(inside, n_keep, replace=False)
            counts, _, _ = np.histogram2d(x[pick], y[pick], bins=100, range=[[x0, x0 + t], [y0, y0 + t]])
            out.append(np.bincount(counts.astype(np.int64).ravel()))
    return out


def warm_up_jit() -> float:
    """Run every numba kernel once on tiny inputs; seconds taken."""
    start = time.perf_counter()
    tiny = similarity.Fingerprints.from_histograms([np.array([9000, 1000]), np.array([9500, 400, 100])], [1, 1])
    similarity.search_bank(tiny, tiny, np.array([0, 0]), 1)
    similarity.self_similarity(tiny, max_pairs=10)
    similarity.self_similarity(tiny, max_pairs=0)
    similarity.compare_sets(tiny, tiny, max_pairs=1)
    similarity.file_fingerprints(np.ones(3), np.ones(3), tiles.grid_tiles([box(0, 0, 3000, 3000)]))
    return time.perf_counter() - start


def bench_search_bank(pool, per_pair_s: float, rng, repeats: int) -> Row:
    bank = pool.take(rng.integers(0, len(pool), 100_000))
    query = pool.take(rng.integers(0, len(pool), 100))
    bank_dataset = np.repeat(np.arange(1000), 100)
    _ = bank.ecdf                                              # the bank index keeps its CDFs
    ours = median_time(lambda: similarity.search_bank(query, bank, bank_dataset, 1000), repeats)
    return Row("search_bank", "100 query x 1e5 bank tiles, 1000 sets", ours, per_pair_s * 1e7,
               f"ks_2samp on {REFERENCE_PAIRS} pairs, x1e7 extrapolated")


def bench_self_similarity(pool, per_pair_s: float, rng, repeats: int) -> Row:
    prints = pool.take(rng.integers(0, len(pool), 10_000))
    file_ids = np.repeat(np.arange(100), 100)
    n_pairs = 10_000 * 9_999 // 2
    ours = median_time(lambda: similarity.self_similarity(prints, file_ids, max_pairs=n_pairs), repeats)
    return Row("self_similarity", "1e4 tiles, all 5.0e7 pairs", ours, per_pair_s * n_pairs,
               f"ks_2samp on {REFERENCE_PAIRS} pairs, x5e7 extrapolated")


def bench_file_fingerprints(repeats: int) -> Row:
    pattern = simulate.simulate_clustered(1000.0, 40_000, 25_000, seed=3)
    grid = tiles.grid_tiles([box(500, 500, 19_500, 24_500), box(20_500, 500, 39_500, 24_500)])
    ours = median_time(lambda: similarity.file_fingerprints(pattern.x, pattern.y, grid), repeats)
    reference = median_time(lambda: naive_file_fingerprints(pattern.x, pattern.y, grid), 1).wall_s
    return Row("file_fingerprints", f"{len(pattern):.2e} locs, 2 ROIs, {len(grid)} tiles", ours, reference,
               "mask + histogram2d per tile")


def bench_points_in_tiles(rng, repeats: int) -> Row:
    x, y = rng.uniform(0, 40_000, (2, 10_000_000))
    grid = tiles.grid_tiles([box(0, 0, 39_000, 39_000), box(1_500, 1_500, 37_500, 37_500)])
    ours = median_time(lambda: tiles.points_in_tiles(x, y, grid), repeats)
    reference = median_time(lambda: naive_points_in_tiles(x, y, grid), 1).wall_s
    return Row("points_in_tiles", f"1e7 points, {len(grid)} tiles (2 lattices)", ours, reference,
               "full-scan mask per tile")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cold", action="store_true", help="use an empty numba cache (report compile time)")
    args = parser.parse_args()
    print(f"cores: {os.cpu_count()}, numba threads: {numba.get_num_threads()}, "
          f"load average: {os.getloadavg()[0]:.1f}, repeats: {args.repeats} (median reported)")
    jit_s = warm_up_jit()
    print(f"numba JIT warm-up ({'compile' if args.cold else 'compile or cache load'}): {jit_s:.2f} s")

    start = time.perf_counter()
    pool = fingerprint_pool(N_POOL_FIELDS)
    print(f"fingerprint pool: {len(pool)} tiles from {N_POOL_FIELDS} simulated fields at 50-1000 loc/um^2, "
          f"hist width K = {pool.hist.shape[1]} ({time.perf_counter() - start:.1f} s)")
    per_pair_s = ks_reference_per_pair(pool, REFERENCE_PAIRS)
    rng = np.random.default_rng(2)
    rows = [bench_search_bank(pool, per_pair_s, rng, args.repeats),
            bench_self_similarity(pool, per_pair_s, rng, args.repeats),
            bench_file_fingerprints(args.repeats),
            bench_points_in_tiles(rng, args.repeats)]
    print(HEADER)
    for row in rows:
        print(row.line())


if __name__ == "__main__":
    main()
