"""Analysis parameters and regions as the browser sends them, parsed and clamped before any computation.

Every value from a slider, number input or store goes through here: out-of-range or malformed input
becomes the nearest allowed value (or a ``RegionError`` with a message), never an exception deeper
down. Lengths nm.
"""

from __future__ import annotations


from dataclasses import dataclass
from typing import Any

import numpy as np

from compute import clusters


EPS_RANGE_NM = (5.0, 200.0)


MIN_SAMPLES_RANGE = (2, 50)


R_MAX_RANGE_NM = (50.0, 2000.0)


DR_RANGE_NM = (5.0, 100.0)


MAX_RADII = 400


ENVELOPE_SIMULATIONS = (19, 39, 99)


ENVELOPE_QUANTILES = (0.025, 0.975)


DBSCAN_SYNC_MAX = 250_000        # above this many points a DBSCAN runs as a background job


RIPLEY_MAX_POINTS = 10_000       # Ripley on larger regions uses a random subsample of this size


SCATTER_MAX_POINTS = 100_000     # at most this many real points are sent to the browser


MIN_BOX_NM = 50.0


SWEEP_MAX_CELLS = 150


class RegionError(ValueError):
    """A region the file does not have (unknown ROI or tile, empty box)."""


def clamp_eps(value) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        v = clusters.DEFAULT_EPS_NM
    if not np.isfinite(v):
        v = clusters.DEFAULT_EPS_NM
    return float(np.clip(v, *EPS_RANGE_NM))


def clamp_min_samples(value) -> int:
    try:
        v = int(round(float(value)))
    except (TypeError, ValueError, OverflowError):
        v = clusters.DEFAULT_MIN_SAMPLES
    return int(np.clip(v, *MIN_SAMPLES_RANGE))


def radii_for(r_max_nm, dr_nm) -> np.ndarray:
    """Ripley radii dr, 2 dr, ..., r_max (nm) within the allowed ranges (at most MAX_RADII)."""
    try:
        r_max = float(np.clip(float(r_max_nm), *R_MAX_RANGE_NM))
        dr = float(np.clip(float(dr_nm), *DR_RANGE_NM))
    except (TypeError, ValueError):
        r_max, dr = 500.0, 10.0
    if not (np.isfinite(r_max) and np.isfinite(dr)):
        r_max, dr = 500.0, 10.0
    dr = max(dr, r_max / MAX_RADII)
    return clusters.default_radii_nm(r_max, min(dr, r_max))


@dataclass(frozen=True)
class RegionSpec:
    """What the user chose: 'all' (every ROI), 'roi' k, 'tile' k, or a drawn 'box' (nm)."""
    kind: str
    index: int | None = None
    box: tuple[float, float, float, float] | None = None

    @property
    def key(self) -> str:
        if self.kind in ("roi", "tile"):
            return f"{self.kind}:{self.index}"
        if self.kind == "box":
            return "box:" + ",".join(f"{v:.1f}" for v in self.box)
        return "all"

    def to_json(self) -> dict:
        data: dict[str, Any] = {"kind": self.kind}
        if self.index is not None:
            data["index"] = self.index
        if self.box is not None:
            data["box"] = list(self.box)
        return data

    @classmethod
    def parse(cls, data) -> "RegionSpec":
        """A RegionSpec from browser data ({'kind': ..., 'index'/'box': ...} or 'roi:1' strings).

        Raises RegionError for anything malformed (types and values are checked, never trusted).
        """
        if isinstance(data, str):
            kind, _, rest = data.partition(":")
            data = {"kind": kind}
            if kind in ("roi", "tile"):
                data["index"] = rest
            elif kind == "box":
                data["box"] = rest.split(",")
        if not isinstance(data, dict):
            raise RegionError("no region")
        kind = data.get("kind")
        if kind == "all":
            return cls("all")
        if kind in ("roi", "tile"):
            try:
                index = int(data.get("index"))
            except (TypeError, ValueError):
                raise RegionError(f"bad {kind} index") from None
            return cls(kind, index=index)
        if kind == "box":
            try:
                x0, y0, x1, y1 = (float(v) for v in data.get("box"))
            except (TypeError, ValueError):
                raise RegionError("bad box") from None
            if not all(np.isfinite([x0, y0, x1, y1])):
                raise RegionError("bad box")
            x0, x1 = sorted((x0, x1))
            y0, y1 = sorted((y0, y1))
            if x1 - x0 < MIN_BOX_NM or y1 - y0 < MIN_BOX_NM:
                raise RegionError(f"the drawn box is smaller than {MIN_BOX_NM:g} nm")
            return cls("box", box=(round(x0, 1), round(y0, 1), round(x1, 1), round(y1, 1)))
        raise RegionError(f"unknown region kind {kind!r}")
