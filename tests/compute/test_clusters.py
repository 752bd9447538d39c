"""Tests of compute.clusters against brute-force numpy, scipy and sklearn."""

from __future__ import annotations

import json
from functools import partial

import numpy as np
import pandas as pd
import pytest

from config import DATA_DIR
import shapely
from scipy.spatial import ConvexHull, cKDTree
from shapely.geometry import Polygon, box
from sklearn.cluster import DBSCAN
from sklearn.metrics import adjusted_rand_score

from compute.clusters import (
    DEFAULT_EPS_NM,
    DEFAULT_MIN_SAMPLES,
    EDGE_CORRECTIONS,
    RipleyResult,
    cluster_summary,
    cluster_table,
    dbscan_labels,
    default_radii_nm,
    ripley,
    ripley_csr_envelope,
)
from compute.dbscan_tree import DbscanTree

GROUND_TRUTH_CSV = DATA_DIR / "ground_truth" / "Scenario2_normal_50_single_DetectionList_1.csv"

RECT = (100.0, 200.0, 2100.0, 1700.0)  # 2 x 1.5 um
# non-convex window with a hole (nm)
POLYGON = Polygon(
    [(0, 0), (2000, 0), (2000, 2000), (1000, 1200), (0, 2000)],
    holes=[[(700, 500), (1100, 500), (1100, 800), (700, 800)]],
)
RADII = np.arange(20.0, 401.0, 20.0)


def uniform_points(rng, n, bounds):
    xmin, ymin, xmax, ymax = bounds
    return rng.uniform(xmin, xmax, n), rng.uniform(ymin, ymax, n)


def thomas_points(rng, n_parents, per_parent, sigma_nm, bounds):
    """Gaussian clusters around uniform parents, clipped to the bounds."""
    px, py = uniform_points(rng, n_parents, bounds)
    parent = np.repeat(np.arange(n_parents), per_parent)
    x = np.clip(px[parent] + rng.normal(0, sigma_nm, parent.size), bounds[0], bounds[2])
    y = np.clip(py[parent] + rng.normal(0, sigma_nm, parent.size), bounds[1], bounds[3])
    return x, y


# ------------------------------------------------------------------------------------------
# Brute force Ripley, straight from the formulas (docs/SCIENCE.md §5.1)
# ------------------------------------------------------------------------------------------


def pair_distances(x, y):
    d = np.hypot(x[:, None] - x[None, :], y[:, None] - y[None, :])
    np.fill_diagonal(d, np.inf)  # j != i
    return d


def brute_k(d, weights, radii, area):
    """K(r) = A / (n (n-1)) sum_i sum_{j != i} w_ij 1(d_ij < r)."""
    n = d.shape[0]
    return np.array([area * np.sum(weights * (d < r)) / (n * (n - 1)) for r in radii])


def union_length(starts, ends):
    """Total length of the union of intervals, row by row (empty intervals: start == end)."""
    order = np.argsort(starts, axis=1)
    starts = np.take_along_axis(starts, order, axis=1)
    ends = np.take_along_axis(ends, order, axis=1)
    covered_until = np.maximum.accumulate(ends, axis=1)
    previous = np.concatenate([np.full((starts.shape[0], 1), -np.inf), covered_until[:, :-1]], axis=1)
    return np.clip(ends - np.maximum(starts, previous), 0, None).sum(axis=1)


def rect_circle_fraction_inside(cx, cy, d, rect):
    """Fraction of circles (centres cx, cy; radii d) inside a rectangle, as 1 - the union
    of the arcs beyond each edge, merged as angular intervals on [0, 2 pi)."""
    xmin, ymin, xmax, ymax = rect
    edge_gaps = [cx - xmin, xmax - cx, cy - ymin, ymax - cy]
    normals = [np.pi, 0.0, 1.5 * np.pi, 0.5 * np.pi]
    starts, ends = [], []
    for gap, normal in zip(edge_gaps, normals):
        half = np.arccos(np.clip(gap / d, -1, 1))
        lo, hi = normal - half, normal + half
        # an arc wrapping around angle 0 becomes [lo + 2 pi, 2 pi) and [0, hi); else [lo, hi), []
        wraps = lo < 0
        starts += [np.where(wraps, lo + 2 * np.pi, lo), np.zeros_like(lo)]
        ends += [np.where(wraps, 2 * np.pi, hi), np.where(wraps, hi, 0.0)]
    outside = union_length(np.stack(starts, axis=1), np.stack(ends, axis=1))
    return 1.0 - outside / (2 * np.pi)


