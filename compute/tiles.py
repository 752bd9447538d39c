"""3 x 3 um tiles inside polygon ROIs, point-to-tile assignment, per-tile count histograms.

docs/SCIENCE.md §2.1 (tiles) and §2.2 (fingerprints). Each polygon gets its own square grid of
side ``tile_nm`` anchored at the polygon's bounding-box corner (x_min, y_min); a tile is kept when
it lies inside the polygon.
A tile's fingerprint is the histogram of per-bin localisation counts over its 100 x 100 grid of
30 nm bins: entry v is the number of bins holding exactly v localisations. All lengths are nm.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

import numpy as np
import shapely
from numba import njit

from compute.rois import points_in_polygon

TILE_NM = 3000.0
BIN_NM = 30.0
INCLUSION_MODES = ("inside", "overlap")
_INSIDE_TOLERANCE_NM = 1e-6          # polygon buffer so that tiles touching the boundary count as inside
_DEDUPLICATION_DECIMALS = 6          # tile origins equal to 1e-6 nm are the same tile
# Bounds on the work one file may ask for, checked before any tile is allocated. A camera field of
# view is at most a few hundred um across (2048 px x 108 nm = 221 um); 1 mm per side leaves room for
# stitched mosaics. Each candidate tile costs a shapely box (~0.5 kB) and a containment test, so
# 150,000 candidates (1 mm x 1 mm in 3 um tiles is 111,556) stay below ~100 MB and a few seconds.
MAX_EXTENT_NM = 1_000_000.0
MAX_GRID_TILES = 150_000


class GridTooLarge(ValueError):
    """The region to tile is wider than ``max_extent_nm`` or needs more than ``max_tiles`` candidate tiles."""


@dataclass(eq=False)
class TileGrid:
    """The tiles of one file.

    origins: (n_tiles, 2) float64, lower-left corner (x0, y0) of each tile in nm.
    roi_index: (n_tiles,) int64, index of the polygon that produced the tile.
    tile_nm: side of the square tiles in nm.
    polygons: the ROI polygons (nm) indexed by roi_index; when given, a tile's localisations are
        clipped to its polygon (``rois.points_in_polygon``, boundary included). Empty: no clipping.
    """

    origins: np.ndarray
    roi_index: np.ndarray
    tile_nm: float = TILE_NM
    polygons: tuple = ()

    def __post_init__(self) -> None:
        self.origins = np.asarray(self.origins, dtype=np.float64).reshape(-1, 2)
        self.roi_index = np.asarray(self.roi_index, dtype=np.int64).reshape(-1)
        if self.roi_index.shape[0] != self.origins.shape[0]:
            raise ValueError("origins and roi_index must have the same number of tiles")
        self.tile_nm = float(self.tile_nm)
        self.polygons = tuple(self.polygons)

    def __len__(self) -> int:
        return int(self.origins.shape[0])

    def closed_ends(self) -> np.ndarray:
        """(n_tiles, 2) bool: whether tile k also holds the points on its far edge x = x0 + T
        (column 0) or y = y0 + T (column 1), i.e. no tile of the grid starts there. Inside the grid
        a point belongs to one tile of a lattice; on the grid's outer far edges (which can lie on
        the ROI boundary) it still belongs to the last tile."""
        keys = {tuple(o) for o in np.round(self.origins, _DEDUPLICATION_DECIMALS)}
        closed = np.ones((len(self), 2), dtype=bool)
        for axis in (0, 1):
            shifted = self.origins.copy()
            shifted[:, axis] += self.tile_nm
            closed[:, axis] = [tuple(o) not in keys for o in np.round(shifted, _DEDUPLICATION_DECIMALS)]
        return closed


def check_grid_size(regions: Iterable, *, tile_nm: float = TILE_NM, max_extent_nm: float = MAX_EXTENT_NM,
                    max_tiles: int = MAX_GRID_TILES) -> int:
    """Number of candidate tiles the grids of ``regions`` need; raises GridTooLarge above the limits.

    ``regions``: polygons (anything with ``.bounds``) or (x_min, y_min, x_max, y_max) tuples, nm.
    Each region's bounding box must be finite and at most ``max_extent_nm`` (default 1 mm) per side,
    and all grids together at most ``max_tiles`` (default 150,000) tiles of ``tile_nm``. Only the
    bounds are read: nothing proportional to the tile count is allocated.
    """
    total = 0
    for number, region in enumerate(regions, start=1):
        if region is None or getattr(region, "is_empty", False):
            continue
        x_min, y_min, x_max, y_max = (float(v) for v in getattr(region, "bounds", region))
        width, height = x_max - x_min, y_max - y_min
        if not (np.isfinite(width) and np.isfinite(height)) or max(width, height) > max_extent_nm:
            raise GridTooLarge(
                f"region {number} spans {width / 1e3:,.0f} x {height / 1e3:,.0f} um; the limit is "
                f"{max_extent_nm / 1e3:,.0f} um per side, because every {tile_nm / 1e3:g} x {tile_nm / 1e3:g} um "
                "tile of it is held in memory and fingerprinted. Fix: check that the coordinates are in nm "
                "(not pixels or um read as nm) and that no row holds a stray far-away position")
        total += int(np.ceil(width / tile_nm)) * int(np.ceil(height / tile_nm))
        if total > max_tiles:
            raise GridTooLarge(
                f"the regions need {total:,} or more candidate tiles of {tile_nm / 1e3:g} x {tile_nm / 1e3:g} um; "
                f"the limit is {max_tiles:,} per file, because every tile is held in memory and fingerprinted. "
                "Fix: draw ROIs around the cells instead of the whole field, or split the file")
    return total


def grid_tiles(polygons: Iterable, *, tile_nm: float = TILE_NM, inclusion: str = "inside",
               min_overlap: float = 0.95, max_extent_nm: float = MAX_EXTENT_NM,
               max_tiles: int = MAX_GRID_TILES) -> TileGrid:
    """Square tiles of side ``tile_nm`` (nm) inside each polygon (docs/SCIENCE.md §2.1).

    Per polygon, a grid anchored at its bounding-box corner (x_min, y_min). ``inclusion="inside"``
    keeps tiles entirely inside the polygon (``P.buffer(1e-6).contains(tile)``);
    ``inclusion="overlap"`` keeps tiles with area(tile ∩ P) / tile_nm² >= ``min_overlap``.
    Either way the grid keeps the polygons, so ``points_in_tiles`` clips each tile's localisations
    to its polygon (boundary included): an overlap tile holds only the points inside P.
    Tiles of overlapping polygons with the same origin are kept once (first polygon wins).
    Order: polygon, then grid row (y), then grid column (x). Raises GridTooLarge, before
    allocating anything, when the grids exceed ``max_extent_nm`` or ``max_tiles`` (check_grid_size).
    """
    if inclusion not in INCLUSION_MODES:
        raise ValueError(f"inclusion must be one of {INCLUSION_MODES}, got {inclusion!r}")
    polygons = list(polygons)
    check_grid_size(polygons, tile_nm=tile_nm, max_extent_nm=max_extent_nm, max_tiles=max_tiles)
    origins, roi_index = [], []
    for roi, polygon in enumerate(polygons):
        if polygon is None or polygon.is_empty:
            continue
        candidates = _candidate_origins(polygon, tile_nm)
        kept = candidates[_tiles_kept(polygon, candidates, tile_nm, inclusion, min_overlap)]
        origins.append(kept)
        roi_index.append(np.full(kept.shape[0], roi, dtype=np.int64))
    if not origins:
        return TileGrid(np.empty((0, 2)), np.empty(0, dtype=np.int64), tile_nm, polygons)
    origins = np.concatenate(origins)
    roi_index = np.concatenate(roi_index)
    first = _first_occurrences(origins)
    return TileGrid(origins[first], roi_index[first], tile_nm, polygons)


def _candidate_origins(polygon, tile_nm: float) -> np.ndarray:
    """Origins of the grid cells covering the polygon's bounding box, row-major from (x_min, y_min)."""
    x_min, y_min, x_max, y_max = polygon.bounds
    n_cols = int(np.ceil((x_max - x_min) / tile_nm))
    n_rows = int(np.ceil((y_max - y_min) / tile_nm))
    rows, cols = np.divmod(np.arange(n_rows * n_cols), n_cols)
    return np.column_stack((x_min + cols * tile_nm, y_min + rows * tile_nm))


