"""Cluster analysis of localisations: Ripley K/L/H and DBSCAN (SCIENCE.md section 5).

All coordinates, distances and radii are nanometres; areas are nm^2 unless a name says
``_um2``. The heavy lifting is done by numba kernels on a uniform grid:

* points are sorted by grid cell (cell side >= the search radius), so every neighbour of a
  point lies in the 3 x 3 block of cells around it;
* cells are keyed ``key = cx * n_rows + cy``; the three cells ``cy-1, cy, cy+1`` of one grid
  column ``cx`` have consecutive keys, so after sorting by key their points form ONE
  contiguous slice of the sorted arrays. A point's whole neighbourhood is therefore three
  slices (columns cx-1, cx, cx+1), found once per occupied cell with ``np.searchsorted``.
  Memory is O(n) whatever the extent of the data (no dense cell array).
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np
import pandas as pd
import shapely
from numba import njit, prange
from shapely.geometry import MultiPolygon, Polygon, box

EDGE_CORRECTIONS = ("none", "ripley", "buffer")
DEFAULT_EPS_NM = 100.0  # SCIENCE 5.2, Owen-lab protocol
DEFAULT_MIN_SAMPLES = 10  # SCIENCE 5.2, counts the point itself (sklearn convention)

N_CIRCLE_SAMPLES = 360  # points on the circle for the polygon isotropic correction
_RAY_COS = np.cos(2.0 * np.pi * np.arange(N_CIRCLE_SAMPLES) / N_CIRCLE_SAMPLES)
_RAY_SIN = np.sin(2.0 * np.pi * np.arange(N_CIRCLE_SAMPLES) / N_CIRCLE_SAMPLES)
_N_CHUNKS = 64  # fixed work split of the Ripley kernel: results do not depend on thread count
_CELL_MARGIN = 1.0 + 1e-9  # cell side slightly above the radius: no neighbour lost to rounding

# Ripley kernel modes (the public ``edge`` names map onto these).
_MODE_NONE, _MODE_RECT, _MODE_POLYGON, _MODE_BUFFER = 0, 1, 2, 3

_TABLE_COLUMNS = (
    "cluster_id",
    "n_locs",
    "area_nm2",
    "radius_eq_nm",
    "rg_nm",
    "density_locs_per_um2",
    "centroid_x_nm",
    "centroid_y_nm",
)
_SUMMARY_STATISTICS = ("n_locs", "area_nm2", "radius_eq_nm", "rg_nm", "density_locs_per_um2")


def default_radii_nm(r_max_nm: float = 500.0, dr_nm: float = 10.0) -> np.ndarray:
    """Ripley radii dr, 2 dr, ..., r_max in nm (SCIENCE 5.1 default: 10, 20, ..., 500 nm)."""
    if dr_nm <= 0 or r_max_nm < dr_nm:
        raise ValueError("need 0 < dr_nm <= r_max_nm")
    n_radii = int(np.floor(r_max_nm / dr_nm + 1e-9))
    return dr_nm * np.arange(1, n_radii + 1, dtype=np.float64)


# --------------------------------------------------------------------------------------------
# Shared grid
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Grid:
    """Points sorted by grid cell, with the three neighbour slices of every occupied cell.

    ``order[s]`` is the input index of sorted point ``s``; ``cell_of[s]`` the occupied-cell
    index of sorted point ``s``; points of columns cx-1, cx, cx+1 (rows cy-1..cy+1) around
    cell ``c`` are ``xs[lo[c, k]:hi[c, k]]`` for k = 0, 1, 2.
    """

    order: np.ndarray
    xs: np.ndarray
    ys: np.ndarray
    cell_of: np.ndarray
    lo: np.ndarray
    hi: np.ndarray

    @classmethod
    def build(cls, x: np.ndarray, y: np.ndarray, radius_nm: float) -> _Grid:
        cell = radius_nm * _CELL_MARGIN
        cx = np.floor((x - x.min()) / cell).astype(np.int64)
        cy = np.floor((y - y.min()) / cell).astype(np.int64) + 1  # row 0 stays empty: cy-1 >= 0
        n_rows = int(cy.max()) + 2  # top row stays empty: cy+1 < n_rows
        if (int(cx.max()) + 2) * n_rows >= np.iinfo(np.int64).max // 2:
            raise ValueError("data extent too large for the grid at this radius")
        key = cx * n_rows + cy
        order = np.argsort(key, kind="stable")
        key_sorted = key[order]
        cell_keys, cell_of = np.unique(key_sorted, return_inverse=True)
        columns = np.array([-n_rows, 0, n_rows], dtype=np.int64)
        first_keys = cell_keys[:, None] + columns - 1
        last_keys = cell_keys[:, None] + columns + 1
        lo = np.searchsorted(key_sorted, first_keys, side="left")
        hi = np.searchsorted(key_sorted, last_keys, side="right")
        return cls(order, x[order], y[order], cell_of.astype(np.int64), lo, hi)


@njit(cache=True, inline="always")
def _neighbour_slice(s, c, k, lo, hi, half):
    """k-th (0..2) slice of candidate neighbours of sorted point ``s`` in cell ``c``.

    Full stencil (``half=False``): the three columns around the cell, ``s`` itself included.
    Half stencil (``half=True``): every unordered pair exactly once, i.e. the points after
    ``s`` up to the end of the cell above it in the same column, then the whole next column.
    """
    if not half:
        return lo[c, k], hi[c, k]
    if k == 0:
        return s + 1, hi[c, 1]
    if k == 1:
        return lo[c, 2], hi[c, 2]
    return 0, 0


def _as_xy(x_nm, y_nm) -> tuple[np.ndarray, np.ndarray]:
    x = np.ascontiguousarray(x_nm, dtype=np.float64).ravel()
    y = np.ascontiguousarray(y_nm, dtype=np.float64).ravel()
    if x.shape != y.shape:
        raise ValueError("x and y must have the same length")
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise ValueError("coordinates must be finite")
    return x, y


# --------------------------------------------------------------------------------------------
# Ripley K, L, H
# --------------------------------------------------------------------------------------------


@dataclass
class RipleyResult:
    """Ripley functions at radii ``r`` (nm): K (nm^2), L = sqrt(K/pi) (nm), H = L - r (nm).

    ``n`` points inside the window of area ``area_nm2``; ``edge`` is the edge correction.
    """

    r: np.ndarray
    K: np.ndarray
    L: np.ndarray
    H: np.ndarray
    edge: str
    n: int
    area_nm2: float

    @property
    def r_at_h_max(self) -> float:
        """r (nm) at the maximum of H: a cluster-scale indicator, NOT a cluster radius."""
        if not np.isfinite(self.H).any():
            return float("nan")
        return float(self.r[np.nanargmax(self.H)])

    @property
    def h_max(self) -> float:
        """Maximum of H (nm), the clustering strength."""
        if not np.isfinite(self.H).any():
            return float("nan")
        return float(np.nanmax(self.H))


@dataclass(frozen=True)
class _Window:
    """Analysis window in nm: an axis-aligned rectangle (``rect``) or a general polygon."""

    geometry: Polygon | MultiPolygon
    rect: tuple[float, float, float, float] | None

    @classmethod
    def from_user(cls, window) -> _Window:
        if isinstance(window, (Polygon, MultiPolygon)):
            if window.is_empty or window.area <= 0:
                raise ValueError("window polygon has no area")
            is_rect = isinstance(window, Polygon) and shapely.equals(window, box(*window.bounds))
            return cls(window, tuple(map(float, window.bounds)) if is_rect else None)
        xmin, ymin, xmax, ymax = map(float, window)
        if not (xmax > xmin and ymax > ymin):
            raise ValueError("window must be (xmin, ymin, xmax, ymax) with xmax > xmin, ymax > ymin")
        return cls(box(xmin, ymin, xmax, ymax), (xmin, ymin, xmax, ymax))

    @property
    def area_nm2(self) -> float:
        if self.rect is not None:
            xmin, ymin, xmax, ymax = self.rect
            return (xmax - xmin) * (ymax - ymin)
        return float(self.geometry.area)

    def contains(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Points inside the window or on its boundary."""
        if self.rect is not None:
            xmin, ymin, xmax, ymax = self.rect
            return (x >= xmin) & (x <= xmax) & (y >= ymin) & (y <= ymax)
        return shapely.intersects_xy(self.geometry, x, y)

    def boundary_distance(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Distance (nm) from each (inside) point to the window boundary."""
        if self.rect is not None:
            xmin, ymin, xmax, ymax = self.rect
            return np.minimum.reduce([x - xmin, xmax - x, y - ymin, ymax - y])
        return shapely.distance(self.geometry.boundary, shapely.points(x, y))

    def edges(self) -> np.ndarray:
        """All boundary segments (exterior and holes) as rows (ax, ay, bx, by), nm."""
        rings = shapely.get_rings(shapely.get_parts(self.geometry))
        segments = [np.hstack([c[:-1], c[1:]]) for c in map(shapely.get_coordinates, rings)]
        return np.ascontiguousarray(np.vstack(segments), dtype=np.float64)

    def sample_uniform(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """n points uniform in the window (rejection sampling in the bounding box)."""
        xmin, ymin, xmax, ymax = self.geometry.bounds
        xs, ys, n_found = [], [], 0
        while n_found < n:
            n_try = int(1.2 * (n - n_found) * (xmax - xmin) * (ymax - ymin) / self.area_nm2) + 16
            x = rng.uniform(xmin, xmax, n_try)
            y = rng.uniform(ymin, ymax, n_try)
            inside = self.contains(x, y)
            xs.append(x[inside])
            ys.append(y[inside])
            n_found += int(inside.sum())
        return np.concatenate(xs)[:n], np.concatenate(ys)[:n]


@njit(cache=True)
def _rect_inside_fraction(x, y, d, rect):
    """Exact fraction of the circle (centre x, y; radius d) inside the rectangle.

    Each edge at distance e < d cuts off an arc of half-angle acos(e/d) around its normal.
    Arcs of opposite edges never overlap; arcs of two adjacent edges overlap by
    (a1 + a2 - pi/2) exactly when the corner lies inside the circle (e1^2 + e2^2 < d^2).
    For a circle cutting at most two edges this is Cressie (1993) eq. 8.4.22 / astropy 'ripley'.
    """
    e = (x - rect[0], y - rect[1], rect[2] - x, rect[3] - y)  # left, bottom, right, top
    half_angle = np.empty(4)
    for k in range(4):
        half_angle[k] = np.arccos(min(e[k] / d, 1.0))
    outside = 2.0 * half_angle.sum()
    for k in range(4):  # corners: (left, bottom), (bottom, right), (right, top), (top, left)
        k2 = (k + 1) % 4
        if e[k] * e[k] + e[k2] * e[k2] < d * d:
            outside -= half_angle[k] + half_angle[k2] - 0.5 * np.pi
    return max(1.0 - outside / (2.0 * np.pi), 0.0)


@njit(cache=True)
def _circle_crossings(x, y, r_max, edges):
    """Boundary crossings of the N_CIRCLE_SAMPLES rays from (x, y), up to distance r_max.

    The sample point at distance d on ray k (angle 2 pi k / N) is inside the window iff an
    even number of crossings of that ray lie closer than d (the centre is inside). Returns the
    crossing distances sorted, and the number of inside samples once each crossing is passed.
    """
    near = np.empty(edges.shape[0], dtype=np.int64)
    n_near = 0
    for e in range(edges.shape[0]):
        ax, ay = edges[e, 0] - x, edges[e, 1] - y
        if _segment_distance2(ax, ay, edges[e, 2] - edges[e, 0], edges[e, 3] - edges[e, 1]) < r_max * r_max:
            near[n_near] = e
            n_near += 1
    dist = np.empty(n_near * N_CIRCLE_SAMPLES)
    ray = np.empty(n_near * N_CIRCLE_SAMPLES, dtype=np.int64)
    n_cross = 0
    for e in near[:n_near]:
        ax, ay = edges[e, 0] - x, edges[e, 1] - y
        ex, ey = edges[e, 2] - edges[e, 0], edges[e, 3] - edges[e, 1]
        for k in range(N_CIRCLE_SAMPLES):
            # ray t u meets segment a + s e: t > 0, 0 <= s < 1 (half-open: vertices count once)
            denom = _RAY_COS[k] * ey - _RAY_SIN[k] * ex
            if denom == 0.0:
                continue
            t = (ax * ey - ay * ex) / denom
            s = (ax * _RAY_SIN[k] - ay * _RAY_COS[k]) / denom
            if 0.0 <= s < 1.0 and 0.0 < t < r_max:
                dist[n_cross] = t
                ray[n_cross] = k
                n_cross += 1
    order = np.argsort(dist[:n_cross])
    t_sorted = dist[order]
    inside_after = np.empty(n_cross, dtype=np.int64)
    odd = np.zeros(N_CIRCLE_SAMPLES, dtype=np.bool_)
    n_inside = N_CIRCLE_SAMPLES
    for m in range(n_cross):
        k = ray[order[m]]
        odd[k] = not odd[k]
        n_inside += -1 if odd[k] else 1
        inside_after[m] = n_inside
    return t_sorted, inside_after


@njit(cache=True, inline="always")
def _segment_distance2(ax, ay, ex, ey):
    """Squared distance from the origin to the segment a + s e, s in [0, 1]."""
    length2 = ex * ex + ey * ey
    s = 0.0 if length2 == 0.0 else min(max(-(ax * ex + ay * ey) / length2, 0.0), 1.0)
    px, py = ax + s * ex, ay + s * ey
    return px * px + py * py


@njit(cache=True, inline="always")
def _polygon_inside_fraction(d, t_sorted, inside_after):
    """Fraction of the N_CIRCLE_SAMPLES circle points at radius d inside the polygon.

    Floored at 1/N: the circle passes through the neighbour, which is inside the window.
    """
    m = np.searchsorted(t_sorted, d)  # crossings strictly closer than d
    n_inside = N_CIRCLE_SAMPLES if m == 0 else inside_after[m - 1]
    return max(n_inside, 1) / N_CIRCLE_SAMPLES


@njit(cache=True, parallel=True)
def _ripley_pair_histogram(xs, ys, cell_of, lo, hi, r2, mode, boundary, stop_bin, rect, edges):
    """Weighted pair counts per radius bin, summed over chunks: row (n_radii + 1,).

    A pair at distance d falls in bin b = #{m : r_m <= d} (squared comparisons), so that
    the cumulative sum at m counts pairs with d < r_m. 'none' visits each unordered pair once
    (half stencil) and adds 2. The other modes visit ordered pairs (i -> j): weight
    1 / (fraction of the circle around i inside the window) for the isotropic correction;
    for the guard zone, centre i only counts for m < stop_bin[i], so the pair adds +1 at b
    and -1 at stop_bin[i]. ``boundary[i]`` is i's distance to the window boundary: circles
    smaller than that lie inside and have weight 1.
    """
    n, n_radii = xs.size, r2.size
    half = mode == _MODE_NONE
    r2_max = r2[n_radii - 1]
    r_max = np.sqrt(r2_max)
    hist = np.zeros((_N_CHUNKS, n_radii + 1))
    for chunk in prange(_N_CHUNKS):
        row = hist[chunk]
        for i in range(chunk * n // _N_CHUNKS, (chunk + 1) * n // _N_CHUNKS):
            if stop_bin[i] == 0:
                continue  # guard zone: never a centre
            if mode == _MODE_POLYGON and boundary[i] < r_max:
                t_sorted, inside_after = _circle_crossings(xs[i], ys[i], r_max, edges)
            else:
                t_sorted, inside_after = np.empty(0), np.empty(0, dtype=np.int64)
            c = cell_of[i]
            for k in range(3):
                j_lo, j_hi = _neighbour_slice(i, c, k, lo, hi, half)
                for j in range(j_lo, j_hi):
                    dx, dy = xs[j] - xs[i], ys[j] - ys[i]
                    d2 = dx * dx + dy * dy
                    if d2 >= r2_max or j == i:
                        continue
                    b = np.searchsorted(r2, d2, side="right")
                    if half:
                        row[b] += 2.0
                        continue
                    weight = 1.0
                    d = np.sqrt(d2)
                    if d > boundary[i]:
                        if mode == _MODE_RECT:
                            weight = 1.0 / _rect_inside_fraction(xs[i], ys[i], d, rect)
                        elif mode == _MODE_POLYGON:
                            weight = 1.0 / _polygon_inside_fraction(d, t_sorted, inside_after)
                    if b < stop_bin[i]:
                        row[b] += weight
                        row[stop_bin[i]] -= weight
    return hist.sum(axis=0)


def _ripley_mode(edge: str, window: _Window) -> int:
    if edge not in EDGE_CORRECTIONS:
        raise ValueError(f"edge must be one of {EDGE_CORRECTIONS}, got {edge!r}")
    if edge == "none":
        return _MODE_NONE
    if edge == "buffer":
        return _MODE_BUFFER
    return _MODE_RECT if window.rect is not None else _MODE_POLYGON


def _check_radii(radii_nm) -> np.ndarray:
    radii = np.ascontiguousarray(radii_nm, dtype=np.float64).ravel()
    if radii.size == 0 or radii[0] <= 0 or np.any(np.diff(radii) <= 0):
        raise ValueError("radii_nm must be positive and strictly increasing")
    return radii


def _weighted_pair_sums(x, y, radii, mode, window: _Window) -> tuple[np.ndarray, np.ndarray]:
    """(sum over ordered pairs of w_ij 1(d_ij < r), number of centres) per radius."""
    n_radii = radii.size
    grid = _Grid.build(x, y, radii[-1])
    if mode == _MODE_NONE:
        boundary = np.full(x.size, np.inf)
    else:
        boundary = window.boundary_distance(grid.xs, grid.ys)
    if mode == _MODE_BUFFER:  # centre i counts at r_m iff r_m <= distance to boundary
        stop_bin = np.searchsorted(radii, boundary, side="right").astype(np.int64)
    else:
        stop_bin = np.full(x.size, n_radii, dtype=np.int64)
    rect = np.array(window.rect if window.rect is not None else (0.0, 0.0, 0.0, 0.0))
    edges = window.edges() if mode == _MODE_POLYGON else np.zeros((0, 4))
    with numba.parallel_chunksize(1):  # dynamic scheduling: dense chunks do not stall a thread
        hist = _ripley_pair_histogram(
            grid.xs, grid.ys, grid.cell_of, grid.lo, grid.hi, radii * radii,
            mode, boundary, stop_bin, rect, edges,
        )
    n_centres = x.size - np.searchsorted(np.sort(stop_bin), np.arange(n_radii), side="right")
    return np.cumsum(hist)[:n_radii], n_centres


def ripley(x_nm, y_nm, radii_nm, *, window, edge: str = "ripley") -> RipleyResult:
    """Ripley K, L, H of the points inside ``window`` at ``radii_nm`` (SCIENCE 5.1).

    K(r) = A / (n (n-1)) sum_i sum_{j != i} w_ij 1(d_ij < r), A = window area (nm^2),
    n = points inside the window (points outside are ignored). Edge corrections:

    * ``'none'``: w_ij = 1.
    * ``'ripley'``: isotropic, w_ij = 1 / (fraction of the circle centred at x_i through x_j
      inside the window): exact closed form for axis-aligned rectangles (tuple windows or
      rectangular polygons; Cressie 8.4.22 extended to circles cutting up to four edges),
      for other polygons the fraction of 360 equally spaced circle points (angles
      2 pi k / 360) strictly inside, floored at 1/360. Weights use x_i's circle for each
      ordered pair (astropy instead reuses the lower-index point's weight for both orders).
    * ``'buffer'``: guard zone, only the n_c(r) points at distance >= r from the boundary
      are centres: K(r) = A / (n n_c(r)) sum_{i centre} sum_{j != i} 1(d_ij < r)
      (NaN where n_c(r) = 0).

    ``window`` is a shapely (Multi)Polygon in nm or an (xmin, ymin, xmax, ymax) tuple in nm.
    L = sqrt(K / pi), H = L - r. With fewer than 2 points K, L, H are NaN.
    """
    radii = _check_radii(radii_nm)
    win = _Window.from_user(window)
    mode = _ripley_mode(edge, win)
    x, y = _as_xy(x_nm, y_nm)
    inside = win.contains(x, y)
    x, y = x[inside], y[inside]
    n, area = x.size, win.area_nm2
    if n < 2:
        K = np.full(radii.size, np.nan)
    else:
        pair_sums, n_centres = _weighted_pair_sums(x, y, radii, mode, win)
        normaliser = (n - 1) if mode != _MODE_BUFFER else n_centres
        with np.errstate(divide="ignore", invalid="ignore"):
            K = np.where(normaliser > 0, area * pair_sums / (n * normaliser), np.nan)
    L = np.sqrt(K / np.pi)
    return RipleyResult(r=radii, K=K, L=L, H=L - radii, edge=edge, n=int(n), area_nm2=area)


def ripley_csr_envelope(
    n: int,
    window,
    radii_nm,
    *,
    edge: str = "ripley",
    n_simulations: int = 99,
    quantiles: tuple[float, float] = (0.025, 0.975),
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Pointwise (H_low, H_high) envelope (nm) of H under CSR with n points in the window.

    Each of ``n_simulations`` patterns has exactly n uniform points in ``window``; H is
    computed with the same radii and edge correction, and the given quantiles are taken per
    radius (use (0, 1) for the min/max envelope).
    """
    win = _Window.from_user(window)
    rng = np.random.default_rng(seed)
    curves = np.empty((n_simulations, np.size(radii_nm)))
    for s in range(n_simulations):
        x, y = win.sample_uniform(n, rng)
        curves[s] = ripley(x, y, radii_nm, window=window, edge=edge).H
    low, high = np.quantile(curves, quantiles, axis=0)
    return low, high


# --------------------------------------------------------------------------------------------
# DBSCAN
# --------------------------------------------------------------------------------------------


@njit(cache=True, parallel=True)
def _core_mask(xs, ys, cell_of, lo, hi, eps2, min_samples):
    """True where a point has >= min_samples points (itself included) within eps.

    Counting stops as soon as min_samples is reached: dense regions cost O(min_samples).
    """
    n = xs.size
    core = np.zeros(n, dtype=np.bool_)
    for i in prange(n):
        c = cell_of[i]
        count = 0
        for k in range(3):
            for j in range(lo[c, k], hi[c, k]):
                dx, dy = xs[j] - xs[i], ys[j] - ys[i]
                if dx * dx + dy * dy <= eps2:
                    count += 1
            if count >= min_samples:
                break
        core[i] = count >= min_samples
    return core


@njit(cache=True, inline="always")
def _find(parent, i):
    """Root of i in the union-find forest, with path halving."""
    while parent[i] != i:
        parent[i] = parent[parent[i]]
        i = parent[i]
    return i


@njit(cache=True)
def _core_roots(xs, ys, cell_of, lo, hi, eps2, core):
    """Union-find over core pairs within eps (each unordered pair visited once).

    Returns the root of every point (itself for non-core points).
    """
    n = xs.size
    parent = np.arange(n)
    for i in range(n):
        if not core[i]:
            continue
        c = cell_of[i]
        for k in range(2):
            j_lo, j_hi = _neighbour_slice(i, c, k, lo, hi, True)
            for j in range(j_lo, j_hi):
                if not core[j]:
                    continue
                dx, dy = xs[j] - xs[i], ys[j] - ys[i]
                if dx * dx + dy * dy <= eps2:
                    ri, rj = _find(parent, i), _find(parent, j)
                    if ri != rj:
                        parent[max(ri, rj)] = min(ri, rj)
    for i in range(n):
        parent[i] = _find(parent, i)
    return parent


@njit(cache=True, parallel=True)
def _assign_border(xs, ys, cell_of, lo, hi, eps2, core, labels):
    """Give each non-core point the smallest label among its core neighbours (in place).

    sklearn expands clusters in label order and a border point keeps the first label that
    reaches it, i.e. the smallest one: this reproduces its labels exactly.
    """
    for i in prange(xs.size):
        if core[i]:
            continue
        c = cell_of[i]
        best = -1
        for k in range(3):
            for j in range(lo[c, k], hi[c, k]):
                if core[j] and (best < 0 or labels[j] < best):
                    dx, dy = xs[j] - xs[i], ys[j] - ys[i]
                    if dx * dx + dy * dy <= eps2:
                        best = labels[j]
        labels[i] = best


def _number_core_clusters(roots: np.ndarray, core: np.ndarray, order: np.ndarray) -> np.ndarray:
    """Labels of sorted points: clusters 0..k-1 ordered by their smallest input index of a
    core point (sklearn's order); -1 elsewhere."""
    labels = np.full(roots.size, -1, dtype=np.int64)
    core_idx = np.flatnonzero(core)
    if core_idx.size == 0:
        return labels
    core_roots = roots[core_idx]
    first_input_index = np.full(roots.size, np.iinfo(np.int64).max)
    np.minimum.at(first_input_index, core_roots, order[core_idx])
    cluster_roots = np.unique(core_roots)
    ranked = cluster_roots[np.argsort(first_input_index[cluster_roots])]
    label_of_root = np.empty(roots.size, dtype=np.int64)
    label_of_root[ranked] = np.arange(ranked.size)
    labels[core_idx] = label_of_root[core_roots]
    return labels


def dbscan_labels(x_nm, y_nm, eps_nm: float, min_samples: int) -> np.ndarray:
    """DBSCAN cluster labels (int64; -1 = noise; clusters 0..k-1).

    Same result as ``sklearn.cluster.DBSCAN(eps=eps_nm, min_samples=min_samples)``: a point
    is core when >= min_samples points (itself included) lie at distance <= eps_nm; core
    points within eps_nm of each other share a cluster; a border point takes the smallest
    label among its core neighbours; clusters are numbered in sklearn's order (by their first
    core point in input order). Runs on a grid with cell = eps in O(n) memory.
    """
    if not eps_nm > 0:
        raise ValueError("eps_nm must be > 0")
    if min_samples < 1:
        raise ValueError("min_samples must be >= 1")
    x, y = _as_xy(x_nm, y_nm)
    if x.size == 0:
        return np.empty(0, dtype=np.int64)
    grid = _Grid.build(x, y, eps_nm)
    eps2 = float(eps_nm) * float(eps_nm)
    neighbours = (grid.xs, grid.ys, grid.cell_of, grid.lo, grid.hi, eps2)
    core = _core_mask(*neighbours, int(min_samples))
    roots = _core_roots(*neighbours, core)
    labels_sorted = _number_core_clusters(roots, core, grid.order)
    _assign_border(*neighbours, core, labels_sorted)
    labels = np.empty(x.size, dtype=np.int64)
    labels[grid.order] = labels_sorted
    return labels


# --------------------------------------------------------------------------------------------
# Per-cluster descriptors
# --------------------------------------------------------------------------------------------


@njit(cache=True)
def _half_hull_twice_area(xs, ys, first, stop, step, chain, x0, y0):
    """Twice the shoelace sum along one half of Andrew's monotone-chain hull.

    Walks points first, first+step, ... (sorted by x then y), keeping only left turns;
    ``chain`` is scratch space. The shoelace origin (x0, y0) limits cancellation.
    """
    size = 0
    for p in range(first, stop, step):
        while size >= 2:
            a, b = chain[size - 2], chain[size - 1]
            turn = (xs[b] - xs[a]) * (ys[p] - ys[a]) - (ys[b] - ys[a]) * (xs[p] - xs[a])
            if turn > 0.0:
                break
            size -= 1
        chain[size] = p
        size += 1
    twice = 0.0
    for m in range(size - 1):
        a, b = chain[m], chain[m + 1]
        twice += (xs[a] - x0) * (ys[b] - y0) - (xs[b] - x0) * (ys[a] - y0)
    return twice


@njit(cache=True)
def _hull_areas(xs, ys, starts):
    """Convex-hull area (nm^2) of each group xs[starts[g]:starts[g+1]] (points sorted by x,
    then y within a group); NaN for < 3 points or zero area (collinear)."""
    n_groups = starts.size - 1
    areas = np.full(n_groups, np.nan)
    chain = np.empty(xs.size, dtype=np.int64)
    for g in range(n_groups):
        a, b = starts[g], starts[g + 1]
        if b - a < 3:
            continue
        # lower hull left -> right plus upper hull right -> left: the hull, counter-clockwise
        twice = _half_hull_twice_area(xs, ys, a, b, 1, chain, xs[a], ys[a])
        twice += _half_hull_twice_area(xs, ys, b - 1, a - 1, -1, chain, xs[a], ys[a])
        if twice > 0.0:
            areas[g] = 0.5 * twice
    return areas


def cluster_table(x_nm, y_nm, labels) -> pd.DataFrame:
    """One row per cluster (labels >= 0; -1 = noise), sorted by cluster_id.

    Columns: cluster_id, n_locs, area_nm2 (convex hull; NaN if < 3 points or collinear),
    radius_eq_nm = sqrt(area/pi), rg_nm = sqrt(mean |p - centroid|^2),
    density_locs_per_um2 = n_locs / (area_nm2 * 1e-6), centroid_x_nm, centroid_y_nm.
    """
    x, y = _as_xy(x_nm, y_nm)
    labels = np.asarray(labels).ravel()
    if labels.shape != x.shape:
        raise ValueError("labels must have one entry per localisation")
    clustered = np.flatnonzero(labels >= 0)
    # sort by cluster, then x, then y: contiguous groups ready for the monotone chain
    order = clustered[np.lexsort((y[clustered], x[clustered], labels[clustered]))]
    xs, ys, ls = x[order], y[order], labels[order]
    starts = np.flatnonzero(np.r_[True, ls[1:] != ls[:-1]]) if ls.size else np.empty(0, np.int64)
    n_locs = np.diff(np.r_[starts, ls.size])
    if n_locs.size == 0:
        return pd.DataFrame({c: np.empty(0) for c in _TABLE_COLUMNS}).astype({"cluster_id": np.int64, "n_locs": np.int64})
    centroid_x = np.add.reduceat(xs, starts) / n_locs
    centroid_y = np.add.reduceat(ys, starts) / n_locs
    group = np.repeat(np.arange(n_locs.size), n_locs)
    spread2 = (xs - centroid_x[group]) ** 2 + (ys - centroid_y[group]) ** 2
    rg = np.sqrt(np.add.reduceat(spread2, starts) / n_locs)
    area = _hull_areas(xs, ys, np.r_[starts, ls.size].astype(np.int64))
    return pd.DataFrame(
        {
            "cluster_id": ls[starts].astype(np.int64),
            "n_locs": n_locs.astype(np.int64),
            "area_nm2": area,
            "radius_eq_nm": np.sqrt(area / np.pi),
            "rg_nm": rg,
            "density_locs_per_um2": n_locs / (area * 1e-6),
            "centroid_x_nm": centroid_x,
            "centroid_y_nm": centroid_y,
        }
    )


def _nan_stat(values: np.ndarray, stat) -> float:
    finite = values[np.isfinite(values)]
    return float(stat(finite)) if finite.size else float("nan")


def cluster_summary(x_nm, y_nm, labels, area_um2: float, *, table: pd.DataFrame | None = None) -> dict:
    """Per-ROI summary of a DBSCAN labelling (SCIENCE 5.2), JSON-friendly.

    ``area_um2`` is the analysed area (um^2). percent_clustered = 100 * non-noise / n_locs;
    clusters_per_um2 = n_clusters / area_um2; mean/median of per-cluster n_locs, area_nm2,
    radius_eq_nm, rg_nm, density_locs_per_um2 over clusters where the value is defined
    (NaN when there is none). Pass ``table`` to reuse an already computed cluster_table.
    """
    labels = np.asarray(labels).ravel()
    if table is None:
        table = cluster_table(x_nm, y_nm, labels)
    n_locs = int(labels.size)
    n_clusters = int(len(table))
    summary = {
        "n_locs": n_locs,
        "n_clusters": n_clusters,
        "clusters_per_um2": n_clusters / area_um2 if area_um2 > 0 else float("nan"),
        "percent_clustered": 100.0 * int(np.count_nonzero(labels >= 0)) / n_locs if n_locs else float("nan"),
    }
    for column in _SUMMARY_STATISTICS:
        values = table[column].to_numpy(dtype=np.float64)
        name = "n_locs_per_cluster" if column == "n_locs" else column
        summary[f"{name}_mean"] = _nan_stat(values, np.mean)
        summary[f"{name}_median"] = _nan_stat(values, np.median)
    return summary
