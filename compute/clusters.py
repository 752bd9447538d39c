"""Cluster analysis of localisations: Ripley K/L/H and DBSCAN (docs/SCIENCE.md §5).

All coordinates, distances and radii are nanometres; areas are nm^2 unless a name says
``_um2``. The heavy lifting is done by numba kernels on one spatial index, ``_Strips``:

* the plane is cut into vertical strips of width radius / k, and points are sorted by
  strip, then by y inside a strip;
* a neighbour of point i within ``radius`` lies in one of the 2k + 1 strips around i's
  strip, inside a y-window [y_i - h, y_i + h] whose half-height h shrinks with the strip's
  horizontal gap to i (a narrow box around the circle instead of a 3 x 3 block of cells);
* walking a strip in increasing y, every window only moves up, so it is tracked with two
  pointers per neighbour strip (amortised O(1) per point, no search, O(n) memory whatever
  the extent of the data).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numba
import numpy as np
import pandas as pd
import shapely
from numba import njit, prange
from shapely.geometry import MultiPolygon, Polygon, box

from compute.rois import points_in_polygon

EDGE_CORRECTIONS = ("none", "ripley", "buffer")
DEFAULT_EPS_NM = 100.0  # docs/SCIENCE.md §5.2, Owen-lab protocol
DEFAULT_MIN_SAMPLES = 10  # docs/SCIENCE.md §5.2, counts the point itself (sklearn convention)

N_CIRCLE_SAMPLES = 360  # points on the circle for the polygon isotropic correction
_RAY_COS = np.cos(2.0 * np.pi * np.arange(N_CIRCLE_SAMPLES) / N_CIRCLE_SAMPLES)
_RAY_SIN = np.sin(2.0 * np.pi * np.arange(N_CIRCLE_SAMPLES) / N_CIRCLE_SAMPLES)
_N_CHUNKS = 64  # fixed work split of the Ripley kernel: results do not depend on thread count
_N_BUCKETS = 4096  # lookup table of squared distance -> radius bin
_RADIUS_MARGIN = 1.0 + 1e-9  # search radius slightly inflated: no neighbour lost to rounding
_RIPLEY_STRIPS_PER_RADIUS = 4
_DBSCAN_STRIPS_PER_RADIUS = 2
# Below this many points DBSCAN runs its kernels on one thread (thread start-up would dominate);
# from 10^4 up two threads cut the wall time by a third (bench/bench_clusters.py, quiet machine).
_DBSCAN_PARALLEL_MIN_POINTS = 10_000

# Ripley kernel modes (the public ``edge`` names map onto these).
_MODE_NONE, _MODE_RECT, _MODE_POLYGON, _MODE_BUFFER = 0, 1, 2, 3

_TABLE_COLUMNS = {  # cluster_table column -> dtype
    "cluster_id": np.int64,
    "n_locs": np.int64,
    "area_nm2": np.float64,
    "radius_eq_nm": np.float64,
    "rg_nm": np.float64,
    "density_locs_per_um2": np.float64,
    "centroid_x_nm": np.float64,
    "centroid_y_nm": np.float64,
}
_SUMMARY_STATISTICS = {  # cluster_table column -> prefix of its _mean / _median summary keys
    "n_locs": "n_locs_per_cluster",
    "area_nm2": "area_nm2",
    "radius_eq_nm": "radius_eq_nm",
    "rg_nm": "rg_nm",
    "density_locs_per_um2": "density_locs_per_um2",
}


def default_radii_nm(r_max_nm: float = 500.0, dr_nm: float = 10.0) -> np.ndarray:
    """Ripley radii dr, 2 dr, ..., r_max in nm (docs/SCIENCE.md §5.1 default: 10, 20, ..., 500 nm)."""
    if dr_nm <= 0 or r_max_nm < dr_nm:
        raise ValueError("need 0 < dr_nm <= r_max_nm")
    n_radii = int(np.floor(r_max_nm / dr_nm + 1e-9))
    return dr_nm * np.arange(1, n_radii + 1, dtype=np.float64)


# --------------------------------------------------------------------------------------------
# Shared spatial index
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Strips:
    """Points sorted by strip (width radius / k), then y; see the module docstring.

    ``order[s]`` is the input index of sorted point ``s``. Strip ``a`` (occupied strips only)
    holds sorted points ``start[a]:start[a + 1]``; ``neighbour[a, q]`` is the occupied strip
    at horizontal offset ``q - k`` (-1 if empty) and ``reach[q]`` the y half-height of the
    window to search there: radius for offsets 0 and +-1, sqrt(radius^2 - gap^2) beyond,
    with gap = (|offset| - 1) * width the smallest possible horizontal distance.
    """

    order: np.ndarray
    xs: np.ndarray
    ys: np.ndarray
    start: np.ndarray
    neighbour: np.ndarray
    reach: np.ndarray

    @classmethod
    def build(cls, x: np.ndarray, y: np.ndarray, radius_nm: float, strips_per_radius: int) -> _Strips:
        k = strips_per_radius
        radius = radius_nm * _RADIUS_MARGIN
        width = radius / k
        column = np.floor((x - x.min()) / width).astype(np.int64)
        n_columns = int(column.max()) + 1
        if n_columns <= 4 * x.size:  # by strip, O(n)
            order = _counting_sort(column, n_columns)
        else:  # very sparse data: avoid a huge count array
            order = np.argsort(column, kind="stable")
        sorted_column = column[order]
        first = np.flatnonzero(np.r_[True, sorted_column[1:] != sorted_column[:-1]])
        _sort_segments_by(order, np.r_[first, x.size].astype(np.int64), y)    # then by y in each strip
        ids = sorted_column[first]
        offsets = np.arange(-k, k + 1)
        wanted = ids[:, None] + offsets
        found = np.minimum(np.searchsorted(ids, wanted), ids.size - 1)
        neighbour = np.where(ids[found] == wanted, found, -1)
        gap = np.maximum(np.abs(offsets) - 1, 0) * width
        reach = np.sqrt(radius * radius - gap * gap)
        return cls(order, x[order], y[order], np.r_[first, x.size].astype(np.int64), neighbour, reach)


@njit(cache=True, parallel=True)
def _sort_segments_by(order, bounds, key):
    """Sort each segment order[bounds[s]:bounds[s + 1]] by key[order] (in place), segments in
    parallel: one strip's points by y (the order of equal y does not change any result)."""
    for s in prange(bounds.size - 1):
        segment = order[bounds[s]:bounds[s + 1]]
        order[bounds[s]:bounds[s + 1]] = segment[np.argsort(key[segment])]