def _tiles_kept(polygon, origins: np.ndarray, tile_nm: float, inclusion: str,
                min_overlap: float) -> np.ndarray:
    """Boolean mask of the candidate tiles that satisfy the inclusion rule."""
    boxes = shapely.box(origins[:, 0], origins[:, 1], origins[:, 0] + tile_nm, origins[:, 1] + tile_nm)
    if inclusion == "inside":
        region = polygon.buffer(_INSIDE_TOLERANCE_NM)
        shapely.prepare(region)
        return shapely.contains(region, boxes)
    return shapely.area(shapely.intersection(polygon, boxes)) / tile_nm**2 >= min_overlap


def _first_occurrences(origins: np.ndarray) -> np.ndarray:
    """Sorted indices of the first tile at each distinct origin."""
    _, first = np.unique(np.round(origins, _DEDUPLICATION_DECIMALS), axis=0, return_index=True)
    return np.sort(first)


def points_in_tiles(x_nm, y_nm, grid: TileGrid) -> tuple[np.ndarray, np.ndarray]:
    """Localisations of every tile, as (order, offsets).

    The points of tile k are ``order[offsets[k]:offsets[k + 1]]`` (indices into x_nm, in increasing
    order), with half-open bounds x0 <= x < x0 + T and y0 <= y < y0 + T, the far edge included
    where no tile follows (``TileGrid.closed_ends``), and, when the grid has its polygons, inside
    the tile's polygon (``rois.points_in_polygon``, boundary included; only tiles the polygon does
    not cover are tested). A point lies in several tiles only when tiles of different
    polygons overlap. Cost: one pass bucketing the points into the cells of a lattice of side T,
    then each tile scans only the (at most 3 x 3) cells it covers.
    """
    x = np.ascontiguousarray(x_nm, dtype=np.float64)
    y = np.ascontiguousarray(y_nm, dtype=np.float64)
    if len(grid) == 0:
        return np.empty(0, dtype=np.int64), np.zeros(1, dtype=np.int64)
    t = grid.tile_nm
    lattice_origin = grid.origins.min(axis=0)
    tile_ends = grid.origins + t
    closed = grid.closed_ends()
    # The cell of a coordinate is floor((c - origin) / t), monotone in c; the last coordinate
    # inside a tile is its end (closed side) or the float just below it, so [lo, hi] is exactly
    # the cells it touches.
    last_inside = np.where(closed, tile_ends, np.nextafter(tile_ends, -np.inf))
    cell_lo = np.floor((grid.origins - lattice_origin) / t).astype(np.int64)
    cell_hi = np.floor((last_inside - lattice_origin) / t).astype(np.int64)
    n_cells = cell_hi.max(axis=0) + 1
    bucket, bucket_x, bucket_y, bucket_starts = _bucket_points(x, y, lattice_origin[0], lattice_origin[1], t,
                                                               n_cells[0], n_cells[1])
    order, offsets = _gather_tiles(bucket, bucket_x, bucket_y, bucket_starts, grid.origins, tile_ends, closed,
                                   cell_lo, cell_hi, n_cells[0])
    return _clip_to_polygons(x, y, grid, order, offsets)


