"""Is a localisation table plausible as nanometres? Checks run before anything is stored.

Two mistakes pass every format check and give nonsense analyses: a polygon ROI file named like a
detection file (a handful of vertices in µm, read as a 5-localisation "file"), and coordinates in
camera pixels (or µm) under a plain ``x,y`` header, read as nm (a whole field squeezed into a few
hundred nm, hundreds of thousands of loc/µm², nearest neighbours a fraction of a nm apart). The numbers
here name the problem; the caller turns them into a refusal.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree

MIN_DETECTION_LOCS = 100            # fewer localisations than this cannot be a detection file
MAX_PLAUSIBLE_DENSITY = 100_000.0   # loc/µm² over the bounding box; real SMLM stays far below
MAX_PIXEL_EXTENT_NM = 20_000.0      # a camera frame in px read as nm spans at most ~2-4k "nm"
_NN_SAMPLE = 200_000                # localisations used for the nearest-neighbour distance


@dataclass(frozen=True)
class CoordinateCheck:
    """Plausibility numbers of x, y read as nm."""
    n_locs: int
    width_nm: float
    height_nm: float
    density_per_um2: float | None     # localisations / bounding-box area (µm²)
    nn_median_nm: float | None        # median distance to the nearest other localisation (nm)
    precision_median_nm: float | None

    @property
    def looks_like_pixels(self) -> bool:
        """True when the field is small and impossibly crowded for nm (camera pixels or µm read as nm).

        Read as nm, pixels of p nm multiply the true density by p² (10⁴ for 100 nm pixels), so a
        bounding-box density above MAX_PLAUSIBLE_DENSITY is the test; the nearest-neighbour distance
        is reported, not tested (repeated localisations of one emitter can be closer than 1 nm).
        """
        crowded = self.density_per_um2 is not None and self.density_per_um2 > MAX_PLAUSIBLE_DENSITY
        return crowded and max(self.width_nm, self.height_nm) < MAX_PIXEL_EXTENT_NM


def check_coordinates(x_nm, y_nm, precision_nm=None, *, seed: int = 0) -> CoordinateCheck:
    """Extent, bounding-box density and median nearest-neighbour distance of localisations (nm).

    Beyond ``_NN_SAMPLE`` localisations the nearest-neighbour distance is measured on a random
    subset and scaled by sqrt(n_subset / n) (the 1/sqrt(density) law of a random pattern).
    Exact duplicates are counted once for the nearest-neighbour distance.
    """
    x = np.asarray(x_nm, dtype=np.float64)
    y = np.asarray(y_nm, dtype=np.float64)
    n = int(x.size)
    width = float(np.ptp(x)) if n else 0.0
    height = float(np.ptp(y)) if n else 0.0
    area_um2 = width * height / 1e6
    density = n / area_um2 if area_um2 > 0 else None
    points = np.unique(np.column_stack((x, y)), axis=0)
    nn_median = None
    if len(points) >= 2:
        scale = 1.0
        if len(points) > _NN_SAMPLE:
            chosen = np.random.default_rng(seed).choice(len(points), _NN_SAMPLE, replace=False)
            scale = float(np.sqrt(_NN_SAMPLE / len(points)))
            points = points[chosen]
        distances, _ = cKDTree(points).query(points, k=2)
        nn_median = float(np.median(distances[:, 1])) * scale
    precision = None if precision_nm is None else np.asarray(precision_nm, dtype=np.float64)
    finite = precision[np.isfinite(precision)] if precision is not None else np.empty(0)
    return CoordinateCheck(n_locs=n, width_nm=width, height_nm=height, density_per_um2=density,
                           nn_median_nm=nn_median,
                           precision_median_nm=float(np.median(finite)) if finite.size else None)


def pixel_problem(check: CoordinateCheck, pixel_size_nm: float | None) -> str | None:
    """The refusal text when ``check`` looks like pixels, else None. With ``pixel_size_nm`` (the
    form's value) it says what the field would be if the columns were pixels of that size."""
    if not check.looks_like_pixels:
        return None
    facts = [f"read as nm the field is only {check.width_nm:,.0f} × {check.height_nm:,.0f} nm"]
    if check.density_per_um2 is not None:
        facts.append(f"{check.density_per_um2:,.0f} loc/µm²")
    if check.nn_median_nm is not None:
        neighbour = f"median nearest-neighbour distance {check.nn_median_nm:.2g} nm"
        if check.precision_median_nm is not None:
            neighbour += f" (localisation precision {check.precision_median_nm:.2g} nm)"
        facts.append(neighbour)
    text = "these coordinates look like camera pixels (or µm), not nm: " + ", ".join(facts) + ". "
    if pixel_size_nm:
        scaled_density = (check.density_per_um2 or 0.0) / pixel_size_nm ** 2
        text += (f"As pixels of {pixel_size_nm:g} nm (the pixel size in the form) the field would be "
                 f"{check.width_nm * pixel_size_nm / 1000:,.1f} × {check.height_nm * pixel_size_nm / 1000:,.1f} µm "
                 f"with {scaled_density:,.0f} loc/µm². The pixel size is only applied to columns marked as "
                 "pixels, and nothing is renamed for you. Fix: mark the units in the header, e.g. "
                 "'x [px]', 'y [px]' (or 'x [nm]' after converting), and upload again.")
    else:
        text += ("Fix: mark the units in the header, e.g. 'x [px]', 'y [px]', and enter the effective pixel size "
                 "(nm) in the form, or convert the coordinates to nm before uploading.")
    return text


def too_few_problem(n_locs: int, n_columns: int | None = None) -> str | None:
    """The refusal text for a detection file with fewer than MIN_DETECTION_LOCS localisations, else None."""
    if n_locs >= MIN_DETECTION_LOCS:
        return None
    text = (f"holds only {n_locs} localisation(s); a detection file needs at least {MIN_DETECTION_LOCS:,}, "
            "so it is not stored as one.")
    if n_columns is None or n_columns <= 3:
        text += (" It looks like a polygon ROI (X,Y vertices): ROI files must be named "
                 "{DETECTION_FILE_NAME}_ROI*.csv, e.g. cell7_ROI1.csv for cell7.csv. Rename it and choose the "
                 "files again.")
    return text
