"""Readers for localisation files: one reader per localisation software, one table out.

Every reader returns a :class:`~compute.table.LocalisationTable` with x, y (and z,
precision) in nm and 0-based integer frames. The format is detected from the file's content
(header line, HDF5 keys, zip manifest), not only from its extension (docs/SCIENCE.md §6).

A file that cannot be read raises :class:`FormatError`, whose message names the file, the line or
column, and what the user should do. Rows whose x or y is missing or not a number are dropped,
counted in ``n_dropped`` and reported in ``warnings``; a file where most rows are bad is an error.
"""

from __future__ import annotations

import csv
import json
import re
import xml.etree.ElementTree as ElementTree
import zipfile
import zlib
from collections import Counter
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Callable

import h5py
import numpy as np
import pandas as pd
import yaml
from scipy.io import loadmat

from compute.table import LocalisationTable


class FormatError(ValueError):
    """A file that cannot be read. str(err) names the file, the line or column, and the fix."""

    def __init__(self, file: str, problem: str, fix: str, line: int | None = None,
                 column: str | None = None):
        self.file = file
        self.problem = problem
        self.fix = fix
        self.line = line
        self.column = column
        super().__init__(self._message())

    def _message(self) -> str:
        where = [self.file]
        if self.line is not None:
            where.append(f"line {self.line}")
        if self.column is not None:
            where.append(f"column '{self.column}'")
        return f"{', '.join(where)}: {self.problem.rstrip('.')}. Fix: {self.fix}"

    def __reduce__(self):
        return type(self), (self.file, self.problem, self.fix, self.line, self.column)


class PixelSizeRequired(FormatError):
    """Coordinates are in camera pixels and no pixel size was found or given."""


DETECTION_EXTENSIONS: tuple[str, ...] = (".csv", ".h5", ".hdf5", ".mat", ".txt", ".smlm", ".tsv", ".dat")

FORMAT_LABELS: dict[str, str] = {
    "thunderstorm": "ThunderSTORM CSV",
    "smap_csv": "SMAP CSV",
    "smap_mat": "SMAP _sml.mat",
    "picasso": "Picasso HDF5",
    "decode_h5": "DECODE HDF5",
    "decode_csv": "DECODE CSV",
    "rapidstorm": "rapidSTORM text",
    "smlm": "ShareLoc .smlm",
    "generic_csv": "Generic CSV",
}

_PIXEL_SIZE_FIX = ("enter the effective pixel size in nm (camera pixel size divided by the "
                   "magnification, e.g. 100) with the upload, or convert the coordinates to nm")
_REEXPORT_FIX = "export the localisations again from the localisation software and upload that file"

# --- column names -------------------------------------------------------------------------------

# Field -> accepted column names (lower case, unit removed), in order of preference.
_ALIASES: dict[str, tuple[str, ...]] = {
    "x": ("x", "position_x", "pos_x", "x_position", "x_pos", "xpos", "x_coordinate", "x_coord"),
    "y": ("y", "position_y", "pos_y", "y_position", "y_pos", "ypos", "y_coordinate", "y_coord"),
    "z": ("z", "position_z", "pos_z", "z_position", "z_pos", "zpos"),
    "frame": ("frame", "frame_ix", "frame_index", "frame_number", "framenumber", "frame_no", "frames"),
    "precision": ("uncertainty_xy", "uncertainty", "precision", "precision_xy", "localization_precision",
                  "localisation_precision", "loc_precision", "locprec", "sigma_xy", "error", "sigma"),
    "precision_x": ("x_sig", "x_precision", "precision_x", "uncertainty_x"),
    "precision_y": ("y_sig", "y_precision", "precision_y", "uncertainty_y"),
    "photons": ("photons", "photon", "phot", "photon_count"),
    "channel": ("channel", "channel_id"),
}
# ThunderSTORM: 'sigma' is the PSF width, not the precision; 'intensity [photon]' is photons.
_THUNDERSTORM_ALIASES = {**_ALIASES, "precision": ("uncertainty_xy", "uncertainty"),
                         "photons": ("intensity",)}

_LENGTH_FIELDS = {"x": 0, "y": 1, "z": None, "precision": None, "precision_x": 0, "precision_y": 1}
_NM_PER_UNIT = {"nm": 1.0, "nano": 1.0, "nanometer": 1.0, "nanometre": 1.0, "nanometers": 1.0,
                "nanometres": 1.0, "um": 1e3, "micron": 1e3, "microns": 1e3, "micrometer": 1e3,
                "micrometre": 1e3, "micrometers": 1e3, "micrometres": 1e3, "mm": 1e6, "m": 1e9,
                "meter": 1e9, "metre": 1e9}
_PIXEL_UNITS = {"px", "pix", "pixel", "pixels", "camera pixel"}
_BRACKET_UNIT = re.compile(r"(.*?)\s*[\[(]\s*([^\])]*?)\s*[\])]")
_SUFFIX_UNIT = re.compile(r"(.+?)[_ ]?(nm|nano|um|px|pix)")
_WHITESPACE = r"\s+"


def _normalise_unit(unit: str | None) -> str | None:
    if unit is None or not unit.strip():
        return None
    return unit.strip().lower().replace("µ", "u").replace("μ", "u")


def _name_candidates(raw_name: str) -> list[tuple[str, str | None]]:
    """Possible (base name, unit) readings of a header name: 'x [nm]' -> ('x', 'nm'), 'xnm' -> ('x', 'nm')."""
    name = " ".join(raw_name.strip().strip("\"'").lower().split())
    bracket = _BRACKET_UNIT.fullmatch(name)
    if bracket:
        return [(_base_key(bracket.group(1)), _normalise_unit(bracket.group(2)))]
    readings = [(_base_key(name), None)]
    suffix = _SUFFIX_UNIT.fullmatch(name)
    if suffix:
        readings.append((_base_key(suffix.group(1)), suffix.group(2)))
    return readings


