"""Pairwise comparison of datasets (the Compare page and ``nanoorg compare``)."""

from __future__ import annotations

import numpy as np

from compute import similarity
from compute.similarity import Fingerprints
from databank.access import get_dataset
from databank.core import settings_of
from databank.models import Dataset
from databank.store import unpack_fingerprints
from databank.search import cache_key, check_target, result_cache, self_similarity
from databank.similarity_index import UNTHINNED, bank_index, bank_state


MAX_COMPARE = 10        # datasets on the Compare page


def _choice_label(choice) -> str:
    return "unthinned" if choice is None else f"thinned_{choice}"


def _instance_defaults(mode: str | None, max_pairs: int | None) -> tuple[str, int]:
    if mode is None or max_pairs is None:       # the instance settings need an app context
        settings = settings_of()
        mode = mode or settings.lambda_mode
        max_pairs = max_pairs or settings.max_pairs
    return mode, max_pairs


def compare_fingerprint_sets(a: dict, b: dict, *, mode: str | None = None, max_pairs: int | None = None) -> dict:
    """Dataset-vs-dataset lambda summaries for unthinned and each thinning target present in both.

    a, b: {None: [unthinned], target: [thinning 1, ..., thinning R]} (``FileFingerprints.repeat_sets``,
    ``dataset_fingerprint_sets``). Thinned summaries average lambda over the repeats and add
    ``n_repeats`` and ``sd_repeats`` (``similarity.compare_repeated``). mode and max_pairs default
    to the instance settings.
    """
    mode, max_pairs = _instance_defaults(mode, max_pairs)
    out = {}
    for choice in a:
        if choice in b:
            result = similarity.compare_repeated(a[choice], b[choice], mode=mode, max_pairs=max_pairs)
            out[_choice_label(choice)] = result.as_dict() if choice is not None else result.summary.as_dict()
    return out


def pair_audit_rows(a: dict, b: dict, *, max_pairs: int | None = None):
    """Rows (set, repeat, tile_a, tile_b, D, n, m, lambda_critical, lambda_kolmogorov) of every
    compared tile pair of ``compare_fingerprint_sets`` (same inputs), for audit."""
    _, max_pairs = _instance_defaults("critical", max_pairs)
    for choice in a:
        if choice not in b:
            continue
        for repeat, (prints_a, prints_b) in enumerate(zip(a[choice], b[choice]), start=1):
            audit = similarity.pair_audit(prints_a, prints_b, max_pairs=max_pairs)
            columns = [audit[k] for k in ("tile_a", "tile_b", "D", "n", "m", "lambda_critical", "lambda_kolmogorov")]
            for values in zip(*columns):
                yield (_choice_label(choice), repeat, *values)


def dataset_fingerprint_sets(dataset: Dataset) -> dict:
    """{None: [unthinned], target: [thinning 1, ..., thinning R]} pooled over the dataset's files
    (R = the fewest thinnings stored for any of its files; 1 for files stored before repeats)."""
    parts: dict = {}
    for data_file in dataset.files:
        for choice, repeats in unpack_fingerprints(data_file.fingerprints).repeat_sets().items():
            parts.setdefault(choice, []).append(repeats)
    return {choice: [Fingerprints.concatenate([f[r] for f in per_file]) for r in range(min(map(len, per_file)))]
            for choice, per_file in parts.items()}


def hierarchical_order(matrix: np.ndarray) -> list[int]:
    """Leaf order of average-linkage clustering of a dissimilarity matrix (scipy ``leaves_list``).

    The matrix is symmetrised and its diagonal ignored; missing values (NaN) count as the largest
    observed dissimilarity, so datasets without comparable tiles end up at one side.
    """
    from scipy.cluster.hierarchy import leaves_list, linkage
    from scipy.spatial.distance import squareform

    m = np.asarray(matrix, dtype=float)
    n = m.shape[0]
    if n < 3:
        return list(range(n))
    d = (m + m.T) / 2
    finite = d[np.isfinite(d)]
    fill = (finite.max() * 1.5 + 1.0) if finite.size else 1.0
    d = np.where(np.isfinite(d), d, fill)
    np.fill_diagonal(d, 0.0)
    return [int(k) for k in leaves_list(linkage(squareform(d, checks=False), method="average"))]