def points_in_tile(x_nm, y_nm, grid: TileGrid, k: int) -> np.ndarray:
    """Indices (increasing) of the localisations of tile k alone, by the rule of ``points_in_tiles``
    (half-open square, far edge closed where no tile follows, clipped to the tile's polygon)."""
    x = np.asarray(x_nm, dtype=np.float64)
    y = np.asarray(y_nm, dtype=np.float64)
    (x0, y0), (x1, y1) = grid.origins[k], grid.origins[k] + grid.tile_nm
    closed_x, closed_y = grid.closed_ends()[k]
    inside = ((x >= x0) & ((x < x1) | (closed_x & (x == x1)))
              & (y >= y0) & ((y < y1) | (closed_y & (y == y1))))
    index = np.flatnonzero(inside)
    if grid.polygons:
        polygon = grid.polygons[grid.roi_index[k]]
        if not shapely.covers(polygon, shapely.box(x0, y0, x1, y1)):
            index = index[points_in_polygon(x[index], y[index], polygon)]
    return index


def _clip_to_polygons(x, y, grid: TileGrid, order: np.ndarray, offsets: np.ndarray
                      ) -> tuple[np.ndarray, np.ndarray]:
    """Drop the points of each tile that lie outside its polygon (tiles covered by it are skipped)."""
    if not grid.polygons:
        return order, offsets
    keep = np.ones(order.size, dtype=bool)
    boxes = shapely.box(grid.origins[:, 0], grid.origins[:, 1], grid.origins[:, 0] + grid.tile_nm,
                        grid.origins[:, 1] + grid.tile_nm)
    for k in range(len(grid)):
        polygon = grid.polygons[grid.roi_index[k]]
        if shapely.covers(polygon, boxes[k]):         # the closed square is in P: nothing to clip
            continue
        members = order[offsets[k]:offsets[k + 1]]
        keep[offsets[k]:offsets[k + 1]] = points_in_polygon(x[members], y[members], polygon)
    if keep.all():
        return order, offsets
    kept_before = np.concatenate(([0], np.cumsum(keep))).astype(np.int64)
    return order[keep], kept_before[offsets]


