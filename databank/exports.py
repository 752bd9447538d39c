"""Downloads of a dataset: original files, gridded tiles, density images and ROI files.

Pure data-layer generators used by the download routes (``server.routes_downloads``) and the
command line. They never check permissions: the caller has already obtained the dataset through
``access.get_dataset(user, id, "download")``.

Zip archives are written to a temporary file (``settings.cache_dir/exports`` when given, else the
system temporary folder) so that a 1 GB dataset is streamed from disk, never held in memory; the
caller sends the file and removes it (``path.unlink()``) afterwards.

Names inside the archives come from the user's file names passed through
``werkzeug.utils.secure_filename`` (and made unique); they are never used as paths on the server.
"""

from __future__ import annotations

import csv
import io
import os
import tempfile
import zipfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterable

import numpy as np
from numba import njit
from werkzeug.utils import secure_filename

from compute import render
from compute.rois import polygon_from_vertices
from compute.similarity import MIN_TILE_LOCS
from compute.tiles import TILE_NM, TileGrid, points_in_tiles
from config import __version__
from databank.models import DataFile, Dataset, Tile

EXPORT_KINDS = ("originals", "gridded", "images", "rois")
GRIDDED_HEADER = '"x [nm]","y [nm]"\n'
ROI_HEADER = "X,Y\n"

# --------------------------------------------------------------------------------------------
# names


def safe_stem(name: str, fallback: str = "file") -> str:
    """A file-system-safe stem of a user's file name ('my cell 1.csv' -> 'my_cell_1')."""
    stem = secure_filename(Path(str(name or "")).stem)
    return stem or fallback


def safe_name(name: str, fallback: str = "file") -> str:
    """A file-system-safe version of a user's file name, keeping its extension."""
    return secure_filename(str(name or "")) or fallback


class _UniqueNames:
    """Hands out archive member names, appending _2, _3, ... to repeats."""

    def __init__(self):
        self.used: set[str] = set()

    def __call__(self, name: str) -> str:
        stem, suffix = os.path.splitext(name)
        candidate, k = name, 2
        while candidate.lower() in self.used:
            candidate = f"{stem}_{k}{suffix}"
            k += 1
        self.used.add(candidate.lower())
        return candidate


def _file_stems(dataset: Dataset) -> dict[int, str]:
    """A unique safe stem per data file of the dataset (file id -> stem)."""
    unique = _UniqueNames()
    return {f.id: unique(safe_stem(f.name, f"file_{f.id}")) for f in dataset.files}


def archive_name(dataset: Dataset, kind: str) -> str:
    """The download name of a dataset archive, e.g. 'CD8_TIGIT_gridded.zip'."""
    base = secure_filename(str(dataset.title or ""))[:80].strip("._") or f"dataset_{dataset.id}"
    return f"{base}_{kind}.zip"


def _temp_zip(work_dir: Path | None) -> tuple[Path, zipfile.ZipFile]:
    if work_dir is not None:
        work_dir = Path(work_dir)
        work_dir.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(prefix="nanoorg-export-", suffix=".zip",
                                    dir=str(work_dir) if work_dir else None)
    os.close(handle)
    path = Path(name)
    return path, zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1)


def _build(work_dir, fill) -> Path:
    """Create a temporary zip, let ``fill(zf)`` write members, return its path (removed on error)."""
    path, zf = _temp_zip(work_dir)
    try:
        with zf:
            fill(zf)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path


# --------------------------------------------------------------------------------------------
# originals


def originals_zip(dataset: Dataset, store, work_dir: Path | None = None) -> Path:
    """Zip of the untouched uploaded detection files (and their original ROI files, in ``rois/``)."""
    def fill(zf: zipfile.ZipFile) -> None:
        unique = _UniqueNames()
        for data_file in dataset.files:
            zf.write(store.original_path(data_file), unique(safe_name(data_file.name, f"file_{data_file.id}")))
        roi_names = _UniqueNames()
        for data_file in dataset.files:
            for roi in data_file.rois:
                original = store.roi_original_path(data_file, roi)
                if original is not None:
                    zf.write(original, "rois/" + roi_names(_roi_member_name(data_file, roi)))
    return _build(work_dir, fill)


# --------------------------------------------------------------------------------------------
# gridded tiles


def tile_grid(data_file: DataFile) -> TileGrid:
    """The file's tiles (from its Tile rows, in index order) as a compute TileGrid, with the ROI
    polygons so that tile points are clipped to them as at ingest."""
    tiles = sorted(data_file.tiles, key=lambda t: t.index)
    origins = np.array([[t.x0_nm, t.y0_nm] for t in tiles], dtype=np.float64).reshape(-1, 2)
    rois = sorted(data_file.rois, key=lambda r: r.index)
    polygons = [polygon_from_vertices(r.vertices_nm) for r in rois]
    roi_position = {r.index: k for k, r in enumerate(rois)}
    roi_index = np.array([roi_position[t.roi_index] for t in tiles], dtype=np.int64)
    return TileGrid(origins, roi_index, TILE_NM, polygons)


