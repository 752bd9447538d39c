"""Similarity search, self-similarity and comparisons over the bank's stored tile fingerprints.

The bank index (every stored file's fingerprints, concatenated per thinning choice) lives in memory
and in a copy in the cache folder, so other processes (web workers, background jobs) load it
instead of re-reading every fingerprint from the database. Its identity is the set of stored files
(id, dataset, storage key): visibility or metadata changes leave it alone (readability is applied
per query), an ingest or delete updates it incrementally. A search never re-reads localisations.

Results are filtered to the datasets the user may read *before* ranking, and cached on disk by
(query, bank state, user, options) so workers and jobs share them. The bank state is the bank
version (bumped in the transaction of every ingest, delete, visibility or metadata change) plus
the number and largest id of the stored files.

"Search with your own file" (``stage_query_files`` / ``analyse_query`` / ``search_query``) keeps
the user's file only until it is fingerprinted, then only its fingerprints (for an hour).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import shutil
import tempfile
import threading
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from threading import Lock

import diskcache
import numpy as np
from sqlalchemy import func, select

from compute import similarity
from compute.similarity import FileFingerprints, Fingerprints, RaggedEcdf
from databank.access import get_dataset, readable_clause, user_id_of
from databank.core import settings_of
from databank.models import DataFile, Dataset, bank_version, db
from databank.store import pack_fingerprints, unpack_fingerprints

UNTHINNED = None
RESULT_METADATA = ("title", "protein", "cell_type", "modality", "fluorophore", "software", "uniprot_id", "tags")
MAX_QUERY_TILES = 100   # a larger query is represented by this many tiles, sampled with a fixed seed
MAX_COMPARE = 10        # datasets on the Compare page
INDEX_FORMAT = 3        # bump when the on-disk index layout changes

# Columns of the downloadable results table (key, header), in order.
RESULT_COLUMNS: tuple[tuple[str, str], ...] = (
    ("rank", "rank"), ("dataset_id", "dataset_id"), ("title", "title"), ("protein", "protein"),
    ("cell_type", "cell_type"), ("modality", "modality"), ("fluorophore", "fluorophore"),
    ("software", "software"), ("uniprot_id", "uniprot_id"), ("tags", "tags"), ("visibility", "visibility"),
    ("density", "density_loc_per_um2"), ("n_tiles", "n_tiles"),
    ("thinned_mean", "thinned_lambda_mean"), ("thinned_sd", "thinned_lambda_sd"),
    ("thinned_median", "thinned_lambda_median"), ("thinned_fraction_above_1", "thinned_fraction_above_1"),
    ("thinned_n_pairs", "thinned_n_pairs"),
    ("unthinned_mean", "unthinned_lambda_mean"), ("unthinned_sd", "unthinned_lambda_sd"),
    ("unthinned_median", "unthinned_lambda_median"), ("unthinned_fraction_above_1", "unthinned_fraction_above_1"),
    ("unthinned_n_pairs", "unthinned_n_pairs"),
)


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
    file_keys: dict[int, str] = field(default_factory=dict)   # file id -> storage key (never reused)
    _rows: dict = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self._rows = {int(d): k for k, d in enumerate(self.dataset_ids)}

    def rows_of(self, dataset_id: int) -> int | None:
        return self._rows.get(int(dataset_id))

    def tiles_of(self, dataset_id: int, target: int | None) -> TileSet:
        tile_set = self.sets.get(target)
        if tile_set is None:
            return _empty_set()
        row = self.rows_of(dataset_id)
        index = np.flatnonzero(tile_set.dataset_row == (-1 if row is None else row))
        return TileSet(tile_set.prints.take(index), tile_set.dataset_row[index], tile_set.file_id[index])


_index_lock = Lock()
_index_cache: dict[str, BankIndex] = {}


def _choices(fingerprints) -> dict:
    out = {UNTHINNED: fingerprints.unthinned}
    out.update(fingerprints.thinned)
    return out


def bank_state() -> tuple[int, int, int]:
    """(bank version, number of stored files, largest file id): changes whenever the bank does."""
    n_files, max_id = db.session.execute(select(func.count(DataFile.id), func.max(DataFile.id))).one()
    return bank_version(), int(n_files or 0), int(max_id or 0)


@dataclass
class _BankFiles:
    """The stored files in index order (dataset id, file id): ids, datasets and storage keys."""
    ids: np.ndarray
    datasets: np.ndarray
    keys: list[str]

    def signature(self) -> str:
        text = "|".join(f"{i}:{d}:{k}" for i, d, k in zip(self.ids.tolist(), self.datasets.tolist(), self.keys))
        return hashlib.sha256(text.encode()).hexdigest()[:24]


def _bank_files() -> _BankFiles:
    rows = db.session.execute(select(DataFile.id, DataFile.dataset_id, DataFile.storage_key)
                              .order_by(DataFile.dataset_id, DataFile.id)).all()
    return _BankFiles(np.array([r[0] for r in rows], dtype=np.int64), np.array([r[1] for r in rows], dtype=np.int64),
                      [str(r[2]) for r in rows])


def _unpack_files(file_ids) -> dict[int, dict]:
    """{file id: {choice: Fingerprints}} read from the database for ``file_ids``."""
    out = {}
    ids = [int(i) for i in file_ids]
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        for file_id, blob in db.session.execute(select(DataFile.id, DataFile.fingerprints)
                                                .where(DataFile.id.in_(chunk))).all():
            out[int(file_id)] = _choices(unpack_fingerprints(blob))
    return out


def _assemble(files: _BankFiles, old: BankIndex | None, version: int) -> BankIndex:
    """The index of ``files``, reusing ``old``'s tiles for files it already holds.

    A stored file's fingerprints never change, and its storage key is never reused (ids may be, by
    SQLite after a delete), so a file is reused when its id *and* storage key match; the others are
    read from the database. Tiles are kept in (dataset id, file id, tile) order, as a full build gives.
    """
    dataset_ids = np.unique(files.datasets)
    dataset_of_file = dict(zip(files.ids.tolist(), files.datasets.tolist()))
    current = dict(zip(files.ids.tolist(), files.keys))
    reused = set()
    parts: dict = {}          # choice -> list of (prints, dataset ids per tile, file ids per tile)
    if old is not None:
        reused = {f for f, key in current.items() if old.file_keys.get(f) == key}
        keep_files = np.fromiter(reused, dtype=np.int64, count=len(reused))
        for choice, tile_set in old.sets.items():
            keep = np.flatnonzero(np.isin(tile_set.file_id, keep_files))
            if keep.size == len(tile_set.prints):          # nothing deleted: no copy
                parts.setdefault(choice, []).append((tile_set.prints, old.dataset_ids[tile_set.dataset_row],
                                                     tile_set.file_id))
            elif keep.size:
                parts.setdefault(choice, []).append((tile_set.prints.take(keep),
                                                     old.dataset_ids[tile_set.dataset_row[keep]],
                                                     tile_set.file_id[keep]))
    new_files = [f for f in current if f not in reused]
    for file_id, choices in _unpack_files(new_files).items():
        for choice, prints in choices.items():
            prints.ecdf              # noqa: B018  (computed per file: small; reused by the concatenation)
            parts.setdefault(choice, []).append((prints, np.full(len(prints), dataset_of_file[file_id], np.int64),
                                                 np.full(len(prints), file_id, np.int64)))
    sets = {}
    for choice, items in parts.items():
        prints = Fingerprints.concatenate([p for p, _, _ in items])
        tile_dataset = np.concatenate([d for _, d, _ in items])
        tile_file = np.concatenate([f for _, _, f in items])
        order = np.lexsort((tile_file, tile_dataset))          # stable: tile order inside a file is kept
        if not np.array_equal(order, np.arange(order.size)):
            prints, tile_dataset, tile_file = prints.take(order), tile_dataset[order], tile_file[order]
        sets[choice] = TileSet(prints, np.searchsorted(dataset_ids, tile_dataset).astype(np.int64), tile_file)
    return BankIndex(version=version, dataset_ids=dataset_ids, sets=sets, file_keys=current)


def build_bank_index(version: int) -> BankIndex:
    """Concatenate every stored file's fingerprints (all datasets; filtering happens per query)."""
    return _assemble(_bank_files(), None, version)