@njit(cache=True)
def _bucket_points(x, y, x_origin, y_origin, cell_nm, n_cols, n_rows):
    """Counting sort of the points by lattice cell: indices and coordinates, contiguous per cell.

    Points outside the lattice are dropped. Copying the coordinates makes the per-tile scans
    sequential in memory (localisations are usually in frame order, i.e. spatially random).
    """
    n = x.shape[0]
    cell = np.empty(n, dtype=np.int64)
    starts = np.zeros(n_cols * n_rows + 1, dtype=np.int64)
    for i in range(n):
        col = np.floor((x[i] - x_origin) / cell_nm)
        row = np.floor((y[i] - y_origin) / cell_nm)
        if 0 <= col < n_cols and 0 <= row < n_rows:
            cell[i] = int(row) * n_cols + int(col)
            starts[cell[i] + 1] += 1
        else:
            cell[i] = -1
    starts = np.cumsum(starts)
    fill = starts[:-1].copy()
    bucket = np.empty(starts[-1], dtype=np.int64)
    bucket_x = np.empty(starts[-1])
    bucket_y = np.empty(starts[-1])
    for i in range(n):
        if cell[i] >= 0:
            slot = fill[cell[i]]
            bucket[slot] = i
            bucket_x[slot] = x[i]
            bucket_y[slot] = y[i]
            fill[cell[i]] += 1
    return bucket, bucket_x, bucket_y, starts