def isotropic_weights(x, y, d, r_max, fraction_inside):
    """w_ij = 1 / fraction of the circle centred at i through j inside W (pairs d < r_max)."""
    weights = np.zeros_like(d)
    i, j = np.nonzero(d < r_max)
    weights[i, j] = 1.0 / fraction_inside(x[i], y[i], d[i, j])
    return weights


def polygon_circle_fraction_inside(cx, cy, d, polygon):
    """360 points at angles 2 pi k / 360 on each circle, strictly inside; at least 1 / 360."""
    theta = 2 * np.pi * np.arange(360) / 360
    px = cx[:, None] + d[:, None] * np.cos(theta)
    py = cy[:, None] + d[:, None] * np.sin(theta)
    inside = shapely.contains_xy(polygon, px, py).sum(axis=1)
    return np.maximum(inside, 1) / 360


def brute_buffer_k(d, boundary, radii, area):
    """K(r) = A / (n n_c(r)) sum_{i: boundary_i >= r} sum_{j != i} 1(d_ij < r)."""
    n = d.shape[0]
    k = []
    for r in radii:
        centres = boundary >= r
        k.append(area * np.sum(d[centres] < r) / (n * centres.sum()))
    return np.array(k)


def assert_matches(result: RipleyResult, expected_k):
    np.testing.assert_allclose(result.K, expected_k, rtol=1e-9, atol=0)
    np.testing.assert_allclose(result.L, np.sqrt(expected_k / np.pi), rtol=1e-9)
    np.testing.assert_allclose(result.H, np.sqrt(expected_k / np.pi) - result.r, rtol=1e-9, atol=1e-9)


@pytest.fixture(scope="module")
def rect_points():
    """1,500 clustered + uniform points, some outside RECT (they must be ignored)."""
    rng = np.random.default_rng(7)
    cx, cy = thomas_points(rng, 25, 30, 40.0, (0, 100, 2200, 1800))
    ux, uy = uniform_points(rng, 750, (0, 100, 2200, 1800))
    return np.r_[cx, ux], np.r_[cy, uy]


@pytest.fixture(scope="module")
def polygon_points():
    rng = np.random.default_rng(11)
    x, y = uniform_points(rng, 700, (0, 0, 2000, 2000))
    inside = shapely.intersects_xy(POLYGON, x, y)
    return x[inside], y[inside]


def inside_rect(x, y, rect=RECT):
    keep = (x >= rect[0]) & (x <= rect[2]) & (y >= rect[1]) & (y <= rect[3])
    return x[keep], y[keep]


def test_ripley_none_matches_brute_force(rect_points):
    x, y = inside_rect(*rect_points)
    d = pair_distances(x, y)
    result = ripley(*rect_points, RADII, window=RECT, edge="none")
    assert result.n == x.size < rect_points[0].size
    assert result.area_nm2 == 2000.0 * 1500.0
    assert_matches(result, brute_k(d, np.ones_like(d), RADII, result.area_nm2))


def test_ripley_isotropic_rectangle_matches_brute_force(rect_points):
    x, y = inside_rect(*rect_points)
    d = pair_distances(x, y)
    weights = isotropic_weights(x, y, d, RADII[-1], partial(rect_circle_fraction_inside, rect=RECT))
    assert weights.max() > 2.0  # corners and edges are really exercised
    result = ripley(*rect_points, RADII, window=RECT, edge="ripley")
    assert_matches(result, brute_k(d, weights, RADII, 2000.0 * 1500.0))


def test_ripley_isotropic_polygon_matches_brute_force(polygon_points):
    x, y = polygon_points
    radii = RADII[RADII <= 300.0]  # keeps the 360-point brute force quick
    d = pair_distances(x, y)
    weights = isotropic_weights(x, y, d, radii[-1], partial(polygon_circle_fraction_inside, polygon=POLYGON))
    result = ripley(x, y, radii, window=POLYGON, edge="ripley")
    assert result.area_nm2 == pytest.approx(POLYGON.area)
    assert_matches(result, brute_k(d, weights, radii, POLYGON.area))


@pytest.mark.parametrize("window", [RECT, POLYGON], ids=["rectangle", "polygon"])
def test_ripley_buffer_matches_brute_force(window, rect_points, polygon_points):
    x, y = inside_rect(*rect_points) if window == RECT else polygon_points
    geometry = box(*window) if window == RECT else window
    boundary = shapely.distance(geometry.boundary, shapely.points(x, y))
    result = ripley(x, y, RADII, window=window, edge="buffer")
    assert_matches(result, brute_buffer_k(pair_distances(x, y), boundary, RADII, geometry.area))