def _base_key(name: str) -> str:
    return re.sub(r"[\s\-]+", "_", name.strip())


@dataclass(frozen=True)
class _Column:
    """One column of a file: its position, its name as written, and its unit (None = nm)."""

    index: int
    name: str
    unit: str | None = None


def _resolve_columns(names: list[str], aliases: dict[str, tuple[str, ...]]) -> dict[str, _Column]:
    """Map fields (x, y, frame, ...) to columns; prefers nm over pixel columns, then alias order."""
    found: dict[str, _Column] = {}
    for fld, accepted in aliases.items():
        ranked = [((unit in _PIXEL_UNITS, accepted.index(base), index), _Column(index, raw.strip(), unit))
                  for index, raw in enumerate(names)
                  for base, unit in _name_candidates(raw) if base in accepted]
        if ranked:
            found[fld] = min(ranked, key=lambda item: item[0])[1]
    if "x" not in found and "y" not in found and len(names) >= 2 and not any(n.strip() for n in names[:2]):
        found["x"], found["y"] = _Column(0, "(unnamed column 1)"), _Column(1, "(unnamed column 2)")
    return found


# --- the source file and the raw columns ---------------------------------------------------------

@dataclass(frozen=True)
class _Source:
    path: Path
    name: str

    @classmethod
    def of(cls, path, display_name: str | None) -> "_Source":
        path = Path(path)
        return cls(path, display_name or path.name)

    def error(self, problem: str, fix: str, line: int | None = None, column: str | None = None,
              kind: type[FormatError] = FormatError) -> FormatError:
        return kind(self.name, problem, fix, line=line, column=column)


def _row_numbers(rows: np.ndarray) -> list[int]:
    return [int(r) + 1 for r in rows]


@dataclass
class _Raw:
    """Columns of one file in the file's own units, before conversion to the table."""

    values: dict[str, np.ndarray]
    columns: dict[str, _Column]
    row_word: str = "row"
    row_numbers: Callable[[np.ndarray], list[int]] = _row_numbers
    text: dict[str, pd.Series] = field(default_factory=dict)
    n_dropped: int = 0
    warnings: list[str] = field(default_factory=list)

    def label(self, fld: str) -> str:
        return self.columns[fld].name


def _raw_from_arrays(arrays: dict[str, tuple[str, np.ndarray | None]], units: dict[str, str]) -> _Raw:
    """Raw columns from {field: (name in file, array or None)}; units per field (default nm)."""
    present = {fld: (name, arr) for fld, (name, arr) in arrays.items() if arr is not None}
    return _Raw(values={fld: np.asarray(arr, dtype=np.float64).ravel() for fld, (_, arr) in present.items()},
                columns={fld: _Column(i, name, units.get(fld)) for i, (fld, (name, _)) in enumerate(present.items())})


# --- raw columns -> LocalisationTable --------------------------------------------------------------

def _to_table(raw: _Raw, src: _Source, fmt: str, *, nm_per_px: tuple[float, float] | None = None,
              frame_base: int = 0) -> LocalisationTable:
    """Drop rows without x/y, convert lengths to nm, frames to 0-based int64."""
    _require_xy(raw, src)
    _drop_bad_xy(raw, src)
    nm = {fld: raw.values[fld] * _nm_scale(raw, fld, src, nm_per_px)
          for fld in _LENGTH_FIELDS if fld in raw.values}
    precision, precision_source = _precision(nm, raw)
    frame = _integer_column(raw, "frame")
    return LocalisationTable(
        x=nm["x"], y=nm["y"], z=_float_column(raw, "z", nm.get("z")),
        frame=None if frame is None else frame - frame_base,
        precision=precision, photons=_float_column(raw, "photons", raw.values.get("photons")),
        channel=_integer_column(raw, "channel"), source_format=fmt,
        precision_source=precision_source, n_dropped=raw.n_dropped, warnings=raw.warnings)


def _require_xy(raw: _Raw, src: _Source) -> None:
    """x and y present, not empty, and every column as long as x."""
    if "x" not in raw.values or "y" not in raw.values:
        seen = ", ".join(f"'{c.name}'" for c in raw.columns.values()) or "none"
        raise src.error(f"no x and y columns found (columns recognised: {seen})", fix=_REEXPORT_FIX)
    n_rows = raw.values["x"].size
    if n_rows == 0:
        raise src.error("the file holds no localisations", fix=_REEXPORT_FIX)
    for fld, values in raw.values.items():
        if values.size != n_rows:
            raise src.error(f"{values.size} values but x has {n_rows}", fix=_REEXPORT_FIX, column=raw.label(fld))


def _drop_bad_xy(raw: _Raw, src: _Source) -> None:
    """Remove rows whose x or y is NaN, inf or text; raise when more than half the rows are bad."""
    x_bad, y_bad = ~np.isfinite(raw.values["x"]), ~np.isfinite(raw.values["y"])
    bad = x_bad | y_bad
    n_bad = int(bad.sum())
    if n_bad == 0:
        return
    if 2 * n_bad > bad.size:
        raise _mostly_bad_error(raw, src, "x" if x_bad.sum() >= y_bad.sum() else "y", n_bad)
    rows = np.flatnonzero(bad)
    shown = ", ".join(map(str, raw.row_numbers(rows[:10]))) + (", ..." if n_bad > 10 else "")
    raw.warnings.append(f"dropped {n_bad} rows with missing or non-numeric x/y ({raw.row_word}s {shown})")
    raw.values = {fld: values[~bad] for fld, values in raw.values.items()}
    raw.n_dropped += n_bad


