"""Simulator: density, clustered fraction, cluster shapes, multi-blinking, reproducibility."""

import numpy as np
import pytest

from compute.simulate import simulate_blinking, simulate_clustered, simulate_csr
from compute.table import LocalisationTable

WIDTH, HEIGHT = 20_000.0, 15_000.0      # 300 um²


@pytest.mark.parametrize("simulate", [simulate_csr, simulate_clustered])
def test_density_matches_request_inside_the_window(simulate):
    pattern = simulate(200.0, WIDTH, HEIGHT, seed=1, x0_nm=5000.0, y0_nm=-3000.0)
    assert len(pattern) / 300.0 == pytest.approx(200.0, rel=0.05)
    assert pattern.x.min() >= 5000.0 and pattern.x.max() < 25_000.0
    assert pattern.y.min() >= -3000.0 and pattern.y.max() < 12_000.0


def test_csr_has_no_cluster_labels():
    assert (simulate_csr(50.0, WIDTH, HEIGHT, seed=2).labels == -1).all()


@pytest.mark.parametrize("fraction", [0.3, 0.7])
def test_clustered_fraction_matches_labels(fraction):
    pattern = simulate_clustered(200.0, WIDTH, HEIGHT, fraction_clustered=fraction, seed=3)
    assert (pattern.labels >= 0).mean() == pytest.approx(fraction, abs=0.04)
    assert np.unique(pattern.labels[pattern.labels >= 0]).tolist() == list(range(pattern.labels.max() + 1))


def test_locs_per_cluster_and_thomas_spread():
    pattern = simulate_clustered(100.0, WIDTH, HEIGHT, cluster_radius_nm=40.0, locs_per_cluster=30.0,
                                 precision_nm=10.0, seed=4)
    clustered = pattern.labels >= 0
    sizes = np.bincount(pattern.labels[clustered])
    interior = sizes > 0
    assert sizes[interior].mean() == pytest.approx(30.0, rel=0.15)
    centre_x = np.bincount(pattern.labels[clustered], pattern.x[clustered]) / np.maximum(sizes, 1)
    offsets = pattern.x[clustered] - centre_x[pattern.labels[clustered]]
    assert offsets.std() == pytest.approx(np.sqrt(40.0**2 + 10.0**2), rel=0.1)


def test_matern_clusters_are_bounded_discs():
    pattern = simulate_clustered(100.0, WIDTH, HEIGHT, cluster_radius_nm=60.0, process="matern",
                                 precision_nm=0.0, seed=5)
    clustered = pattern.labels >= 0
    xs, ys, labels = pattern.x[clustered], pattern.y[clustered], pattern.labels[clustered]
    for cluster in range(0, labels.max() + 1, 50):
        member = labels == cluster
        spread = np.hypot(xs[member] - xs[member][:, None], ys[member] - ys[member][:, None])
        assert spread.max() <= 120.0 + 1e-9


def test_multi_blinking_repeats_emitters_with_independent_blur():
    pattern = simulate_clustered(100.0, WIDTH, HEIGHT, blinks_mean=3.0, precision_nm=15.0, seed=6)
    repeats = np.bincount(pattern.emitter)
    assert repeats.mean() == pytest.approx(3.0, rel=0.05)
    assert len(pattern) / 300.0 == pytest.approx(100.0, rel=0.1)
    emitter_labels = np.unique(np.column_stack((pattern.emitter, pattern.labels)), axis=0)
    assert len(emitter_labels) == len(repeats)                      # one label per emitter
    by_emitter = np.argsort(pattern.emitter, kind="stable")
    first = np.concatenate(([0], np.cumsum(repeats)[:-1]))[repeats >= 2]
    dx = pattern.x[by_emitter[first + 1]] - pattern.x[by_emitter[first]]
    assert dx.std() == pytest.approx(15.0 * np.sqrt(2), rel=0.05)   # independent blur per blink
    assert (pattern.precision == 15.0).all() and (np.diff(pattern.frame) >= 0).all()


def test_reproducible_with_seed_and_converts_to_table():
    first, again = (simulate_clustered(80.0, 6000.0, 6000.0, seed=11) for _ in range(2))
    other = simulate_clustered(80.0, 6000.0, 6000.0, seed=12)
    for name in ("x", "y", "labels", "emitter", "frame", "precision"):
        np.testing.assert_array_equal(getattr(first, name), getattr(again, name))
    assert not np.array_equal(first.x[:100], other.x[:100])
    table = first.to_table()
    assert isinstance(table, LocalisationTable) and len(table) == len(first)
    assert table.precision_source == "simulated"


def test_invalid_parameters_are_rejected():
    with pytest.raises(ValueError):
        simulate_clustered(100.0, WIDTH, HEIGHT, process="neyman-scott")
    with pytest.raises(ValueError):
        simulate_clustered(100.0, WIDTH, HEIGHT, fraction_clustered=1.5)
    with pytest.raises(ValueError):
        simulate_csr(100.0, WIDTH, HEIGHT, blinks_mean=0.5)


def test_blinking_runs_are_consecutive_frames_with_the_given_blur():
    pattern = simulate_blinking(2000, 20_000.0, 20_000.0, precision_nm=15.0, mean_on_frames=4.0, seed=2)
    assert np.all(np.diff(pattern.frame) >= 0)
    runs = np.bincount(pattern.emitter)
    assert runs.min() >= 1 and runs.mean() == pytest.approx(4.0, rel=0.08)
    for e in range(50):
        frames = np.sort(pattern.frame[pattern.emitter == e])
        assert np.all(np.diff(frames) == 1)                  # one run of consecutive frames
    centred = np.concatenate([pattern.x[pattern.emitter == e] - pattern.x[pattern.emitter == e].mean()
                              for e in np.flatnonzero(runs >= 2)])
    n_per = runs[runs >= 2]
    sd = np.sqrt((centred**2).sum() / (n_per - 1).sum())    # pooled within-emitter SD (unbiased)
    assert sd == pytest.approx(15.0, rel=0.05)
