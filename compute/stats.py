"""Per-file statistics: localisation density, coverage, localisation precision (docs/SCIENCE.md §4).

All values are plain Python floats / ints (or None when unknown) so the dict is JSON-friendly.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import shapely

from compute.similarity import FileFingerprints
from compute.tiles import BIN_NM, TileGrid, bins_per_side

NM2_PER_UM2 = 1e6


def file_statistics(x_nm, y_nm, precision_nm, polygons: Sequence, grid: TileGrid,
                    fingerprints: FileFingerprints, *, roi_source: str = "file",
                    precision_source: str | None = None, bin_nm: float = BIN_NM) -> dict:
    """Density, coverage and precision of one file.

    Keys: n_locs; n_locs_roi, roi_area_um2, density (loc/um² inside the union of the polygons,
    boundary included; None without polygons); n_tiles (grid tiles), n_tiles_kept (tiles with
    enough localisations for the unthinned comparison), n_tiles_dropped; tile_area_um2 and
    density_tiles (over the kept tiles); coverage (fraction of the kept tiles' ``bin_nm`` bins
    holding >= 1 localisation); coverage_area (kept tile area / ROI area); precision_median,
    precision_mean, precision_sd (ddof 1; nm, finite values inside the ROI, None without a precision
    column); precision_source; roi_source; n_tiles_thinned_<target> per thinning target.
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
    shapely.prepare(union)
    inside = shapely.intersects_xy(union, x, y)
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


def _ratio(numerator, denominator) -> float | None:
    """numerator / denominator as a float, None when undefined."""
    if numerator is None or not denominator:
        return None
    return float(numerator / denominator)