def _mostly_bad_error(raw: _Raw, src: _Source, fld: str, n_bad: int) -> FormatError:
    first = int(np.flatnonzero(~np.isfinite(raw.values[fld]))[0])
    position = raw.row_numbers(np.array([first]))[0]
    share = f"{n_bad} of {raw.values[fld].size} rows have no usable x/y"
    if fld in raw.text:
        value = raw.text[fld].iloc[first]
        shown = "an empty value" if pd.isna(value) or not str(value).strip() else f"value '{value}'"
        problem = f"{shown} is not a number ({share})"
        fix = ("check that the header and the rows use the same delimiter (comma, semicolon, tab or "
               f"spaces), that decimals use '.', and that column '{raw.label(fld)}' holds numbers")
    else:
        problem = f"{fld} is missing, NaN or infinite in {raw.row_word} {position} ({share})"
        fix = _REEXPORT_FIX
    line = position if raw.row_word == "line" else None
    return src.error(problem, fix, line=line, column=raw.label(fld))


def _nm_scale(raw: _Raw, fld: str, src: _Source, nm_per_px: tuple[float, float] | None) -> float:
    """Factor converting a length column to nm, from its unit (None = nm)."""
    unit = _normalise_unit(raw.columns[fld].unit)
    if unit is None or unit in _NM_PER_UNIT:
        return _NM_PER_UNIT.get(unit, 1.0)
    if unit not in _PIXEL_UNITS:
        raise src.error(f"unit '{raw.columns[fld].unit}' is not a length unit this reader knows",
                        fix="give lengths in nm, um or px", column=raw.label(fld))
    if nm_per_px is None:
        raise src.error("coordinates are in camera pixels and no pixel size was given",
                        fix=_PIXEL_SIZE_FIX, column=raw.label(fld), kind=PixelSizeRequired)
    axis = _LENGTH_FIELDS[fld]
    return float(nm_per_px[axis]) if axis is not None else float(np.sqrt(np.mean(np.square(nm_per_px))))


def _precision(nm: dict[str, np.ndarray], raw: _Raw) -> tuple[np.ndarray | None, str | None]:
    """Lateral precision sigma_xy in nm: one column, or sqrt((sx^2 + sy^2)/2) from two."""
    if "precision" in nm:
        return _float_column(raw, "precision", nm["precision"]), raw.label("precision")
    if "precision_x" in nm and "precision_y" in nm:
        combined = np.sqrt((nm["precision_x"] ** 2 + nm["precision_y"] ** 2) / 2)
        source = f"sqrt(({raw.label('precision_x')}^2 + {raw.label('precision_y')}^2) / 2)"
        precision = _float_column(raw, "precision_x", combined)
        return precision, None if precision is None else source
    return None, None


def _float_column(raw: _Raw, fld: str, values: np.ndarray | None) -> np.ndarray | None:
    """An optional float column; None when it holds no finite value, a warning when some are missing."""
    if values is None:
        return None
    finite = np.isfinite(values)
    if not finite.any():
        return None
    if not finite.all():
        raw.warnings.append(f"column '{raw.label(fld)}': {int((~finite).sum())} values missing or "
                            "non-numeric (kept as NaN)")
    return values


def _integer_column(raw: _Raw, fld: str) -> np.ndarray | None:
    """An optional integer column (frame, channel) as int64; None with a warning if not integral."""
    values = raw.values.get(fld)
    if values is None:
        return None
    if np.isfinite(values).all() and np.array_equal(values, np.round(values)):
        return values.astype(np.int64)
    raw.warnings.append(f"column '{raw.label(fld)}' is not a whole number in every row; it was not kept")
    return None


# --- delimited text --------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Layout:
    """Where the rows of a text table start and how they are split."""

    skip: int                 # physical lines before the first data row
    sep: str
    encoding: str
    names: list[str] = field(default_factory=list)
    decimal: str = "."


_HEAD_BYTES = 64 * 1024
_MAX_LINE_BYTES = 1024 * 1024
_MAX_CONTROL_SHARE = 0.05            # more control characters than this: not a text table
_UTF16_FIX = ("save the table as UTF-8 text (in Excel: Save As > 'CSV UTF-8'; in a text editor: "
              "encoding UTF-8) and upload that file")
_BINARY_FIX = f"upload one of: {', '.join(FORMAT_LABELS.values())}"


def text_problem(head: bytes) -> tuple[str, str] | None:
    """(problem, fix) when the first bytes of a file cannot be a UTF-8 or Latin-1 text table, else None."""
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "the file is UTF-16 (or UTF-32) text, which this reader does not decode", _UTF16_FIX
    if b"\x00" in head:
        return "this is a binary file of an unknown format", _BINARY_FIX
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as err:     # a character cut by the end of the sample, or Latin-1
        text = head[:err.start].decode("utf-8") if err.start >= len(head) - 3 else head.decode("latin-1")
    control = sum(1 for ch in text if (ord(ch) < 32 and ch not in "\t\r\n\f") or 127 <= ord(ch) < 160)
    if control > _MAX_CONTROL_SHARE * max(len(text), 1):
        return (f"this is not a text table ({control / max(len(text), 1):.0%} of its first bytes are control "
                "characters)"), _BINARY_FIX
    return None


def _read_head(src: _Source, n_lines: int = 64) -> tuple[list[str], str]:
    """First lines of a text file (newlines removed) and the encoding that decodes them."""
    with open(src.path, "rb") as handle:
        head = handle.read(_MAX_LINE_BYTES)
    problem = text_problem(head[:_HEAD_BYTES])
    if problem:
        raise src.error(*problem)
    if len(head) == _MAX_LINE_BYTES and b"\n" not in head and b"\r" not in head:
        raise src.error(f"the first line is longer than {_MAX_LINE_BYTES // 1024 // 1024} MB",
                        fix="upload a table with one localisation per line")
    for encoding in ("utf-8-sig", "latin-1"):
        try:
            with open(src.path, encoding=encoding) as handle:
                lines = [line.rstrip("\r\n") for line in islice(handle, n_lines)]
            break
        except UnicodeDecodeError:
            continue
    if not any(line.strip() for line in lines):
        raise src.error("the file is empty", fix="upload the exported localisation table, not an empty file")
    return lines, encoding