@njit(cache=True)
def _counting_sort(keys, n_keys):
    """Indices sorted by key (0 <= key < n_keys), ties in input order (stable)."""
    next_slot = np.zeros(n_keys + 1, dtype=np.int64)
    for key in keys:
        next_slot[key + 1] += 1
    for key in range(n_keys):
        next_slot[key + 1] += next_slot[key]
    order = np.empty(keys.size, dtype=np.int64)
    for i in range(keys.size):
        order[next_slot[keys[i]]] = i
        next_slot[keys[i]] += 1
    return order


@njit(cache=True)
def _open_windows(a, start, neighbour):
    """Empty [lo, hi) windows at the bottom of each neighbour strip of strip a."""
    lo = np.zeros(neighbour.shape[1], dtype=np.int64)
    for q in range(neighbour.shape[1]):
        if neighbour[a, q] >= 0:
            lo[q] = start[neighbour[a, q]]
    return lo, lo.copy()


@njit(cache=True)
def _slide_windows(a, yi, ys, start, neighbour, reach, lo, hi):
    """Move the windows of strip a's neighbours up to y in [yi - reach, yi + reach]."""
    for q in range(neighbour.shape[1]):
        b = neighbour[a, q]
        if b < 0:
            continue
        end = start[b + 1]
        while lo[q] < end and ys[lo[q]] < yi - reach[q]:
            lo[q] += 1
        while hi[q] < end and ys[hi[q]] <= yi + reach[q]:
            hi[q] += 1


@njit(cache=True)
def _window(q, i, lo, hi, half):
    """Candidates of sorted point i in window q. Half stencil (every unordered pair once):
    only strips at offsets >= 0, and in i's own strip only the points after i."""
    k = lo.size // 2
    if half and q == k:
        return i + 1, hi[q]
    return lo[q], hi[q]


