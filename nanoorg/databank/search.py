"""Similarity search and self-similarity over the bank's stored tile fingerprints.

The bank index (every file's fingerprints, concatenated per thinning choice) is built from the
database once per bank version and kept in memory; a search never re-reads localisations.
Results are filtered to the datasets the user may read *before* ranking, and cached on disk by
(query dataset, bank version, user, options) so background jobs and web workers share them.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from threading import Lock

import diskcache
import numpy as np
from sqlalchemy import select

from ..compute import similarity
from ..compute.similarity import Fingerprints
from .access import get_dataset, readable_clause, user_id_of
from .core import settings_of
from .models import DataFile, Dataset, bank_version, db
from .store import unpack_fingerprints

UNTHINNED = None
RESULT_METADATA = ("title", "protein", "cell_type", "modality", "fluorophore", "software", "uniprot_id", "tags")
MAX_QUERY_TILES = 300   # a larger query dataset is represented by this many tiles, sampled with a fixed seed


@dataclass
class TileSet:
    """Fingerprints of many tiles with, per tile, the dataset row and file id it came from."""
    prints: Fingerprints
    dataset_row: np.ndarray      # index into BankIndex.dataset_ids
    file_id: np.ndarray


@dataclass
class BankIndex:
    version: int
    dataset_ids: np.ndarray                   # database id per dataset row
    sets: dict[int | None, TileSet]           # None = unthinned, else thinning target (loc/um^2)

    def rows_of(self, dataset_id: int) -> int | None:
        hits = np.flatnonzero(self.dataset_ids == dataset_id)
        return int(hits[0]) if hits.size else None

    def tiles_of(self, dataset_id: int, target: int | None) -> TileSet:
        tile_set = self.sets[target]
        row = self.rows_of(dataset_id)
        mask = tile_set.dataset_row == (-1 if row is None else row)
        index = np.flatnonzero(mask)
        return TileSet(tile_set.prints.take(index), tile_set.dataset_row[index], tile_set.file_id[index])


_index_lock = Lock()
_index_cache: dict[str, BankIndex] = {}


def _choices(fingerprints) -> dict:
    out = {UNTHINNED: fingerprints.unthinned}
    out.update(fingerprints.thinned)
    return out


def build_bank_index(version: int) -> BankIndex:
    """Concatenate every stored file's fingerprints (all datasets; filtering happens per query)."""
    rows = db.session.execute(select(DataFile.id, DataFile.dataset_id, DataFile.fingerprints)
                              .order_by(DataFile.dataset_id, DataFile.id)).all()
    dataset_ids = np.array(sorted({r.dataset_id for r in rows}), dtype=np.int64)
    row_of = {int(d): k for k, d in enumerate(dataset_ids)}
    parts: dict = {}
    for file_id, dataset_id, blob in rows:
        for choice, prints in _choices(unpack_fingerprints(blob)).items():
            parts.setdefault(choice, []).append((prints, row_of[dataset_id], file_id))
    sets = {}
    for choice, items in parts.items():
        sets[choice] = TileSet(
            prints=Fingerprints.concatenate([p for p, _, _ in items]),
            dataset_row=np.concatenate([np.full(len(p), r, dtype=np.int64) for p, r, _ in items]),
            file_id=np.concatenate([np.full(len(p), f, dtype=np.int64) for p, _, f in items]))
    return BankIndex(version=version, dataset_ids=dataset_ids, sets=sets)


def bank_index() -> BankIndex:
    """The in-memory index for the current bank version (rebuilt when the bank changes)."""
    version = bank_version()
    key = f"{db.engine.url}:{version}"
    with _index_lock:
        index = _index_cache.get(key)
    if index is None:
        index = build_bank_index(version)
        with _index_lock:
            _index_cache.clear()
            _index_cache[key] = index
    return index