def _split_line(line: str, sep: str) -> list[str]:
    if sep == _WHITESPACE:
        return line.split()
    return next(csv.reader([line], delimiter=sep, skipinitialspace=True))


def _split_header(line: str, sep: str) -> list[str]:
    """Header names; unwraps a header saved as one quoted field ('\"\"\"id\"\",\"\"x [nm]\"\"\"')."""
    names = _split_line(line, sep)
    if len(names) == 1 and sep != _WHITESPACE and sep in names[0]:
        names = _split_line(names[0], sep)
    return [name.strip().strip("\"'").strip() for name in names]


def _sniff_layout(src: _Source, lines: list[str], encoding: str) -> _Layout:
    """Find the header line (first non-comment line) and the delimiter that splits it like the rows."""
    header_at = next((i for i, line in enumerate(lines) if line.strip() and not line.lstrip().startswith("#")), None)
    if header_at is None:
        raise src.error("no header row found after the '#' comment lines",
                        fix="add a header row naming the columns, e.g. x,y,frame")
    data = [line for line in lines[header_at + 1:] if line.strip()][:20]
    if not data:
        raise src.error("the file has a header but no localisation rows", line=header_at + 2,
                        fix="export the table again with its rows; an empty result cannot be uploaded")
    header = lines[header_at]
    splits = {sep: (_split_header(header, sep), Counter(len(_split_line(line, sep)) for line in data)
                    .most_common(1)[0][0]) for sep in (",", "\t", ";", _WHITESPACE)}
    chosen = (next((s for s, (names, n) in splits.items() if len(names) > 1 and n == len(names)), None)
              or next((s for s, (names, n) in splits.items() if len(names) > 1 and n > 1), None))
    if chosen is None:
        raise _delimiter_error(src, splits, header_at, data[0])
    if splits[chosen][1] > len(splits[chosen][0]) + _trailing_empty(data[0], chosen):
        raise _delimiter_error(src, splits, header_at, data[0], chosen)
    decimal = "," if chosen != "," and re.search(r"\d,\d", data[0]) and "." not in data[0] else "."
    return _Layout(header_at + 1, chosen, encoding, splits[chosen][0], decimal)


def _trailing_empty(row: str, sep: str) -> int:
    """1 when the row ends with an empty field (a delimiter at the end of the line), else 0."""
    return int(sep != _WHITESPACE and row.rstrip().endswith(sep))


def _delimiter_error(src: _Source, splits: dict, header_at: int, row: str, chosen: str | None = None) -> FormatError:
    names = max((names for names, _ in splits.values()), key=len)
    if chosen is not None:
        label = {",": "comma", "\t": "tab", ";": "semicolon"}.get(chosen, "space")
        problem = (f"the header has {len(splits[chosen][0])} {label}-separated columns but most rows have "
                   f"{splits[chosen][1]} values (first row: '{row.strip()[:60]}'): a decimal comma, or the "
                   "delimiter inside a value")
    elif len(names) <= 1:
        problem = f"all values are in one column ('{names[0] if names else ''}'): the delimiter was not recognised"
    else:
        problem = (f"the header splits into {len(names)} columns but the rows do not split the same way "
                   f"(first row: '{row.strip()[:60]}')")
    return src.error(problem, line=header_at + 1,
                     fix="save the table with one delimiter (comma, semicolon, tab or spaces) for the header "
                         "and every row, '.' as the decimal mark, and a header row such as x,y")


def _read_delimited(src: _Source, aliases: dict[str, tuple[str, ...]]) -> _Raw:
    """Read a delimited table with a header row into raw columns."""
    lines, encoding = _read_head(src)
    layout = _sniff_layout(src, lines, encoding)
    columns = _resolve_columns(layout.names, aliases)
    if "x" not in columns or "y" not in columns:
        raise _no_xy_error(src, layout)
    for fld in ("x", "y"):
        same = [i + 1 for i, name in enumerate(layout.names) if name.strip() == columns[fld].name]
        if len(same) > 1:
            raise src.error(f"{len(same)} columns (numbers {', '.join(map(str, same))}) are named "
                            f"'{columns[fld].name}', so it is not clear which holds {fld}", line=layout.skip,
                            column=columns[fld].name, fix="rename or remove the duplicated column and upload again")
    return _read_columns(src, layout, columns)


def _no_xy_error(src: _Source, layout: _Layout) -> FormatError:
    seen = ", ".join(f"'{name}'" for name in layout.names)
    return src.error(f"no x and y columns found (columns seen: {seen})", line=layout.skip,
                     fix="name the coordinate columns with one of the accepted names: x, x_nm, x [nm], x (nm), "
                         "x [um], x [px], xnm, xnano, position_x (and the same for y); lengths are read as nm "
                         "unless the name says um or px")