@njit(cache=True)
def _write_fixed3(value, out, pos):
    """Write ``value`` rounded to 3 decimals as ASCII into ``out`` at ``pos``; returns the new pos."""
    scaled = np.int64(np.round(value * 1000.0))
    if scaled < 0:
        out[pos] = 45              # '-'
        pos += 1
        scaled = -scaled
    whole, frac = scaled // 1000, scaled % 1000
    digits = np.empty(20, dtype=np.uint8)
    n = 0
    while True:
        digits[n] = 48 + whole % 10
        n += 1
        whole //= 10
        if whole == 0:
            break
    for k in range(n - 1, -1, -1):
        out[pos] = digits[k]
        pos += 1
    out[pos] = 46                  # '.'
    out[pos + 1] = 48 + frac // 100
    out[pos + 2] = 48 + (frac // 10) % 10
    out[pos + 3] = 48 + frac % 10
    return pos + 4


@njit(cache=True)
def _format_xy(x, y):
    """Rows ``x,y\\n`` with 3 decimals as ASCII bytes (what np.savetxt(fmt='%.3f') writes, ~50x faster)."""
    out = np.empty(x.shape[0] * 64, dtype=np.uint8)
    pos = 0
    for i in range(x.shape[0]):
        pos = _write_fixed3(x[i], out, pos)
        out[pos] = 44              # ','
        pos = _write_fixed3(y[i], out, pos + 1)
        out[pos] = 10              # newline
        pos += 1
    return out[:pos]


def tile_csv(x: np.ndarray, y: np.ndarray) -> bytes:
    """CSV text of one tile: header ``"x [nm]","y [nm]"`` then one localisation per row (nm, 3 decimals)."""
    x = np.ascontiguousarray(x, dtype=np.float64)
    y = np.ascontiguousarray(y, dtype=np.float64)
    finite = np.isfinite(x) & np.isfinite(y)
    if not finite.all():
        x, y = x[finite], y[finite]
    body = _format_xy(x, y).tobytes() if len(x) else b""
    return GRIDDED_HEADER.encode() + body


def gridded_tiles(data_file: DataFile, store) -> Iterable[tuple[Tile, np.ndarray, np.ndarray]]:
    """(Tile row, x, y) of every tile of ``data_file``: localisations in the half-open square
    [x0, x0 + 3000) x [y0, y0 + 3000) nm and inside the tile's ROI (boundary included), absolute
    coordinates in nm."""
    tiles = sorted(data_file.tiles, key=lambda t: t.index)
    if not tiles:
        return
    locs = store.load_locs(data_file)
    x = np.asarray(locs.x, dtype=np.float64)
    y = np.asarray(locs.y, dtype=np.float64)
    order, offsets = points_in_tiles(x, y, tile_grid(data_file))
    for k, tile in enumerate(tiles):
        members = order[offsets[k]:offsets[k + 1]]
        yield tile, x[members], y[members]


def gridded_member_name(stem: str, roi_index: int, tile_index: int) -> str:
    """'cell1_ROI2_tile007.csv': file stem, ROI number (1-based) and tile index of the file's grid."""
    return f"{stem}_ROI{roi_index}_tile{tile_index:03d}.csv"


MANIFEST_COLUMNS = ("file", "roi", "tile_index", "x0_nm", "y0_nm", "n_locs", "kept", "csv")


def _manifest_header(dataset: Dataset) -> str:
    """Provenance lines of the manifest ('#', skipped by ``pandas.read_csv(..., comment='#')``)."""
    return "".join(f"# {line}\n" for line in (
        f"nano-org {__version__}",
        f"dataset {dataset.id} {' '.join(str(dataset.title or '').split())}",
        f"tiles {TILE_NM / 1000:g} x {TILE_NM / 1000:g} um, wholly inside one ROI; kept = at least "
        f"{MIN_TILE_LOCS} localisations (used for similarity); dropped tiles have no CSV",
        f"created {datetime.now(timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')}",
    ))


def gridded_zip(dataset: Dataset, store, work_dir: Path | None = None) -> Path:
    """Zip with one CSV per kept 3 x 3 um tile of each file (``gridded_member_name``) and
    ``manifest.csv`` listing every tile (kept or dropped) with its file, ROI, origin and count."""
    stems = _file_stems(dataset)

    def fill(zf: zipfile.ZipFile) -> None:
        manifest = io.StringIO()
        manifest.write(_manifest_header(dataset))
        writer = csv.writer(manifest, lineterminator="\n")
        writer.writerow(MANIFEST_COLUMNS)
        for data_file in dataset.files:
            for tile, x, y in gridded_tiles(data_file, store):
                member = gridded_member_name(stems[data_file.id], tile.roi_index, tile.index) if tile.kept else ""
                if member:
                    zf.writestr(member, tile_csv(x, y))
                writer.writerow([data_file.name, tile.roi_index, tile.index, f"{tile.x0_nm:.3f}", f"{tile.y0_nm:.3f}",
                                 len(x), "yes" if tile.kept else "no", member])
        zf.writestr("manifest.csv", manifest.getvalue())
    return _build(work_dir, fill)


# --------------------------------------------------------------------------------------------
# density images


def file_png(data_file: DataFile, store, size: int = 1024, scaling: str = "log") -> bytes:
    """PNG bytes of the density image of one data file, its ROI outlines and a scale bar."""
    locs = store.load_locs(data_file)
    image = render.density_image(locs.x, locs.y, size=size, scaling=scaling,
                          rois=[roi.vertices_nm for roi in data_file.rois])
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=False)
    return buffer.getvalue()


