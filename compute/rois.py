"""Polygon ROI files drawn in Fiji: naming rule, reading, unit check and repair (docs/SCIENCE.md §7).

A detection file ``cell1.csv`` owns the ROI files ``cell1_ROI*.csv``. Each ROI file lists one
polygon vertex per row (header ``X,Y``, micrometres by default). :func:`roi_polygon` converts the
vertices to nm, checks the unit against the localisations, and repairs self-intersections.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import Iterable

import numpy as np
import shapely
from scipy.spatial import ConvexHull, QhullError

from compute.formats import text_problem


class RoiError(ValueError):
    """An unusable ROI. str(err) names the ROI file, the line if relevant, and the fix."""

    def __init__(self, file: str, problem: str, fix: str, line: int | None = None):
        self.file = file
        self.problem = problem
        self.fix = fix
        self.line = line
        where = file if line is None else f"{file}, line {line}"
        super().__init__(f"{where}: {problem.rstrip('.')}. Fix: {fix}")

    def __reduce__(self):
        return type(self), (self.file, self.problem, self.fix, self.line)


MIN_ROI_AREA_UM2 = 9.0
_NM_PER_UM = 1000.0
_MIN_OVERLAP = 0.5
_ROI_SUFFIX = re.compile(r"_ROI.*\.csv", re.IGNORECASE | re.DOTALL)
_DRAW_FIX = ("draw the polygon in Fiji on the rendered image calibrated in um and export its coordinates "
             "(Edit > Selection > Properties > List coordinates, saved as CSV with header X,Y)")


# --- naming rule ---------------------------------------------------------------------------------

def is_roi_filename(name: str) -> bool:
    """True for '<stem>_ROI<anything>.csv' ('ROI' and '.csv' in any case)."""
    return re.fullmatch(r".+" + _ROI_SUFFIX.pattern, PurePath(name).name, _ROI_SUFFIX.flags) is not None


def _belongs_to(roi_name: str, stem: str) -> bool:
    """True when roi_name is '{stem}_ROI*.csv' for exactly this stem."""
    name = PurePath(roi_name).name
    return name.startswith(stem) and _ROI_SUFFIX.fullmatch(name[len(stem):]) is not None


def _natural_key(name: str) -> list:
    """Sort key that orders numbers by value: ROI_2 before ROI_10."""
    return [(0, int(part), "") if part.isdigit() else (1, 0, part.lower())
            for part in re.split(r"(\d+)", PurePath(name).name) if part]


def roi_files_for(detection_name: str, candidate_names: Iterable[str]) -> list[str]:
    """ROI files of one detection file, '{stem}_ROI*.csv' with stem = name without extension, natural order."""
    stem = PurePath(detection_name).stem
    return sorted((n for n in candidate_names if _belongs_to(n, stem)), key=_natural_key)


def match_roi_files(detection_names: Iterable[str], roi_names: Iterable[str]
                    ) -> tuple[dict[str, list[str]], list[str]]:
    """Assign each ROI file to the detection file with the longest matching stem.

    Returns ({detection name: [ROI names, natural order]}, [ROI names matching no detection file]).
    """
    detection_names = list(detection_names)
    matched: dict[str, list[str]] = {name: [] for name in detection_names}
    unmatched = []
    for roi in roi_names:
        owners = [d for d in detection_names if _belongs_to(roi, PurePath(d).stem)]
        if owners:
            matched[max(owners, key=lambda d: len(PurePath(d).stem))].append(roi)
        else:
            unmatched.append(roi)
    return {name: sorted(rois, key=_natural_key) for name, rois in matched.items()}, unmatched


_ROI_WORD = re.compile(r"(?:^|[^a-z])roi(?:[^a-z]|$)", re.IGNORECASE)
_ROI_TAIL = re.compile(r"^[\s._-]*roi[\s._-]*", re.IGNORECASE)


def misnamed_roi_fix(name: str, detection_names: Iterable[str]) -> str | None:
    """For a '.csv' that is not an ROI file by the naming rule but looks meant as one, the name it
    should have; else None.

    Looks meant as one: the word 'ROI' in the name (e.g. 'cell7-ROI1.csv', 'cell7 roi 1.csv'). The
    fix attaches it to the detection file with the longest stem the name starts with
    ('cell7-ROI1.csv' -> 'cell7_ROI1.csv'), or replaces the separator before 'ROI' with '_' (a generic
    '{DETECTION_FILE_NAME}_ROI_1.csv' when that gives no ROI name).
    """
    path = PurePath(name)
    if path.suffix.lower() != ".csv" or is_roi_filename(name) or not _ROI_WORD.search(path.stem):
        return None
    owners = [PurePath(d).stem for d in detection_names
              if d != name and path.stem.lower().startswith(PurePath(d).stem.lower())]
    if owners:
        stem = max(owners, key=len)
        tail = _ROI_TAIL.sub("", path.stem[len(stem):]).strip(" ._-")
        return f"{stem}_ROI{('_' + tail) if tail else ''}.csv"
    renamed = re.sub(r"[\s.-]*roi", "_ROI", path.stem, count=1, flags=re.IGNORECASE) + ".csv"
    return renamed if is_roi_filename(renamed) and not renamed.startswith("_") else "{DETECTION_FILE_NAME}_ROI_1.csv"


# --- reading ---------------------------------------------------------------------------------------

def read_roi_vertices(path, *, display_name: str | None = None) -> np.ndarray:
    """Vertices (n, 2) float64 of a Fiji ROI export, in the file's own units.

    Accepts a header X,Y in any case or no header; comma, semicolon, tab or whitespace delimiters; an
    optional leading index column; a BOM. A closing vertex repeating the first one is removed.
    """
    name = display_name or Path(path).name
    rows = _non_blank_lines(path, name)
    sep = _roi_delimiter(rows[0][1])
    cells = [(number, [c.strip().strip("\"'") for c in _split(line, sep)]) for number, line in rows]
    has_header = not all(_is_number(c, sep) for c in cells[0][1] if c)
    data = cells[1:] if has_header else cells
    if not data:
        raise RoiError(name, "the file has a header but no vertices", _DRAW_FIX, line=2)
    ix, iy = _xy_columns(cells[0][1] if has_header else None, data, name)
    vertices = np.array([[_number(row, i, number, name, sep) for i in (ix, iy)] for number, row in data])
    while len(vertices) > 1 and np.array_equal(vertices[0], vertices[-1]):
        vertices = vertices[:-1]
    return vertices


MAX_ROI_FILE_BYTES = 10 * 1024 * 1024     # a Fiji polygon export is a few kB; 10 MB is ~500,000 vertices


def _non_blank_lines(path, name: str) -> list[tuple[int, str]]:
    if Path(path).stat().st_size > MAX_ROI_FILE_BYTES:
        raise RoiError(name, f"the ROI file is larger than {MAX_ROI_FILE_BYTES // 1024 // 1024} MB", _DRAW_FIX)
    raw = Path(path).read_bytes()
    problem = text_problem(raw[:64 * 1024])
    if problem:
        raise RoiError(name, problem[0], "upload the polygon as a UTF-8 CSV with header X,Y (one vertex per row); "
                       + _DRAW_FIX)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
    rows = [(number, line) for number, line in enumerate(text.splitlines(), start=1) if line.strip()]
    if not rows:
        raise RoiError(name, "the ROI file is empty", _DRAW_FIX)
    return rows


def _roi_delimiter(line: str) -> str | None:
    """',' ';' or tab when present in the first line, else None (whitespace)."""
    return next((sep for sep in ("\t", ";", ",") if sep in line), None)


def _split(line: str, sep: str | None) -> list[str]:
    return line.split(sep) if sep else line.split()


def _is_number(text: str, sep: str | None) -> bool:
    try:
        float(_decimal_point(text, sep))
        return True
    except ValueError:
        return False


def _decimal_point(text: str, sep: str | None) -> str:
    """Accept a decimal comma when ',' is not the delimiter (Fiji in some locales)."""
    return text if sep == "," else text.replace(",", ".")


def _xy_columns(header: list[str] | None, data: list[tuple[int, list[str]]], name: str) -> tuple[int, int]:
    """Positions of X and Y: by header name, else the last two of 2 or 3 columns (index column first)."""
    if header is not None:
        keys = [re.sub(r"\s*[\[(].*", "", h).lower() for h in header]
        if "x" in keys and "y" in keys:
            return keys.index("x"), keys.index("y")
    n_columns = len(data[0][1])
    if n_columns == 2 or (n_columns == 3 and (header is None or not header[0].strip() or _index_like(data))):
        return n_columns - 2, n_columns - 1
    seen = ", ".join(f"'{h}'" for h in header) if header else f"{n_columns} unnamed columns"
    raise RoiError(name, f"no X and Y columns found (columns: {seen})",
                   "save the vertices with a header X,Y (one vertex per row)", line=1)


def _index_like(data: list[tuple[int, list[str]]]) -> bool:
    first = [row[0] for _, row in data]
    return all(cell.isdigit() for cell in first)


def _number(row: list[str], index: int, line: int, name: str, sep: str | None) -> float:
    if index >= len(row):
        raise RoiError(name, f"the row has {len(row)} values, column {index + 1} is missing",
                       "give every vertex an X and a Y value", line=line)
    try:
        value = float(_decimal_point(row[index], sep))
    except ValueError:
        raise RoiError(name, f"'{row[index]}' is not a coordinate", "keep only numeric X,Y rows under the header",
                       line=line) from None
    if not np.isfinite(value):
        raise RoiError(name, f"'{row[index]}' is not a finite coordinate", "remove the row", line=line)
    return value


# --- geometry --------------------------------------------------------------------------------------

@dataclass
class RoiPolygon:
    """A ROI polygon in nm, with how its unit was decided and whether it was repaired."""

    polygon: "shapely.Polygon | shapely.MultiPolygon"   # nm
    vertices_nm: np.ndarray     # (n, 2) nm, as drawn (after unit conversion, before repair)
    unit: str                   # 'um', 'nm' or 'px': the unit the file was found to be in
    repaired: bool              # make_valid was needed (self-intersection)
    warnings: list[str] = field(default_factory=list)


def roi_polygon(vertices, x_nm, y_nm, *, name: str = "ROI", units: str = "auto",
                render_pixel_nm: float | None = None) -> RoiPolygon:
    """Polygon in nm from ROI vertices in um (default), nm or rendered pixels.

    ``units='auto'`` reads um unless less than half the ROI's bounding box overlaps the
    localisations' bounding box; then nm and px (x ``render_pixel_nm``, when given) are tried and the
    best overlap is taken with a warning. No overlap in any unit raises RoiError. Warnings do not
    repeat the ROI name; errors start with it.
    """
    vertices = _checked_vertices(vertices, name)
    warnings: list[str] = []
    scales = _unit_scales(render_pixel_nm, name)
    if units == "auto":
        unit = _auto_unit(vertices, scales, x_nm, y_nm, name, warnings)
    elif units in scales:
        unit = units
    elif units == "px":
        raise RoiError(name, "ROI in pixels but no render pixel size given", "give the render pixel size in nm")
    else:
        raise RoiError(name, f"unknown ROI unit '{units}'", "use one of: auto, um, nm, px")
    vertices_nm = vertices * scales[unit]
    polygon, repaired = _valid_polygon(vertices_nm, name, warnings)
    _require_localisations_inside(polygon, unit, x_nm, y_nm, name)
    area_um2 = polygon.area / _NM_PER_UM ** 2
    if area_um2 < MIN_ROI_AREA_UM2:
        warnings.append(f"area {area_um2:.2f} um^2 is below {MIN_ROI_AREA_UM2:g} um^2; "
                        "it cannot host a 3 x 3 um tile")
    return RoiPolygon(polygon, vertices_nm, unit, repaired, warnings)


def _require_localisations_inside(polygon, unit: str, x_nm, y_nm, name: str) -> None:
    """RoiError when the polygon (nm) holds none of the localisations: wrong unit or wrong file."""
    x_nm, y_nm = np.asarray(x_nm, dtype=np.float64), np.asarray(y_nm, dtype=np.float64)
    if x_nm.size and not shapely.contains_xy(polygon, x_nm, y_nm).any():
        raise RoiError(name, f"the ROI (read in {unit}, {polygon.area / _NM_PER_UM ** 2:.3g} um^2) contains none of "
                       f"the {x_nm.size:,} localisations",
                       "check that the ROI belongs to this detection file and that its coordinates are in um on "
                       "the rendered image (not mm, nm or pixels)")


def _checked_vertices(vertices, name: str) -> np.ndarray:
    vertices = np.asarray(vertices, dtype=np.float64)
    if vertices.ndim != 2 or vertices.shape[1] != 2 or not np.isfinite(vertices).all():
        raise RoiError(name, "vertices must be finite (x, y) pairs", _DRAW_FIX)
    n_distinct = len(np.unique(vertices, axis=0))
    if n_distinct < 3:
        raise RoiError(name, f"the polygon has {n_distinct} distinct vertices; at least 3 are needed", _DRAW_FIX)
    centred = vertices - vertices.mean(axis=0)
    if np.linalg.matrix_rank(centred, tol=1e-9 * max(np.abs(centred).max(), 1e-300)) < 2:
        raise RoiError(name, f"all {len(vertices)} vertices lie on one line: the polygon encloses no area", _DRAW_FIX)
    return vertices


def _unit_scales(render_pixel_nm: float | None, name: str) -> dict[str, float]:
    """nm per ROI unit for each candidate unit."""
    scales = {"um": _NM_PER_UM, "nm": 1.0}
    if render_pixel_nm is not None:
        if not (np.isfinite(render_pixel_nm) and render_pixel_nm > 0):
            raise RoiError(name, f"render pixel size {render_pixel_nm} is not a positive number",
                           "give the pixel size of the rendered image in nm")
        scales["px"] = float(render_pixel_nm)
    return scales


def _auto_unit(vertices: np.ndarray, scales: dict[str, float], x_nm, y_nm, name: str,
               warnings: list[str]) -> str:
    """The unit under which the ROI overlaps the localisations; um unless it overlaps < 50 %."""
    x_nm, y_nm = np.asarray(x_nm, dtype=np.float64), np.asarray(y_nm, dtype=np.float64)
    if x_nm.size == 0:
        warnings.append("no localisations to check the ROI unit against; read as um")
        return "um"
    points_box = (x_nm.min(), y_nm.min(), x_nm.max(), y_nm.max())
    overlap = {unit: _box_overlap(vertices * scale, points_box) for unit, scale in scales.items()}
    if overlap["um"] >= _MIN_OVERLAP:
        return "um"
    inside = {unit: _count_in_box(vertices * scale, x_nm, y_nm) for unit, scale in scales.items()}
    best = max(scales, key=lambda unit: (overlap[unit] >= _MIN_OVERLAP, inside[unit], overlap[unit]))
    tried = ", ".join(f"{unit}: {overlap[unit]:.0%} overlap, {inside[unit]} localisations" for unit in scales)
    if overlap[best] == 0:
        raise RoiError(name, f"the ROI does not overlap the localisations in any unit tried ({tried})",
                       "check that the ROI belongs to this detection file and was drawn in um on its "
                       "rendered image" + ("" if "px" in scales else ", or give the render pixel size"))
    warnings.append(f"ROI read as {best}, not um ({tried})")
    return best


def _count_in_box(vertices_nm: np.ndarray, x_nm: np.ndarray, y_nm: np.ndarray) -> int:
    """Number of localisations inside the ROI's bounding box."""
    (x0, y0), (x1, y1) = vertices_nm.min(axis=0), vertices_nm.max(axis=0)
    return int(np.count_nonzero((x_nm >= x0) & (x_nm <= x1) & (y_nm >= y0) & (y_nm <= y1)))


