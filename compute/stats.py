"""Per-file statistics: localisation density, coverage, localisation precision incl. NeNA (docs/SCIENCE.md §4).

All values are plain Python floats / ints (or None when unknown) so the dict is JSON-friendly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import shapely
from scipy.optimize import curve_fit
from scipy.spatial import cKDTree

from compute.rois import points_in_polygon
from compute.similarity import FileFingerprints
from compute.tiles import BIN_NM, TileGrid, bins_per_side

NM2_PER_UM2 = 1e6


def file_statistics(x_nm, y_nm, precision_nm, polygons: Sequence, grid: TileGrid,
                    fingerprints: FileFingerprints, *, roi_source: str = "file",
                    precision_source: str | None = None, bin_nm: float = BIN_NM, frame=None) -> dict:
    """Density, coverage and precision of one file.

    Keys: n_locs; n_locs_roi, roi_area_um2, density (loc/um² inside the union of the polygons,
    boundary included; None without polygons); n_tiles (grid tiles), n_tiles_kept (tiles with
    enough localisations for the unthinned comparison), n_tiles_dropped; tile_area_um2 and
    density_tiles (over the kept tiles); coverage (fraction of the kept tiles' ``bin_nm`` bins
    holding >= 1 localisation); coverage_area (kept tile area / ROI area); precision_median,
    precision_mean, precision_sd (ddof 1; nm, finite values inside the ROI, None without a precision
    column); precision_source; roi_source; n_tiles_thinned_<target> per thinning target;
    precision_nena_nm, precision_nena_se_nm and nena_n_pairs (NeNA precision and its standard error
    in nm from the localisations inside the ROI, and the number of adjacent-frame pairs fitted;
    None and 0 without a frame column or when ``nena_precision`` gives no estimate).
    """
    x = np.asarray(x_nm, dtype=np.float64)
    y = np.asarray(y_nm, dtype=np.float64)
    roi = _roi_statistics(x, y, polygons)
    tiles = _tile_statistics(grid, fingerprints, bin_nm)
    in_roi = roi.pop("mask")
    precision = None if precision_nm is None else np.asarray(precision_nm, dtype=np.float64)[in_roi]
    return {
        "n_locs": int(x.size),
        **roi,
        **tiles,
        "coverage_area": _ratio(tiles["tile_area_um2"], roi["roi_area_um2"]),
        **_precision_statistics(precision),
        **_nena_statistics(x[in_roi], y[in_roi], None if frame is None else np.asarray(frame)[in_roi]),
        "precision_source": None if precision_nm is None else precision_source,
        "roi_source": roi_source,
        **{f"n_tiles_thinned_{target}": len(fp) for target, fp in sorted(fingerprints.thinned.items())},
    }


def _roi_statistics(x: np.ndarray, y: np.ndarray, polygons: Sequence) -> dict:
    """Localisations, area and density inside the union of the polygons, plus the inside mask."""
    if len(polygons) == 0:
        return {"n_locs_roi": None, "roi_area_um2": None, "density": None,
                "mask": np.ones(x.size, dtype=bool)}
    union = shapely.unary_union(list(polygons))
    inside = points_in_polygon(x, y, union)
    area_um2 = union.area / NM2_PER_UM2
    return {"n_locs_roi": int(inside.sum()), "roi_area_um2": float(area_um2),
            "density": _ratio(int(inside.sum()), area_um2), "mask": inside}


def _tile_statistics(grid: TileGrid, fingerprints: FileFingerprints, bin_nm: float) -> dict:
    """Tile counts, kept tile area, density in kept tiles and bin occupancy (coverage)."""
    kept = fingerprints.unthinned
    bins_per_tile = bins_per_side(grid.tile_nm, bin_nm) ** 2
    if not np.all(kept.hist.sum(axis=1) == bins_per_tile):
        raise ValueError(f"fingerprints were not made with {bin_nm} nm bins on {grid.tile_nm} nm tiles")
    tile_area_um2 = len(kept) * grid.tile_nm**2 / NM2_PER_UM2
    occupied_bins = int(kept.hist[:, 1:].sum())
    return {
        "n_tiles": len(grid),
        "n_tiles_kept": len(kept),
        "n_tiles_dropped": len(grid) - len(kept),
        "tile_area_um2": float(tile_area_um2),
        "density_tiles": _ratio(int(kept.n_locs.sum()), tile_area_um2),
        "coverage": _ratio(occupied_bins, len(kept) * bins_per_tile),
    }


def _precision_statistics(precision: np.ndarray | None) -> dict:
    """Median, mean and SD (ddof 1) of the finite precision values in nm (None if unavailable)."""
    values = np.empty(0) if precision is None else precision[np.isfinite(precision)]
    return {
        "precision_median": float(np.median(values)) if values.size else None,
        "precision_mean": float(values.mean()) if values.size else None,
        "precision_sd": float(values.std(ddof=1)) if values.size > 1 else None,
    }


def _nena_statistics(x: np.ndarray, y: np.ndarray, frame: np.ndarray | None) -> dict:
    """precision_nena_nm, its standard error precision_nena_se_nm and nena_n_pairs (None, None, 0
    when NeNA is not available)."""
    result = None if frame is None else nena_precision(x, y, frame)
    return {"precision_nena_nm": None if result is None else result.sigma_nm,
            "precision_nena_se_nm": None if result is None else result.sigma_se_nm,
            "nena_n_pairs": 0 if result is None else result.n_pairs}


# ---------------------------------------------------------------------------------------------
# Localisation precision by NeNA (Endesfelder et al., Histochem Cell Biol 141:629, 2014)
# ---------------------------------------------------------------------------------------------

NENA_MAX_DISTANCE_NM = 150.0     # distances fitted: 0 < d <= this (a few times sqrt(2) sigma)
NENA_BIN_NM = 1.0                # histogram bin of the fit
NENA_MIN_PAIRS = 100             # fewer adjacent-frame pairs: no estimate
NENA_MAX_RELATIVE_SE = 0.1       # a fit with SE(sigma) above 10 % of sigma is not reported


@dataclass(frozen=True)
class NenaResult:
    """NeNA fit: sigma_nm (localisation precision, nm), its standard error (nm), the number of
    adjacent-frame pairs with d <= max_distance_nm, and the fitted share of the Rayleigh term."""

    sigma_nm: float
    sigma_se_nm: float
    n_pairs: int
    rayleigh_fraction: float


def next_frame_neighbour_distances(x_nm, y_nm, frame, max_distance_nm: float = NENA_MAX_DISTANCE_NM
                                   ) -> np.ndarray:
    """Distance (nm) from each localisation in frame f to its nearest localisation in frame f + 1,
    for those that have one within ``max_distance_nm`` (others are left out).

    One k-d tree over (x, y, frame x S) with S larger than the search radius: a query at
    (x, y, (f + 1) x S) within the radius only reaches frame f + 1.
    """
    x = np.asarray(x_nm, dtype=np.float64)
    y = np.asarray(y_nm, dtype=np.float64)
    f = np.asarray(frame, dtype=np.float64)
    if x.size < 2:
        return np.empty(0)
    separation = 4.0 * max_distance_nm
    tree = cKDTree(np.column_stack((x, y, f * separation)))
    d, _ = tree.query(np.column_stack((x, y, (f + 1) * separation)), k=1,
                      distance_upper_bound=max_distance_nm, workers=-1)
    return d[np.isfinite(d)]


def nena_density(d_nm, sigma_nm, rayleigh_weight, linear_weight):
    """NeNA model density (per nm): w_R d / (2 sigma²) exp(-d² / (4 sigma²)) + w_L d.

    The first term is the distribution of the distance between two localisations of the same
    emitter in adjacent frames (each blurred by a Gaussian of SD sigma); the second, linear term is
    Endesfelder's correction for pairs of different, uncorrelated emitters (uniform density, small d).
    """
    return (rayleigh_weight * d_nm / (2 * sigma_nm**2) * np.exp(-d_nm**2 / (4 * sigma_nm**2))
            + linear_weight * d_nm)


def nena_precision(x_nm, y_nm, frame, *, max_distance_nm: float = NENA_MAX_DISTANCE_NM,
                   bin_nm: float = NENA_BIN_NM, min_pairs: int = NENA_MIN_PAIRS) -> NenaResult | None:
    """Localisation precision sigma_NeNA (nm) from nearest neighbours in adjacent frames.

    Least-squares fit of ``nena_density`` to the normalised histogram (``bin_nm`` bins) of the
    distances in (0, max_distance_nm]. None with fewer than ``min_pairs`` pairs, without
    convergence, or when the standard error of sigma exceeds ``NENA_MAX_RELATIVE_SE`` of it.
    (Endesfelder's optional Gaussian term for a second emitter at a fixed distance is not fitted.
    In clustered samples whose molecules do not blink in consecutive frames, the fitted sigma
    reflects the cluster size rather than the precision.)
    """
    d = next_frame_neighbour_distances(x_nm, y_nm, frame, max_distance_nm)
    if d.size < min_pairs:
        return None
    edges = np.arange(0.0, max_distance_nm + bin_nm, bin_nm)
    counts, _ = np.histogram(d, bins=edges)
    density = counts / (d.size * bin_nm)
    centres = (edges[:-1] + edges[1:]) / 2
    start = max(float(np.median(d)) / np.sqrt(np.pi), bin_nm)   # median of Rayleigh(sqrt2 sigma) ~ 1.67 sigma
    try:
        (sigma, w_r, w_l), covariance = curve_fit(
            nena_density, centres, density, p0=(start, 0.8, 0.2 / max_distance_nm**2 * 2),
            bounds=((bin_nm / 10, 0.0, 0.0), (max_distance_nm, 2.0, np.inf)))
    except (RuntimeError, ValueError):
        return None
    if not np.all(np.isfinite(covariance)) or np.sqrt(covariance[0, 0]) > NENA_MAX_RELATIVE_SE * sigma:
        return None
    return NenaResult(sigma_nm=float(sigma), sigma_se_nm=float(np.sqrt(covariance[0, 0])), n_pairs=int(d.size),
                      rayleigh_fraction=float(min(w_r, 1.0)))


def _ratio(numerator, denominator) -> float | None:
    """numerator / denominator as a float, None when undefined."""
    if numerator is None or not denominator:
        return None
    return float(numerator / denominator)
