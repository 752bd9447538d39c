"""Synthetic SMLM point patterns with known ground truth (CSR, Thomas and Matérn clusters).

Model: emitters (molecules) are placed by a point process; each emitter is localised
1 + Poisson(blinks_mean - 1) times (multi-blinking, mean ``blinks_mean``) at its true position, each
localisation blurred independently by a Gaussian of SD ``precision_nm`` and given an independent
uniformly random frame. Densities are the final localisation densities (blinks included).
Emitters are simulated in a window enlarged by a margin and the localisations are cropped to the
requested window, so the pattern has no edge depletion. Localisations are sorted by frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from compute.table import LocalisationTable

CLUSTER_PROCESSES = ("thomas", "matern")
N_FRAMES = 10_000
_MARGIN_SDS = 4.0        # Gaussian tails (cluster spread, blur) beyond 4 SD are negligible


@dataclass(eq=False)
class SimulatedPattern:
    """Observed localisations with their ground truth (all lengths in nm).

    labels: cluster id per localisation (0..n_clusters-1), -1 = background (CSR) localisation.
    emitter: molecule id per localisation; repeats of a molecule share it (multi-blinking).
    frame: 0-based frame; precision: SD of the Gaussian blur of that localisation.
    """

    x: np.ndarray
    y: np.ndarray
    labels: np.ndarray
    emitter: np.ndarray
    frame: np.ndarray
    precision: np.ndarray

    def __len__(self) -> int:
        return int(self.x.shape[0])

    def to_table(self) -> LocalisationTable:
        """The pattern as a LocalisationTable (source_format ``simulated``)."""
        return LocalisationTable(self.x, self.y, frame=self.frame, precision=self.precision,
                                 source_format="simulated", precision_source="simulated")


@dataclass(frozen=True)
class _Window:
    """Rectangle [x0, x0 + width) x [y0, y0 + height) in nm."""

    x0: float
    y0: float
    width: float
    height: float

    def grown(self, margin: float) -> "_Window":
        return _Window(self.x0 - margin, self.y0 - margin, self.width + 2 * margin,
                       self.height + 2 * margin)

    @property
    def area_um2(self) -> float:
        return self.width * self.height / 1e6

    def uniform(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """(n, 2) uniform random positions in the window."""
        return np.column_stack((self.x0 + rng.random(n) * self.width,
                                self.y0 + rng.random(n) * self.height))

    def contains(self, xy: np.ndarray) -> np.ndarray:
        return ((xy[:, 0] >= self.x0) & (xy[:, 0] < self.x0 + self.width)
                & (xy[:, 1] >= self.y0) & (xy[:, 1] < self.y0 + self.height))


def simulate_csr(density_per_um2: float, width_nm: float, height_nm: float, *, precision_nm: float = 10.0,
                 blinks_mean: float = 1.0, seed: int = 0, x0_nm: float = 0.0, y0_nm: float = 0.0,
                 n_frames: int = N_FRAMES) -> SimulatedPattern:
    """Complete spatial randomness: a homogeneous Poisson process of emitters (all labels -1)."""
    return simulate_clustered(density_per_um2, width_nm, height_nm, fraction_clustered=0.0,
                              precision_nm=precision_nm, blinks_mean=blinks_mean, seed=seed,
                              x0_nm=x0_nm, y0_nm=y0_nm, n_frames=n_frames)


def simulate_clustered(density_per_um2: float, width_nm: float, height_nm: float, *,
                       cluster_radius_nm: float = 50.0, locs_per_cluster: float = 20.0,
                       fraction_clustered: float = 0.7, process: str = "thomas",
                       precision_nm: float = 10.0, blinks_mean: float = 1.0, seed: int = 0,
                       x0_nm: float = 0.0, y0_nm: float = 0.0,
                       n_frames: int = N_FRAMES) -> SimulatedPattern:
    """Clusters on a CSR background.

    A fraction ``fraction_clustered`` of the localisation density comes from clusters holding on
    average ``locs_per_cluster`` localisations (Poisson number of emitters, times blinks) around
    uniformly placed centres; the rest is CSR. ``process="thomas"``: Gaussian offsets of SD
    ``cluster_radius_nm``; ``"matern"``: uniform in a disc of radius ``cluster_radius_nm``.
    """
    _check_parameters(density_per_um2, fraction_clustered, locs_per_cluster, process, blinks_mean)
    rng = np.random.default_rng(seed)
    window = _Window(x0_nm, y0_nm, width_nm, height_nm)
    spread = _MARGIN_SDS * cluster_radius_nm if process == "thomas" else cluster_radius_nm
    field = window.grown(spread + _MARGIN_SDS * precision_nm)
    centre_density = fraction_clustered * density_per_um2 / locs_per_cluster if fraction_clustered else 0.0
    clustered_xy, cluster_id = _cluster_emitters(rng, field, centre_density, locs_per_cluster / blinks_mean,
                                                 cluster_radius_nm, process)
    n_background = rng.poisson((1 - fraction_clustered) * density_per_um2 / blinks_mean * field.area_um2)
    emitter_xy = np.concatenate((clustered_xy, field.uniform(rng, n_background)))
    emitter_label = np.concatenate((cluster_id, np.full(n_background, -1, dtype=np.int64)))
    return _observe(rng, window, emitter_xy, emitter_label, precision_nm, blinks_mean, n_frames)


def simulate_blinking(n_emitters: int, width_nm: float, height_nm: float, *, precision_nm: float = 10.0,
                      mean_on_frames: float = 3.0, n_frames: int = N_FRAMES, seed: int = 0) -> SimulatedPattern:
    """Emitters (CSR, uniform in the window) that blink in runs of consecutive frames.

    Each emitter switches on at a uniformly random frame and stays on for a geometric number of
    consecutive frames (mean ``mean_on_frames``), localised once per frame with an independent
    Gaussian blur of SD ``precision_nm``: the situation NeNA measures (``stats.nena_precision``).
    Frames may run past ``n_frames`` by the length of a run. Sorted by frame; labels all -1.
    """
    if n_emitters < 0 or mean_on_frames < 1:
        raise ValueError("n_emitters must be >= 0 and mean_on_frames >= 1")
    rng = np.random.default_rng(seed)
    window = _Window(0.0, 0.0, width_nm, height_nm)
    position = window.uniform(rng, n_emitters)
    start = rng.integers(0, n_frames, n_emitters)
    on_frames = rng.geometric(1.0 / mean_on_frames, n_emitters)
    emitter = np.repeat(np.arange(n_emitters, dtype=np.int64), on_frames)
    frame = np.repeat(start, on_frames) + (np.arange(emitter.size) - np.repeat(np.cumsum(on_frames) - on_frames, on_frames))
    xy = position[emitter] + rng.normal(0.0, precision_nm, (emitter.size, 2))
    order = np.argsort(frame, kind="stable")
    return SimulatedPattern(x=xy[order, 0].copy(), y=xy[order, 1].copy(), labels=np.full(emitter.size, -1, dtype=np.int64),
                            emitter=emitter[order], frame=frame[order].astype(np.int64),
                            precision=np.full(emitter.size, float(precision_nm)))


def _check_parameters(density, fraction, locs_per_cluster, process, blinks_mean) -> None:
    if density < 0:
        raise ValueError("density_per_um2 must be >= 0")
    if not 0.0 <= fraction <= 1.0:
        raise ValueError("fraction_clustered must lie in [0, 1]")
    if fraction > 0 and locs_per_cluster <= 0:
        raise ValueError("locs_per_cluster must be > 0")
    if process not in CLUSTER_PROCESSES:
        raise ValueError(f"process must be one of {CLUSTER_PROCESSES}, got {process!r}")
    if blinks_mean < 1:
        raise ValueError("blinks_mean must be >= 1 (each emitter is seen at least once)")


def _cluster_emitters(rng: np.random.Generator, field: _Window, centre_density_per_um2: float,
                      emitters_per_cluster: float, radius_nm: float,
                      process: str) -> tuple[np.ndarray, np.ndarray]:
    """Emitter positions (n, 2) and cluster ids of the clustered part.

    Cluster centres: Poisson process of the given density in ``field``; emitters per cluster:
    Poisson with mean ``emitters_per_cluster``.
    """
    n_centres = rng.poisson(centre_density_per_um2 * field.area_um2)
    centres = field.uniform(rng, n_centres)
    cluster_id = np.repeat(np.arange(n_centres, dtype=np.int64), rng.poisson(emitters_per_cluster, n_centres))
    if process == "thomas":
        offsets = rng.normal(0.0, radius_nm, (cluster_id.size, 2))
    else:
        radius = radius_nm * np.sqrt(rng.random(cluster_id.size))
        angle = 2 * np.pi * rng.random(cluster_id.size)
        offsets = np.column_stack((radius * np.cos(angle), radius * np.sin(angle)))
    return centres[cluster_id] + offsets, cluster_id


def _observe(rng: np.random.Generator, window: _Window, emitter_xy: np.ndarray, emitter_label: np.ndarray,
             precision_nm: float, blinks_mean: float, n_frames: int) -> SimulatedPattern:
    """Multi-blink, blur, assign frames, crop to the window, relabel compactly, sort by frame."""
    repeats = 1 + rng.poisson(blinks_mean - 1, emitter_xy.shape[0])
    emitter = np.repeat(np.arange(emitter_xy.shape[0], dtype=np.int64), repeats)
    xy = emitter_xy[emitter] + rng.normal(0.0, precision_nm, (emitter.size, 2))
    frame = rng.integers(0, n_frames, emitter.size)
    keep = window.contains(xy)
    xy, emitter, frame = xy[keep], emitter[keep], frame[keep]
    order = np.argsort(frame, kind="stable")
    xy, emitter, frame = xy[order], emitter[order], frame[order]
    labels = emitter_label[emitter]
    return SimulatedPattern(x=xy[:, 0].copy(), y=xy[:, 1].copy(), labels=_compact(labels),
                            emitter=_compact(emitter), frame=frame.astype(np.int64),
                            precision=np.full(emitter.size, float(precision_nm)))


def _compact(ids: np.ndarray) -> np.ndarray:
    """Renumber the distinct non-negative ids to 0..k-1 (increasing); -1 stays -1."""
    out = np.full(ids.shape, -1, dtype=np.int64)
    valid = ids >= 0
    out[valid] = np.unique(ids[valid], return_inverse=True)[1]
    return out
