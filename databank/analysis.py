"""Cluster analysis of one stored file, for the file viewer: regions, cached results.

The web layer calls these with a ``DataFile`` it obtained from ``access.get_file`` (never with an id
taken from the browser) and the file's ``LocalisationTable``. Everything that does not depend on a
slider is cached in-process: the points of a region (ROI polygon, tile, drawn box or all ROIs),
DBSCAN results per (region, eps, minPts), Ripley curves per (region, radii, edge). Results of
background jobs (other processes) are shared through an optional on-disk cache.

Browser input is parsed and clamped first (``databank.analysis_inputs``); result files are written by
``databank.analysis_csv`` and the plot by ``databank.viewer_render``. All lengths nm, areas um^2 where named ``_um2``. The science lives in ``compute.clusters`` and
``compute.render``; this module only selects, caches, orchestrates and formats.
"""

from __future__ import annotations


import hashlib
import pickle
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import pandas as pd
import shapely
from shapely.geometry import Polygon, box as shapely_box

from compute import clusters
from compute.tiles import TILE_NM
from databank.analysis_inputs import (ENVELOPE_QUANTILES, DBSCAN_SYNC_MAX, RIPLEY_MAX_POINTS, SWEEP_MAX_CELLS, RegionError, clamp_eps, clamp_min_samples, radii_for, RegionSpec)


class Lru:
    def __init__(self, size: int):
        self.size = size
        self._data: OrderedDict = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key):
        with self._lock:
            if key in self._data:
                self._data.move_to_end(key)
                return self._data[key]
        return None

    def put(self, key, value):
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > self.size:
                self._data.popitem(last=False)
        return value

    def clear(self):
        with self._lock:
            self._data.clear()


_REGIONS = Lru(16)


_DBSCAN = Lru(32)


_RIPLEY = Lru(32)


def clear_caches() -> None:
    for cache in (_REGIONS, _DBSCAN, _RIPLEY):
        cache.clear()


@dataclass(eq=False)
class Region:
    """The localisations of one region of one file, and the window they were selected with."""
    spec: RegionSpec
    label: str
    cache_key: tuple
    index: np.ndarray            # int64 row numbers in the file (0-based)
    x: np.ndarray                # float64 nm
    y: np.ndarray
    window: Any                  # shapely polygon, or (xmin, ymin, xmax, ymax) for tiles and boxes
    area_um2: float
    bounds: tuple[float, float, float, float]
    outline: list[np.ndarray] = field(default_factory=list)   # closed rings (k, 2) nm, for drawing

    @property
    def n(self) -> int:
        return int(self.index.shape[0])

    @property
    def density(self) -> float:
        return self.n / self.area_um2 if self.area_um2 > 0 else float("nan")

    def describe(self) -> str:
        return f"{self.label}: {self.n:,} localisations, {self.area_um2:.2f} µm², {self.density:,.0f} loc/µm²"


def roi_polygon(roi) -> Polygon:
    polygon = Polygon(np.asarray(roi.vertices_nm, dtype=np.float64))
    if not polygon.is_valid:
        polygon = shapely.make_valid(polygon)
    return polygon


def file_identity(data_file) -> tuple:
    """What identifies a file's content in caches (id, checksum and storage key)."""
    return (int(data_file.id), str(data_file.sha256), str(data_file.storage_key))


def region_options(data_file) -> list[dict]:
    """Dropdown options for the regions of a file: all ROIs, each ROI, each tile (dropped marked)."""
    options = [{"label": "All ROIs", "value": "all"}]
    options += [{"label": f"ROI {roi.index}", "value": f"roi:{roi.index}"} for roi in data_file.rois]
    for tile in data_file.tiles:
        note = "" if tile.kept else " (dropped from analysis)"
        options.append({"label": f"Tile {tile.index + 1} (ROI {tile.roi_index}, {tile.n_locs:,} loc){note}",
                        "value": f"tile:{tile.index}"})
    return options


