"""Similarity search and self-similarity over the bank index, for the datasets a user may read.

Results are filtered to the datasets the user may read *before* ranking, and cached on disk by
(query, bank state, user, options) so workers and jobs share them. The bank state is the bank
version (bumped in the transaction of every ingest, delete, visibility or metadata change) plus
the number and largest id of the stored files. Also: the downloadable results table (CSV) and the
filter choices of the search form.
"""

from __future__ import annotations


import csv
import hashlib
import io
import json
import os
from contextlib import contextmanager
from threading import Lock

import diskcache
import numpy as np
from sqlalchemy import select

from compute import similarity, tiles
from compute.similarity import FileFingerprints, Fingerprints
from databank.access import get_dataset, readable_clause, user_id_of
from databank.core import settings_of
from databank.models import Dataset, User, db
from databank.similarity_index import UNTHINNED, TileSet, bank_index, bank_state, empty_tile_set, fingerprint_choices


RESULT_METADATA = ("title", "protein", "cell_type", "modality", "fluorophore", "software", "uniprot_id", "tags")


MAX_QUERY_TILES = 100   # a larger query is represented by this many tiles, sampled with a fixed seed


# Columns of the downloadable results table (key, header), in order.
RESULT_COLUMNS: tuple[tuple[str, str], ...] = (
    ("rank", "rank"), ("dataset_id", "dataset_id"), ("title", "title"), ("protein", "protein"),
    ("cell_type", "cell_type"), ("modality", "modality"), ("fluorophore", "fluorophore"),
    ("software", "software"), ("uniprot_id", "uniprot_id"), ("tags", "tags"), ("visibility", "visibility"),
    ("density", "density_loc_per_um2"), ("n_tiles", "n_tiles"),
    ("thinned_mean", "thinned_lambda_mean"), ("thinned_sd", "thinned_lambda_sd"),
    ("thinned_median", "thinned_lambda_median"), ("thinned_fraction_above_1", "thinned_fraction_above_1"),
    ("thinned_n_pairs", "thinned_n_pairs"), ("thinned_n_repeats", "thinned_n_thinnings"),
    ("thinned_sd_repeats", "thinned_lambda_sd_over_thinnings"),
    ("unthinned_mean", "unthinned_lambda_mean"), ("unthinned_sd", "unthinned_lambda_sd"),
    ("unthinned_median", "unthinned_lambda_median"), ("unthinned_fraction_above_1", "unthinned_fraction_above_1"),
    ("unthinned_n_pairs", "unthinned_n_pairs"),
)


def _sample_prints(prints: Fingerprints, seed: int = 0) -> Fingerprints:
    if len(prints) <= MAX_QUERY_TILES:
        return prints
    index = np.sort(np.random.default_rng(seed).choice(len(prints), MAX_QUERY_TILES, replace=False))
    return prints.take(index)


def _query_sample(tile_set: TileSet, seed: int = 0) -> Fingerprints:
    return _sample_prints(tile_set.prints, seed)


_caches: dict[str, diskcache.Cache] = {}


_caches_lock = Lock()


@contextmanager
def result_cache():
    """The result cache of the current instance (one shared diskcache per folder and process:
    opening a diskcache costs tens of ms; it is thread-safe and reconnects after a fork)."""
    folder = str(settings_of().cache_dir / "similarity")
    with _caches_lock:
        cache = _caches.get(folder)
        if cache is not None and not os.path.isfile(os.path.join(folder, "cache.db")):
            cache = None                  # the folder was removed under us (tests, manual cleanup)
        if cache is None:
            cache = _caches[folder] = diskcache.Cache(folder, size_limit=2 ** 30)
    yield cache


def clear_result_cache() -> None:
    """Forget every cached search, self-similarity and comparison result (benchmarks, tests)."""
    with result_cache() as cache:
        cache.clear()


RESULTS_FORMAT = 2        # bump when cached results change shape (2: thinned_n_repeats, thinned_sd_repeats)


def cache_key(*parts) -> str:
    """The result cache's key for ``parts`` (and the results' format, so an upgrade never serves old rows)."""
    return hashlib.sha256(json.dumps([RESULTS_FORMAT, *parts], sort_keys=True, default=str).encode()).hexdigest()


def check_target(target) -> int:
    """The thinning target as an int, the default for None; ValueError unless it is a configured target."""
    settings = settings_of()
    try:
        target = settings.default_thinning if target is None else int(target)
    except (TypeError, ValueError):
        raise ValueError(f"thinning target must be one of {settings.thinning_targets} loc/µm²") from None
    if target not in settings.thinning_targets:
        raise ValueError(f"thinning target must be one of {settings.thinning_targets} loc/µm²")
    return target


