"""Fiji polygon ROI files: naming rule, reading, unit check, repair."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import shapely

from compute.rois import (MIN_ROI_AREA_UM2, RoiError, RoiPolygon, auto_roi, is_roi_filename,
                                  match_roi_files, read_roi_vertices, roi_files_for, roi_polygon)

SQUARE_UM = np.array([[2.0, 2.0], [12.0, 2.0], [12.0, 12.0], [2.0, 12.0]])


@pytest.fixture(scope="module")
def points():
    """Uniform localisations over a 40 x 30 um field, in nm."""
    rng = np.random.default_rng(7)
    return rng.uniform(0, 40_000, 20_000), rng.uniform(0, 30_000, 20_000)


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


# --- naming rule ---------------------------------------------------------------------------------------

def test_is_roi_filename():
    assert is_roi_filename("experiment_ROI_1.csv")
    assert is_roi_filename("experiment_roi.CSV")
    assert is_roi_filename("dir/cell_ROI-outline.csv")
    assert not is_roi_filename("experiment.csv")
    assert not is_roi_filename("experiment_ROI_1.txt")
    assert not is_roi_filename("_ROI_1.csv")


def test_roi_files_for_sorts_naturally_and_ignores_similar_stems():
    candidates = ["cell1_ROI_10.csv", "cell1_ROI_2.csv", "cell10_ROI_1.csv", "cell1_ROI_1.csv", "cell1.csv",
                  "cell1_ROI_3.txt"]
    assert roi_files_for("cell1.csv", candidates) == ["cell1_ROI_1.csv", "cell1_ROI_2.csv", "cell1_ROI_10.csv"]
    assert roi_files_for("cell10.hdf5", candidates) == ["cell10_ROI_1.csv"]


def test_match_roi_files_cell1_vs_cell10_and_unmatched():
    matched, unmatched = match_roi_files(
        ["cell1.csv", "cell10.h5", "empty.csv"],
        ["cell10_ROI_1.csv", "cell1_ROI_10.csv", "cell1_ROI_2.csv", "other_ROI_1.csv", "cell_ROI_1.csv"])
    assert matched == {"cell1.csv": ["cell1_ROI_2.csv", "cell1_ROI_10.csv"], "cell10.h5": ["cell10_ROI_1.csv"],
                       "empty.csv": []}
    assert unmatched == ["other_ROI_1.csv", "cell_ROI_1.csv"]


def test_match_roi_files_prefers_the_longest_stem():
    matched, unmatched = match_roi_files(["a.csv", "a_ROI_b.csv"], ["a_ROI_b_ROI_1.csv"])
    assert matched == {"a.csv": [], "a_ROI_b.csv": ["a_ROI_b_ROI_1.csv"]} and unmatched == []


# --- reading Fiji exports ---------------------------------------------------------------------------------

@pytest.mark.parametrize("text", [
    "X,Y\n2,2\n12,2\n12,12\n2,12\n",                       # Fiji list coordinates, um
    "x\ty\n2\t2\n12\t2\n12\t12\n2\t12\n",                  # tab separated, lower case
    " ,X,Y\n1,2,2\n2,12,2\n3,12,12\n4,2,12\n",              # index column with blank name
    "2 2\n12 2\n12 12\n2 12\n",                            # no header, whitespace
    "1,2,2\n2,12,2\n3,12,12\n4,2,12\n",                    # no header, index column
    "\ufeffX,Y\n2,2\n12,2\n12,12\n2,12\n2,2\n",            # BOM and an explicit closing vertex
    "X;Y\n2,0;2,0\n12;2\n12;12\n2;12\n",                   # semicolon and decimal comma
])
def test_read_fiji_variants(tmp_path, text):
    vertices = read_roi_vertices(write(tmp_path / "cell_ROI_1.csv", text))
    np.testing.assert_array_equal(vertices, SQUARE_UM)
    assert vertices.dtype == np.float64


def test_read_reports_the_line_of_a_bad_vertex(tmp_path):
    with pytest.raises(RoiError) as err:
        read_roi_vertices(write(tmp_path / "tmp_3.csv", "X,Y\n1,2\n3,abc\n"), display_name="cell_ROI_1.csv")
    assert err.value.line == 3 and str(err.value).startswith("cell_ROI_1.csv, line 3:") and "Fix:" in str(err.value)


@pytest.mark.parametrize("text", ["", "X,Y\n", "A,B,C,D\n1,2,3,4\n"])
def test_read_unusable_files(tmp_path, text):
    with pytest.raises(RoiError) as err:
        read_roi_vertices(write(tmp_path / "bad_ROI.csv", text))
    assert str(err.value).startswith("bad_ROI.csv") and "Fix:" in str(err.value)


# --- units -----------------------------------------------------------------------------------------------

def test_micrometres_by_default(points):
    roi = roi_polygon(SQUARE_UM, *points, name="cell_ROI_1.csv")
    assert isinstance(roi, RoiPolygon) and roi.unit == "um" and not roi.repaired and roi.warnings == []
    np.testing.assert_array_equal(roi.vertices_nm, SQUARE_UM * 1000)
    assert roi.polygon.area == pytest.approx(100e6)


def test_nanometre_roi_detected_with_a_warning(points):
    roi = roi_polygon(SQUARE_UM * 1000, *points, name="cell_ROI_1.csv")
    assert roi.unit == "nm" and roi.polygon.area == pytest.approx(100e6)
    assert any("nm" in w for w in roi.warnings)


def test_pixel_roi_detected_when_render_pixel_given(tmp_path, points):
    vertices = read_roi_vertices(write(tmp_path / "cell_ROI_1.csv", "X\tY\n20\t20\n120\t20\n120\t120\n20\t120\n"))
    roi = roi_polygon(vertices, *points, name="cell_ROI_1.csv", render_pixel_nm=100)
    assert roi.unit == "px" and roi.polygon.area == pytest.approx(100e6)
    assert any("px" in w for w in roi.warnings)


def test_roi_far_from_the_points_is_an_error(points):
    with pytest.raises(RoiError) as err:
        roi_polygon(SQUARE_UM - 1e6, *points, name="far_ROI_1.csv", render_pixel_nm=100)
    assert str(err.value).startswith("far_ROI_1.csv") and "Fix:" in str(err.value)
    assert pickle.loads(pickle.dumps(err.value)).fix == err.value.fix


def test_explicit_units(points):
    assert roi_polygon(SQUARE_UM * 1000, *points, units="nm").unit == "nm"
    with pytest.raises(RoiError):
        roi_polygon(SQUARE_UM, *points, units="px")


# --- geometry ----------------------------------------------------------------------------------------------

def test_bow_tie_is_repaired(points):
    bow_tie = np.array([[2.0, 2.0], [12.0, 12.0], [12.0, 2.0], [2.0, 12.0]])
    roi = roi_polygon(bow_tie, *points)
    assert roi.repaired and roi.polygon.is_valid
    assert roi.polygon.geom_type == "MultiPolygon" and len(roi.polygon.geoms) == 2
    assert roi.polygon.area == pytest.approx(50e6)
    np.testing.assert_array_equal(roi.vertices_nm, bow_tie * 1000)
    assert any("repaired" in w for w in roi.warnings)


@pytest.mark.parametrize("vertices", [[[1.0, 1.0]], [[1.0, 1.0], [5.0, 5.0]], [[1.0, 1.0], [5.0, 5.0], [1.0, 1.0]]])
def test_fewer_than_three_vertices(tmp_path, points, vertices):
    text = "X,Y\n" + "".join(f"{x},{y}\n" for x, y in vertices)
    read = read_roi_vertices(write(tmp_path / "line_ROI_1.csv", text))
    with pytest.raises(RoiError) as err:
        roi_polygon(read, *points, name="line_ROI_1.csv")
    assert "vertices" in str(err.value) and "Fix:" in str(err.value)


def test_collinear_vertices_have_no_area(points):
    with pytest.raises(RoiError):
        roi_polygon([[1.0, 1.0], [5.0, 5.0], [9.0, 9.0]], *points)


def test_small_roi_is_kept_with_a_warning(points):
    roi = roi_polygon([[5.0, 5.0], [7.0, 5.0], [7.0, 7.0], [5.0, 7.0]], *points, name="tiny_ROI.csv")
    assert roi.polygon.area / 1e6 < MIN_ROI_AREA_UM2
    assert any("3 x 3 um tile" in w for w in roi.warnings)


def test_auto_roi_convex_hull_and_degenerate_cases(points):
    hull = auto_roi(*points)
    assert hull.is_valid and hull.area == pytest.approx(40_000 * 30_000, rel=0.01)
    assert shapely.contains_xy(hull.buffer(1e-6), *points).all()
    line = auto_roi([0.0, 10.0, 20.0], [5.0, 5.0, 5.0])
    assert line.is_valid and line.area > 0 and line.bounds[0] <= 0 and line.bounds[2] >= 20
    assert auto_roi([0.0, 10.0, 20.0], [0.0, 10.0, 20.0]).bounds == (0.0, 0.0, 20.0, 20.0)
