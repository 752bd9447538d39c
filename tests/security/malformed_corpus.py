"""A corpus of malformed uploads, generated in code: each case is a set of files (name -> bytes) with
the words its error message must contain (the file, the line or column, the fix).

``CASES`` is the list; ``write_case(case, folder)`` writes one case's files into ``folder``. Every case
holds one detection file (``cell.<ext>``) and maybe ROI files (``cell_ROI_1.csv``); the good parts
are small and valid (a 12 x 12 um field at 20 loc/um^2), so that only the named defect can fail.
"""

from __future__ import annotations

import io
import json
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import h5py
import numpy as np

FIELD_NM = 12_000.0
GOOD_ROI_UM = [(1, 1), (10, 1), (10, 10), (1, 10)]
BIG_POINT_ROWS = 10_000_000         # the "10^7 rows of one point" case


@dataclass(frozen=True)
class Case:
    """One malformed upload: ``files()`` -> {name: bytes}; its message must contain every string of ``expect``."""

    name: str
    files: Callable[[], dict[str, bytes]]
    expect: tuple[str, ...]


# --------------------------------------------------------------------------------------------
# good parts

def _points(n: int = 20 * 144, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.uniform(0, FIELD_NM, n), rng.uniform(0, FIELD_NM, n)


def thunderstorm(x=None, y=None, *, header='"id","frame","x [nm]","y [nm]"', sep=",") -> bytes:
    """A ThunderSTORM-style CSV of the given points (default: the good field)."""
    if x is None:
        x, y = _points()
    lines = [header] + [sep.join((str(i + 1), str(i % 50 + 1), f"{a:.1f}", f"{b:.1f}"))
                        for i, (a, b) in enumerate(zip(x, y))]
    return ("\n".join(lines) + "\n").encode()


def roi(vertices_um, header: str = "X,Y") -> bytes:
    return (header + "\n" + "".join(f"{x},{y}\n" for x, y in vertices_um)).encode()


def with_roi(detection: bytes, roi_bytes: bytes, ext: str = "csv") -> dict[str, bytes]:
    return {f"cell.{ext}": detection, "cell_ROI_1.csv": roi_bytes}


def picasso_hdf5(n: int = 2000, *, with_pixel_size: bool = True, compress: bool = False) -> bytes:
    """A Picasso /locs HDF5 (x, y in 100 nm camera pixels) with the pixel size in /metadata."""
    x, y = _points(n, seed=1)
    locs = np.zeros(n, dtype=[("frame", "<u4"), ("x", "<f4"), ("y", "<f4"), ("photons", "<f4"),
                              ("lpx", "<f4"), ("lpy", "<f4")])
    locs["frame"], locs["x"], locs["y"] = np.arange(n) % 100, x / 100, y / 100
    locs["photons"], locs["lpx"], locs["lpy"] = 1000, 0.1, 0.1
    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as h5:
        h5.create_dataset("locs", data=locs, **(dict(chunks=(500,), compression="gzip") if compress else {}))
        if with_pixel_size:
            h5.create_dataset("metadata", data=json.dumps({"Pixelsize": 100}))
    return buffer.getvalue()


def _corrupt_chunk(data: bytes) -> bytes:
    """Scramble the middle of the compressed data of a chunked HDF5 dataset: the file opens, reading fails."""
    middle = len(data) // 2
    return _corrupt(data, middle - 2000, middle + 2000)


def _hdf5_unknown_layout() -> bytes:
    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as h5:
        h5.create_dataset("positions", data=np.zeros((10, 2)))
    return buffer.getvalue()


def _corrupt(data: bytes, start: int, stop: int) -> bytes:
    junk = np.random.default_rng(5).integers(0, 256, stop - start, dtype=np.uint8).tobytes()
    return data[:start] + junk + data[stop:]


def smlm(rows: int, payload: bytes | None = None, *, manifest: dict | None = None,
         compress: int = zipfile.ZIP_DEFLATED) -> bytes:
    """A ShareLoc .smlm zip: manifest.json and one binary table of float32 x, y (nm)."""
    if payload is None:
        x, y = _points(rows, seed=2)
        payload = np.column_stack((x, y)).astype("<f4").tobytes()
    manifest = manifest or {
        "format_version": "0.2",
        "formats": {"smlm-table(binary)": {"type": "table", "mode": "binary", "headers": ["x", "y"],
                                           "dtype": ["float32", "float32"], "units": ["nm", "nm"]}},
        "files": [{"name": "table.bin", "format": "smlm-table(binary)", "type": "table", "rows": rows}]}
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=compress) as archive:
        archive.writestr("manifest.json", json.dumps(manifest))
        archive.writestr("table.bin", payload)
    return buffer.getvalue()