def watch(work, tick, period_s: float = 0.5):
    """Run ``work()`` (a nogil numba kernel) while another thread calls ``tick()`` every period:
    progress reports from counters the kernel updates."""
    done = threading.Event()

    def watcher():
        while not done.wait(period_s):
            tick()

    thread = threading.Thread(target=watcher, daemon=True)
    thread.start()
    try:
        return work()
    finally:
        done.set()
        thread.join()


def _as_xy(x_nm, y_nm) -> tuple[np.ndarray, np.ndarray]:
    """Coordinates as contiguous float64 1-D arrays of equal length, all finite."""
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

    @property
    def h_max_beyond_range(self) -> bool:
        """True when H is largest at the last radius and still rising there: the true maximum
        lies beyond r max, so ``r_at_h_max`` (= r max) is only a lower bound."""
        finite = np.flatnonzero(np.isfinite(self.H))
        if finite.size < 2 or finite[-1] != self.H.size - 1:
            return False
        return bool(np.nanargmax(self.H) == self.H.size - 1 and self.H[-1] > self.H[finite[-2]])


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
        return points_in_polygon(x, y, self.geometry)

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
    (a1 + a2 - pi/2) exactly when their corner lies inside the circle (e1^2 + e2^2 < d^2).
    For a circle cutting at most two edges this is Cressie (1993) eq. 8.4.22 / astropy 'ripley'.
    """
    left, bottom, right, top = x - rect[0], y - rect[1], rect[2] - x, rect[3] - y
    a_left, a_bottom = _cut_half_angle(left, d), _cut_half_angle(bottom, d)
    a_right, a_top = _cut_half_angle(right, d), _cut_half_angle(top, d)
    outside = 2.0 * (a_left + a_bottom + a_right + a_top)
    outside -= _corner_overlap(left, bottom, a_left, a_bottom, d)
    outside -= _corner_overlap(bottom, right, a_bottom, a_right, d)
    outside -= _corner_overlap(right, top, a_right, a_top, d)
    outside -= _corner_overlap(top, left, a_top, a_left, d)
    return max(1.0 - outside / (2.0 * np.pi), 0.0)


@njit(cache=True)
def _cut_half_angle(edge_distance, d):
    """Half-angle of the arc of a radius-d circle beyond an edge at edge_distance (0 if none)."""
    return np.arccos(min(edge_distance / d, 1.0))


@njit(cache=True)
def _corner_overlap(e1, e2, a1, a2, d):
    """Overlap of the arcs cut by two adjacent edges: non-zero iff the corner is inside."""
    return a1 + a2 - 0.5 * np.pi if e1 * e1 + e2 * e2 < d * d else 0.0


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


@njit(cache=True)
def _segment_distance2(ax, ay, ex, ey):
    """Squared distance from the origin to the segment a + s e, s in [0, 1]."""
    length2 = ex * ex + ey * ey
    s = 0.0 if length2 == 0.0 else min(max(-(ax * ex + ay * ey) / length2, 0.0), 1.0)
    px, py = ax + s * ex, ay + s * ey
    return px * px + py * py


@njit(cache=True)
def _polygon_inside_fraction(d, t_sorted, inside_after):
    """Fraction of the N_CIRCLE_SAMPLES circle points at radius d inside the polygon.

    Floored at 1/N: the circle passes through the neighbour, which is inside the window.
    """
    m = np.searchsorted(t_sorted, d)  # crossings strictly closer than d
    n_inside = N_CIRCLE_SAMPLES if m == 0 else inside_after[m - 1]
    return max(n_inside, 1) / N_CIRCLE_SAMPLES


def _radius_table(r2: np.ndarray) -> tuple[np.ndarray, float]:
    """Lookup table for _radius_bin: entry t = #{m : r_m^2 < t / scale}, t = 0.._N_BUCKETS,
    i.e. the radius bin of the bottom of bucket t of squared distances in [0, r_max^2)."""
    scale = _N_BUCKETS / r2[-1]
    table = np.searchsorted(r2, np.arange(_N_BUCKETS + 1) / scale, side="left")
    return table.astype(np.int64), scale


@njit(cache=True)
def _radius_bin(d2, r2, table, scale):
    """#{m : r_m^2 <= d2} for 0 <= d2 < r_max^2: a table guess, made exact by comparisons."""
    b = table[np.int64(d2 * scale)]
    while b > 0 and r2[b - 1] > d2:
        b -= 1
    while r2[b] <= d2:
        b += 1
    return b