def test_rectangle_closed_form_agrees_with_circle_sampling(rect_points):
    """A rectangle given as a barely perturbed polygon takes the 360-point path."""
    xmin, ymin, xmax, ymax = RECT
    almost_rect = Polygon([(xmin, ymin), (xmax, ymin), (xmax, ymax), (xmin + 1e-6, ymax)])
    closed_form = ripley(*rect_points, RADII, window=RECT, edge="ripley")
    sampled = ripley(*rect_points, RADII, window=almost_rect, edge="ripley")
    np.testing.assert_allclose(sampled.K, closed_form.K, rtol=2e-3)
    assert not np.array_equal(sampled.K, closed_form.K)


def test_rectangular_polygon_window_equals_tuple_window(rect_points):
    as_tuple = ripley(*rect_points, RADII, window=RECT, edge="ripley")
    as_polygon = ripley(*rect_points, RADII, window=box(*RECT), edge="ripley")
    np.testing.assert_allclose(as_polygon.K, as_tuple.K, rtol=1e-12)


def test_ripley_none_equals_ckdtree_counts():
    rng = np.random.default_rng(3)
    window = (0.0, 0.0, 5000.0, 4000.0)
    cx, cy = thomas_points(rng, 200, 50, 30.0, window)
    ux, uy = uniform_points(rng, 10_000, window)
    x, y = np.r_[cx, ux], np.r_[cy, uy]
    radii = default_radii_nm()
    tree = cKDTree(np.c_[x, y])
    # count_neighbors: ordered pairs with d <= r, self pairs included
    ordered_pairs = tree.count_neighbors(tree, radii) - x.size
    expected = 5000.0 * 4000.0 * ordered_pairs / (x.size * (x.size - 1))
    result = ripley(x, y, radii, window=window, edge="none")
    np.testing.assert_array_equal(result.K, expected)


