"""Tiles: gridding inside polygons, point-to-tile assignment, count histograms."""

import numpy as np
import pytest
from shapely.geometry import Point, Polygon, box

from compute.tiles import TILE_NM, TileGrid, grid_tiles, points_in_tile, points_in_tiles, tile_count_histogram

T = TILE_NM


def origins_of(grid):
    return [tuple(o) for o in grid.origins]


def test_rectangle_9_by_6_um_gives_6_tiles_row_major():
    grid = grid_tiles([box(1000, 2000, 10000, 8000)])
    assert origins_of(grid) == [(1000, 2000), (4000, 2000), (7000, 2000),
                                (1000, 5000), (4000, 5000), (7000, 5000)]
    assert grid.roi_index.tolist() == [0] * 6
    assert grid.origins.dtype == np.float64 and grid.roi_index.dtype == np.int64


def test_grid_is_anchored_at_the_bounding_box_corner_and_drops_partial_tiles():
    grid = grid_tiles([box(-500, 100, 9300, 6250)])
    assert origins_of(grid) == [(-500 + i * T, 100 + j * T) for j in range(2) for i in range(3)]


def test_l_shape():
    l_shape = Polygon([(0, 0), (9000, 0), (9000, 3000), (3000, 3000), (3000, 9000), (0, 9000)])
    grid = grid_tiles([l_shape])
    assert origins_of(grid) == [(0, 0), (3000, 0), (6000, 0), (0, 3000), (0, 6000)]


def test_overlapping_polygons_are_deduplicated_first_polygon_wins():
    grid = grid_tiles([box(0, 0, 9000, 6000), box(0, 0, 6000, 9000), box(0, 0, 9000, 6000)])
    assert origins_of(grid) == [(0, 0), (3000, 0), (6000, 0), (0, 3000), (3000, 3000), (6000, 3000),
                                (0, 6000), (3000, 6000)]
    assert grid.roi_index.tolist() == [0] * 6 + [1, 1]


def test_inclusion_overlap_keeps_mostly_covered_tiles():
    polygon = box(0, 0, 8900, 3000)                 # third tile is 96.7 % inside
    assert len(grid_tiles([polygon])) == 2
    assert len(grid_tiles([polygon], inclusion="overlap")) == 3
    assert len(grid_tiles([polygon], inclusion="overlap", min_overlap=0.99)) == 2
    with pytest.raises(ValueError):
        grid_tiles([polygon], inclusion="touching")


def test_no_polygon_or_too_small_polygon_gives_empty_grid():
    assert len(grid_tiles([])) == 0
    assert len(grid_tiles([box(0, 0, 2000, 2000)])) == 0
    order, offsets = points_in_tiles(np.array([1.0]), np.array([1.0]), grid_tiles([]))
    assert order.size == 0 and offsets.tolist() == [0]


def brute_force_members(x, y, grid):
    """Half-open squares, closed on far edges where no tile of the grid follows (checked by hand
    in test_points_in_tiles_bounds_are_half_open_inside_the_grid)."""
    x0, y0 = grid.origins[:, :1], grid.origins[:, 1:]
    x1, y1 = x0 + grid.tile_nm, y0 + grid.tile_nm
    closed_x, closed_y = grid.closed_ends()[:, :1], grid.closed_ends()[:, 1:]
    inside = (x >= x0) & ((x < x1) | (closed_x & (x == x1))) & (y >= y0) & ((y < y1) | (closed_y & (y == y1)))
    return [np.flatnonzero(row) for row in inside]


def test_points_in_tiles_matches_brute_force_with_overlapping_misaligned_tiles():
    rng = np.random.default_rng(3)
    grid = grid_tiles([box(0, 0, 12000, 9000), box(1234.5, 777.25, 10234.5, 9777.25),
                       box(20000, 20000, 26000, 23000)])
    x = rng.uniform(-2000, 28000, 200_000)
    y = rng.uniform(-2000, 25000, 200_000)
    order, offsets = points_in_tiles(x, y, grid)
    expected = brute_force_members(x, y, grid)
    assert len(offsets) == len(grid) + 1
    for k, members in enumerate(expected):
        np.testing.assert_array_equal(order[offsets[k]:offsets[k + 1]], members)
    assert sum(m.size for m in expected) > 0


