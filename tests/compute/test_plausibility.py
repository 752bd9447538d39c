"""Plausibility of coordinates read as nm, and the ROI naming near-miss (issue 12, items 1-2)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.distance import cdist

from compute import formats, plausibility, rois
from compute.simulate import simulate_csr
from config import DATA_DIR

PIXEL_NM = 107.0


def test_pixel_coordinates_read_as_nm_are_flagged_and_nm_are_not():
    pattern = simulate_csr(150.0, 20_000, 20_000, seed=3)          # 20 x 20 um at 150 loc/um², in nm
    in_nm = plausibility.check_coordinates(pattern.x, pattern.y)
    in_px = plausibility.check_coordinates(pattern.x / PIXEL_NM, pattern.y / PIXEL_NM)
    assert not in_nm.looks_like_pixels and in_px.looks_like_pixels
    # density over the bounding box scales by pixel² (independent reference: n / (ptp x * ptp y))
    n = len(pattern.x)
    expected = n / (np.ptp(pattern.x / PIXEL_NM) * np.ptp(pattern.y / PIXEL_NM) / 1e6)
    assert in_px.density_per_um2 == pytest.approx(expected)
    text = plausibility.pixel_problem(in_px, PIXEL_NM)
    assert "look like camera pixels" in text and f"{PIXEL_NM:g} nm (the pixel size in the form)" in text
    assert "x [px]" in text and "20.0 × 20.0 µm" in text.replace("19.9", "20.0")
    assert plausibility.pixel_problem(in_nm, PIXEL_NM) is None
    assert "enter the effective pixel size" in plausibility.pixel_problem(in_px, None)


def test_nearest_neighbour_median_matches_brute_force():
    rng = np.random.default_rng(0)
    xy = rng.uniform(0, 5000, (800, 2))
    distances = cdist(xy, xy)
    np.fill_diagonal(distances, np.inf)
    check = plausibility.check_coordinates(xy[:, 0], xy[:, 1], np.full(800, 12.0))
    assert check.nn_median_nm == pytest.approx(np.median(distances.min(axis=1)))
    assert check.precision_median_nm == 12.0


@pytest.mark.parametrize("path", ["csv/FGFR1_MCF7_AF647_4.csv", "thunderstorm/LacY-eYFP_Ecoli_01_storm.csv",
                                  "smap/smap_dstorm_data.mat", "picasso/egfr_mols.hdf5",
                                  "picasso/raw_movie_locs.hdf5"])
def test_real_files_in_nm_pass(path):
    table = formats.read_localisations(DATA_DIR / path)
    assert not plausibility.check_coordinates(table.x, table.y, table.precision).looks_like_pixels


def test_too_few_localisations_is_refused_with_the_roi_rule():
    assert plausibility.too_few_problem(plausibility.MIN_DETECTION_LOCS) is None
    text = plausibility.too_few_problem(5, 2)
    assert "only 5 localisation(s)" in text and "_ROI*.csv" in text


@pytest.mark.parametrize("name, fix", [("cell7-ROI1.csv", "cell7_ROI_1.csv"), ("cell7 roi 2.csv", "cell7_ROI_2.csv"),
                                       ("cell7ROI.csv", "cell7_ROI.csv"), ("other-ROI3.csv", "other_ROI3.csv"),
                                       ("ROI3_cell.csv", "{DETECTION_FILE_NAME}_ROI_1.csv")])
def test_misnamed_roi_files_get_the_rule_name(name, fix):
    assert rois.misnamed_roi_fix(name, ["cell7.csv", name]) == fix
    assert rois.is_roi_filename(fix)


@pytest.mark.parametrize("name", ["cell7.csv", "cell7_ROI1.csv", "heroic.csv", "cell7-ROI1.h5"])
def test_ordinary_names_are_not_flagged(name):
    assert rois.misnamed_roi_fix(name, ["cell7.csv"]) is None