def _box_overlap(vertices_nm: np.ndarray, points_box: tuple[float, float, float, float]) -> float:
    """Share of the ROI's bounding box lying inside the localisations' bounding box (0..1)."""
    roi_box = shapely.box(*vertices_nm.min(axis=0), *vertices_nm.max(axis=0))
    points = shapely.box(*points_box)
    if roi_box.area == 0:
        return 0.0
    if points.area == 0:   # points on a line or a single point: 1 if the ROI box covers them
        return float(roi_box.covers(points))
    return roi_box.intersection(points).area / roi_box.area


def polygon_from_vertices(vertices_nm) -> "shapely.Polygon | shapely.MultiPolygon":
    """The ROI polygon (nm) of stored vertices, repaired as at ingest: a self-intersecting outline
    becomes the union of the polygon parts of ``make_valid`` (empty if there are none)."""
    polygon = shapely.Polygon(np.asarray(vertices_nm, dtype=np.float64))
    if polygon.is_valid:
        return polygon
    parts = [p for p in shapely.get_parts(shapely.make_valid(polygon)) if p.geom_type in ("Polygon", "MultiPolygon")]
    return shapely.union_all(parts) if parts else shapely.Polygon()


def _valid_polygon(vertices_nm: np.ndarray, name: str, warnings: list[str]):
    """shapely polygon; self-intersections repaired with make_valid, keeping polygon parts only."""
    polygon = polygon_from_vertices(vertices_nm)
    repaired = not shapely.Polygon(vertices_nm).is_valid
    if repaired:
        warnings.append("self-intersecting outline repaired into "
                        f"{len(shapely.get_parts(polygon))} polygon part(s)")
    if polygon.is_empty or polygon.area == 0:
        raise RoiError(name, "the polygon encloses no area (all vertices on one line)", _DRAW_FIX)
    return polygon, repaired


