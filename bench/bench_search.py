"""Benchmark: similarity search over a bank of 1,000 datasets / 10^5 tiles (server side).

    python bench/bench_search.py [--datasets 1000] [--tiles-per-dataset 100] [--runs 5]

Builds a temporary SQLite bank whose rows carry synthetic tile fingerprints (inserted directly
through the models: no localisation files are needed for a search), then times, as medians of
``--runs`` runs:

1. ``search.similar_datasets`` end to end for one dataset: index cold (first search after the
   bank changed: fingerprints read from the database or the on-disk index), result cache cold
   (index in memory, new query), result cache warm (cached table);
2. the same for an anonymous visitor and with a metadata filter;
3. "search with your own file": a 10^6-localisation simulated ThunderSTORM file + ROI,
   ``ingest.analyse_file`` (read, tile, fingerprint; nothing stored) + ``search.search_with_fingerprints``;
4. a naive reference in the same run: ``scipy.stats.ks_2samp`` on the expanded per-bin counts,
   timed on a sample of tile pairs and extrapolated to the pairs one search compares.

Synthetic fingerprints: a pool of tiles per (organisation class, density) is drawn once (per-bin
counts Poisson for CSR, gamma-mixed Poisson for clustered classes; thinned sets by binomial
thinning of the same counts to 30 and 100 loc/um^2); each dataset samples its tiles from the pool
of its class and density.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from compute.similarity import FileFingerprints, Fingerprints  # noqa: E402
from config import load_settings  # noqa: E402
from databank import search  # noqa: E402
from databank import similarity_index
from databank.core import make_data_app  # noqa: E402
from databank.models import DataFile, Dataset, User, bump_bank_version, db  # noqa: E402
from databank.store import pack_fingerprints  # noqa: E402
from databank.users import create_user  # noqa: E402

N_BINS = 10_000
TILE_UM2 = 9.0
CLASSES = {"csr": None, "small_dense": 0.35, "large_sparse": 1.5}   # gamma shape of the bin rates (None = Poisson)
DENSITIES = (150.0, 300.0, 600.0, 1200.0)
TARGETS = (30, 100)
PROTEINS = ("EGFR", "CD3ζ", "LAT", "SLP76", "TfR1", "CD45", "FGFR1", "CD81")
CELL_TYPES = ("HeLa", "COS-7", "Jurkat", "MCF7")
POOL_TILES = 40


def tile_counts(rng, density: float, shape: float | None) -> np.ndarray:
    """Per-bin localisation counts of one synthetic tile (10,000 bins of 30 nm)."""
    mean = density * TILE_UM2 / N_BINS
    rates = np.full(N_BINS, mean) if shape is None else rng.gamma(shape, mean / shape, N_BINS)
    return rng.poisson(rates)


def thinned_counts(rng, counts: np.ndarray, target: int) -> np.ndarray | None:
    keep = int(round(target * TILE_UM2))
    total = int(counts.sum())
    if total < keep:
        return None
    return rng.binomial(counts, keep / total)


def make_pool(rng) -> dict:
    pool = {}
    for name, shape in CLASSES.items():
        for density in DENSITIES:
            entries = []
            for _ in range(POOL_TILES):
                counts = tile_counts(rng, density, shape)
                thinned = {t: thinned_counts(rng, counts, t) for t in TARGETS}
                entries.append((np.bincount(counts), {t: np.bincount(c) for t, c in thinned.items() if c is not None},
                                int(counts.sum())))
            pool[name, density] = entries
    return pool


def file_prints(rng, entries, n_tiles: int) -> FileFingerprints:
    picks = [entries[k] for k in rng.integers(0, len(entries), n_tiles)]
    unthinned = Fingerprints.from_histograms([p[0] for p in picks], [p[2] for p in picks])
    thinned, index_thinned = {}, {}
    for t in TARGETS:
        rows = [k for k, p in enumerate(picks) if t in p[1]]
        thinned[t] = Fingerprints.from_histograms([picks[k][1][t] for k in rows], [int(round(t * TILE_UM2))] * len(rows)) \
            if rows else Fingerprints(np.zeros((0, 1), np.int32), np.zeros(0, np.int64))
        index_thinned[t] = np.asarray(rows, dtype=np.int64)
    return FileFingerprints(unthinned, thinned, np.arange(n_tiles), index_thinned)


def build_bank(n_datasets: int, tiles_per_dataset: int, seed: int = 7) -> dict:
    """Insert the synthetic bank; returns {dataset id: class name}."""
    rng = np.random.default_rng(seed)
    pool = make_pool(rng)
    owners = [create_user(name, f"{name}@example.org", "correct horse battery") for name in ("alice", "bob", "carol")]
    names = list(CLASSES)
    per_file = tiles_per_dataset // 2
    for k in range(n_datasets):
        name, density = names[k % len(names)], DENSITIES[(k // len(names)) % len(DENSITIES)]
        owner = owners[k % len(owners)]
        dataset = Dataset(owner_id=owner.id, visibility="private" if k % 10 == 9 else "public",
                          storage_key=uuid.uuid4().hex, is_simulated=True, n_files=2,
                          n_locs=int(density * TILE_UM2 * tiles_per_dataset), n_tiles=tiles_per_dataset,
                          density=density, title=f"Synthetic {name} #{k}", modality="dSTORM" if k % 2 else "PALM",
                          software="ThunderSTORM", protein=PROTEINS[k % len(PROTEINS)],
                          cell_type=CELL_TYPES[(k // 3) % len(CELL_TYPES)], fluorophore="Alexa Fluor 647",
                          tags=f"synthetic, {name}")
        dataset.files = [DataFile(name=f"cell{f}.csv", storage_key=uuid.uuid4().hex, format="thunderstorm",
                                  sha256="0" * 64, size_bytes=0, n_locs=0,
                                  fingerprints=pack_fingerprints(file_prints(rng, pool[name, density], per_file)))
                         for f in range(2)]
        db.session.add(dataset)
        if k % 200 == 199:
            db.session.flush()
    bump_bank_version()
    db.session.commit()
    return {d.id: d.tags.split(", ")[1] for d in db.session.scalars(db.select(Dataset))}


def median_time(fn, runs: int, setup=None) -> tuple[float, object]:
    times, result = [], None
    for _ in range(runs):
        if setup:
            setup()
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def clear_results(settings) -> None:
    search.clear_result_cache()


def forget_index() -> None:
    similarity_index.forget_bank_index()


def naive_reference(runs_pairs: int = 60) -> float:
    """Seconds per tile pair with scipy's ks_2samp on the expanded per-bin counts."""
    from scipy.stats import ks_2samp

    rng = np.random.default_rng(3)
    a = [tile_counts(rng, 300.0, 0.35) for _ in range(8)]
    b = [tile_counts(rng, 300.0, None) for _ in range(8)]
    start = time.perf_counter()
    for k in range(runs_pairs):
        ks_2samp(a[k % 8], b[(k * 3) % 8])
    return (time.perf_counter() - start) / runs_pairs