def _read_columns(src: _Source, layout: _Layout, columns: dict[str, _Column]) -> _Raw:
    """Parse the needed columns with pandas' C engine; text in them becomes NaN (kept in raw.text)."""
    try:
        frame = pd.read_csv(src.path, sep=layout.sep, header=None, skiprows=layout.skip,
                            usecols=sorted({c.index for c in columns.values()}), decimal=layout.decimal,
                            encoding=layout.encoding, skipinitialspace=True, low_memory=False, engine="c")
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError) as err:
        raise src.error(f"the rows could not be parsed ({err})", fix=_REEXPORT_FIX) from err
    raw = _Raw(values={}, columns=columns, row_word="line",
               row_numbers=lambda rows: _data_line_numbers(src.path, layout, rows))
    for fld, column in columns.items():
        series = frame[column.index]
        if series.dtype.kind in "fiub":
            raw.values[fld] = series.to_numpy(dtype=np.float64)
        else:
            raw.text[fld] = series
            raw.values[fld] = pd.to_numeric(series, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    return raw


def _data_line_numbers(path: Path, layout: _Layout, rows: np.ndarray) -> list[int]:
    """1-based file line numbers of 0-based data rows (blank lines are skipped, as pandas does)."""
    wanted = {int(r) for r in rows}
    found: dict[int, int] = {}
    row = -1
    with open(path, encoding=layout.encoding, errors="replace") as handle:
        for number, line in enumerate(handle, start=1):
            if number <= layout.skip or not line.strip():
                continue
            row += 1
            if row in wanted:
                found[row] = number
                if len(found) == len(wanted):
                    break
    return [found.get(int(r), layout.skip + int(r) + 1) for r in rows]


# --- readers, one per format -------------------------------------------------------------------------

def _user_pixels(pixel_size_nm: float | None) -> tuple[float, float] | None:
    return None if pixel_size_nm is None else (pixel_size_nm, pixel_size_nm)


def _read_thunderstorm(src: _Source, pixel_size_nm: float | None) -> LocalisationTable:
    raw = _read_delimited(src, _THUNDERSTORM_ALIASES)
    return _to_table(raw, src, "thunderstorm", nm_per_px=_user_pixels(pixel_size_nm), frame_base=1)


def _read_smap_csv(src: _Source, pixel_size_nm: float | None) -> LocalisationTable:
    raw = _read_delimited(src, _ALIASES)
    return _to_table(raw, src, "smap_csv", nm_per_px=_user_pixels(pixel_size_nm), frame_base=1)


def _read_generic_csv(src: _Source, pixel_size_nm: float | None) -> LocalisationTable:
    """Generic table: lengths in nm unless the header says um or px; frames kept as written."""
    raw = _read_delimited(src, _ALIASES)
    return _to_table(raw, src, "generic_csv", nm_per_px=_user_pixels(pixel_size_nm))


def _read_decode_csv(src: _Source, pixel_size_nm: float | None) -> LocalisationTable:
    """DECODE CSV: '#' lines with JSON metadata (xy_unit, px_size), then a header row."""
    lines, _ = _read_head(src)
    meta = {}
    for line in lines:
        if line.startswith("#"):
            try:
                document = json.loads(line.lstrip("#").strip())
            except json.JSONDecodeError:
                continue
            if isinstance(document, dict):
                meta.update(document)
    raw = _read_delimited(src, _ALIASES)
    return _decode_table(raw, src, "decode_csv", meta, pixel_size_nm)


def _read_decode_h5(src: _Source, pixel_size_nm: float | None) -> LocalisationTable:
    """DECODE HDF5: data/xyz (N x 3), data/xyz_sig, data/frame_ix (0-based), data/phot; meta attrs."""
    with _open_hdf5(src) as h5:
        data = h5["data"] if "data" in h5 else {}
        xyz, sigma = _h5_array(data, "xyz"), _h5_array(data, "xyz_sig")
        frame, photons = _h5_array(data, "frame_ix"), _h5_array(data, "phot")
        meta = dict(h5["meta"].attrs) if "meta" in h5 else {}
    if xyz is None or xyz.ndim != 2 or xyz.shape[1] < 2:
        raise src.error("data/xyz is missing or empty", fix=_REEXPORT_FIX, column="data/xyz")
    sigma = sigma if sigma is not None and sigma.shape == xyz.shape else None
    raw = _raw_from_arrays({
        "x": ("data/xyz[:, 0]", xyz[:, 0]), "y": ("data/xyz[:, 1]", xyz[:, 1]),
        "z": ("data/xyz[:, 2]", xyz[:, 2] if xyz.shape[1] > 2 else None),
        "frame": ("data/frame_ix", frame), "photons": ("data/phot", photons),
        "precision_x": ("data/xyz_sig[:, 0]", None if sigma is None else sigma[:, 0]),
        "precision_y": ("data/xyz_sig[:, 1]", None if sigma is None else sigma[:, 1]),
    }, units={})
    return _decode_table(raw, src, "decode_h5", meta, pixel_size_nm)


def _decode_table(raw: _Raw, src: _Source, fmt: str, meta: dict,
                  pixel_size_nm: float | None) -> LocalisationTable:
    """Apply DECODE's xy_unit ('px' or 'nm') and anisotropic px_size [x, y] (nm/px); z is nm."""
    xy_unit = _text(meta.get("xy_unit", "px")).lower()
    if xy_unit not in ("px", "nm"):
        raise src.error(f"xy_unit '{xy_unit}' is neither 'px' nor 'nm'", fix=_REEXPORT_FIX, column="xy_unit")
    nm_per_px = None
    if xy_unit == "px":
        file_px = meta.get("px_size")
        file_px = None if file_px is None else tuple(np.resize(np.asarray(file_px, float).ravel(), 2))
        nm_per_px = _choose_pixel_size(src, raw, file_px, pixel_size_nm, "the px_size metadata")
    for fld in ("x", "y", "precision_x", "precision_y"):
        if fld in raw.columns:
            raw.columns[fld] = _Column(raw.columns[fld].index, raw.columns[fld].name, xy_unit)
    return _to_table(raw, src, fmt, nm_per_px=nm_per_px)


def _read_picasso(src: _Source, pixel_size_nm: float | None) -> LocalisationTable:
    """Picasso /locs: x, y, lpx, lpy in camera px (pixel size from YAML or /metadata); z nm; frame 0-based."""
    with _open_hdf5(src) as h5:
        locs = h5["locs"][()]
        documents = _h5_metadata_documents(h5)
    names = locs.dtype.names or ()
    pick = {fld: (name, locs[name] if name in names else None) for fld, name in (
        ("x", "x"), ("y", "y"), ("z", "z"), ("frame", "frame"), ("photons", "photons"),
        ("precision_x", "lpx"), ("precision_y", "lpy"))}
    raw = _raw_from_arrays(pick, units={"x": "px", "y": "px", "precision_x": "px", "precision_y": "px"})
    yaml_files = _picasso_yaml_files(src)
    documents = [*documents, *(doc for path in yaml_files for doc in _yaml_documents(src, path))]
    where = " or ".join([p.name for p in yaml_files] or [f"{Path(src.name).stem}.yaml"]) + " or /metadata"
    nm_per_px = _choose_pixel_size(src, raw, _last_pixelsize(documents), pixel_size_nm, where)
    return _to_table(raw, src, "picasso", nm_per_px=nm_per_px)


def _read_smap_mat(src: _Source, pixel_size_nm: float | None) -> LocalisationTable:
    """SMAP _sml.mat: saveloc.loc.<field> (xnm, ynm, znm, frame 1-based, locprecnm, phot, channel)."""
    fields = _smap_mat_fields(src)
    pick = {fld: (name, fields.get(name)) for fld, name in (
        ("x", "xnm"), ("y", "ynm"), ("z", "znm"), ("frame", "frame"), ("precision", "locprecnm"),
        ("photons", "phot"), ("channel", "channel"))}
    if pick["x"][1] is None or pick["y"][1] is None:
        raise src.error(f"saveloc.loc has no xnm/ynm (fields: {', '.join(sorted(fields)) or 'none'})",
                        fix="save the localisations from SMAP again (File > Save > _sml.mat)")
    return _to_table(_raw_from_arrays(pick, units={}), src, "smap_mat", frame_base=1)


def _read_rapidstorm(src: _Source, pixel_size_nm: float | None) -> LocalisationTable:
    """rapidSTORM: '# <localizations>' XML header naming each field and its unit, then whitespace rows."""
    lines, encoding = _read_head(src)
    try:
        root = ElementTree.fromstring(lines[0].lstrip("#").strip())
    except ElementTree.ParseError as err:
        raise src.error(f"the XML header could not be read ({err})", fix=_REEXPORT_FIX, line=1) from err
    identifiers = {"Position-0-0": "x", "Position-1-0": "y", "Position-2-0": "z", "ImageNumber-0-0": "frame",
                   "Position-0-0-uncertainty": "precision_x", "Position-1-0-uncertainty": "precision_y"}
    columns = {identifiers[f.get("identifier")]: _Column(i, f.get("identifier"), f.get("unit"))
               for i, f in enumerate(root.iter("field")) if f.get("identifier") in identifiers}
    if "x" not in columns or "y" not in columns:
        raise src.error("the XML header has no Position-0-0 / Position-1-0 fields", fix=_REEXPORT_FIX, line=1)
    raw = _read_columns(src, _Layout(1, _WHITESPACE, encoding), columns)
    return _to_table(raw, src, "rapidstorm", nm_per_px=_user_pixels(pixel_size_nm))


def _read_smlm(src: _Source, pixel_size_nm: float | None) -> LocalisationTable:
    """ShareLoc .smlm: zip with manifest.json and row-interleaved little-endian binary tables."""
    try:
        with zipfile.ZipFile(src.path) as archive:
            manifest = _smlm_manifest(src, archive)
            tables = [_smlm_table(src, archive, manifest, info)
                      for info in manifest.get("files", []) if info.get("type") == "table"]
    except FormatError:
        raise
    except (KeyError, TypeError, ValueError, zipfile.BadZipFile) as err:
        raise src.error(f"the archive does not match its manifest.json ({err!r})", fix=_REEXPORT_FIX) from err
    if not tables:
        raise src.error("manifest.json lists no localisation table", fix=_REEXPORT_FIX)
    raw = tables[0] if len(tables) == 1 else _concat_channels(tables)
    return _to_table(raw, src, "smlm", nm_per_px=_user_pixels(pixel_size_nm))


# --- format helpers ------------------------------------------------------------------------------------

def _text(value) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, np.ndarray):
        return _text(value.ravel()[0]) if value.size else ""
    return str(value)


