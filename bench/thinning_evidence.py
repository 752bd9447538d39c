"""Evidence for the thinning default: which ranking finds datasets of the same organisation?

A simulated bank of 3 organisation classes x 3 localisation densities x 3 replicates (27 datasets,
one 9 x 9 µm file each, ROI = the field, so 9 tiles of 3 x 3 µm) is compared all against all, as
the similarity search does (mean λ over all tile pairs, critical mode). For every query dataset
the other 26 are ranked by mean λ (ascending); precision at k is the share of the k best-ranked
datasets that have the query's organisation class (8 others share it). A ranking that follows
density instead of organisation has a low precision; "same density @8" shows how much of the
top 8 shares the query's density instead. Queries that cannot be ranked (no tiles at that
thinning density) are left out and counted. Rankings: unthinned, thinned to 30 and
to 100 loc/µm² (exact count per tile), each with 1 and 5 independent thinnings (λ averaged), and
Bernoulli (file-level) thinning to 30. The whole bank is simulated ``--banks`` times with new
seeds; the table gives the mean ± SD over banks. A second table repeats the evaluation on the
datasets dense enough for the 100 loc/µm² target, where every ranking can rank every query.

    python bench/thinning_evidence.py [--banks 5]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from shapely.geometry import box

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from compute import similarity, simulate, tiles  # noqa: E402
from config import __version__  # noqa: E402

FIELD_NM = 9000.0
DENSITIES = (60.0, 150.0, 400.0)            # loc/µm²
REPLICATES = 3
N_REPEATS = 5
CLASSES = {                                  # organisation class -> simulate_clustered parameters
    "CSR": dict(fraction_clustered=0.0),
    "small clusters (Thomas σ 30 nm, 15 loc)": dict(cluster_radius_nm=30.0, locs_per_cluster=15.0,
                                                    fraction_clustered=0.5),
    "large clusters (Thomas σ 80 nm, 40 loc)": dict(cluster_radius_nm=80.0, locs_per_cluster=40.0,
                                                    fraction_clustered=0.7),
}
RANKINGS = (                                 # label, fingerprint choice, thinning mode, repeats
    ("unthinned", None, "tile", 1),
    ("thinned 30, 1 thinning", 30, "tile", 1),
    ("thinned 30, 5 thinnings", 30, "tile", 5),
    ("thinned 100, 1 thinning", 100, "tile", 1),
    ("thinned 100, 5 thinnings", 100, "tile", 5),
    ("thinned 30 Bernoulli, 1 thinning", 30, "bernoulli", 1),
)


def simulate_bank(bank_seed: int) -> list[dict]:
    """27 datasets: class, density and fingerprints (tile and Bernoulli thinning, 5 repeats)."""
    grid = tiles.grid_tiles([box(0.0, 0.0, FIELD_NM, FIELD_NM)])
    bank = []
    for class_index, (name, parameters) in enumerate(CLASSES.items()):
        for density in DENSITIES:
            for replicate in range(REPLICATES):
                seed = bank_seed * 10_000 + class_index * 1000 + int(density) * 10 + replicate
                pattern = simulate.simulate_clustered(density, FIELD_NM, FIELD_NM, seed=seed, **parameters)
                prints = {mode: similarity.file_fingerprints(pattern.x, pattern.y, grid, seed=seed,
                                                             n_repeats=N_REPEATS, thinning=mode)
                          for mode in ("tile", "bernoulli")}
                bank.append(dict(organisation=class_index, density=density, prints=prints))
    return bank


def mean_lambda_matrix(bank: list[dict], choice, mode: str, repeats: int) -> np.ndarray:
    """Symmetric matrix of mean λ between datasets (NaN where a dataset has no tiles)."""
    n = len(bank)
    sets = [d["prints"][mode].repeat_sets()[choice][:repeats] for d in bank]
    out = np.full((n, n), np.nan)
    for i in range(n):
        for j in range(i + 1, n):
            if len(sets[i][0]) and len(sets[j][0]):
                out[i, j] = out[j, i] = similarity.compare_repeated(sets[i], sets[j], max_pairs=10**9).summary.mean
    return out


def precision_at_k(matrix: np.ndarray, labels: np.ndarray, k: int, members: np.ndarray) -> tuple[float, int]:
    """Mean over the rankable queries among ``members`` of the share of the k nearest (smallest λ)
    other members with the query's label. A query is rankable when it has a finite λ to at least
    k other members. Returns (precision, number of rankable queries)."""
    scores = []
    for q in members:
        others = members[(members != q) & np.isfinite(matrix[q, members])]
        if others.size < k:
            continue
        nearest = others[np.argsort(matrix[q, others], kind="stable")[:k]]
        scores.append(np.count_nonzero(labels[nearest] == labels[q]) / k)
    return (float(np.mean(scores)) if scores else float("nan")), len(scores)


def _cell(values: list[float]) -> str:
    values = [v for v in values if np.isfinite(v)]
    if not values:
        return "n/a"
    return f"{np.mean(values):.2f} ± {np.std(values, ddof=1) if len(values) > 1 else 0.0:.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--banks", type=int, default=5, help="independently simulated banks (default 5)")
    args = parser.parse_args()
    started = time.perf_counter()
    n_datasets = len(CLASSES) * len(DENSITIES) * REPLICATES
    dense = len([d for d in DENSITIES if d >= 100]) * len(CLASSES) * REPLICATES
    evaluations = (                      # table, members, k for organisation, k for density
        (f"all {n_datasets} datasets", lambda density: density > 0, (3, 8)),
        (f"the {dense} datasets at >= 100 loc/µm² (each has 5 others of its class)", lambda density: density >= 100,
         (3, 5)),
    )
    results = {(table, label): {} for table, *_ in evaluations for label, *_ in RANKINGS}
    for bank_seed in range(args.banks):
        bank = simulate_bank(bank_seed)
        organisation = np.array([d["organisation"] for d in bank])
        density = np.array([d["density"] for d in bank])
        for label, choice, mode, repeats in RANKINGS:
            matrix = mean_lambda_matrix(bank, choice, mode, repeats)
            for table, include, ks in evaluations:
                members = np.flatnonzero(include(density))
                cells = results[(table, label)]
                for k in ks:
                    p, rankable = precision_at_k(matrix, organisation, k, members)
                    cells.setdefault(f"organisation@{k}", []).append(p)
                    cells.setdefault("rankable", []).append(rankable)
                cells.setdefault(f"density@{ks[-1]}", []).append(precision_at_k(matrix, density, ks[-1], members)[0])
    print(f"nano-org {__version__} bench/thinning_evidence.py: {args.banks} simulated banks of {n_datasets} datasets "
          f"({len(CLASSES)} organisation classes x densities {', '.join(f'{d:g}' for d in DENSITIES)} loc/µm² x "
          f"{REPLICATES} replicates; one {FIELD_NM / 1000:g} x {FIELD_NM / 1000:g} µm file each = 9 tiles of 3 x 3 µm); "
          f"mean λ over all tile pairs, critical mode; precision over the rankable queries, mean ± SD over banks; "
          f"{time.perf_counter() - started:.0f} s")
    print("Classes: " + "; ".join(CLASSES))
    for table, _, ks in evaluations:
        print()
        print(f"Bank: {table}")
        print()
        print(f"| ranking | precision@{ks[0]} (organisation) | precision@{ks[1]} (organisation) | "
              f"same density in top {ks[1]} | rankable queries |")
        print("|---|---|---|---|---|")
        for label, *_ in RANKINGS:
            cells = results[(table, label)]
            print(f"| {label} | {_cell(cells[f'organisation@{ks[0]}'])} | {_cell(cells[f'organisation@{ks[1]}'])} | "
                  f"{_cell(cells[f'density@{ks[1]}'])} | {np.mean(cells['rankable'][1::2]):.0f} |")
    print()
    print("Chance: precision@k = 8/26 = 0.31 (all datasets), 5/17 = 0.29 (>= 100 loc/µm²), for organisation and "
          "for density alike. A query is rankable when it has thinned tiles and at least k others have them too.")


if __name__ == "__main__":
    main()
