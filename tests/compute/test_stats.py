"""Per-file statistics on a constructed case with hand-computed values."""

import numpy as np
import pytest
from shapely.geometry import box

from compute.similarity import file_fingerprints
from compute.simulate import simulate_blinking, simulate_clustered
from compute.stats import file_statistics, nena_precision, next_frame_neighbour_distances
from compute.tiles import grid_tiles

KEYS = {"n_locs", "n_locs_roi", "roi_area_um2", "density", "n_tiles", "n_tiles_kept", "n_tiles_dropped",
        "tile_area_um2", "density_tiles", "coverage", "coverage_area", "precision_median", "precision_mean",
        "precision_sd", "precision_source", "roi_source", "n_tiles_thinned_30", "n_tiles_thinned_100",
        "precision_nena_nm", "precision_nena_se_nm", "nena_n_pairs"}


def bin_centres(first_bin, n_bins, x0, y0):
    """Centres of n_bins consecutive 30 nm bins (row-major over the tile's 100 x 100 grid)."""
    row, col = np.divmod(np.arange(first_bin, first_bin + n_bins), 100)
    return np.column_stack((x0 + 30 * col + 15.0, y0 + 30 * row + 15.0))


@pytest.fixture(scope="module")
def case():
    """ROI 0..6000 x 0..3500 nm (21 um²) -> 2 tiles. Tile A: 100 bins x 2 locs + 100 bins x 1 loc
    = 300 locs in 200 bins (kept);
    tile B: 100 locs (dropped, < 270); 20 locs in the ROI strip y in [3000, 3500) outside the tiles;
    50 locs outside the ROI. Precision: 10 / 20 nm alternating inside the ROI, 1000 nm outside."""
    tile_a = np.concatenate((np.repeat(bin_centres(0, 100, 0, 0), 2, axis=0), bin_centres(100, 100, 0, 0)))
    tile_b = bin_centres(0, 100, 3000, 0)
    strip = np.column_stack((np.linspace(100, 5900, 20), np.full(20, 3200.0)))
    outside = np.column_stack((np.linspace(100, 5900, 50), np.full(50, 4000.0)))
    xy = np.concatenate((tile_a, tile_b, strip, outside))
    precision = np.concatenate((np.tile([10.0, 20.0], 210), np.full(50, 1000.0)))
    polygons = [box(0, 0, 6000, 3500)]
    grid = grid_tiles(polygons)
    fingerprints = file_fingerprints(xy[:, 0], xy[:, 1], grid)
    return xy, precision, polygons, grid, fingerprints


def test_statistics_match_hand_computed_values(case):
    xy, precision, polygons, grid, fingerprints = case
    stats = file_statistics(xy[:, 0], xy[:, 1], precision, polygons, grid, fingerprints,
                            roi_source="file", precision_source="uncertainty [nm]")
    assert set(stats) == KEYS
    expected = {
        "n_locs": 470, "n_locs_roi": 420, "roi_area_um2": 21.0, "density": 20.0,
        "n_tiles": 2, "n_tiles_kept": 1, "n_tiles_dropped": 1, "tile_area_um2": 9.0,
        "density_tiles": 300 / 9, "coverage": 200 / 10_000, "coverage_area": 9 / 21,
        "precision_median": 15.0, "precision_mean": 15.0, "precision_sd": 5 * np.sqrt(420 / 419),
        "precision_source": "uncertainty [nm]", "roi_source": "file",
        "n_tiles_thinned_30": 1, "n_tiles_thinned_100": 0, "nena_n_pairs": 0,
    }
    for key, value in expected.items():
        assert stats[key] == pytest.approx(value, rel=1e-12), key
    assert stats["precision_nena_nm"] is None and stats["precision_nena_se_nm"] is None     # no frame column
    assert all(type(v) in (int, float, str) for k, v in stats.items() if not k.startswith("precision_nena"))