def _open_hdf5(src: _Source) -> h5py.File:
    try:
        return h5py.File(src.path, "r")
    except OSError as err:
        raise src.error(f"the HDF5 file could not be opened ({err})",
                        fix="check that the upload completed and the file opens in the software that wrote it"
                        ) from err


def _h5_array(group, name: str) -> np.ndarray | None:
    """Dataset contents, or None when it is missing or empty (h5py.Empty or zero size)."""
    if name not in group:
        return None
    dataset = group[name]
    if dataset.shape is None or dataset.size == 0:
        return None
    return dataset[()]


def _h5_metadata_documents(h5: h5py.File) -> list:
    """Documents of a Picasso /metadata dataset (JSON or YAML text), if present."""
    if "metadata" not in h5 or not isinstance(h5["metadata"], h5py.Dataset):
        return []
    try:
        return list(yaml.safe_load_all(_text(h5["metadata"][()])))
    except yaml.YAMLError:
        return []


def _picasso_yaml_files(src: _Source) -> list[Path]:
    """Same-stem .yaml/.yml beside the file, by stored name and by the user's file name."""
    stems = dict.fromkeys([src.path.stem, Path(src.name).stem])
    candidates = [src.path.parent / f"{stem}{ext}" for stem in stems for ext in (".yaml", ".yml")]
    return [path for path in candidates if path.is_file()]