def _index_folder() -> Path:
    return Path(settings_of().cache_dir) / "similarity-index"


def _database_tag() -> str:
    return hashlib.sha256(str(db.engine.url).encode()).hexdigest()[:16]


def _index_name(files: _BankFiles) -> str:
    return f"{_database_tag()}-f{INDEX_FORMAT}-{files.signature()}"


def _save_index(index: BankIndex, name: str, folder: Path, database_tag: str) -> None:
    """Write the index atomically (temporary file + rename); drop older copies of the same database."""
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {"dataset_ids": index.dataset_ids, "version": np.array([index.version]),
              "file_ids": np.array(list(index.file_keys), dtype=np.int64),
              "file_keys": np.array(list(index.file_keys.values()), dtype="U64")}
    for choice, tile_set in index.sets.items():
        tag = "u" if choice is None else f"t{choice}"
        arrays.update({f"{tag}_hist": tile_set.prints.hist, f"{tag}_n": tile_set.prints.n_locs,
                       f"{tag}_row": tile_set.dataset_row, f"{tag}_file": tile_set.file_id})
        if tile_set.prints.has_ecdf:
            ecdf = tile_set.prints.ecdf
            arrays.update({f"{tag}_ecdf_values": ecdf.values, f"{tag}_ecdf_start": ecdf.start,
                           f"{tag}_ecdf_length": ecdf.length, f"{tag}_ecdf_bins": ecdf.n_bins})
    handle, temp = tempfile.mkstemp(dir=folder, suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as out:
            np.savez(out, **arrays)
        os.replace(temp, folder / f"{name}.npz")
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    for old in folder.glob(f"{database_tag}-*.npz"):
        if old.stem != name:
            old.unlink(missing_ok=True)


def _save_index_soon(index: BankIndex, name: str) -> None:
    """Write the on-disk copy in a background thread (the search does not wait for ~100 MB of I/O)."""
    import threading

    folder, tag = _index_folder(), _database_tag()      # resolved here: the thread has no app context

    def save():
        try:
            _save_index(index, name, folder, tag)
        except OSError:
            pass                          # a read-only cache folder only costs speed
        except Exception:                 # pragma: no cover - never break a search for a cache copy
            import logging
            logging.getLogger(__name__).exception("could not save the similarity index")

    thread = threading.Thread(target=save, name="nanoorg-index-save", daemon=True)
    thread.start()
    _save_threads.append(thread)


def wait_for_index_saves(timeout: float = 60.0) -> None:
    """Block until the on-disk copies being written are complete (tests, orderly shutdown)."""
    while _save_threads:
        _save_threads.pop().join(timeout)


_save_threads: list = []


def _load_index(path: Path) -> BankIndex | None:
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
    except (OSError, ValueError, EOFError, KeyError):
        return None
    sets = {}
    for key in arrays:
        if key.endswith("_hist"):
            tag = key[:-5]
            choice = None if tag == "u" else int(tag[1:])
            prints = Fingerprints(arrays[f"{tag}_hist"], arrays[f"{tag}_n"])
            if f"{tag}_ecdf_values" in arrays:
                prints.attach_ecdf(RaggedEcdf(arrays[f"{tag}_ecdf_values"], arrays[f"{tag}_ecdf_start"],
                                              arrays[f"{tag}_ecdf_length"], arrays[f"{tag}_ecdf_bins"]))
            sets[choice] = TileSet(prints, arrays[f"{tag}_row"], arrays[f"{tag}_file"])
    keys = dict(zip(arrays["file_ids"].tolist(), arrays["file_keys"].tolist()))
    return BankIndex(version=int(arrays["version"][0]), dataset_ids=arrays["dataset_ids"], sets=sets,
                     file_keys=keys)


def _latest_on_disk() -> BankIndex | None:
    """Any saved index of this database (normally one), to update incrementally."""
    folder = _index_folder()
    if not folder.is_dir():
        return None
    candidates = sorted(folder.glob(f"{_database_tag()}-f{INDEX_FORMAT}-*.npz"), key=lambda p: p.stat().st_mtime,
                        reverse=True)
    for path in candidates:
        index = _load_index(path)
        if index is not None:
            return index
    return None


def bank_index() -> BankIndex:
    """The in-memory index of the stored files' fingerprints.

    Its identity is the set of stored files (id, dataset, storage key), not the bank version: a visibility or
    metadata change leaves it as it is (readability is applied per query), and an ingest or delete
    updates it incrementally (only new files are read from the database). A copy on disk serves
    other processes (Dash background jobs, other web workers).
    """
    files = _bank_files()
    name = _index_name(files)
    with _index_lock:
        index = _index_cache.get(name)
        previous = next(iter(_index_cache.values()), None)
    if index is None:
        index = _load_index(_index_folder() / f"{name}.npz")
        if index is None:
            base = previous if previous is not None else _latest_on_disk()
            index = _assemble(files, base, bank_version())
            _save_index_soon(index, name)
        with _index_lock:
            _index_cache.clear()
            _index_cache[name] = index
    return index


def forget_bank_index(*, memory_only: bool = False) -> None:
    """Drop the in-memory index (and, unless ``memory_only``, the on-disk copies). Benchmarks and tests."""
    wait_for_index_saves()
    with _index_lock:
        _index_cache.clear()
    if not memory_only:
        for path in _index_folder().glob("*.npz"):
            path.unlink(missing_ok=True)


def _empty_set() -> TileSet:
    return TileSet(Fingerprints(hist=np.zeros((0, 1), np.int32), n_locs=np.zeros(0, np.int64)),
                   np.zeros(0, np.int64), np.zeros(0, np.int64))


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
def _result_cache():
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
    with _result_cache() as cache:
        cache.clear()


def _cache_key(*parts) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


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
    from databank.datasets import _filter_condition   # same filter language as the databank table
    conditions = [readable_clause(user)]
    if exclude_id is not None:
        conditions.append(Dataset.id != exclude_id)
    for key, spec in _clean_filters(filters).items():
        conditions.append(_filter_condition(key, spec))
    return list(db.session.scalars(select(Dataset).where(*conditions).order_by(Dataset.id)))


def rank_against_bank(query: dict[int | None, Fingerprints], user, *, exclude_id: int | None = None,
                      target: int | None = None, filters: dict | None = None, mode: str | None = None,
                      progress=None) -> list[dict]:
    """Rank every readable dataset by mean lambda against the query tiles.

    ``query`` maps None (unthinned) and thinning targets to the query's fingerprints. Rows hold the
    dataset's metadata and, for unthinned and for ``target``, mean / SD / median / fraction above 1
    of lambda and the number of tile pairs. Sorted by thinned mean (then unthinned mean, then id),
    most similar first; datasets with no comparable tiles come last.
    """
    settings = settings_of()
    target = settings.default_thinning if target is None else target
    mode = mode or settings.lambda_mode
    index = bank_index()
    candidates = _candidates(user, exclude_id, filters)
    rows = {d.id: _metadata_row(d) for d in candidates}
    wanted = np.array([-1 if index.rows_of(d.id) is None else index.rows_of(d.id) for d in candidates],
                      dtype=np.int64)
    for step, (label, choice) in enumerate((("unthinned", UNTHINNED), ("thinned", target))):
        if progress:
            progress(step / 2, f"Comparing {label} tiles")
        tile_set = index.sets.get(choice) or _empty_set()
        keep = np.isin(tile_set.dataset_row, wanted[wanted >= 0])
        if keep.all():
            bank = tile_set.prints            # every tile readable: reuse the index's cached ECDFs
        else:
            bank = tile_set.prints.take(np.flatnonzero(keep))
        owner_row = tile_set.dataset_row[keep]
        q = query.get(choice)
        if q is None or len(q) == 0 or len(bank) == 0:
            result = None
        else:
            result = similarity.search_bank(q, bank, owner_row, len(index.dataset_ids), mode=mode)
        for d, row_index in zip(candidates, wanted):
            stats = _stats_at(result, int(row_index))
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
    (dataset, bank state, user, target, filters). Raises AccessDenied, or ValueError for a bad
    target or filter."""
    dataset = get_dataset(user, dataset_id, "read")
    settings = settings_of()
    target = check_target(target)
    filters = _clean_filters(filters)
    key = _cache_key("similar", dataset.id, bank_state(), user_id_of(user), target, filters, settings.lambda_mode)
    with _result_cache() as cache:
        hit = cache.get(key)
    if hit is not None:
        if progress:
            progress(1.0, "Done (cached)")
        return hit
    index = bank_index()
    query = {choice: _query_sample(index.tiles_of(dataset.id, choice)) for choice in (UNTHINNED, target)}
    rows = rank_against_bank(query, user, exclude_id=dataset.id, target=target, filters=filters, progress=progress)
    with _result_cache() as cache:
        cache.set(key, rows)
    return rows


def search_with_fingerprints(user, fingerprints: FileFingerprints | dict, *, target: int | None = None,
                             filters: dict | None = None, progress=None) -> list[dict]:
    """"Search with your own file": rank the readable bank against fingerprints that are not stored.

    ``fingerprints`` is a ``FileFingerprints`` (``ingest.analyse_file(...).fingerprints``) or a dict
    {None: unthinned, target: thinned}. Query tiles beyond MAX_QUERY_TILES are sampled (fixed seed),
    as for stored datasets. Nothing is cached or written.
    """
    target = check_target(target)
    choices = _choices(fingerprints) if isinstance(fingerprints, FileFingerprints) else dict(fingerprints)
    query = {choice: _sample_prints(prints) for choice, prints in choices.items()
             if choice in (UNTHINNED, target) and prints is not None}
    return rank_against_bank(query, user, exclude_id=None, target=target, filters=_clean_filters(filters),
                             progress=progress)


def _summary_dict(summary, lambdas: np.ndarray) -> dict:
    out = summary.as_dict()
    out["p95"] = round(float(np.percentile(lambdas, 95)), 5) if lambdas.size else None
    return out


def self_similarity(user, dataset_id, *, target: int | None = None) -> dict:
    """Self-similarity of a dataset: lambda of all tile pairs (sampled beyond max_pairs), unthinned
    and thinned, with within-file / between-file split and summary numbers (plus p95)."""
    dataset = get_dataset(user, dataset_id, "read")
    settings = settings_of()
    target = check_target(target)
    key = _cache_key("self", dataset.id, bank_state(), target, settings.lambda_mode, settings.max_pairs)
    with _result_cache() as cache:
        hit = cache.get(key)
    if hit is not None:
        return hit
    index = bank_index()
    out = {"dataset_id": dataset.id, "target": target}
    for label, choice in (("unthinned", UNTHINNED), ("thinned", target)):
        tiles = index.tiles_of(dataset.id, choice)
        if len(tiles.prints) < 2:
            out[label] = dict(n_tiles=len(tiles.prints), n_files=len(np.unique(tiles.file_id)), lambdas=[],
                              within_file=[], summary=None, summary_within=None, summary_between=None)
            continue
        result = similarity.self_similarity(tiles.prints, tiles.file_id, mode=settings.lambda_mode,
                                            max_pairs=settings.max_pairs)
        within = np.asarray(result.within_file, dtype=bool)
        out[label] = dict(n_tiles=len(tiles.prints), n_files=len(np.unique(tiles.file_id)),
                          lambdas=np.round(result.lambdas, 5).tolist(), within_file=within.tolist(),
                          summary=_summary_dict(result.summary, result.lambdas),
                          summary_within=_summary_dict(result.summary_within, result.lambdas[within]),
                          summary_between=_summary_dict(result.summary_between, result.lambdas[~within]))
    with _result_cache() as cache:
        cache.set(key, out)
    return out


def compare_fingerprint_sets(a: dict, b: dict, *, mode: str | None = None, max_pairs: int | None = None) -> dict:
    """Dataset-vs-dataset lambda summaries for unthinned and each thinning target present in both
    (mode and max_pairs default to the instance settings)."""
    settings = settings_of()
    mode = mode or settings.lambda_mode
    max_pairs = max_pairs or settings.max_pairs
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
    diagonal holds each dataset's self-similarity mean and SD) and ``self``: {dataset id: the
    ``self_similarity`` result}. Raises AccessDenied if any dataset is not readable (same message
    as missing), ValueError for fewer than 2 or more than MAX_COMPARE datasets.
    """
    ids = list(dict.fromkeys(int(i) for i in dataset_ids))
    if not 2 <= len(ids) <= MAX_COMPARE:
        raise ValueError(f"choose between 2 and {MAX_COMPARE} datasets")
    datasets = [get_dataset(user, i, "read") for i in ids]
    settings = settings_of()
    target = check_target(target)
    key = _cache_key("compare", ids, bank_state(), target, settings.lambda_mode, settings.max_pairs)
    with _result_cache() as cache:
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
    for label, choice in (("thinned", target), ("unthinned", UNTHINNED)):
        sets = [index.tiles_of(d.id, choice).prints for d in datasets]
        mean = np.full((n, n), np.nan)
        sd = np.full((n, n), np.nan)
        pairs = np.zeros((n, n), dtype=np.int64)
        for i in range(n):
            summary = selfs[datasets[i].id][label]["summary"]
            if summary:
                mean[i, i], sd[i, i] = summary["mean"], (summary["sd"] if summary["sd"] is not None else np.nan)
                pairs[i, i] = summary["n_pairs"]
            for j in range(i + 1, n):
                if len(sets[i]) and len(sets[j]):
                    s = similarity.compare_sets(sets[i], sets[j], mode=settings.lambda_mode,
                                                max_pairs=settings.max_pairs)
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
    with _result_cache() as cache:
        cache.set(key, out)
    return out


def _matrix_list(m: np.ndarray) -> list[list[float | None]]:
    return [[None if not np.isfinite(v) else round(float(v), 4) for v in row] for row in m]


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


# ---------------------------------------------------------------------------------------------
# filter choices

FILTER_FIELDS = ("protein", "cell_type", "modality", "fluorophore", "software")


def filter_choices(user, fields=FILTER_FIELDS) -> dict[str, list[str]]:
    """Distinct non-empty values of metadata ``fields`` over the datasets ``user`` may read."""
    out = {}
    for name in fields:
        column = getattr(Dataset, name)
        values = db.session.scalars(select(column).where(readable_clause(user), column.is_not(None), column != "")
                                    .distinct().order_by(func.lower(column))).all()
        out[name] = [str(v) for v in values]
    return out


# ---------------------------------------------------------------------------------------------
# "search with your own file": analysed, ranked, never stored

QUERY_TTL_SECONDS = 3600          # an analysed query file's fingerprints are kept this long (not the file)
QUERY_MAX_BYTES = 256 * 2 ** 20   # all files of one query together
_TOKEN_CHARS = set("0123456789abcdef")


class QueryFileError(ValueError):
    """A query file that cannot be used; the message says what to do."""


def _query_root() -> Path:
    return Path(settings_of().staging_dir) / "query"


def _query_user_id(user) -> int:
    uid = user_id_of(user)
    if uid is None:
        raise QueryFileError("Sign in to search the bank with your own file.")
    return uid


def _query_folder(user, token) -> Path:
    uid = _query_user_id(user)
    token = str(token or "")
    if len(token) != 32 or not set(token) <= _TOKEN_CHARS:
        raise QueryFileError("No file chosen (or the choice expired): choose the file again.")
    return _query_root() / str(uid) / token


def _query_key(user, token) -> str:
    return _cache_key("query", _query_user_id(user), str(token))


def _sweep_query_folders(now: float | None = None) -> None:
    """Remove query files left behind for longer than QUERY_TTL_SECONDS (abandoned searches)."""
    now = time.time() if now is None else now
    root = _query_root()
    if not root.is_dir():
        return
    for folder in root.glob("*/*"):
        try:
            if now - folder.stat().st_mtime > QUERY_TTL_SECONDS:
                shutil.rmtree(folder, ignore_errors=True)
        except OSError:
            pass


def stage_query_files(user, files) -> dict:
    """Keep one detection file (+ its ``{stem}_ROI*.csv`` files) of a signed-in user until it is analysed.

    ``files``: [(user's file name, bytes)]. The bytes are written under server-made names in the
    user's private staging folder (the user's names are used for ROI matching and messages only),
    replacing any earlier query of that user. Returns {"token", "detection", "rois", "size_bytes"}.
    Raises QueryFileError (anonymous user, not exactly one detection file, bad names, too large).
    """
    from databank.ingest import plan_upload

    uid = _query_user_id(user)
    files = [(str(name), bytes(data)) for name, data in files]
    if not files:
        raise QueryFileError("Choose one detection file, and its ROI files if it has any.")
    total = sum(len(data) for _, data in files)
    if total > QUERY_MAX_BYTES:
        raise QueryFileError(f"The files hold {total / 2 ** 20:.0f} MB; at most {QUERY_MAX_BYTES // 2 ** 20} MB "
                             "can be searched this way. Upload large files to the databank instead.")
    plan = plan_upload([name for name, _ in files])
    if plan.rejected or plan.unmatched_rois or not plan.detections:
        raise QueryFileError(" ".join(plan.problems()))
    if len(plan.detections) != 1:
        raise QueryFileError(f"Choose exactly one detection file (you chose {len(plan.detections)}: "
                             f"{', '.join(plan.detections)}); its ROI files may come with it.")
    _sweep_query_folders()
    user_root = _query_root() / str(uid)
    if user_root.is_dir():
        shutil.rmtree(user_root, ignore_errors=True)        # one pending query per user
    token = uuid.uuid4().hex
    folder = user_root / token
    folder.mkdir(parents=True)
    detection = next(iter(plan.detections))
    manifest = {"detection": None, "rois": []}
    for k, (name, data) in enumerate(files):
        (folder / f"{k:03d}").write_bytes(data)
        entry = {"name": name, "file": f"{k:03d}"}
        if name == detection:
            manifest["detection"] = entry
        elif name in plan.detections[detection]:
            manifest["rois"].append(entry)
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return {"token": token, "detection": detection, "rois": list(plan.detections[detection]), "size_bytes": total}


def analyse_query(user, token, *, pixel_size_nm: float | None = None, progress=None) -> dict:
    """Read, tile and fingerprint a staged query file (``ingest.analyse_file``), keep only its
    fingerprints (cached QUERY_TTL_SECONDS) and delete the file. Returns a summary dict: name,
    n_locs, density, n_tiles, n_tiles_thinned {target: n}, warnings. Raises QueryFileError or
    ingest.IngestError (the file is kept then, so the user may retry, e.g. with a pixel size).
    """
    from databank.ingest import StagedFile, analyse_file

    key = _query_key(user, token)
    with _result_cache() as cache:
        entry = cache.get(key)
    if entry is not None:
        return entry["summary"]
    folder = _query_folder(user, token)
    manifest_path = folder / "manifest.json"
    if not manifest_path.is_file():
        raise QueryFileError("The chosen file is no longer on the server (it expired): choose it again.")
    manifest = json.loads(manifest_path.read_text())
    if progress:
        progress(0.05, f"Reading {manifest['detection']['name']}")
    detection = StagedFile(folder / manifest["detection"]["file"], manifest["detection"]["name"])
    rois = [StagedFile(folder / r["file"], r["name"]) for r in manifest["rois"]]
    analysis = analyse_file(detection, rois, pixel_size_nm=pixel_size_nm,
                            thinning_targets=settings_of().thinning_targets)
    prints = analysis.fingerprints
    summary = {"name": analysis.name, "n_locs": len(analysis.table), "density": analysis.stats.get("density"),
               "n_tiles": len(prints.unthinned), "n_tiles_thinned": {str(t): len(p) for t, p in prints.thinned.items()},
               "roi_source": analysis.stats.get("roi_source"), "n_rois": len(analysis.polygons),
               "warnings": list(analysis.warnings)}
    with _result_cache() as cache:
        cache.set(key, {"fingerprints": pack_fingerprints(prints), "summary": summary}, expire=QUERY_TTL_SECONDS)
    shutil.rmtree(folder, ignore_errors=True)       # the file itself is never kept
    return summary


def search_query(user, token, *, target: int | None = None, filters: dict | None = None,
                 progress=None) -> list[dict]:
    """The ranked table for an analysed query file (``analyse_query``), under ``user``'s access."""
    with _result_cache() as cache:
        entry = cache.get(_query_key(user, token))
    if entry is None:
        raise QueryFileError("The analysed file has expired: choose it again.")
    return search_with_fingerprints(user, unpack_fingerprints(entry["fingerprints"]), target=target,
                                    filters=filters, progress=progress)


def warm_bank_index(app) -> threading.Thread:
    """Load or build the bank index (and numba's compiled kernels) in a background thread of ``app``'s
    process, so that the first search after a start does not wait for it. Returns the thread."""

    def warm():
        try:
            with app.app_context():
                index = bank_index()
                choice = next((c for c in index.sets if len(index.sets[c].prints)), None)
                if choice is not None:       # compile / load the numba kernels with a one-tile search
                    tile_set = index.sets[choice]
                    probe = tile_set.prints.take([0])
                    similarity.search_bank(probe, probe, np.zeros(1, dtype=np.int64), 1)
                db.session.remove()
        except Exception:  # pragma: no cover - warming is an optimisation only
            import logging
            logging.getLogger(__name__).exception("could not warm the similarity index")

    thread = threading.Thread(target=warm, name="nanoorg-index-warm", daemon=True)
    thread.start()
    return thread