def pngs_zip(dataset: Dataset, store, work_dir: Path | None = None, size: int = 1024) -> Path:
    """Zip with one density PNG per data file: ``{file stem}.png``."""
    stems = _file_stems(dataset)

    def fill(zf: zipfile.ZipFile) -> None:
        for data_file in dataset.files:
            # PNG data is already compressed
            zf.writestr(zipfile.ZipInfo(f"{stems[data_file.id]}.png"), file_png(data_file, store, size=size),
                        compress_type=zipfile.ZIP_STORED)
    return _build(work_dir, fill)


# --------------------------------------------------------------------------------------------
# ROI files


def _roi_member_name(data_file: DataFile, roi) -> str:
    if roi.has_original and roi.name and roi.name != "auto":
        return safe_name(roi.name, f"{safe_stem(data_file.name)}_ROI_{roi.index}.csv")
    return f"{safe_stem(data_file.name, f'file_{data_file.id}')}_ROI_{roi.index}.csv"


def roi_csv(vertices_nm) -> bytes:
    """ROI polygon as Fiji-style CSV: header ``X,Y``, one vertex per row, micrometres."""
    buffer = io.StringIO()
    buffer.write(ROI_HEADER)
    writer = csv.writer(buffer, lineterminator="\n")
    for vx, vy in vertices_nm:
        writer.writerow([repr(float(vx) / 1000.0), repr(float(vy) / 1000.0)])
    return buffer.getvalue().encode()


def rois_zip(dataset: Dataset, store, work_dir: Path | None = None) -> Path:
    """Zip of every ROI of every file: the uploaded ROI file when it was kept, else a CSV ``X,Y``
    in um regenerated from the stored vertices (e.g. ROIs generated automatically)."""
    def fill(zf: zipfile.ZipFile) -> None:
        unique = _UniqueNames()
        for data_file in dataset.files:
            for roi in data_file.rois:
                original = store.roi_original_path(data_file, roi)
                if original is not None:
                    zf.write(original, unique(_roi_member_name(data_file, roi)))
                else:
                    name = f"{safe_stem(data_file.name, f'file_{data_file.id}')}_ROI_{roi.index}.csv"
                    zf.writestr(unique(name), roi_csv(roi.vertices_nm))
    return _build(work_dir, fill)


BUILDERS = {"originals": originals_zip, "gridded": gridded_zip, "images": pngs_zip, "rois": rois_zip}


def dataset_zip(kind: str, dataset: Dataset, store, work_dir: Path | None = None) -> Path:
    """Build the ``kind`` archive ('originals', 'gridded', 'images', 'rois') of ``dataset``."""
    if kind not in BUILDERS:
        raise ValueError(f"unknown export {kind!r} (one of {', '.join(EXPORT_KINDS)})")
    return BUILDERS[kind](dataset, store, work_dir)


def current_store():
    """The FileStore of the current Flask app (one per app, so its loaded-file cache is shared)."""
    from flask import current_app

    from databank.core import settings_of
    from databank.store import FileStore

    store = current_app.extensions.get("nanoorg.store")
    if store is None:
        store = current_app.extensions.setdefault("nanoorg.store", FileStore(settings_of()))
    return store


def export_dir() -> Path:
    """Where temporary archives of the current app are written (instance cache folder)."""
    from databank.core import settings_of

    return Path(settings_of().cache_dir) / "exports"