def _yaml_documents(src: _Source, path: Path) -> list:
    try:
        with open(path, encoding="utf-8") as handle:
            return list(yaml.safe_load_all(handle))
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        raise FormatError(path.name, f"the Picasso YAML could not be read ({err})",
                          fix=f"upload the .yaml Picasso saved with {src.name}, unedited") from err


def _last_pixelsize(documents: list) -> tuple[float, float] | None:
    """The last non-null, positive 'Pixelsize' (nm/px) over all documents (multi-document YAML)."""
    found = None
    for document in documents:
        for entry in document if isinstance(document, list) else [document]:
            value = entry.get("Pixelsize") if isinstance(entry, dict) else None
            try:
                value = float(value)
            except (TypeError, ValueError):
                continue
            if np.isfinite(value) and value > 0:
                found = (value, value)
    return found


def _choose_pixel_size(src: _Source, raw: _Raw, file_px: tuple[float, float] | None,
                       pixel_size_nm: float | None, where: str) -> tuple[float, float]:
    """The file's pixel size wins (warning if the user gave another); else the user's; else raise."""
    if file_px is not None:
        if pixel_size_nm is not None and not np.allclose(file_px, pixel_size_nm, rtol=1e-6):
            raw.warnings.append(f"pixel size {_fmt_px(file_px)} nm from the file used; the {pixel_size_nm:g} nm "
                                "given with the upload was ignored")
        return file_px
    if pixel_size_nm is not None:
        return (pixel_size_nm, pixel_size_nm)
    raise src.error(f"x and y are in camera pixels and no pixel size was found (looked in: {where})",
                    fix=_PIXEL_SIZE_FIX, kind=PixelSizeRequired)


def _fmt_px(nm_per_px: tuple[float, float]) -> str:
    x, y = nm_per_px
    return f"{x:g}" if x == y else f"{x:g} x {y:g}"


def _smap_mat_fields(src: _Source) -> dict[str, np.ndarray]:
    """saveloc.loc fields of a SMAP .mat: MATLAB v7.3 (HDF5) or older (scipy.io)."""
    if h5py.is_hdf5(src.path):
        with _open_hdf5(src) as h5:
            loc = h5.get("saveloc/loc")
            if not isinstance(loc, h5py.Group):
                raise src.error("no saveloc/loc in this MAT file", fix="upload the _sml.mat saved by SMAP")
            return {name: np.ravel(loc[name][()]) for name in loc
                    if isinstance(loc[name], h5py.Dataset) and loc[name].dtype.kind in "fiu"}
    try:
        loc = loadmat(src.path, simplify_cells=True)["saveloc"]["loc"]
    except (KeyError, TypeError, ValueError) as err:
        raise src.error(f"no saveloc.loc in this MAT file ({err})", fix="upload the _sml.mat saved by SMAP") from err
    return {name: np.ravel(value) for name, value in loc.items()
            if isinstance(value, np.ndarray) and value.dtype.kind in "fiu"}


_SMLM_MAX_MANIFEST_BYTES = 1024 * 1024
_SMLM_MAX_RATIO = 100                      # binary float tables compress ~1-3 : 1; a zip bomb ~1000 : 1
_SMLM_MAX_TABLE_BYTES = 8 * 1024 ** 3


def _smlm_member(src: _Source, archive: zipfile.ZipFile, name: str, expected: int | None = None,
                 limit: int = _SMLM_MAX_TABLE_BYTES) -> bytes:
    """One member of a .smlm zip, refused before decompression when its declared size is wrong
    (``expected`` bytes), above ``limit`` or more than _SMLM_MAX_RATIO times its compressed size."""
    info = archive.getinfo(name)
    if expected is not None and info.file_size != expected:
        raise src.error(f"table '{name}' has {info.file_size} bytes, the manifest implies {expected}",
                        fix=_REEXPORT_FIX)
    ratio = info.file_size / max(info.compress_size, 1)
    if info.file_size > limit or (info.file_size > _SMLM_MAX_RATIO * 1024 and ratio > _SMLM_MAX_RATIO):
        raise src.error(f"'{name}' would expand from {info.compress_size:,} to {info.file_size:,} bytes "
                        f"(ratio {ratio:,.0f} : 1; the limits are {_SMLM_MAX_RATIO} : 1 and "
                        f"{limit:,} bytes, a safeguard against zip bombs)", fix=_REEXPORT_FIX)
    return archive.read(name)


def _smlm_manifest(src: _Source, archive: zipfile.ZipFile) -> dict:
    try:
        return json.loads(_smlm_member(src, archive, "manifest.json", limit=_SMLM_MAX_MANIFEST_BYTES).decode("utf-8"))
    except (KeyError, json.JSONDecodeError, UnicodeDecodeError) as err:
        raise src.error(f"manifest.json is missing or unreadable ({err})", fix=_REEXPORT_FIX) from err


def _smlm_table(src: _Source, archive: zipfile.ZipFile, manifest: dict, info: dict) -> _Raw:
    """One binary table of a .smlm file; per-column 'offset' values are added (manifest spec 0.2)."""
    spec = manifest.get("formats", {}).get(info.get("format"), {})
    if spec.get("mode") != "binary":
        raise src.error(f"table '{info.get('name')}' is not a binary table", fix="export as .smlm binary or CSV")
    headers = [h.lstrip("_") for h in spec["headers"]]
    shapes = spec.get("shape") or [1] * len(headers)
    dtype = np.dtype([(h, np.dtype(d).newbyteorder("<"), _smlm_shape(s))
                      for h, d, s in zip(headers, spec["dtype"], shapes)])
    rows = int(info["rows"])
    payload = _smlm_member(src, archive, info["name"], expected=rows * dtype.itemsize)
    table = np.frombuffer(payload, dtype=dtype, count=rows)
    units = spec.get("units") or [""] * len(headers)
    columns = {fld: _Column(c.index, c.name, _normalise_unit(units[c.index]) or c.unit)
               for fld, c in _resolve_columns(headers, _ALIASES).items()}
    offsets = info.get("offset") or {}
    values = {fld: table[c.name].astype(np.float64) + float(offsets.get(c.name, 0) or 0)
              for fld, c in columns.items()}
    return _Raw(values=values, columns=columns)