def test_csr_lies_in_envelope_and_clusters_rise_above_it():
    rng = np.random.default_rng(5)
    window = (0.0, 0.0, 3000.0, 3000.0)
    radii = default_radii_nm(300.0, 10.0)
    n = 800
    low, high = ripley_csr_envelope(n, window, radii, edge="ripley", n_simulations=99, seed=1)
    assert np.all(low < high)
    csr = ripley(*uniform_points(rng, n, window), radii, window=window)
    assert np.abs(csr.H).max() < 15.0
    assert np.mean((csr.H >= low) & (csr.H <= high)) >= 0.9
    clustered = ripley(*thomas_points(rng, 40, n // 40, 30.0, window), radii, window=window)
    assert np.any(clustered.H > high)
    assert clustered.h_max > 50.0
    assert 30.0 <= clustered.r_at_h_max <= 150.0


@pytest.mark.parametrize("edge", EDGE_CORRECTIONS)
def test_polygon_envelope_runs_for_every_edge(edge):
    radii = default_radii_nm(200.0, 50.0)
    low, high = ripley_csr_envelope(300, POLYGON, radii, edge=edge, n_simulations=9, seed=2)
    assert low.shape == high.shape == radii.shape
    assert np.all(low <= high)


def test_ripley_degenerate_inputs():
    radii = default_radii_nm(100.0, 50.0)
    empty = ripley([5.0], [5.0], radii, window=(0, 0, 10, 10))
    assert empty.n == 1 and np.isnan(empty.K).all()
    assert np.isnan(empty.h_max) and np.isnan(empty.r_at_h_max)
    with pytest.raises(ValueError):
        ripley([1, 2], [1, 2], radii, window=(0, 0, 10, 10), edge="translation")
    with pytest.raises(ValueError):
        ripley([1, 2], [1, 2], [20.0, 10.0], window=(0, 0, 10, 10))


def test_h_max_beyond_range_only_when_still_rising_at_r_max():
    r = np.array([10.0, 20.0, 30.0])
    result = partial(RipleyResult, r=r, K=r, L=r, edge="none", n=10, area_nm2=1.0)
    assert result(H=np.array([1.0, 2.0, 3.0])).h_max_beyond_range            # rising at r max
    assert not result(H=np.array([1.0, 3.0, 2.0])).h_max_beyond_range        # maximum inside the range
    assert not result(H=np.array([3.0, 3.0, 3.0])).h_max_beyond_range        # flat: first maximum, inside
    assert not result(H=np.array([1.0, 2.0, np.nan])).h_max_beyond_range     # undefined at r max
    assert not result(H=np.array([np.nan, np.nan, 1.0])).h_max_beyond_range  # one value: no trend


def test_default_radii():
    np.testing.assert_array_equal(default_radii_nm(), np.arange(10.0, 501.0, 10.0))
    np.testing.assert_array_equal(default_radii_nm(30.0, 10.0), [10.0, 20.0, 30.0])
    assert (DEFAULT_EPS_NM, DEFAULT_MIN_SAMPLES) == (100.0, 10)


# ------------------------------------------------------------------------------------------
# DBSCAN against sklearn
# ------------------------------------------------------------------------------------------


def dbscan_test_pattern(kind, seed):
    rng = np.random.default_rng(seed)
    bounds = (0.0, 0.0, 4000.0, 4000.0)
    if kind == "uniform":
        return uniform_points(rng, 3000, bounds)
    cx, cy = thomas_points(rng, 30, 40, 35.0, bounds)
    ux, uy = uniform_points(rng, 1500, bounds)
    x, y = np.r_[cx, ux], np.r_[cy, uy]
    if kind == "duplicates":  # exact repeats, some of them many times
        repeat = rng.integers(0, x.size, 600)
        x, y = np.r_[x, x[repeat], np.full(8, x[0])], np.r_[y, y[repeat], np.full(8, y[0])]
    return x, y


def check_against_sklearn(x, y, eps, min_samples):
    labels = dbscan_labels(x, y, eps, min_samples)
    reference = DBSCAN(eps=eps, min_samples=min_samples).fit(np.c_[x, y])
    ref_core = np.zeros(x.size, dtype=bool)
    ref_core[reference.core_sample_indices_] = True
    # the contract: same core set, same partition of core points, same noise
    tree = cKDTree(np.c_[x, y])
    core = tree.query_ball_point(np.c_[x, y], eps, return_length=True) >= min_samples
    np.testing.assert_array_equal(core, ref_core)
    if core.any():
        assert adjusted_rand_score(labels[core], reference.labels_[core]) == 1.0
    np.testing.assert_array_equal(labels == -1, reference.labels_ == -1)
    for b in np.flatnonzero(~core & (labels >= 0)):
        neighbours = np.array(tree.query_ball_point([x[b], y[b]], eps))
        assert np.any(core[neighbours] & (labels[neighbours] == labels[b]))
    # stronger: our numbering and border choice reproduce sklearn exactly
    np.testing.assert_array_equal(labels, reference.labels_)
    assert labels.dtype == np.int64
    assert set(np.unique(labels[labels >= 0])) == set(range(labels.max() + 1))
    return labels


@pytest.mark.parametrize("kind", ["uniform", "clustered", "duplicates"])
@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize(("eps", "min_samples"), [(50.0, 5), (100.0, 10), (30.0, 3)])
def test_dbscan_matches_sklearn(kind, seed, eps, min_samples):
    check_against_sklearn(*dbscan_test_pattern(kind, seed), eps, min_samples)


def test_dbscan_matches_sklearn_on_the_parallel_path():
    """Above _DBSCAN_PARALLEL_MIN_POINTS the kernels run on every thread, and clusters spanning the
    borders of the union-find's chunks are joined in its serial pass."""
    from compute import clusters

    rng = np.random.default_rng(7)
    bounds = (0.0, 0.0, 20000.0, 20000.0)
    cx, cy = thomas_points(rng, 400, 60, 40.0, bounds)
    ux, uy = uniform_points(rng, 16000, bounds)
    x, y = np.r_[cx, ux], np.r_[cy, uy]
    assert x.size >= clusters._DBSCAN_PARALLEL_MIN_POINTS
    check_against_sklearn(x, y, 60.0, 6)


def test_dbscan_distance_ties_count_as_neighbours():
    """Lattice spacing == eps: sklearn's <= eps is reproduced on exact ties."""
    gx, gy = np.meshgrid(np.arange(12.0), np.arange(9.0))
    x, y = np.r_[gx.ravel(), 40.0, 40.0], np.r_[gy.ravel(), 40.0, 41.0]
    for min_samples in (1, 3, 5, 6):
        check_against_sklearn(x, y, 1.0, min_samples)


def test_dbscan_degenerate_inputs():
    assert dbscan_labels([], [], 10.0, 5).shape == (0,)
    np.testing.assert_array_equal(dbscan_labels([3.0], [4.0], 10.0, 1), [0])
    np.testing.assert_array_equal(dbscan_labels([3.0], [4.0], 10.0, 2), [-1])
    with pytest.raises(ValueError):
        dbscan_labels([1.0], [1.0], 0.0, 5)


def test_dbscan_recovers_ground_truth_clusters():
    """Scenario 2 of Nieves et al. 2023 (20 clusters in 2 x 2 um, ~300 noise locs/um^2).

    eps = 45 nm, minPts = 30 (a plateau: eps 40-50 nm with minPts 25-35 all give ARI > 0.73;
    minPts 5-10 merges the dense background into clusters, ARI < 0.3). ARI over all points,
    noise as one label (clusterIndex 0 <-> -1), as in Nieves et al.
    """
    table = pd.read_csv(GROUND_TRUTH_CSV)
    labels = dbscan_labels(table["x"].to_numpy(), table["y"].to_numpy(), 45.0, 30)
    assert adjusted_rand_score(table["clusterIndex"].to_numpy(), labels) >= 0.7
    assert 15 <= labels.max() + 1 <= 25


# ------------------------------------------------------------------------------------------
# Cluster descriptors
# ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def labelled_points():
    rng = np.random.default_rng(9)
    x, y = thomas_points(rng, 12, 20, 25.0, (0, 0, 3000, 3000))
    labels = np.repeat(np.arange(12), 20)
    labels[rng.random(labels.size) < 0.2] = -1
    # cluster 12: two points; cluster 13: collinear; labels need not be consecutive
    x = np.r_[x, 10.0, 20.0, 0.0, 1.0, 2.0, 3.0]
    y = np.r_[y, 10.0, 30.0, 5.0, 6.0, 7.0, 8.0]
    labels = np.r_[labels, 12, 12, 20, 20, 20, 20]
    return x, y, labels


def test_cluster_table_matches_direct_computation(labelled_points):
    x, y, labels = labelled_points
    table = cluster_table(x, y, labels)
    assert list(table.columns) == [
        "cluster_id", "n_locs", "area_nm2", "radius_eq_nm", "rg_nm",
        "density_locs_per_um2", "centroid_x_nm", "centroid_y_nm",
    ]
    np.testing.assert_array_equal(table["cluster_id"], [*range(13), 20])
    for row in table.itertuples():
        member = labels == row.cluster_id
        px, py = x[member], y[member]
        assert row.n_locs == member.sum()
        assert row.centroid_x_nm == pytest.approx(px.mean(), rel=1e-12)
        assert row.centroid_y_nm == pytest.approx(py.mean(), rel=1e-12)
        rg = np.sqrt(np.mean((px - px.mean()) ** 2 + (py - py.mean()) ** 2))
        assert row.rg_nm == pytest.approx(rg, rel=1e-9)
        if row.cluster_id in (12, 20):  # 2 points / collinear
            assert np.isnan(row.area_nm2) and np.isnan(row.radius_eq_nm) and np.isnan(row.density_locs_per_um2)
            continue
        area = ConvexHull(np.c_[px, py]).volume
        assert row.area_nm2 == pytest.approx(area, rel=1e-9)
        assert row.radius_eq_nm == pytest.approx(np.sqrt(area / np.pi), rel=1e-9)
        assert row.density_locs_per_um2 == pytest.approx(member.sum() / (area * 1e-6), rel=1e-9)


def test_cluster_table_handles_large_offsets_and_no_clusters():
    square = np.array([0.0, 100.0, 100.0, 0.0, 50.0])
    table = cluster_table(square + 1e6, square[[0, 0, 1, 1, 4]] + 2e6, np.zeros(5, dtype=int))
    assert table["area_nm2"].iloc[0] == pytest.approx(1e4, rel=1e-9)
    empty = cluster_table([1.0, 2.0], [1.0, 2.0], [-1, -1])
    assert len(empty) == 0 and empty["n_locs"].dtype == np.int64


def test_cluster_summary_by_hand(labelled_points):
    x, y, labels = labelled_points
    table = cluster_table(x, y, labels)
    summary = cluster_summary(x, y, labels, area_um2=9.0)
    assert summary["n_locs"] == labels.size
    assert summary["n_clusters"] == 14
    assert summary["clusters_per_um2"] == pytest.approx(14 / 9.0)
    assert summary["percent_clustered"] == pytest.approx(100.0 * np.sum(labels >= 0) / labels.size)
    counts = np.array([np.sum(labels == c) for c in table["cluster_id"]])
    assert summary["n_locs_per_cluster_mean"] == pytest.approx(counts.mean())
    assert summary["n_locs_per_cluster_median"] == pytest.approx(np.median(counts))
    areas = table["area_nm2"].dropna()
    assert len(areas) == 12
    assert summary["area_nm2_mean"] == pytest.approx(areas.mean())
    assert summary["radius_eq_nm_median"] == pytest.approx(table["radius_eq_nm"].dropna().median())
    assert summary == cluster_summary(x, y, labels, 9.0, table=table)
    json.dumps(summary)
    assert all(type(v) in (int, float) for v in summary.values())


def test_cluster_summary_without_clusters():
    summary = cluster_summary([1.0, 2.0, 3.0], [1.0, 2.0, 3.0], [-1, -1, -1], area_um2=1.0)
    assert summary["n_clusters"] == 0 and summary["percent_clustered"] == 0.0
    assert summary["clusters_per_um2"] == 0.0
    assert np.isnan(summary["area_nm2_mean"]) and np.isnan(summary["n_locs_per_cluster_median"])


# ------------------------------------------------------------------------------------------
# DBSCAN for every eps from one tree (compute.dbscan_tree) against sklearn
# ------------------------------------------------------------------------------------------

TREE_EPS_NM = (10.0, 30.0, 45.0, 77.5, 120.0, 200.0)


def assert_tree_matches_sklearn(x, y, min_samples, eps_values=TREE_EPS_NM):
    tree = DbscanTree.build(x, y, min_samples, max(eps_values))
    for eps in eps_values:
        reference = DBSCAN(eps=eps, min_samples=min_samples).fit_predict(np.c_[x, y])
        np.testing.assert_array_equal(tree.labels(eps), reference, err_msg=f"eps={eps} minPts={min_samples}")
    return tree


@pytest.mark.parametrize("min_samples", [2, 10, 30])
def test_dbscan_tree_matches_sklearn_on_real_file(min_samples):
    table = pd.read_csv(GROUND_TRUTH_CSV)
    assert_tree_matches_sklearn(table["x"].to_numpy(), table["y"].to_numpy(), min_samples)


@pytest.mark.parametrize("kind", ["uniform", "clustered", "duplicates"])
@pytest.mark.parametrize("min_samples", [1, 5, 10])
def test_dbscan_tree_matches_sklearn_on_simulated(kind, min_samples):
    assert_tree_matches_sklearn(*dbscan_test_pattern(kind, 3), min_samples)


def test_dbscan_tree_edge_cases():
    # exact distance ties (lattice spacing == eps), duplicates
    gx, gy = np.meshgrid(np.arange(12.0), np.arange(9.0))
    x, y = np.r_[gx.ravel(), 40.0, 40.0, 40.0], np.r_[gy.ravel(), 40.0, 41.0, 40.0]
    for min_samples in (1, 3, 5, 6):
        assert_tree_matches_sklearn(x, y, min_samples, (0.5, 1.0, 1.5, 2.0, 50.0))
    # all noise: points 1 um apart, eps below that
    x = np.arange(50) * 1000.0
    tree = assert_tree_matches_sklearn(x, np.zeros(50), 2, (10.0, 100.0, 999.0))
    assert (tree.labels(999.0) == -1).all()
    # one cluster: everything within eps of everything
    rng = np.random.default_rng(4)
    tree = assert_tree_matches_sklearn(rng.uniform(0, 20, 200), rng.uniform(0, 20, 200), 5, (30.0, 60.0))
    assert (tree.labels(30.0) == 0).all()
    # all points on one spot
    tree = assert_tree_matches_sklearn(np.full(30, 7.0), np.full(30, 3.0), 10, (1.0, 5.0))
    assert (tree.labels(1.0) == 0).all()
    # fewer points than minPts, a single point, none
    assert (DbscanTree.build([0.0, 1.0], [0.0, 0.0], 5, 100.0).labels(100.0) == -1).all()
    np.testing.assert_array_equal(DbscanTree.build([3.0], [4.0], 1, 10.0).labels(10.0), [0])
    assert DbscanTree.build([], [], 5, 100.0).labels(50.0).shape == (0,)
    with pytest.raises(ValueError):
        DbscanTree.build([0.0], [0.0], 5, 100.0).labels(150.0)   # beyond the tree's eps_max