@njit(cache=True)
def _gather_tiles(bucket, bucket_x, bucket_y, starts, origins, ends, closed, cell_lo, cell_hi, n_cols):
    """Scan the bucketed cells covered by each tile (at most 3 x 3) and keep the points inside it
    (far edge included where ``closed``)."""
    n_tiles = origins.shape[0]
    capacity = 0
    for k in range(n_tiles):
        for row in range(cell_lo[k, 1], cell_hi[k, 1] + 1):
            for col in range(cell_lo[k, 0], cell_hi[k, 0] + 1):
                cell = row * n_cols + col
                capacity += starts[cell + 1] - starts[cell]
    order = np.empty(capacity, dtype=np.int64)
    offsets = np.zeros(n_tiles + 1, dtype=np.int64)
    run_starts = np.empty(10, dtype=np.int64)
    pos = 0
    for k in range(n_tiles):
        n_runs = 0
        for row in range(cell_lo[k, 1], cell_hi[k, 1] + 1):
            for col in range(cell_lo[k, 0], cell_hi[k, 0] + 1):
                run_starts[n_runs] = pos
                n_runs += 1
                cell = row * n_cols + col
                for s in range(starts[cell], starts[cell + 1]):
                    px, py = bucket_x[s], bucket_y[s]
                    if (origins[k, 0] <= px and (px < ends[k, 0] or (closed[k, 0] and px == ends[k, 0]))
                            and origins[k, 1] <= py and (py < ends[k, 1] or (closed[k, 1] and py == ends[k, 1]))):
                        order[pos] = bucket[s]
                        pos += 1
        run_starts[n_runs] = pos
        if n_runs > 1:
            order[run_starts[0]:pos] = _merge_sorted_runs(order, run_starts[:n_runs + 1])
        offsets[k + 1] = pos
    return order[:pos].copy(), offsets


@njit(cache=True)
def _merge_sorted_runs(values, run_starts):
    """Merge the sorted runs values[run_starts[r]:run_starts[r + 1]] into one sorted array."""
    n_runs = run_starts.shape[0] - 1
    heads = run_starts[:-1].copy()
    merged = np.empty(run_starts[-1] - run_starts[0], dtype=values.dtype)
    for p in range(merged.shape[0]):
        best = -1
        for r in range(n_runs):
            if heads[r] < run_starts[r + 1] and (best < 0 or values[heads[r]] < values[heads[best]]):
                best = r
        merged[p] = values[heads[best]]
        heads[best] += 1
    return merged


def bins_per_side(tile_nm: float = TILE_NM, bin_nm: float = BIN_NM) -> int:
    """Number of bins along one side of a tile (100 for 3000 nm tiles and 30 nm bins)."""
    n = int(round(tile_nm / bin_nm))
    if n < 1 or not np.isclose(n * bin_nm, tile_nm):
        raise ValueError(f"bin_nm={bin_nm} does not divide tile_nm={tile_nm}")
    return n


def tile_count_histogram(x_nm, y_nm, x0: float, y0: float, *, tile_nm: float = TILE_NM,
                         bin_nm: float = BIN_NM, closed_ends=(False, False)) -> np.ndarray:
    """The tile fingerprint: ``np.bincount`` of the per-bin localisation counts (int64).

    Points outside the half-open tile [x0, x0 + T) x [y0, y0 + T) are ignored, except on a far
    edge flagged in ``closed_ends`` (x, y; see ``TileGrid.closed_ends``), which joins the last bin.
    Entry v is the number of 30 nm bins holding exactly v localisations; the entries sum to
    (T / bin)² = 10,000.
    """
    x = np.asarray(x_nm, dtype=np.float64)
    y = np.asarray(y_nm, dtype=np.float64)
    n_side = bins_per_side(tile_nm, bin_nm)
    x1, y1 = x0 + tile_nm, y0 + tile_nm
    inside = ((x >= x0) & ((x < x1) | (closed_ends[0] & (x == x1)))
              & (y >= y0) & ((y < y1) | (closed_ends[1] & (y == y1))))
    col = np.minimum(((x[inside] - x0) / bin_nm).astype(np.int64), n_side - 1)
    row = np.minimum(((y[inside] - y0) / bin_nm).astype(np.int64), n_side - 1)
    per_bin = np.bincount(row * n_side + col, minlength=n_side * n_side)
    return np.bincount(per_bin)
