"""The file store: the untouched original of every upload beside a normalised columnar copy.

Layout (names are server-made keys, never the user's file names)::

    <store>/<dataset key>/<file key>/original          the uploaded bytes
    <store>/<dataset key>/<file key>/roi_<k>.csv       uploaded ROI files (k = 1, 2, ...)
    <store>/<dataset key>/<file key>/x.npy, y.npy      float32 nm
    <store>/<dataset key>/<file key>/precision.npy     float32 nm (if known)
    <store>/<dataset key>/<file key>/frame.npy         int32, 0-based (if known)
"""

from __future__ import annotations

import hashlib
import io
import shutil
from collections import OrderedDict
from pathlib import Path
from threading import Lock

import numpy as np

from compute.similarity import FileFingerprints, Fingerprints
from compute.table import LocalisationTable
from databank.models import DataFile, Roi

NORMALISED_COLUMNS = {"x": np.float32, "y": np.float32, "precision": np.float32, "frame": np.int32}
_CACHE_SIZE = 8


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_normalised(folder: Path, table: LocalisationTable) -> None:
    """Write the float32 columnar copy of ``table`` into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, dtype in NORMALISED_COLUMNS.items():
        values = getattr(table, name)
        if values is not None:
            np.save(folder / f"{name}.npy", np.ascontiguousarray(values, dtype=dtype))


def read_normalised(folder: Path) -> LocalisationTable:
    """Memory-map the normalised copy in ``folder`` back into a LocalisationTable (nm)."""
    columns = {name: np.load(folder / f"{name}.npy", mmap_mode="r")
               for name in NORMALISED_COLUMNS if (folder / f"{name}.npy").exists()}
    return LocalisationTable(**columns, source_format="normalised")


def pack_fingerprints(fingerprints: FileFingerprints) -> bytes:
    """Serialise a file's tile fingerprints (unthinned and every thinned target) to bytes."""
    arrays = {"unthinned_hist": fingerprints.unthinned.hist, "unthinned_n": fingerprints.unthinned.n_locs,
              "unthinned_tiles": fingerprints.tile_index_unthinned}
    for target, prints in fingerprints.thinned.items():
        arrays[f"thinned_{target}_hist"] = prints.hist
        arrays[f"thinned_{target}_n"] = prints.n_locs
        arrays[f"thinned_{target}_tiles"] = fingerprints.tile_index_thinned[target]
    for target, extra in fingerprints.extra_repeats.items():
        for repeat, prints in enumerate(extra, start=2):
            arrays[f"repeat{repeat}_thinned_{target}_hist"] = prints.hist
            arrays[f"repeat{repeat}_thinned_{target}_n"] = prints.n_locs
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    return buffer.getvalue()


def unpack_fingerprints(blob: bytes) -> FileFingerprints:
    """Inverse of ``pack_fingerprints``; blobs stored before repeated thinnings have one thinning."""
    with np.load(io.BytesIO(blob)) as data:
        arrays = {key: data[key] for key in data.files}
    targets = sorted(int(key.split("_")[1]) for key in arrays if key.startswith("thinned_") and key.endswith("_hist"))
    extra = {t: [] for t in targets}
    for t in targets:
        while f"repeat{len(extra[t]) + 2}_thinned_{t}_hist" in arrays:
            prefix = f"repeat{len(extra[t]) + 2}_thinned_{t}"
            extra[t].append(Fingerprints(hist=arrays[f"{prefix}_hist"], n_locs=arrays[f"{prefix}_n"]))
    return FileFingerprints(
        unthinned=Fingerprints(hist=arrays["unthinned_hist"], n_locs=arrays["unthinned_n"]),
        thinned={t: Fingerprints(hist=arrays[f"thinned_{t}_hist"], n_locs=arrays[f"thinned_{t}_n"]) for t in targets},
        tile_index_unthinned=arrays["unthinned_tiles"],
        tile_index_thinned={t: arrays[f"thinned_{t}_tiles"] for t in targets},
        extra_repeats={t: prints for t, prints in extra.items() if prints},
    )


class FileStore:
    """Paths and cached loading of stored files."""

    def __init__(self, settings):
        self.root = Path(settings.store_dir)
        self._cache: OrderedDict[tuple, LocalisationTable] = OrderedDict()
        self._lock = Lock()

    def dataset_dir(self, dataset_key: str) -> Path:
        return self.root / dataset_key

    def file_dir(self, data_file: DataFile) -> Path:
        return self.root / data_file.dataset.storage_key / data_file.storage_key

    def original_path(self, data_file: DataFile) -> Path:
        return self.file_dir(data_file) / "original"

    def roi_original_path(self, data_file: DataFile, roi: Roi) -> Path | None:
        path = self.file_dir(data_file) / f"roi_{roi.index}.csv"
        return path if roi.has_original and path.exists() else None

    def load_locs(self, data_file: DataFile) -> LocalisationTable:
        """The normalised localisations of ``data_file`` (memory-mapped, cached per process)."""
        folder = self.file_dir(data_file)
        key = (str(folder), (folder / "x.npy").stat().st_mtime_ns)
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
        table = read_normalised(folder)
        with self._lock:
            self._cache[key] = table
            while len(self._cache) > _CACHE_SIZE:
                self._cache.popitem(last=False)
        return table

    def remove_dataset(self, dataset_key: str) -> None:
        shutil.rmtree(self.dataset_dir(dataset_key), ignore_errors=True)