def _empty_set() -> TileSet:
    return TileSet(Fingerprints(hist=np.zeros((0, 1), np.int32), n_locs=np.zeros(0, np.int64)),
                   np.zeros(0, np.int64), np.zeros(0, np.int64))


def _query_sample(tile_set: TileSet, seed: int = 0) -> Fingerprints:
    if len(tile_set.prints) <= MAX_QUERY_TILES:
        return tile_set.prints
    index = np.sort(np.random.default_rng(seed).choice(len(tile_set.prints), MAX_QUERY_TILES, replace=False))
    return tile_set.prints.take(index)


def _result_cache():
    return diskcache.Cache(str(settings_of().cache_dir / "similarity"), size_limit=2 ** 30)


def _cache_key(*parts) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def _candidates(user, exclude_id: int | None, filters: dict | None) -> list[Dataset]:
    from .datasets import _filter_condition   # same filter language as the databank table
    conditions = [readable_clause(user)]
    if exclude_id is not None:
        conditions.append(Dataset.id != exclude_id)
    for key, spec in (filters or {}).items():
        if spec not in (None, "", []):
            conditions.append(_filter_condition(key, spec))
    return list(db.session.scalars(select(Dataset).where(*conditions)))


def rank_against_bank(query: dict[int | None, Fingerprints], user, *, exclude_id: int | None = None,
                      target: int | None = None, filters: dict | None = None, mode: str | None = None,
                      progress=None) -> list[dict]:
    """Rank every readable dataset by mean lambda against the query tiles.

    ``query`` maps None (unthinned) and thinning targets to the query's fingerprints. Rows hold the
    dataset's metadata and, for unthinned and for ``target``, mean / SD / median / fraction above 1
    of lambda and the number of tile pairs. Sorted by thinned mean (unthinned if no target), most
    similar first; datasets with no comparable tiles come last.
    """
    settings = settings_of()
    target = settings.default_thinning if target is None else target
    mode = mode or settings.lambda_mode
    index = bank_index()
    candidates = _candidates(user, exclude_id, filters)
    rows = {d.id: _metadata_row(d) for d in candidates}
    wanted = np.array([index.rows_of(d.id) if index.rows_of(d.id) is not None else -1 for d in candidates])
    for step, (label, choice) in enumerate((("unthinned", UNTHINNED), ("thinned", target))):
        if progress:
            progress(step / 2, f"Comparing {label} tiles")
        tile_set = index.sets.get(choice) or _empty_set()
        keep = np.isin(tile_set.dataset_row, wanted[wanted >= 0])
        bank = tile_set.prints.take(np.flatnonzero(keep))
        owner_row = tile_set.dataset_row[keep]
        q = query.get(choice)
        if q is None or len(q) == 0 or len(bank) == 0:
            result = None
        else:
            result = similarity.search_bank(q, bank, owner_row, len(index.dataset_ids), mode=mode)
        for d, row_index in zip(candidates, wanted):
            stats = _stats_at(result, row_index)
            rows[d.id].update({f"{label}_{k}": v for k, v in stats.items()})
    if progress:
        progress(1.0, "Done")
    order_key = "thinned_mean"
    return sorted(rows.values(), key=lambda r: (r[order_key] is None, r[order_key] if r[order_key] is not None
                                                 else 0.0, r["unthinned_mean"] if r["unthinned_mean"] is not None else 0.0))


def _stats_at(result, row_index: int) -> dict:
    if result is None or row_index < 0 or result.n_pairs[row_index] == 0:
        return dict(mean=None, sd=None, median=None, fraction_above_1=None, n_pairs=0)
    values = dict(mean=result.mean[row_index], sd=result.sd[row_index], median=result.median[row_index],
                  fraction_above_1=result.fraction_above_1[row_index])
    clean = {k: (None if not np.isfinite(v) else round(float(v), 4)) for k, v in values.items()}
    clean["n_pairs"] = int(result.n_pairs[row_index])
    return clean