def compare_datasets(user, dataset_ids, *, target: int | None = None, progress=None) -> dict:
    """Pairwise comparison of 2-10 datasets the user may read (Compare page).

    Returns ``dataset_ids`` and ``titles`` (in the given order), ``order`` (hierarchical leaf order of
    the thinned matrix, unthinned if no thinned scores), matrices ``thinned_mean``, ``thinned_sd``,
    ``unthinned_mean``, ``unthinned_sd`` and ``n_pairs`` (lists of lists, None where no pairs; the
    diagonal holds each dataset's self-similarity mean and SD), ``thinned_n_repeats`` (thinned
    lambda averaged over that many thinnings, ``similarity.compare_repeated``) and ``self``:
    {dataset id: the ``self_similarity`` result}. Raises AccessDenied if any dataset is not readable (same message
    as missing), ValueError for fewer than 2 or more than MAX_COMPARE datasets.
    """
    ids = list(dict.fromkeys(int(i) for i in dataset_ids))
    if not 2 <= len(ids) <= MAX_COMPARE:
        raise ValueError(f"choose between 2 and {MAX_COMPARE} datasets")
    datasets = [get_dataset(user, i, "read") for i in ids]
    settings = settings_of()
    target = check_target(target)
    key = cache_key("compare", ids, bank_state(), target, settings.lambda_mode, settings.max_pairs)
    with result_cache() as cache:
        hit = cache.get(key)
    if hit is not None:
        return hit
    index = bank_index()
    n = len(ids)
    out = {"dataset_ids": ids, "titles": [d.title for d in datasets], "target": target}
    steps = n * (n - 1) + n
    done = 0
    selfs = {}
    for k, d in enumerate(datasets):
        selfs[d.id] = self_similarity(user, d.id, target=target)
        done += 1
        if progress:
            progress(done / steps, f"Self-similarity of dataset {k + 1} of {n}")
    thinnings = index.thinnings_of(target)
    out["thinned_n_repeats"] = len(thinnings)
    for label, choices in (("thinned", thinnings), ("unthinned", [UNTHINNED])):
        sets = [[index.tiles_of(d.id, choice).prints for choice in choices] for d in datasets]
        mean = np.full((n, n), np.nan)
        sd = np.full((n, n), np.nan)
        pairs = np.zeros((n, n), dtype=np.int64)
        for i in range(n):
            summary = selfs[datasets[i].id][label]["summary"]
            if summary:
                mean[i, i], sd[i, i] = summary["mean"], (summary["sd"] if summary["sd"] is not None else np.nan)
                pairs[i, i] = summary["n_pairs"]
            for j in range(i + 1, n):
                if len(sets[i][0]) and len(sets[j][0]):
                    s = similarity.compare_repeated(sets[i], sets[j], mode=settings.lambda_mode,
                                                    max_pairs=settings.max_pairs).summary
                    mean[i, j] = mean[j, i] = s.mean
                    sd[i, j] = sd[j, i] = s.sd
                    pairs[i, j] = pairs[j, i] = s.n_pairs
                done += 1
                if progress:
                    progress(done / steps, f"Comparing {label} tiles")
        out[f"{label}_mean"] = _matrix_list(mean)
        out[f"{label}_sd"] = _matrix_list(sd)
        out[f"{label}_n_pairs"] = pairs.tolist()
    basis = np.array(out["thinned_mean"], dtype=float)
    off_diagonal = basis[~np.eye(n, dtype=bool)]
    if not np.isfinite(off_diagonal).any():
        basis = np.array(out["unthinned_mean"], dtype=float)
    out["order"] = hierarchical_order(basis)
    out["self"] = {str(i): selfs[i] for i in ids}
    with result_cache() as cache:
        cache.set(key, out)
    return out


def _matrix_list(m: np.ndarray) -> list[list[float | None]]:
    return [[None if not np.isfinite(v) else round(float(v), 4) for v in row] for row in m]