def _clean_filters(filters: dict | None) -> dict:
    """Drop empty filter values (so that {} and {"protein": ""} share a cache entry)."""
    return {key: spec for key, spec in (filters or {}).items() if spec not in (None, "", [], {})}


def _candidates(user, exclude_id: int | None, filters: dict | None) -> list[Dataset]:
    from databank.datasets import filter_conditions   # same filter language as the databank table
    conditions = [readable_clause(user)]
    if exclude_id is not None:
        conditions.append(Dataset.id != exclude_id)
    conditions += filter_conditions(_clean_filters(filters))
    query = select(Dataset).join(User, Dataset.owner_id == User.id)   # the 'owner' filter is on User.username
    return list(db.session.scalars(query.where(*conditions).order_by(Dataset.id)))


def rank_against_bank(query: dict[int | None, Fingerprints], user, *, exclude_id: int | None = None,
                      target: int | None = None, filters: dict | None = None, mode: str | None = None,
                      progress=None) -> list[dict]:
    """Rank every readable dataset by mean lambda against the query tiles.

    ``query`` maps None (unthinned), thinning targets and (target, r) repeats to the query's
    fingerprints. Rows hold the dataset's metadata and, for unthinned and for ``target``, mean / SD /
    median / fraction above 1 of lambda and the number of tile pairs. Thinned scores use every
    thinning the query and the whole bank have (``BankIndex.thinnings_of``): each pair's lambda is
    averaged over them, ``thinned_n_repeats`` says how many, ``thinned_sd_repeats`` is the SD of the
    dataset's mean lambda over them (None for one). Sorted by thinned mean (then unthinned mean,
    then id), most similar first; datasets with no comparable tiles come last.
    """
    settings = settings_of()
    target = settings.default_thinning if target is None else target
    mode = mode or settings.lambda_mode
    index = bank_index()
    candidates = _candidates(user, exclude_id, filters)
    rows = {d.id: _metadata_row(d) for d in candidates}
    wanted = np.array([-1 if index.rows_of(d.id) is None else index.rows_of(d.id) for d in candidates],
                      dtype=np.int64)
    thinnings = [c for c in index.thinnings_of(target) if c in query]
    for step, (label, choices) in enumerate((("unthinned", [UNTHINNED]), ("thinned", thinnings))):
        if progress:
            progress(step / 2, f"Comparing {label} tiles")
        tile_set = index.sets.get(choices[0]) if choices else None
        tile_set = tile_set or empty_tile_set()
        keep = np.isin(tile_set.dataset_row, wanted[wanted >= 0])
        take = None if keep.all() else np.flatnonzero(keep)     # all readable: reuse the index's cached ECDFs
        banks = [index.sets[c].prints if take is None else index.sets[c].prints.take(take)
                 for c in choices if c in index.sets]
        queries = [query[c] for c in choices]
        if not banks or not queries or len(queries[0]) == 0 or len(banks[0]) == 0:
            result = None
        else:
            result = similarity.search_bank(queries, banks, tile_set.dataset_row[keep], len(index.dataset_ids),
                                            mode=mode)
        for d, row_index in zip(candidates, wanted):
            stats = _stats_at(result, int(row_index), repeats=label == "thinned")
            rows[d.id].update({f"{label}_{k}": v for k, v in stats.items()})
    if progress:
        progress(1.0, "Done")
    return sort_rows(list(rows.values()), "thinned")


def sort_rows(rows: list[dict], by: str = "thinned") -> list[dict]:
    """Rows sorted by ``by`` ('thinned' or 'unthinned') mean lambda, then the other, then dataset id;
    rows without a score last."""
    other = "unthinned" if by == "thinned" else "thinned"

    def key(row):
        first, second = row.get(f"{by}_mean"), row.get(f"{other}_mean")
        return (first is None, first if first is not None else 0.0,
                second is None, second if second is not None else 0.0, row.get("dataset_id") or 0)

    return sorted(rows, key=key)


def _stats_at(result, row_index: int, *, repeats: bool = False) -> dict:
    """One dataset's scores in a ``similarity.SearchResult`` (None where it has none); with
    ``repeats``, also the number of thinnings and the SD of its mean over them."""
    scored = result is not None and row_index >= 0 and result.n_pairs[row_index] > 0
    values = dict(mean=np.nan, sd=np.nan, median=np.nan, fraction_above_1=np.nan)
    if scored:
        values = dict(mean=result.mean[row_index], sd=result.sd[row_index], median=result.median[row_index],
                      fraction_above_1=result.fraction_above_1[row_index])
    if repeats:
        values["sd_repeats"] = result.sd_repeats[row_index] if scored else np.nan
    clean = {k: (None if not np.isfinite(v) else round(float(v), 4)) for k, v in values.items()}
    clean["n_pairs"] = int(result.n_pairs[row_index]) if scored else 0
    if repeats:
        clean["n_repeats"] = result.n_repeats if scored else 0
    return clean