@njit(cache=True)
def _inverse_inside_fraction(mode, xi, yi, d, rect, t_sorted, inside_after):
    """Isotropic edge weight 1 / (fraction of the circle centred at i of radius d inside W)."""
    if mode == _MODE_RECT:
        return 1.0 / _rect_inside_fraction(xi, yi, d, rect)
    return 1.0 / _polygon_inside_fraction(d, t_sorted, inside_after)


@njit(cache=True, parallel=True, nogil=True)
def _ripley_pair_histogram(
    xs, ys, start, neighbour, reach, r2, table, scale, mode, boundary, stop_bin, rect, edges, chunk_done
):
    """Weighted pair counts per radius bin, length n_radii + 1 (last entry: scratch).

    A pair at distance d falls in bin b = #{m : r_m <= d}, so the cumulative sum at m counts
    pairs with d < r_m. 'none' visits each unordered pair once (half stencil) and adds 2.
    The other modes visit ordered pairs i -> j: 'ripley' adds the isotropic weight of i's
    circle (1 while the circle is inside W, i.e. d <= boundary[i]); 'buffer' lets centre i
    count only for m < stop_bin[i], i.e. adds +1 at b and -1 at stop_bin[i].
    Work is split into a fixed number of chunks of strips, each with its own histogram row;
    chunk_done[c] is set to 1 when chunk c is finished (read by a progress watcher).
    """
    n_radii, n_strips = r2.size, start.size - 1
    half = mode == _MODE_NONE
    isotropic = mode == _MODE_RECT or mode == _MODE_POLYGON
    r2_max = r2[n_radii - 1]
    r_max = np.sqrt(r2_max)
    no_crossings = (np.empty(0), np.empty(0, dtype=np.int64))
    n_chunks = min(_N_CHUNKS, n_strips)
    hist = np.zeros((n_chunks, n_radii + 1))
    for chunk in prange(n_chunks):
        row = hist[chunk]
        for a in range(chunk * n_strips // n_chunks, (chunk + 1) * n_strips // n_chunks):
            lo, hi = _open_windows(a, start, neighbour)
            for i in range(start[a], start[a + 1]):
                xi, yi = xs[i], ys[i]
                _slide_windows(a, yi, ys, start, neighbour, reach, lo, hi)
                if stop_bin[i] == 0:
                    continue  # guard zone: never a centre
                t_sorted, inside_after = no_crossings
                if mode == _MODE_POLYGON and boundary[i] < r_max:
                    t_sorted, inside_after = _circle_crossings(xi, yi, r_max, edges)
                for q in range(lo.size // 2 if half else 0, lo.size):
                    j_lo, j_hi = _window(q, i, lo, hi, half)
                    for j in range(j_lo, j_hi):
                        dx, dy = xs[j] - xi, ys[j] - yi
                        d2 = dx * dx + dy * dy
                        if d2 >= r2_max or j == i:
                            continue
                        b = _radius_bin(d2, r2, table, scale)
                        if half:
                            row[b] += 2.0
                        elif b < stop_bin[i]:
                            d = np.sqrt(d2)
                            weight = 1.0
                            if isotropic and d > boundary[i]:
                                weight = _inverse_inside_fraction(mode, xi, yi, d, rect, t_sorted, inside_after)
                            row[b] += weight
                            row[stop_bin[i]] -= weight
        chunk_done[chunk] = 1
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


def _weighted_pair_sums(x, y, radii, mode, window: _Window, progress=None) -> tuple[np.ndarray, np.ndarray]:
    """(sum over ordered pairs of w_ij 1(d_ij < r), number of centres) per radius.

    ``progress(fraction)`` is called about twice a second while the pairs are counted."""
    n_radii = radii.size
    strips = _Strips.build(x, y, radii[-1], _RIPLEY_STRIPS_PER_RADIUS)
    if mode == _MODE_NONE:
        boundary = np.full(x.size, np.inf)
    else:
        boundary = window.boundary_distance(strips.xs, strips.ys)
    if mode == _MODE_BUFFER:  # centre i counts at r_m iff r_m <= distance to boundary
        stop_bin = np.searchsorted(radii, boundary, side="right").astype(np.int64)
    else:
        stop_bin = np.full(x.size, n_radii, dtype=np.int64)
    rect = np.array(window.rect if window.rect is not None else (0.0, 0.0, 0.0, 0.0))
    edges = window.edges() if mode == _MODE_POLYGON else np.zeros((0, 4))
    r2 = radii * radii
    chunk_done = np.zeros(min(_N_CHUNKS, strips.start.size - 1), dtype=np.int64)

    def count_pairs():
        with numba.parallel_chunksize(1):  # dynamic scheduling: dense chunks do not stall a thread
            return _ripley_pair_histogram(
                strips.xs, strips.ys, strips.start, strips.neighbour, strips.reach,
                r2, *_radius_table(r2), mode, boundary, stop_bin, rect, edges, chunk_done,
            )

    if progress is None:
        hist = count_pairs()
    else:
        hist = watch(count_pairs, lambda: progress(float(chunk_done.mean())))
    n_centres = x.size - np.cumsum(np.bincount(stop_bin, minlength=n_radii + 1))[:n_radii]
    return np.cumsum(hist)[:n_radii], n_centres


def ripley(x_nm, y_nm, radii_nm, *, window, edge: str = "ripley", progress=None) -> RipleyResult:
    """Ripley K, L, H of the points inside ``window`` at ``radii_nm`` (docs/SCIENCE.md §5.1).

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
    ``progress(fraction)`` (0..1), if given, is called about twice a second during the count.
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
        pair_sums, n_centres = _weighted_pair_sums(x, y, radii, mode, win, progress)
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
def _core_mask(xs, ys, start, neighbour, reach, eps2, min_samples):
    """True where a point has >= min_samples points (itself included) within eps.

    Counting stops as soon as min_samples is reached: dense regions cost O(min_samples).
    Strips are split into _N_CHUNKS chunks run in parallel (each point independent).
    """
    core = np.zeros(xs.size, dtype=np.bool_)
    n_strips = start.size - 1
    n_chunks = min(_N_CHUNKS, n_strips)
    for chunk in prange(n_chunks):
        for a in range(chunk * n_strips // n_chunks, (chunk + 1) * n_strips // n_chunks):
            lo, hi = _open_windows(a, start, neighbour)
            for i in range(start[a], start[a + 1]):
                _slide_windows(a, ys[i], ys, start, neighbour, reach, lo, hi)
                count = 0
                for q in range(lo.size):
                    for j in range(lo[q], hi[q]):
                        dx, dy = xs[j] - xs[i], ys[j] - ys[i]
                        count += dx * dx + dy * dy <= eps2
                    if count >= min_samples:
                        break
                core[i] = count >= min_samples
    return core


@njit(cache=True)
def _find(parent, i):
    """Root of i in the union-find forest, with path halving."""
    while parent[i] != i:
        parent[i] = parent[parent[i]]
        i = parent[i]
    return i


@njit(cache=True)
def _link_core_pairs(xs, ys, start, neighbour, reach, eps2, core, parent, a_lo, a_hi, crossing):
    """Union-find links of the core pairs within eps seen from strips a_lo..a_hi-1 (half stencil:
    each unordered pair once). ``crossing`` False: only pairs whose other point lies in a strip
    before a_hi; True: only pairs reaching strips at or after a_hi (strips that reach none are
    skipped)."""
    k = neighbour.shape[1] // 2
    for a in range(a_lo, a_hi):
        if crossing:
            reaches_out = False
            for q in range(k, neighbour.shape[1]):
                reaches_out |= neighbour[a, q] >= a_hi
            if not reaches_out:
                continue
        lo, hi = _open_windows(a, start, neighbour)
        for i in range(start[a], start[a + 1]):
            _slide_windows(a, ys[i], ys, start, neighbour, reach, lo, hi)
            if not core[i]:
                continue
            root_i = _find(parent, i)
            for q in range(k, lo.size):
                b = neighbour[a, q]
                if b < 0 or (b >= a_hi) != crossing:
                    continue
                j_lo, j_hi = _window(q, i, lo, hi, True)
                for j in range(j_lo, j_hi):
                    if not core[j] or parent[j] == root_i:       # not core, or already in i's cluster
                        continue
                    dx, dy = xs[j] - xs[i], ys[j] - ys[i]
                    if dx * dx + dy * dy <= eps2:
                        root_j = _find(parent, j)
                        # link the larger root under the smaller: root_i stays i's root
                        parent[max(root_i, root_j)] = min(root_i, root_j)
                        root_i = min(root_i, root_j)


@njit(cache=True, parallel=True)
def _core_roots(xs, ys, start, neighbour, reach, eps2, core):
    """Union-find over core pairs within eps; returns the root of every point (itself for non-core
    points).

    Strips are split into _N_CHUNKS chunks: pairs inside a chunk are linked with the chunks in
    parallel (a chunk's links and path halving touch only its own points), then the pairs that
    cross a chunk border, serially. The roots depend on the split, the clusters do not."""
    parent = np.arange(xs.size)
    n_strips = start.size - 1
    n_chunks = min(_N_CHUNKS, n_strips)
    for chunk in prange(n_chunks):
        _link_core_pairs(xs, ys, start, neighbour, reach, eps2, core, parent,
                         chunk * n_strips // n_chunks, (chunk + 1) * n_strips // n_chunks, False)
    for chunk in range(n_chunks):
        _link_core_pairs(xs, ys, start, neighbour, reach, eps2, core, parent,
                         chunk * n_strips // n_chunks, (chunk + 1) * n_strips // n_chunks, True)
    for i in range(xs.size):
        parent[i] = _find(parent, i)
    return parent


@njit(cache=True, parallel=True)
def _assign_border(xs, ys, start, neighbour, reach, eps2, core, labels):
    """Give each non-core point the smallest label among its core neighbours (in place).

    sklearn expands clusters in label order and a border point keeps the first label that
    reaches it, i.e. the smallest one: this reproduces its labels exactly. Chunks of strips
    run in parallel (a border point reads only core labels, which do not change here).
    """
    n_strips = start.size - 1
    n_chunks = min(_N_CHUNKS, n_strips)
    for chunk in prange(n_chunks):
        for a in range(chunk * n_strips // n_chunks, (chunk + 1) * n_strips // n_chunks):
            lo, hi = _open_windows(a, start, neighbour)
            for i in range(start[a], start[a + 1]):
                _slide_windows(a, ys[i], ys, start, neighbour, reach, lo, hi)
                if core[i]:
                    continue
                best = -1
                for q in range(lo.size):
                    for j in range(lo[q], hi[q]):
                        if core[j] and (best < 0 or labels[j] < best):
                            dx, dy = xs[j] - xs[i], ys[j] - ys[i]
                            if dx * dx + dy * dy <= eps2:
                                best = labels[j]
                labels[i] = best


@njit(cache=True)
def _number_groups(group, member, order, n_groups):
    """sklearn's cluster numbering: label k for the group holding the k-th member in input order.

    ``group[s]`` (0..n_groups-1) and ``member[s]`` per point s, ``order[s]`` its input index.
    Returns labels per point, -1 for non-members. O(n): a counting sort of the groups by their
    first member's input index.
    """
    n = group.size
    first_input = np.full(n_groups, n, dtype=np.int64)  # n: group without members
    for s in range(n):
        if member[s] and order[s] < first_input[group[s]]:
            first_input[group[s]] = order[s]
    group_starting_at = np.full(n, -1, dtype=np.int64)
    for g in range(n_groups):
        if first_input[g] < n:
            group_starting_at[first_input[g]] = g
    label_of_group = np.full(n_groups, -1, dtype=np.int64)
    n_labels = 0
    for i in range(n):
        if group_starting_at[i] >= 0:
            label_of_group[group_starting_at[i]] = n_labels
            n_labels += 1
    labels = np.full(n, -1, dtype=np.int64)
    for s in range(n):
        if member[s]:
            labels[s] = label_of_group[group[s]]
    return labels


def dbscan_labels(x_nm, y_nm, eps_nm: float, min_samples: int) -> np.ndarray:
    """DBSCAN cluster labels (int64; -1 = noise; clusters 0..k-1).

    Same result as ``sklearn.cluster.DBSCAN(eps=eps_nm, min_samples=min_samples)``: a point
    is core when >= min_samples points (itself included) lie at distance <= eps_nm; core
    points within eps_nm of each other share a cluster; a border point takes the smallest
    label among its core neighbours; clusters are numbered in sklearn's order (by their first
    core point in input order). Runs on strips of width eps / 2 in O(n) memory.
    """
    if not eps_nm > 0:
        raise ValueError("eps_nm must be > 0")
    if min_samples < 1:
        raise ValueError("min_samples must be >= 1")
    x, y = _as_xy(x_nm, y_nm)
    if x.size == 0:
        return np.empty(0, dtype=np.int64)
    strips = _Strips.build(x, y, eps_nm, _DBSCAN_STRIPS_PER_RADIUS)
    eps2 = float(eps_nm) * float(eps_nm)
    neighbours = (strips.xs, strips.ys, strips.start, strips.neighbour, strips.reach, eps2)
    threads = numba.get_num_threads()
    numba.set_num_threads(threads if x.size >= _DBSCAN_PARALLEL_MIN_POINTS else 1)   # this thread only
    try:
        core = _core_mask(*neighbours, int(min_samples))   # static scheduling: chunksize(1) measured 2x slower here
        roots = _core_roots(*neighbours, core)
        labels_sorted = _number_groups(roots, core, strips.order, roots.size)  # clusters by first core point
        _assign_border(*neighbours, core, labels_sorted)
    finally:
        numba.set_num_threads(threads)
    labels = np.empty(x.size, dtype=np.int64)
    labels[strips.order] = labels_sorted
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


@njit(cache=True)
def _group_by_label(labels, visit_order):
    """Indices of the points with labels >= 0 grouped by label (ascending), each group in
    ``visit_order`` (a stable counting sort, O(n))."""
    n_labels = labels.max() + 1 if labels.size else 0
    next_slot = np.zeros(n_labels + 1, dtype=np.int64)
    for label in labels:
        if label >= 0:
            next_slot[label + 1] += 1
    for label in range(n_labels):
        next_slot[label + 1] += next_slot[label]
    order = np.empty(next_slot[n_labels], dtype=np.int64)
    for i in visit_order:
        label = labels[i]
        if label >= 0:
            order[next_slot[label]] = i
            next_slot[label] += 1
    return order


def xy_order(x_nm, y_nm) -> np.ndarray:
    """Indices sorting the points by x, then y (nm): sort once, then call ``cluster_table`` with
    ``xy_sorted=True`` for every labelling of the same points."""
    x, y = _as_xy(x_nm, y_nm)
    return np.lexsort((y, x))


def cluster_table(x_nm, y_nm, labels, *, xy_sorted: bool = False) -> pd.DataFrame:
    """One row per cluster (labels >= 0; -1 = noise), sorted by cluster_id.

    Columns: cluster_id, n_locs, area_nm2 (convex hull; NaN if < 3 points or collinear),
    radius_eq_nm = sqrt(area/pi), rg_nm = sqrt(mean |p - centroid|^2),
    density_locs_per_um2 = n_locs / (area_nm2 * 1e-6), centroid_x_nm, centroid_y_nm.
    ``xy_sorted=True`` says the points are already sorted by x, then y (``xy_order``): the
    grouping is then a sequential O(n) pass (same table, to the bit).
    """
    x, y = _as_xy(x_nm, y_nm)
    labels = np.ascontiguousarray(labels, dtype=np.int64).ravel()
    if labels.shape != x.shape:
        raise ValueError("labels must have one entry per localisation")
    if not (labels >= 0).any():
        return pd.DataFrame({c: np.empty(0, dtype=_TABLE_COLUMNS[c]) for c in _TABLE_COLUMNS})
    # sort by cluster, then x, then y: contiguous groups ready for the monotone chain
    order = _group_by_label(labels, np.arange(x.size) if xy_sorted else xy_order(x, y))
    xs, ys, ls = x[order], y[order], labels[order]
    starts = np.flatnonzero(np.r_[True, ls[1:] != ls[:-1]])
    n_locs = np.diff(np.r_[starts, ls.size])
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
    """Per-ROI summary of a DBSCAN labelling (docs/SCIENCE.md §5.2), JSON-friendly.

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
        "clusters_per_um2": float(n_clusters / area_um2) if area_um2 > 0 else float("nan"),
        "percent_clustered": 100.0 * int(np.count_nonzero(labels >= 0)) / n_locs if n_locs else float("nan"),
    }
    for column, prefix in _SUMMARY_STATISTICS.items():
        values = table[column].to_numpy(dtype=np.float64)
        summary[f"{prefix}_mean"] = _nan_stat(values, np.mean)
        summary[f"{prefix}_median"] = _nan_stat(values, np.median)
    return summary