def _smlm_shape(shape) -> tuple[int, ...]:
    dims = tuple(int(s) for s in np.atleast_1d(shape))
    return () if dims in ((1,), ()) else dims


def _concat_channels(tables: list[_Raw]) -> _Raw:
    """Several .smlm tables in one file: stacked, channel = table number unless a channel column exists."""
    shared = set.intersection(*(set(t.values) for t in tables))
    values = {fld: np.concatenate([t.values[fld] for t in tables]) for fld in shared}
    columns = {fld: tables[0].columns[fld] for fld in shared}
    if "channel" not in values:
        values["channel"] = np.concatenate([np.full(t.values["x"].size, i, float) for i, t in enumerate(tables)])
        columns["channel"] = _Column(-1, "table number")
    return _Raw(values=values, columns=columns)


# --- detection and entry points ----------------------------------------------------------------------

_READERS: dict[str, Callable[[_Source, float | None], LocalisationTable]] = {
    "thunderstorm": _read_thunderstorm, "smap_csv": _read_smap_csv, "smap_mat": _read_smap_mat,
    "picasso": _read_picasso, "decode_h5": _read_decode_h5, "decode_csv": _read_decode_csv,
    "rapidstorm": _read_rapidstorm, "smlm": _read_smlm, "generic_csv": _read_generic_csv,
}


def _check_file(src: _Source) -> None:
    if not src.path.is_file():
        raise src.error("the file was not found", fix="upload the file again")
    if src.path.stat().st_size == 0:
        raise src.error("the file is empty", fix="upload the exported localisation table, not an empty file")


def _detect(src: _Source) -> str:
    if h5py.is_hdf5(src.path):
        return _detect_hdf5(src)
    if zipfile.is_zipfile(src.path):
        with zipfile.ZipFile(src.path) as archive:
            if "manifest.json" in archive.namelist():
                return "smlm"
        raise src.error("a zip archive without manifest.json (not a .smlm file)",
                        fix="upload the localisation table itself (CSV, HDF5 or .smlm), not a zip or Excel file")
    with open(src.path, "rb") as handle:
        magic = handle.read(6)
    if magic == b"MATLAB":
        return "smap_mat"
    if magic.startswith(b"PK\x03\x04"):
        raise src.error("the zip archive is incomplete or damaged (its directory at the end is missing)",
                        fix="check that the upload completed; otherwise " + _REEXPORT_FIX)
    return _detect_text(src)


def _detect_hdf5(src: _Source) -> str:
    with _open_hdf5(src) as h5:
        keys = set(h5.keys())
        if "locs" in keys:
            return "picasso"
        if "saveloc" in keys:
            return "smap_mat"
        if "data" in keys and isinstance(h5["data"], h5py.Group) and "xyz" in h5["data"]:
            return "decode_h5"
    raise src.error(f"HDF5 file of an unknown layout (top-level keys: {', '.join(sorted(keys)) or 'none'})",
                    fix="upload a Picasso (/locs), DECODE (data/xyz) or SMAP (saveloc/loc) HDF5 file, or a CSV")


def _detect_text(src: _Source) -> str:
    lines, encoding = _read_head(src)
    first = next(line for line in lines if line.strip()).strip()
    if first.startswith("# <localizations"):
        return "rapidstorm"
    if first.startswith("# DECODE"):
        return "decode_csv"
    names = {" ".join(n.lower().split()) for n in _sniff_layout(src, lines, encoding).names}
    if any(re.fullmatch(r"x\s*\[nm\]", name) for name in names):
        return "thunderstorm"
    if {"xnm", "ynm"} <= names:
        return "smap_csv"
    return "generic_csv"


def detect_format(path, *, display_name: str | None = None) -> str:
    """Format key of a localisation file ('thunderstorm', 'picasso', ...) from its content."""
    src = _Source.of(path, display_name)
    _check_file(src)
    return _detect(src)


def read_localisations(path, *, pixel_size_nm: float | None = None, fmt: str | None = None,
                       display_name: str | None = None) -> LocalisationTable:
    """Read any supported localisation file into a LocalisationTable (x, y, z, precision in nm).

    ``pixel_size_nm`` (nm per camera pixel) is used only for coordinates in pixels when the file
    itself carries no pixel size; ``fmt`` skips detection; ``display_name`` is the file name used
    in messages (default: the path's name).
    """
    src = _Source.of(path, display_name)
    _check_file(src)
    if pixel_size_nm is not None and not (np.isfinite(pixel_size_nm) and pixel_size_nm > 0):
        raise src.error(f"pixel size {pixel_size_nm} nm is not a positive number",
                        fix="enter the effective pixel size in nm, e.g. 100")
    fmt = fmt or _detect(src)
    if fmt not in _READERS:
        raise src.error(f"unknown format '{fmt}'", fix=f"use one of: {', '.join(_READERS)}")
    try:
        return _READERS[fmt](src, None if pixel_size_nm is None else float(pixel_size_nm))
    except FormatError:
        raise
    except (OSError, EOFError, KeyError, IndexError, TypeError, ValueError, NotImplementedError,
            zipfile.BadZipFile, zlib.error) as err:     # damaged content that the reader's own checks let through
        raise src.error(f"the file could not be read as {FORMAT_LABELS.get(fmt, fmt)}: it is damaged or "
                        f"incomplete ({type(err).__name__}: {str(err)[:200]})",
                        fix="check that the upload completed and the file opens in the software that wrote it; "
                            "otherwise " + _REEXPORT_FIX) from err