def no_scores_reason(file_stats: list[dict], target: int, *, label: str = "this dataset") -> dict:
    """Why ``label`` has no unthinned / thinned similarity scores, from its files' statistics
    (``compute.stats.file_statistics`` dicts). Returns {"unthinned": text or None, "thinned": text
    or None, "self": text or None}; None means scores exist (self: at least 2 tiles to pair)."""
    tile_um = tiles.TILE_NM / 1000.0
    n_grid = sum(int(s.get("n_tiles") or 0) for s in file_stats)
    n_kept = sum(int(s.get("n_tiles_kept") or 0) for s in file_stats)
    n_thinned = sum(int(s.get(f"n_tiles_thinned_{target}") or 0) for s in file_stats)
    area = sum(float(s.get("roi_area_um2") or 0.0) for s in file_stats)
    in_roi = sum(float(s.get("density") or 0.0) * float(s.get("roi_area_um2") or 0.0) for s in file_stats)
    density = f"{in_roi / area:,.0f} loc/µm² in {area:,.1f} µm² of ROI" if area > 0 else "no ROI area"
    needed = similarity.thinned_count(target, tiles.TILE_NM)
    if n_grid == 0:
        unthinned = (f"no {tile_um:g} × {tile_um:g} µm tile fits inside the ROI(s) of {label} ({density}); a tile "
                     f"must lie wholly inside one ROI, so a field smaller than {tile_um:g} × {tile_um:g} µm has "
                     "nothing to compare")
    elif n_kept == 0:
        unthinned = (f"all {n_grid} tile(s) of {label} were dropped: each holds fewer than "
                     f"{similarity.MIN_TILE_LOCS} localisations ({density}; a tile needs "
                     f"{similarity.MIN_TILE_LOCS / tile_um ** 2:.0f} loc/µm²)")
    else:
        unthinned = None
    thinned = unthinned or (None if n_thinned else
                            f"no tile of {label} holds the {needed} localisations needed to thin to {target} loc/µm² "
                            f"({density}); choose a lower thinning target or rank by unthinned λ̄")
    self_reason = unthinned or (None if n_kept >= 2 else
                                f"{label} has only one tile; self-similarity needs at least two")
    return {"unthinned": unthinned, "thinned": thinned, "self": self_reason}


def dataset_no_scores_reason(user, dataset_id, target: int | None = None) -> dict:
    """``no_scores_reason`` of a dataset ``user`` may read (raises AccessDenied, ValueError for a bad target)."""
    dataset = get_dataset(user, dataset_id, "read")
    return no_scores_reason([f.stats for f in dataset.files], check_target(target))


def _metadata_row(dataset: Dataset) -> dict:
    row = {name: getattr(dataset, name) for name in RESULT_METADATA}
    row.update(dataset_id=dataset.id, visibility=dataset.visibility, n_tiles=dataset.n_tiles,
               density=None if dataset.density is None else round(dataset.density, 1))
    return row


def similar_datasets(user, dataset_id, *, target: int | None = None, filters: dict | None = None,
                     progress=None) -> list[dict]:
    """The similarity-search table of one dataset (see ``rank_against_bank``), cached per
    (dataset, bank state, user, target, filters). Raises AccessDenied, or ValueError for a bad
    target or filter."""
    dataset = get_dataset(user, dataset_id, "read")
    settings = settings_of()
    target = check_target(target)
    filters = _clean_filters(filters)
    key = cache_key("similar", dataset.id, bank_state(), user_id_of(user), target, filters, settings.lambda_mode)
    with result_cache() as cache:
        hit = cache.get(key)
    if hit is not None:
        if progress:
            progress(1.0, "Done (cached)")
        return hit
    index = bank_index()
    query = {choice: _query_sample(index.tiles_of(dataset.id, choice))
             for choice in (UNTHINNED, *index.thinnings_of(target))}
    rows = rank_against_bank(query, user, exclude_id=dataset.id, target=target, filters=filters, progress=progress)
    with result_cache() as cache:
        cache.set(key, rows)
    return rows