def default_region(data_file) -> RegionSpec:
    """ROI 1 when it is small enough to analyse interactively, else the fullest kept tile."""
    rois = list(data_file.rois)
    n_roi = (data_file.stats or {}).get("n_locs_roi") or data_file.n_locs
    if rois and (len(rois) == 1 and n_roi <= DBSCAN_SYNC_MAX):
        return RegionSpec("roi", index=rois[0].index)
    kept = [t for t in data_file.tiles if t.kept] or list(data_file.tiles)
    if kept:
        return RegionSpec("tile", index=max(kept, key=lambda t: t.n_locs).index)
    if rois:
        return RegionSpec("roi", index=rois[0].index)
    return RegionSpec("all")


def _bbox_candidates(x, y, bounds) -> np.ndarray:
    x0, y0, x1, y1 = bounds
    return np.flatnonzero((x >= x0) & (x <= x1) & (y >= y0) & (y <= y1))


def _in_geometry(x, y, geometry) -> np.ndarray:
    candidates = _bbox_candidates(x, y, geometry.bounds)
    shapely.prepare(geometry)
    inside = shapely.intersects_xy(geometry, x[candidates], y[candidates])
    return candidates[inside]


def _rings(geometry) -> list[np.ndarray]:
    rings = shapely.get_rings(shapely.get_parts(geometry))
    return [np.asarray(shapely.get_coordinates(r)) for r in rings]


def select_region(data_file, table, spec: RegionSpec) -> Region:
    """The localisations of ``spec`` in ``data_file`` (cached per file content and region).

    'roi' k: inside ROI polygon k (boundary included); 'tile' k: the half-open 3 x 3 um square
    [x0, x0 + T) x [y0, y0 + T) of tile k (as the tiling uses); 'box': the closed drawn rectangle;
    'all': inside the union of all ROIs. Raises RegionError when the file has no such region.
    """
    key = file_identity(data_file) + (spec.key,)
    cached = _REGIONS.get(key)
    if cached is not None:
        return cached
    x = np.asarray(table.x)
    y = np.asarray(table.y)
    if spec.kind == "roi":
        roi = next((r for r in data_file.rois if r.index == spec.index), None)
        if roi is None:
            raise RegionError(f"this file has no ROI {spec.index}")
        window = roi_polygon(roi)
        index = _in_geometry(x, y, window)
        label = f"ROI {roi.index}"
        area_um2 = window.area / 1e6
        outline = _rings(window)
        bounds = tuple(map(float, window.bounds))
    elif spec.kind == "all":
        polygons = [roi_polygon(r) for r in data_file.rois]
        if not polygons:
            raise RegionError("this file has no ROI")
        window = shapely.union_all(polygons)
        index = _in_geometry(x, y, window)
        label = "All ROIs"
        area_um2 = window.area / 1e6
        outline = _rings(window)
        bounds = tuple(map(float, window.bounds))
    elif spec.kind == "tile":
        tile = next((t for t in data_file.tiles if t.index == spec.index), None)
        if tile is None:
            raise RegionError(f"this file has no tile {spec.index + 1 if spec.index is not None else ''}")
        x0, y0 = float(tile.x0_nm), float(tile.y0_nm)
        window = (x0, y0, x0 + TILE_NM, y0 + TILE_NM)
        candidates = _bbox_candidates(x, y, window)
        keep = (x[candidates] < window[2]) & (y[candidates] < window[3])
        index = candidates[keep]
        label = f"Tile {tile.index + 1}" + ("" if tile.kept else " (dropped)")
        area_um2 = TILE_NM * TILE_NM / 1e6
        outline = [np.array([[x0, y0], [window[2], y0], [window[2], window[3]], [x0, window[3]], [x0, y0]])]
        bounds = window
    elif spec.kind == "box":
        window = tuple(spec.box)
        index = _bbox_candidates(x, y, window)
        label = "Drawn box"
        area_um2 = (window[2] - window[0]) * (window[3] - window[1]) / 1e6
        outline = [np.asarray(shapely_box(*window).exterior.coords)]
        bounds = window
    else:   # pragma: no cover - RegionSpec.parse rejects other kinds
        raise RegionError(f"unknown region kind {spec.kind!r}")
    index = np.ascontiguousarray(index, dtype=np.int64)
    region = Region(spec=spec, label=label, cache_key=key, index=index,
                    x=np.ascontiguousarray(x[index], dtype=np.float64),
                    y=np.ascontiguousarray(y[index], dtype=np.float64),
                    window=window, area_um2=float(area_um2), bounds=tuple(map(float, bounds)), outline=outline)
    return _REGIONS.put(key, region)