def test_points_in_tiles_bounds_are_half_open_inside_the_grid():
    """Between neighbouring tiles the edge belongs to the next tile; an outer far edge (no tile
    follows: here x = 6000 and 4500, y = 3000) belongs to the last tile."""
    grid = TileGrid(np.array([[0.0, 0.0], [3000.0, 0.0], [1500.0, 0.0]]), np.array([0, 0, 1]))
    assert grid.closed_ends().tolist() == [[False, True], [True, True], [True, True]]
    x = np.array([0.0, 2999.999, 3000.0, 6000.0, -1e-9, 10.0, np.nan, 1500.0, 4500.0, 6000.001, 10.0])
    y = np.array([0.0, 10.0, 10.0, 10.0, 10.0, 3000.0, 10.0, 10.0, 10.0, 10.0, 3000.001])
    order, offsets = points_in_tiles(x, y, grid)
    assert order[offsets[0]:offsets[1]].tolist() == [0, 1, 5, 7]
    assert order[offsets[1]:offsets[2]].tolist() == [2, 3, 8]
    assert order[offsets[2]:offsets[3]].tolist() == [1, 2, 7, 8]


def test_tile_count_histogram_matches_histogram2d():
    rng = np.random.default_rng(7)
    x0, y0 = 1500.0, -700.0
    x = np.concatenate((rng.uniform(x0, x0 + T, 5000), rng.normal(x0 + 800, 40, 3000), [x0 - 1, x0 + T]))
    y = np.concatenate((rng.uniform(y0, y0 + T, 5000), rng.normal(y0 + 1500, 40, 3000), [y0 + 5, y0 + 5]))
    inside = (x >= x0) & (x < x0 + T) & (y >= y0) & (y < y0 + T)
    counts, _, _ = np.histogram2d(x[inside], y[inside], bins=100, range=[[x0, x0 + T], [y0, y0 + T]])
    expected = np.bincount(counts.astype(int).ravel())
    hist = tile_count_histogram(x, y, x0, y0)
    np.testing.assert_array_equal(hist, expected)
    assert hist.sum() == 10_000 and hist[1:].max() > 0 and len(hist) > 5
    closed = tile_count_histogram(x, y, x0, y0, closed_ends=(True, False))   # (x0 + T, y0 + 5) joins the last bin
    counts, _, _ = np.histogram2d(x, y, bins=100, range=[[x0, x0 + T], [y0, y0 + T]])      # numpy closes the end
    np.testing.assert_array_equal(closed, np.bincount(counts.astype(int).ravel()))


def test_tile_count_histogram_rejects_bins_that_do_not_divide_the_tile():
    with pytest.raises(ValueError):
        tile_count_histogram([1.0], [1.0], 0.0, 0.0, bin_nm=70.0)


def test_overlap_tiles_hold_only_points_inside_their_polygon():
    """inclusion='overlap' tiles are clipped to the polygon (boundary points included), against a
    point-by-point shapely ``covers`` count; 'inside' tiles are unaffected by the clipping."""
    polygon = Polygon([(0, 0), (9000, 1000), (11000, 8000), (4000, 11000), (-1000, 6000)])
    rng = np.random.default_rng(11)
    vertices = np.asarray(polygon.exterior.coords)[:-1]
    x = np.concatenate((rng.uniform(-2000, 12000, 40_000), vertices[:, 0]))
    y = np.concatenate((rng.uniform(-1000, 12000, 40_000), vertices[:, 1]))
    for inclusion, min_overlap in (("overlap", 0.5), ("inside", 0.95)):
        grid = grid_tiles([polygon], inclusion=inclusion, min_overlap=min_overlap)
        order, offsets = points_in_tiles(x, y, grid)
        in_square = brute_force_members(x, y, grid)
        clipped = 0
        for k, members in enumerate(in_square):
            expected = [i for i in members if polygon.covers(Point(x[i], y[i]))]
            np.testing.assert_array_equal(order[offsets[k]:offsets[k + 1]], expected)
            clipped += members.size - len(expected)
        assert (clipped > 1000) == (inclusion == "overlap")
        if inclusion == "overlap":           # vertices lie on the boundary and are counted
            assert np.isin(np.arange(40_000, x.size), order).sum() >= 2


