"""The one localisation table every reader returns."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

OPTIONAL_COLUMNS = ("z", "frame", "precision", "photons", "channel")


@dataclass
class LocalisationTable:
    """Localisations of one detection file.

    x, y, z and precision are in nanometres (float64); frame is 0-based (int64);
    photons is a photon count; channel an integer label. Optional columns are None
    when the file does not carry them. ``precision`` is the lateral localisation
    precision sigma_xy (sqrt((sx^2 + sy^2)/2) when the file gives sx and sy).
    """

    x: np.ndarray
    y: np.ndarray
    z: np.ndarray | None = None
    frame: np.ndarray | None = None
    precision: np.ndarray | None = None
    photons: np.ndarray | None = None
    channel: np.ndarray | None = None
    source_format: str = "unknown"
    precision_source: str | None = None
    n_dropped: int = 0
    warnings: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.x = np.asarray(self.x, dtype=np.float64)
        self.y = np.asarray(self.y, dtype=np.float64)
        if self.x.shape != self.y.shape or self.x.ndim != 1:
            raise ValueError("x and y must be 1-D arrays of the same length")
        for name in OPTIONAL_COLUMNS:
            value = getattr(self, name)
            if value is not None:
                value = np.asarray(value)
                if value.shape != self.x.shape:
                    raise ValueError(f"column {name} has {value.shape[0]} rows, x has {self.x.shape[0]}")
                setattr(self, name, value)

    def __len__(self) -> int:
        return int(self.x.shape[0])

    @property
    def xy(self) -> np.ndarray:
        """(n, 2) float64 array of x, y in nm."""
        return np.column_stack((self.x, self.y))