def search_with_fingerprints(user, fingerprints: FileFingerprints | dict, *, target: int | None = None,
                             filters: dict | None = None, progress=None) -> list[dict]:
    """"Search with your own file": rank the readable bank against fingerprints that are not stored.

    ``fingerprints`` is a ``FileFingerprints`` (``ingest.analyse_file(...).fingerprints``) or a dict
    {None: unthinned, target: thinned, (target, r): thinning r}. Query tiles beyond MAX_QUERY_TILES
    are sampled (fixed seed, the same tiles in every thinning), as for stored datasets. Nothing is
    cached or written.
    """
    target = check_target(target)
    choices = fingerprint_choices(fingerprints) if isinstance(fingerprints, FileFingerprints) else dict(fingerprints)
    query = {choice: _sample_prints(prints) for choice, prints in choices.items()
             if prints is not None and (choice in (UNTHINNED, target)
                                        or (isinstance(choice, tuple) and choice[0] == target))}
    return rank_against_bank(query, user, exclude_id=None, target=target, filters=_clean_filters(filters),
                             progress=progress)


def _summary_dict(summary, lambdas: np.ndarray) -> dict:
    out = summary.as_dict()
    out["p95"] = round(float(np.percentile(lambdas, 95)), 5) if lambdas.size else None
    return out


def self_similarity(user, dataset_id, *, target: int | None = None) -> dict:
    """Self-similarity of a dataset: lambda of all tile pairs (sampled beyond max_pairs), unthinned
    and thinned, with within-file / between-file split and summary numbers (plus p95); thinned
    lambda averaged over the stored thinnings (``n_repeats``, ``sd_repeats``: SD of the mean over them)."""
    dataset = get_dataset(user, dataset_id, "read")
    settings = settings_of()
    target = check_target(target)
    key = cache_key("self", dataset.id, bank_state(), target, settings.lambda_mode, settings.max_pairs)
    with result_cache() as cache:
        hit = cache.get(key)
    if hit is not None:
        return hit
    index = bank_index()
    out = {"dataset_id": dataset.id, "target": target}
    for label, choices in (("unthinned", [UNTHINNED]), ("thinned", index.thinnings_of(target))):
        tiles = index.tiles_of(dataset.id, choices[0])
        if len(tiles.prints) < 2:
            out[label] = dict(n_tiles=len(tiles.prints), n_files=len(np.unique(tiles.file_id)), lambdas=[],
                              within_file=[], summary=None, summary_within=None, summary_between=None,
                              n_repeats=0, sd_repeats=None)
            continue
        thinnings = [tiles.prints, *(index.tiles_of(dataset.id, c).prints for c in choices[1:])]
        result = similarity.self_similarity(thinnings, tiles.file_id, mode=settings.lambda_mode,
                                            max_pairs=settings.max_pairs)
        within = np.asarray(result.within_file, dtype=bool)
        sd_repeats = result.sd_repeats
        out[label] = dict(n_tiles=len(tiles.prints), n_files=len(np.unique(tiles.file_id)),
                          lambdas=np.round(result.lambdas, 5).tolist(), within_file=within.tolist(),
                          summary=_summary_dict(result.summary, result.lambdas),
                          summary_within=_summary_dict(result.summary_within, result.lambdas[within]),
                          summary_between=_summary_dict(result.summary_between, result.lambdas[~within]),
                          n_repeats=result.n_repeats,
                          sd_repeats=None if np.isnan(sd_repeats) else round(sd_repeats, 4))
    with result_cache() as cache:
        cache.set(key, out)
    return out


def results_csv(rows: list[dict]) -> str:
    """The results table as CSV text (RESULT_COLUMNS, one row per dataset, in the given order)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([header for _, header in RESULT_COLUMNS])
    for rank, row in enumerate(rows, start=1):
        values = dict(row, rank=rank)
        writer.writerow([_csv_cell(values.get(key)) for key, _ in RESULT_COLUMNS])
    return buffer.getvalue()


def _csv_cell(value):
    """A CSV cell; user text starting like a spreadsheet formula is prefixed with ' (CSV injection)."""
    if value is None:
        return ""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


FILTER_FIELDS = ("protein", "cell_type", "modality", "fluorophore", "software")


def filter_choices(user, fields=FILTER_FIELDS) -> dict[str, list[str]]:
    """Distinct non-empty values of metadata ``fields`` over the datasets ``user`` may read."""
    out = {}
    for name in fields:
        column = getattr(Dataset, name)
        values = db.session.scalars(select(column).where(readable_clause(user), column.is_not(None), column != "")
                                    .distinct()).all()
        # sorted here: PostgreSQL refuses ORDER BY lower(column) with SELECT DISTINCT column
        out[name] = sorted((str(v) for v in values), key=lambda v: (v.lower(), v))
    return out