def own_file(folder: Path, n_locs: int) -> tuple[Path, Path]:
    from compute import simulate
    from databank.demo import write_fiji_roi, write_thunderstorm_csv

    density = 300.0
    side_nm = float(np.sqrt(n_locs / density) * 1000.0)
    pattern = simulate.simulate_clustered(density, side_nm, side_nm, cluster_radius_nm=30.0, locs_per_cluster=25.0,
                                          fraction_clustered=0.7, seed=11)
    detection = folder / "my_cell.csv"
    write_thunderstorm_csv(detection, pattern)
    roi = folder / "my_cell_ROI_1.csv"
    s = side_nm / 1000.0
    write_fiji_roi(roi, np.array([[0.05, 0.05], [s - 0.05, 0.05], [s - 0.05, s - 0.05], [0.05, s - 0.05]]))
    return detection, roi


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", type=int, default=1000)
    parser.add_argument("--tiles-per-dataset", type=int, default=100)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--own-file-locs", type=int, default=1_000_000)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="nanoorg-bench-") as tmp:
        settings = load_settings(instance_dir=Path(tmp) / "instance", seed_demo=False, secret_key="bench")
        app = make_data_app(settings)
        rows = []
        with app.app_context():
            start = time.perf_counter()
            classes = build_bank(args.datasets, args.tiles_per_dataset)
            build_s = time.perf_counter() - start
            alice = db.session.scalars(db.select(User).where(User.username == "alice")).one()
            ids = sorted(classes)
            query_ids = [i for i in ids if db.session.get(Dataset, i).visibility == "public"]
            n_tiles = sum(len(similarity_index.bank_index().sets[None].prints) for _ in [0])
            print(f"bank: {len(ids)} datasets, {n_tiles} unthinned tiles "
                  f"({len(similarity_index.bank_index().sets[100].prints)} thinned to 100), built in {build_s:.1f} s")

            # warm numba (compiled functions are cached on disk after the first run)
            search.similar_datasets(alice, query_ids[0], target=100)

            picks = iter(query_ids[1:])

            def fresh_query():
                return next(picks)

            t_index_cold, _ = median_time(lambda: search.similar_datasets(alice, fresh_query(), target=100),
                                          args.runs, setup=forget_index)
            t_disk_cold, _ = median_time(lambda: search.similar_datasets(alice, fresh_query(), target=100),
                                         args.runs, setup=lambda: (clear_results(settings), similarity_index.forget_bank_index(memory_only=True)))
            t_cold, table = median_time(lambda: search.similar_datasets(alice, fresh_query(), target=100), args.runs)
            q = query_ids[0]
            t_warm, table = median_time(lambda: search.similar_datasets(alice, q, target=100), args.runs)
            t_anon, _ = median_time(lambda: search.similar_datasets(None, fresh_query(), target=30), args.runs)
            t_filter, _ = median_time(lambda: search.similar_datasets(alice, fresh_query(), target=100,
                                                                      filters={"cell_type": "HeLa"}), args.runs)
            # one new dataset (an upload): the index is updated incrementally, the result cache is new
            def add_one():
                rng = np.random.default_rng(len(classes) + 1)
                owner = db.session.scalars(db.select(User)).first()
                pool_entries = [(np.bincount(tile_counts(rng, 300.0, None)), {}, 2700) for _ in range(5)]
                dataset = Dataset(owner_id=owner.id, visibility="public", storage_key=uuid.uuid4().hex, n_files=1,
                                  n_tiles=50, density=300.0, title=f"Added {uuid.uuid4().hex[:6]}", modality="PALM",
                                  software="ThunderSTORM")
                dataset.files = [DataFile(name="new.csv", storage_key=uuid.uuid4().hex, format="thunderstorm",
                                          sha256="0" * 64, size_bytes=0, n_locs=0,
                                          fingerprints=pack_fingerprints(file_prints(rng, pool_entries, 50)))]
                db.session.add(dataset)
                bump_bank_version()
                db.session.commit()

            t_added, _ = median_time(lambda: search.similar_datasets(alice, fresh_query(), target=100), args.runs,
                                     setup=add_one)
            rows += [("similar_datasets, index cold (rebuilt from the database)", t_index_cold, 2.0),
                     ("similar_datasets, after a new upload (index updated incrementally)", t_added, 2.0),
                     ("similar_datasets, index from the on-disk copy (new process)", t_disk_cold, 2.0),
                     ("similar_datasets, result cache cold", t_cold, 2.0),
                     ("similar_datasets, result cache warm", t_warm, 2.0),
                     ("similar_datasets, anonymous, target 30", t_anon, 2.0),
                     ("similar_datasets, filter cell_type=HeLa", t_filter, 2.0)]
            same = [r for r in table[:30] if classes[r["dataset_id"]] == classes[q]]
            print(f"query class {classes[q]}: {len(same)} of the 30 most similar share it")

            # search with your own file
            from databank.ingest import StagedFile, analyse_file

            folder = Path(tmp) / "own"
            folder.mkdir()
            detection, roi = own_file(folder, args.own_file_locs)
            analysis_times, rank_times, total_times = [], [], []
            for _ in range(max(3, args.runs // 2 + 1)):
                t0 = time.perf_counter()
                analysis = analyse_file(StagedFile(detection, detection.name), [StagedFile(roi, roi.name)],
                                        thinning_targets=settings.thinning_targets)
                t1 = time.perf_counter()
                search.search_with_fingerprints(alice, analysis.fingerprints, target=100)
                t2 = time.perf_counter()
                analysis_times.append(t1 - t0)
                rank_times.append(t2 - t1)
                total_times.append(t2 - t0)
            n_query = len(analysis.fingerprints.unthinned)
            rows += [(f"own file: analyse_file ({len(analysis.table):,} locs, {n_query} tiles)",
                      statistics.median(analysis_times), None),
                     ("own file: rank against the bank", statistics.median(rank_times), None),
                     ("own file: end to end", statistics.median(total_times), 5.0)]

            # naive reference
            per_pair = naive_reference()
            index = similarity_index.bank_index()
            n_query_tiles = min(search.MAX_QUERY_TILES, args.tiles_per_dataset)
            pairs = n_query_tiles * (len(index.sets[None].prints) + len(index.sets[100].prints))
            rows.append((f"naive ks_2samp loop, {pairs:,} pairs (extrapolated from {per_pair * 1e3:.2f} ms/pair)",
                         per_pair * pairs, None))

        print()
        load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
        print(f"machine: {os.cpu_count()} cores, load average {load} (other processes slow every number down)")
        print(f"{'measurement (median of runs)':78s} {'seconds':>9s} {'target':>7s}")
        for label, seconds, target in rows:
            flag = "" if target is None else ("  ok" if seconds <= target else "  SLOW")
            print(f"{label:78s} {seconds:9.3f} {('' if target is None else f'<= {target:g}'):>7s}{flag}")


if __name__ == "__main__":
    main()