def points_in_polygon(x_nm, y_nm, polygon) -> np.ndarray:
    """Boolean mask of the points inside ``polygon`` or on its boundary (nm).

    THE inclusion rule for localisations in a ROI, used by every analysis path (statistics,
    DBSCAN, Ripley, tiles, viewer regions, exports, similarity): shapely ``covers`` semantics, so
    vertices and edge points count as inside. ``polygon`` is a shapely (Multi)Polygon or a
    sequence of them (their union). Vectorised: a bounding-box pre-filter, then
    ``shapely.intersects_xy`` (for points, intersects == covers) on the prepared geometry.
    """
    x = np.asarray(x_nm, dtype=np.float64)
    y = np.asarray(y_nm, dtype=np.float64)
    region = polygon if isinstance(polygon, shapely.Geometry) else shapely.union_all(list(polygon))
    inside = np.zeros(x.shape, dtype=bool)
    if region.is_empty:
        return inside
    x0, y0, x1, y1 = region.bounds
    candidates = np.flatnonzero((x >= x0) & (x <= x1) & (y >= y0) & (y <= y1))
    shapely.prepare(region)
    inside[candidates] = shapely.intersects_xy(region, x[candidates], y[candidates])
    return inside


def auto_roi(x_nm, y_nm) -> "shapely.Polygon":
    """Fallback ROI (nm) when a file has none: convex hull of the points, bounding box if degenerate."""
    points = np.column_stack((np.asarray(x_nm, dtype=np.float64), np.asarray(y_nm, dtype=np.float64)))
    points = points[np.isfinite(points).all(axis=1)]
    if len(points) == 0:
        raise ValueError("auto_roi needs at least one finite localisation")
    if len(points) >= 3:
        try:
            return shapely.Polygon(points[ConvexHull(points).vertices])
        except QhullError:
            pass
    (x0, y0), (x1, y1) = points.min(axis=0), points.max(axis=0)
    pad_x, pad_y = (0.5 if x1 == x0 else 0.0), (0.5 if y1 == y0 else 0.0)
    return shapely.box(x0 - pad_x, y0 - pad_y, x1 + pad_x, y1 + pad_y)