@dataclass(eq=False)
class DbscanResult:
    eps_nm: float
    min_samples: int
    labels: np.ndarray           # int64 per region point, -1 noise
    table: pd.DataFrame          # compute.clusters.cluster_table
    summary: dict                # compute.clusters.cluster_summary
    seconds: float = 0.0


def _dbscan_key(region: Region, eps_nm: float, min_samples: int) -> tuple:
    return region.cache_key + ("dbscan", float(eps_nm), int(min_samples))


def cache_token(key: tuple) -> str:
    """A short stable string for a cache key (used for the on-disk cache and in stores)."""
    return hashlib.sha256(repr(key).encode()).hexdigest()[:32]


def cached_dbscan(region: Region, eps_nm, min_samples, disk=None) -> DbscanResult | None:
    """The DBSCAN result if already computed here (or, with ``disk``, by a background job)."""
    eps_nm, min_samples = clamp_eps(eps_nm), clamp_min_samples(min_samples)
    key = _dbscan_key(region, eps_nm, min_samples)
    result = _DBSCAN.get(key)
    if result is None and disk is not None:
        blob = disk.get(cache_token(key))
        if blob is not None:
            result = _DBSCAN.put(key, pickle.loads(blob))
    return result


def run_dbscan(region: Region, eps_nm, min_samples, disk=None, progress: Callable | None = None) -> DbscanResult:
    """DBSCAN on the region's points (compute.clusters) with its cluster table and summary.

    Cached per (file content, region, eps, minPts); with ``disk`` (a diskcache.Cache) the result is
    also stored there so other processes (background jobs, other workers) can reuse it.
    """
    eps_nm, min_samples = clamp_eps(eps_nm), clamp_min_samples(min_samples)
    cached = cached_dbscan(region, eps_nm, min_samples, disk)
    if cached is not None:
        return cached
    report = progress or (lambda fraction, message: None)
    start = time.perf_counter()
    report(0.1, f"DBSCAN on {region.n:,} localisations")
    labels = clusters.dbscan_labels(region.x, region.y, eps_nm, min_samples)
    report(0.6, "Measuring clusters")
    table = clusters.cluster_table(region.x, region.y, labels)
    summary = clusters.cluster_summary(region.x, region.y, labels, region.area_um2, table=table)
    result = DbscanResult(eps_nm, min_samples, labels, table, summary, time.perf_counter() - start)
    key = _dbscan_key(region, eps_nm, min_samples)
    _DBSCAN.put(key, result)
    if disk is not None:
        disk.set(cache_token(key), pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL), expire=24 * 3600)
    report(1.0, "Done")
    return result


def needs_background(region: Region) -> bool:
    return region.n > DBSCAN_SYNC_MAX