def _metadata_row(dataset: Dataset) -> dict:
    row = {name: getattr(dataset, name) for name in RESULT_METADATA}
    row.update(dataset_id=dataset.id, visibility=dataset.visibility, n_tiles=dataset.n_tiles,
               density=None if dataset.density is None else round(dataset.density, 1))
    return row


def similar_datasets(user, dataset_id, *, target: int | None = None, filters: dict | None = None,
                     progress=None) -> list[dict]:
    """The similarity-search table of one dataset (see ``rank_against_bank``), cached per
    (dataset, bank version, user, target, filters)."""
    dataset = get_dataset(user, dataset_id, "read")
    settings = settings_of()
    target = settings.default_thinning if target is None else int(target)
    if target not in settings.thinning_targets:
        raise ValueError(f"thinning target must be one of {settings.thinning_targets} loc/µm²")
    key = _cache_key("similar", dataset.id, bank_version(), user_id_of(user), target, filters, settings.lambda_mode)
    with _result_cache() as cache:
        hit = cache.get(key)
    if hit is not None:
        return hit
    index = bank_index()
    query = {choice: _query_sample(index.tiles_of(dataset.id, choice)) for choice in (UNTHINNED, target)}
    rows = rank_against_bank(query, user, exclude_id=dataset.id, target=target, filters=filters, progress=progress)
    with _result_cache() as cache:
        cache.set(key, rows)
    return rows


def self_similarity(user, dataset_id, *, target: int | None = None) -> dict:
    """Self-similarity of a dataset: lambda of all tile pairs (sampled beyond max_pairs), unthinned
    and thinned, with within-file / between-file split and summary numbers."""
    dataset = get_dataset(user, dataset_id, "read")
    settings = settings_of()
    target = settings.default_thinning if target is None else int(target)
    key = _cache_key("self", dataset.id, bank_version(), target, settings.lambda_mode, settings.max_pairs)
    with _result_cache() as cache:
        hit = cache.get(key)
    if hit is not None:
        return hit
    index = bank_index()
    out = {"dataset_id": dataset.id, "target": target}
    for label, choice in (("unthinned", UNTHINNED), ("thinned", target)):
        tiles = index.tiles_of(dataset.id, choice) if choice in index.sets else _empty_set()
        if len(tiles.prints) < 2:
            out[label] = dict(n_tiles=len(tiles.prints), lambdas=[], within_file=[], summary=None,
                              summary_within=None, summary_between=None)
            continue
        result = similarity.self_similarity(tiles.prints, tiles.file_id, mode=settings.lambda_mode,
                                            max_pairs=settings.max_pairs)
        out[label] = dict(n_tiles=len(tiles.prints), lambdas=np.round(result.lambdas, 5).tolist(),
                          within_file=result.within_file.tolist(), summary=result.summary.as_dict(),
                          summary_within=result.summary_within.as_dict(),
                          summary_between=result.summary_between.as_dict())
    with _result_cache() as cache:
        cache.set(key, out)
    return out


def compare_fingerprint_sets(a: dict, b: dict, *, mode: str = "critical", max_pairs: int = 20000) -> dict:
    """Dataset-vs-dataset lambda summaries for unthinned and each thinning target present in both."""
    out = {}
    for choice in a:
        if choice in b:
            label = "unthinned" if choice is None else f"thinned_{choice}"
            out[label] = similarity.compare_sets(a[choice], b[choice], mode=mode, max_pairs=max_pairs).as_dict()
    return out


def dataset_fingerprint_sets(dataset: Dataset) -> dict:
    """{None: unthinned, target: thinned} fingerprints pooled over the dataset's files."""
    parts: dict = {}
    for data_file in dataset.files:
        for choice, prints in _choices(unpack_fingerprints(data_file.fingerprints)).items():
            parts.setdefault(choice, []).append(prints)
    return {choice: Fingerprints.concatenate(p) for choice, p in parts.items()}