def zip_bomb_smlm(expanded_bytes: int = 256 * 1024 * 1024) -> bytes:
    """A .smlm whose table expands from ~0.25 MB to ``expanded_bytes`` of zeros (ratio ~1000),
    with a manifest that agrees (rows = bytes / 8), written without holding the expanded bytes."""
    rows = expanded_bytes // 8
    manifest = json.loads(zipfile.ZipFile(io.BytesIO(smlm(1))).read("manifest.json"))
    manifest["files"][0]["rows"] = rows
    buffer = io.BytesIO()
    zero_chunk = bytes(8 * 1024 * 1024)
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        archive.writestr("manifest.json", json.dumps(manifest))
        with archive.open("table.bin", "w", force_zip64=True) as member:
            for _ in range(expanded_bytes // len(zero_chunk)):
                member.write(zero_chunk)
    return buffer.getvalue()


def one_point_rows(n: int = BIG_POINT_ROWS) -> bytes:
    """A generic CSV of ``n`` identical rows (x = y = 5 nm): 40 MB for 10^7 rows."""
    return b"x,y\n" + b"5,5\n" * n


# --------------------------------------------------------------------------------------------
# the cases

def _text(s: str, encoding: str = "utf-8") -> Callable[[], dict[str, bytes]]:
    return lambda: {"cell.csv": s.encode(encoding)}


_JUNK = np.random.default_rng(11).integers(0, 256, 5000, dtype=np.uint8).tobytes()
_HIGH_JUNK = np.random.default_rng(12).integers(128, 256, 5000, dtype=np.uint8).tobytes()  # no NUL, no newline


CASES: list[Case] = [
    # --- encodings and non-tables
    Case("empty-file", lambda: {"cell.csv": b""}, ("cell.csv", "the file is empty", "Fix:")),
    Case("blank-lines-only", _text("\n \n\t\n"), ("cell.csv", "the file is empty", "Fix:")),
    Case("binary-junk-as-csv", lambda: {"cell.csv": b"\x00" + _JUNK}, ("cell.csv", "binary file", "Fix:")),
    Case("high-bytes-junk-as-csv", lambda: {"cell.csv": _HIGH_JUNK}, ("cell.csv", "not a text table", "Fix:")),
    Case("png-as-csv", lambda: {"cell.csv": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + _JUNK[:500]},
         ("cell.csv", "binary file", "Fix:")),
    Case("gzip-as-csv", lambda: {"cell.csv": zlib.compress(thunderstorm())}, ("cell.csv", "Fix:")),
    Case("xlsx-as-csv", lambda: {"cell.csv": _xlsx_like()}, ("cell.csv", "zip archive without manifest.json", "Fix:")),
    Case("utf16-le-bom", lambda: {"cell.csv": thunderstorm().decode().encode("utf-16")},
         ("cell.csv", "UTF-16", "Fix:", "UTF-8")),
    Case("utf16-be-bom", lambda: {"cell.csv": b"\xfe\xff" + thunderstorm().decode().encode("utf-16-be")},
         ("cell.csv", "UTF-16", "Fix:")),
    Case("utf8-bom-pixel-header", lambda: {"cell.csv": b"\xef\xbb\xbf" + thunderstorm(header="x [px],y [px],f,g")},
         ("cell.csv", "column 'x [px]'", "camera pixels", "Fix:")),
    # --- table structure
    Case("comments-only", _text("# exported\n# nothing else\n"), ("cell.csv", "no header row", "Fix:")),
    Case("header-only-no-rows", _text('"x [nm]","y [nm]"\n'), ("cell.csv", "line 2", "no localisation rows", "Fix:")),
    Case("one-row", _text("x [nm],y [nm]\n1500,2500\n"), ("cell.csv", "only 1 localisation", "Fix:")),
    Case("three-rows-on-a-line", _text("x [nm],y [nm]\n1500,2500\n1500,9000\n1500,100\n"), ("cell.csv", "same x", "Fix:")),
    Case("duplicated-x-column", lambda: {"cell.csv": thunderstorm(header="id,frame,x,y").replace(
        b"id,frame,x,y", b"x,frame,x,y", 1)}, ("cell.csv", "column 'x'", "2 columns", "Fix:")),
    Case("wrong-delimiter-rows", lambda: {"cell.csv": thunderstorm(header='"id","frame","x [nm]","y [nm]"', sep=";")},
         ("cell.csv", "line 1", "delimiter", "Fix:")),
    Case("one-column-pipes", _text("x|y\n1|2\n3|4\n"), ("cell.csv", "line 1", "one column", "Fix:")),
    Case("decimal-comma-with-comma-delimiter", _text("x [nm],y [nm]\n1,5,2,5\n3,5,4,5\n"),
         ("cell.csv", "line 1", "Fix:")),
    Case("text-in-x", _text("x [nm],y [nm]\nabc,1\ndef,2\nghi,3\n"), ("cell.csv", "line 2", "column 'x [nm]'",
                                                                       "'abc'", "Fix:")),
    Case("no-xy-columns", _text("a,b,c\n1,2,3\n4,5,6\n"), ("cell.csv", "line 1", "no x and y columns", "Fix:")),
    Case("unknown-length-unit", _text("x [furlong],y [furlong]\n1,2\n3,4\n5,7\n"),
         ("cell.csv", "column 'x [furlong]'", "unit", "Fix:")),
    # --- coordinates
    Case("nan-coordinates", _text("x [nm],y [nm]\nnan,1\nNaN,2\n5,nan\n"),
         ("cell.csv", "line 2", "column 'x [nm]'", "Fix:")),
    Case("inf-coordinates", _text("x [nm],y [nm]\ninf,1\n-inf,2\n5,inf\n"),
         ("cell.csv", "line 2", "column 'x [nm]'", "Fix:")),
    Case("negative-stray-row-50mm-away", lambda: {"cell.csv": thunderstorm(
        *[np.append(v, -5e7) for v in _points()])}, ("cell.csv", "1,000 um per side", "stray", "Fix:")),
    Case("tiny-file-5mm-extent", _text("x [nm],y [nm]\n0,0\n5000000,0\n0,5000000\n"),
         ("cell.csv", "5,000 x 5,000 um", "1,000 um per side", "Fix:")),
    Case("tiny-file-50mm-extent", _text("x [nm],y [nm]\n0,0\n50000000,0\n0,50000000\n"),
         ("cell.csv", "50,000 x 50,000 um", "1,000 um per side", "Fix:")),
    Case("pixels-without-pixel-size", lambda: {"cell.csv": thunderstorm(header="id,frame,x [px],y [px]")},
         ("cell.csv", "column 'x [px]'", "pixel size", "Fix:")),
    Case("ten-million-rows-of-one-point", lambda: {"cell.csv": one_point_rows()},
         ("cell.csv", "10,000,000 localisations", "same x", "Fix:")),
    # --- HDF5
    Case("truncated-hdf5", lambda: {"cell.hdf5": picasso_hdf5()[:3000]}, ("cell.hdf5", "HDF5", "Fix:")),
    Case("corrupt-hdf5-header", lambda: {"cell.hdf5": _corrupt(picasso_hdf5(), 40, 1500)},
         ("cell.hdf5", "Fix:")),
    Case("corrupt-hdf5-data", lambda: {"cell.hdf5": _corrupt_chunk(picasso_hdf5(compress=True))},
         ("cell.hdf5", "damaged or incomplete", "Fix:")),
    Case("hdf5-unknown-layout", lambda: {"cell.h5": _hdf5_unknown_layout()}, ("cell.h5", "unknown layout", "Fix:")),
    Case("hdf5-picasso-without-pixel-size", lambda: {"cell.hdf5": picasso_hdf5(with_pixel_size=False)},
         ("cell.hdf5", "pixel size", "Fix:")),
    # --- .smlm zips
    Case("zip-bomb-smlm", lambda: {"cell.smlm": zip_bomb_smlm()}, ("cell.smlm", "table.bin", "zip bomb", "Fix:")),
    Case("smlm-without-manifest", lambda: {"cell.smlm": _zip({"table.bin": bytes(80)})},
         ("cell.smlm", "manifest.json", "Fix:")),
    Case("smlm-broken-manifest", lambda: {"cell.smlm": _zip({"manifest.json": b"{not json", "table.bin": bytes(8)})},
         ("cell.smlm", "manifest.json", "Fix:")),
    Case("smlm-rows-disagree", lambda: {"cell.smlm": smlm(100, payload=bytes(8 * 50))},
         ("cell.smlm", "table.bin", "Fix:")),
    Case("smlm-truncated-zip", lambda: {"cell.smlm": smlm(2000)[:-200]}, ("cell.smlm", "zip archive is incomplete",
                                                                           "Fix:")),
    Case("mat-junk", lambda: {"cell.mat": b"MATLAB 5.0 MAT-file" + _JUNK}, ("cell.mat", "Fix:")),
    # --- ROI files
    Case("roi-two-vertices", lambda: with_roi(thunderstorm(), roi([(1, 1), (10, 10)])),
         ("cell_ROI_1.csv", "2 distinct vertices", "Fix:")),
    Case("roi-self-intersecting-flat", lambda: with_roi(thunderstorm(), roi([(1, 1), (10, 1), (5, 1), (11, 1)])),
         ("cell_ROI_1.csv", "one line", "no area", "Fix:")),
    Case("roi-wrong-units-mm", lambda: with_roi(thunderstorm(), roi([(x / 1000, y / 1000) for x, y in GOOD_ROI_UM])),
         ("cell_ROI_1.csv", "contains none of the 2,880 localisations", "Fix:")),
    Case("roi-not-overlapping", lambda: with_roi(thunderstorm(), roi([(x + 500, y + 500) for x, y in GOOD_ROI_UM])),
         ("cell_ROI_1.csv", "contains none of the 2,880 localisations", "Fix:")),
    Case("roi-far-away-in-every-unit", lambda: with_roi(thunderstorm(), roi([(x + 5e6, y) for x, y in GOOD_ROI_UM])),
         ("cell_ROI_1.csv", "does not overlap the localisations in any unit", "Fix:")),
    Case("roi-empty", lambda: with_roi(thunderstorm(), b""), ("cell_ROI_1.csv", "empty", "Fix:")),
    Case("roi-header-only", lambda: with_roi(thunderstorm(), b"X,Y\n"), ("cell_ROI_1.csv", "line 2", "Fix:")),
    Case("roi-text-vertex", lambda: with_roi(thunderstorm(), b"X,Y\n1,1\n10,1\nabc,10\n"),
         ("cell_ROI_1.csv", "line 4", "'abc'", "Fix:")),
    Case("roi-nan-vertex", lambda: with_roi(thunderstorm(), b"X,Y\n1,1\n10,1\nnan,10\n"),
         ("cell_ROI_1.csv", "line 4", "Fix:")),
    Case("roi-binary-junk", lambda: with_roi(thunderstorm(), b"\x00" + _JUNK), ("cell_ROI_1.csv", "Fix:")),
    Case("roi-utf16", lambda: with_roi(thunderstorm(), roi(GOOD_ROI_UM).decode().encode("utf-16")),
         ("cell_ROI_1.csv", "UTF-16", "Fix:")),
]


def _zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def _xlsx_like() -> bytes:
    return _zip({"[Content_Types].xml": b"<Types/>", "xl/workbook.xml": b"<workbook/>"})


def write_case(case: Case, folder: Path) -> list[Path]:
    """Write the case's files into ``folder`` (created); returns their paths, detection file first."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, data in case.files().items():
        path = folder / name
        path.write_bytes(data)
        paths.append(path)
    return paths