def histogram(values, bins: int = 30) -> dict:
    """{'edges': [...], 'counts': [...]} of the finite values (JSON-friendly)."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return {"edges": [], "counts": []}
    counts, edges = np.histogram(v, bins=bins)
    return {"edges": edges.tolist(), "counts": counts.tolist()}


@dataclass(eq=False)
class RipleyOutcome:
    result: Any                  # compute.clusters.RipleyResult
    n_total: int                 # points in the region
    n_used: int                  # points analysed (a random subsample when the region is large)
    r_max_nm: float
    dr_nm: float
    seed: int

    @property
    def subsampled(self) -> bool:
        return self.n_used < self.n_total


def _seed(region: Region, *extra) -> int:
    return int(hashlib.sha256(repr(region.cache_key + extra).encode()).hexdigest()[:8], 16)


def ripley_points(region: Region, max_points: int = RIPLEY_MAX_POINTS) -> tuple[np.ndarray, np.ndarray, int]:
    """The region's points, or a reproducible random subsample of ``max_points`` of them.

    K(r) is unchanged by independent random thinning, so a subsample estimates the same curve.
    """
    seed = _seed(region, "ripley-subsample")
    if region.n <= max_points:
        return region.x, region.y, seed
    rng = np.random.default_rng(seed)
    keep = np.sort(rng.choice(region.n, size=max_points, replace=False))
    return region.x[keep], region.y[keep], seed


def run_ripley(region: Region, r_max_nm, dr_nm, edge: str = "ripley",
               max_points: int = RIPLEY_MAX_POINTS) -> RipleyOutcome:
    """Ripley K/L/H of the region (compute.clusters.ripley), cached per region and parameters."""
    if edge not in clusters.EDGE_CORRECTIONS:
        edge = "ripley"
    radii = radii_for(r_max_nm, dr_nm)
    key = region.cache_key + ("ripley", float(radii[-1]), float(radii[0]), edge, int(max_points))
    cached = _RIPLEY.get(key)
    if cached is not None:
        return cached
    x, y, seed = ripley_points(region, max_points)
    result = clusters.ripley(x, y, radii, window=region.window, edge=edge)
    outcome = RipleyOutcome(result, region.n, int(x.size), float(radii[-1]), float(radii[0]), seed)
    return _RIPLEY.put(key, outcome)


def csr_envelope(n: int, window, radii, edge: str, n_simulations: int, *, seed: int = 0,
                 progress: Callable | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Pointwise 2.5-97.5 % envelope of H under CSR (n points in ``window``), with progress.

    Each simulation is ``compute.clusters.ripley_csr_envelope`` with one pattern (seed + s), so the
    job can report progress and be cancelled between simulations.
    """
    report = progress or (lambda done, total: None)
    curves = np.empty((int(n_simulations), np.size(radii)))
    for s in range(int(n_simulations)):
        curves[s] = clusters.ripley_csr_envelope(n, window, radii, edge=edge, n_simulations=1,
                                                 quantiles=(0.0, 1.0), seed=seed + s)[0]
        report(s + 1, int(n_simulations))
    low, high = np.nanquantile(curves, ENVELOPE_QUANTILES, axis=0)
    return low, high


def sweep_values(eps_range, min_samples_range, n_eps: int = 8, n_min: int = 7) -> tuple[list[float], list[int]]:
    """The eps (nm) and minPts grid of a sweep: evenly spaced values inside the clamped ranges."""
    try:
        e0, e1 = sorted(clamp_eps(v) for v in eps_range)
        m0, m1 = sorted(clamp_min_samples(v) for v in min_samples_range)
    except (TypeError, ValueError):
        e0, e1, m0, m1 = 20.0, 200.0, 3, 30
    step = 5.0 if e1 - e0 >= 5.0 * (n_eps - 1) else 1.0          # round eps values (nm) when the range allows
    eps = sorted({float(np.clip(round(v / step) * step, e0, e1)) for v in np.linspace(e0, e1, n_eps)})
    mins = sorted({int(round(v)) for v in np.linspace(m0, m1, n_min)})
    while len(eps) * len(mins) > SWEEP_MAX_CELLS:
        mins = mins[::2]
    return eps, mins


def parameter_sweep(region: Region, eps_values, min_samples_values,
                    progress: Callable | None = None) -> dict:
    """Cluster count, clusters per um^2 and % clustered for every (eps, minPts) of the grid.

    Rows are minPts, columns eps. Uses compute.clusters.dbscan_labels only (no cluster table).
    """
    report = progress or (lambda done, total: None)
    eps_values = [clamp_eps(v) for v in eps_values]
    min_values = [clamp_min_samples(v) for v in min_samples_values]
    n_clusters = np.zeros((len(min_values), len(eps_values)), dtype=np.int64)
    percent = np.zeros((len(min_values), len(eps_values)))
    total, done = len(eps_values) * len(min_values), 0
    for j, eps in enumerate(eps_values):
        for i, m in enumerate(min_values):
            labels = clusters.dbscan_labels(region.x, region.y, eps, m)
            n_clusters[i, j] = int(labels.max()) + 1 if labels.size else 0
            percent[i, j] = 100.0 * np.count_nonzero(labels >= 0) / labels.size if labels.size else float("nan")
            done += 1
            report(done, total)
    return {"eps_nm": eps_values, "min_samples": min_values, "n_clusters": n_clusters.tolist(),
            "clusters_per_um2": (n_clusters / region.area_um2).tolist() if region.area_um2 > 0 else None,
            "percent_clustered": percent.tolist(), "region": region.spec.key, "n_locs": region.n}