def test_tiles_filling_a_roi_hold_each_roi_point_once_boundary_included():
    """A 6 x 6 um ROI is exactly 4 tiles: every localisation inside it or on its boundary (edges,
    corners, the lines between tiles) is in exactly one tile, as ``points_in_polygon`` counts."""
    from compute.rois import points_in_polygon
    roi = box(0, 0, 6000, 6000)
    rng = np.random.default_rng(5)
    edge = rng.uniform(0, 6000, 50)
    x = np.concatenate((rng.uniform(-500, 6500, 5000), edge, np.full(50, 6000.0), edge, np.zeros(50),
                        [0, 6000, 6000, 0, 3000, 3000, 6000, 3000, 6000.0000001]))
    y = np.concatenate((rng.uniform(-500, 6500, 5000), np.full(50, 6000.0), edge, np.zeros(50), edge,
                        [0, 0, 6000, 6000, 3000, 6000, 3000, 0, 10.0]))
    grid = grid_tiles([roi])
    order, offsets = points_in_tiles(x, y, grid)
    inside = points_in_polygon(x, y, roi)
    assert len(grid) == 4 and inside.sum() == np.unique(order).size == order.size
    np.testing.assert_array_equal(np.sort(order), np.flatnonzero(inside))


def test_points_in_tile_equals_points_in_tiles_per_tile():
    polygon = Polygon([(0, 0), (9000, 1000), (11000, 8000), (4000, 11000), (-1000, 6000)])
    rng = np.random.default_rng(12)
    x = np.concatenate((rng.uniform(-2000, 12000, 20_000), np.asarray(polygon.exterior.coords)[:-1, 0]))
    y = np.concatenate((rng.uniform(-1000, 12000, 20_000), np.asarray(polygon.exterior.coords)[:-1, 1]))
    for grid in (grid_tiles([polygon], inclusion="overlap", min_overlap=0.5), grid_tiles([box(0, 0, 6000, 6000)])):
        order, offsets = points_in_tiles(x, y, grid)
        for k in range(len(grid)):
            np.testing.assert_array_equal(points_in_tile(x, y, grid, k), order[offsets[k]:offsets[k + 1]])


def test_check_grid_size_counts_the_candidate_tiles_of_every_region():
    from compute.tiles import check_grid_size
    regions = [box(0, 0, 9000, 6000), (100, 100, 3100.5, 400)]        # 3 x 2 and 2 x 1 cells
    assert check_grid_size(regions) == 6 + 2
    # the count grid_tiles enumerates before its inclusion test, independently: cells of the bounding box
    polygon = Polygon([(0, 0), (9500, 0), (0, 7000)])
    assert check_grid_size([polygon]) == 4 * 3


@pytest.mark.parametrize("extent_mm", [5, 50])
def test_huge_extent_is_refused_before_any_tile_is_allocated(extent_mm):
    import tracemalloc
    from compute.tiles import GridTooLarge, MAX_EXTENT_NM
    side = extent_mm * 1e6
    triangle = Polygon([(0, 0), (side, 0), (0, side)])
    tracemalloc.start()
    try:
        with pytest.raises(GridTooLarge, match=r"spans [\d,]+ x [\d,]+ um; the limit is 1,000 um per side") as error:
            grid_tiles([triangle])
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert f"{side / 1e3:,.0f} x" in str(error.value) and "nm" in str(error.value)
    assert peak < 1_000_000            # bytes: (side / 3 um)^2 tiles would be >= 2.8 M x 16 bytes
    assert MAX_EXTENT_NM == 1e6


def test_tile_count_limit_sums_over_regions_and_is_an_argument():
    from compute.tiles import GridTooLarge
    ten_tiles = box(0, 0, 5 * T, 2 * T)
    assert len(grid_tiles([ten_tiles] * 3, max_tiles=30)) == 10            # overlapping: deduplicated
    with pytest.raises(GridTooLarge, match="31 or more candidate tiles.*limit is 30 per file"):
        grid_tiles([ten_tiles] * 3 + [box(0, 0, T, T)], max_tiles=30)
    with pytest.raises(GridTooLarge, match="limit is 10 um per side"):
        grid_tiles([box(0, 0, 10_001, 10)], max_extent_nm=10_000)
    with pytest.raises(GridTooLarge, match="spans"):
        grid_tiles([(0, 0, np.inf, 1)])
