"""The bank's similarity index: every stored file's tile fingerprints, concatenated per thinning choice.

The index lives in memory and in a copy in the cache folder, so other processes (web workers,
background jobs) load it instead of re-reading every fingerprint from the database. Its identity is
the set of stored files (id, dataset, storage key): visibility or metadata changes leave it alone
(readability is applied per query, in ``databank.search``), an ingest or delete updates it
incrementally. A search never re-reads localisations.
"""

from __future__ import annotations


import hashlib
import os
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from threading import Lock

import numpy as np
from sqlalchemy import func, select

from compute import similarity
from compute.similarity import Fingerprints, RaggedEcdf
from databank.core import settings_of
from databank.models import DataFile, bank_version, db
from databank.store import unpack_fingerprints


UNTHINNED = None


INDEX_FORMAT = 4        # bump when the on-disk index layout changes


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
    # None = unthinned; target (loc/um^2) = its first thinning; (target, r) = thinning r >= 2 of the
    # same tiles (NANOORG_THINNING_REPEATS > 1 at ingest)
    sets: dict[int | None | tuple[int, int], TileSet]
    file_keys: dict[int, str] = field(default_factory=dict)   # file id -> storage key (never reused)
    _rows: dict = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self._rows = {int(d): k for k, d in enumerate(self.dataset_ids)}

    def rows_of(self, dataset_id: int) -> int | None:
        return self._rows.get(int(dataset_id))

    def thinnings_of(self, target: int) -> list:
        """The choices of ``target``'s thinnings that every stored file has, in order: [target,
        (target, 2), ...]; one thinning when any file was stored with fewer repeats."""
        base = self.sets.get(target)
        choices = [target]
        while base is not None:
            extra = self.sets.get((target, len(choices) + 1))
            if extra is None or not np.array_equal(extra.file_id, base.file_id):
                break
            choices.append((target, len(choices) + 1))
        return choices

    def tiles_of(self, dataset_id: int, target) -> TileSet:
        tile_set = self.sets.get(target)
        if tile_set is None:
            return empty_tile_set()
        row = self.rows_of(dataset_id)
        index = np.flatnonzero(tile_set.dataset_row == (-1 if row is None else row))
        return TileSet(tile_set.prints.take(index), tile_set.dataset_row[index], tile_set.file_id[index])


_index_lock = Lock()


_index_cache: dict[str, BankIndex] = {}


def fingerprint_choices(fingerprints) -> dict:
    """{None: unthinned, target: first thinning, (target, r): thinning r >= 2} of a FileFingerprints."""
    out = {UNTHINNED: fingerprints.unthinned}
    out.update(fingerprints.thinned)
    for target, extra in fingerprints.extra_repeats.items():
        out.update({(target, repeat): prints for repeat, prints in enumerate(extra, start=2)})
    return out


def _choice_tag(choice) -> str:
    """How a choice is named in the on-disk index: u, t30, t30r2 ..."""
    if choice is None:
        return "u"
    if isinstance(choice, tuple):
        return f"t{choice[0]}r{choice[1]}"
    return f"t{choice}"


def _tag_choice(tag: str):
    if tag == "u":
        return None
    target, _, repeat = tag[1:].partition("r")
    return (int(target), int(repeat)) if repeat else int(target)


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
            out[int(file_id)] = fingerprint_choices(unpack_fingerprints(blob))
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
        tag = _choice_tag(choice)
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
            choice = _tag_choice(tag)
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


def empty_tile_set() -> TileSet:
    return TileSet(Fingerprints(hist=np.zeros((0, 1), np.int32), n_locs=np.zeros(0, np.int64)),
                   np.zeros(0, np.int64), np.zeros(0, np.int64))


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