def test_missing_precision_and_missing_roi_give_none(case):
    xy, _, _, grid, fingerprints = case
    stats = file_statistics(xy[:, 0], xy[:, 1], None, [], grid, fingerprints,
                            roi_source="auto", precision_source="ignored")
    for key in ("n_locs_roi", "roi_area_um2", "density", "coverage_area", "precision_median",
                "precision_mean", "precision_sd", "precision_source"):
        assert stats[key] is None, key
    assert stats["roi_source"] == "auto" and stats["coverage"] == pytest.approx(0.02)


def test_no_kept_tile_gives_none_coverage():
    x, y = np.array([100.0, 200.0]), np.array([100.0, 200.0])
    polygons = [box(0, 0, 3000, 3000)]
    grid = grid_tiles(polygons)
    stats = file_statistics(x, y, np.array([5.0, np.nan]), polygons, grid, file_fingerprints(x, y, grid))
    assert stats["n_tiles"] == 1 and stats["n_tiles_kept"] == 0 and stats["n_tiles_dropped"] == 1
    assert stats["coverage"] is None and stats["density_tiles"] is None and stats["coverage_area"] == 0.0
    assert stats["precision_median"] == 5.0 and stats["precision_sd"] is None


def test_bin_size_must_match_the_fingerprints(case):
    xy, precision, polygons, grid, fingerprints = case
    with pytest.raises(ValueError):
        file_statistics(xy[:, 0], xy[:, 1], precision, polygons, grid, fingerprints, bin_nm=60.0)


# --- NeNA ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("sigma_nm, n_emitters, n_frames", [(8.0, 3000, 5000), (15.0, 3000, 5000),
                                                              (25.0, 3000, 5000), (12.0, 40_000, 2000)])
def test_nena_recovers_the_simulated_precision_within_10_percent(sigma_nm, n_emitters, n_frames):
    """Emitters on for runs of consecutive frames (mean 3), Gaussian blur of known SD."""
    pattern = simulate_blinking(n_emitters, 20_000.0, 20_000.0, precision_nm=sigma_nm, n_frames=n_frames,
                                seed=int(sigma_nm))
    result = nena_precision(pattern.x, pattern.y, pattern.frame)
    assert result.sigma_nm == pytest.approx(sigma_nm, rel=0.10)
    assert result.n_pairs > 1000 and result.sigma_se_nm < 0.05 * sigma_nm


def test_next_frame_distances_match_brute_force():
    rng = np.random.default_rng(4)
    x, y = rng.uniform(0, 2000, 400), rng.uniform(0, 2000, 400)
    frame = rng.integers(0, 20, 400)
    expected = []
    for i in range(400):
        later = frame == frame[i] + 1
        if later.any():
            d = np.hypot(x[later] - x[i], y[later] - y[i]).min()
            if d <= 150.0:
                expected.append(d)
    np.testing.assert_allclose(np.sort(next_frame_neighbour_distances(x, y, frame, 150.0)), np.sort(expected))


def test_nena_needs_enough_adjacent_frame_pairs():
    pattern = simulate_blinking(20, 20_000.0, 20_000.0, seed=1)
    x, y, frame = pattern.x, pattern.y, pattern.frame
    assert nena_precision(x, y, frame) is None
    stats_frame = file_statistics(x, y, None, [], grid_tiles([]), file_fingerprints(x, y, grid_tiles([])), frame=frame)
    assert stats_frame["precision_nena_nm"] is None and stats_frame["nena_n_pairs"] == 0


def test_nena_gives_no_estimate_when_the_fit_is_undetermined():
    """Clustered emitters seen in random (not consecutive) frames: few adjacent-frame pairs from the
    same molecule, so the fit is poorly determined and is not reported."""
    pattern = simulate_clustered(200, 20_000.0, 20_000.0, n_frames=10_000, seed=1)
    assert nena_precision(pattern.x, pattern.y, pattern.frame) is None
