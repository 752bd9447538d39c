"""Compile the numba kernels of rendering and cluster analysis once per process (pure: tiny inputs)."""

from __future__ import annotations


import logging
import threading

import numpy as np

from compute import render

_WARMED = threading.Event()
_WARM_LOCK = threading.Lock()


def warm_up() -> None:
    """Compile the numba kernels of rendering and cluster analysis once per process (~5-10 s).

    A serving process calls it in a daemon thread (``start_warm_up``), so the first file a user
    opens is not slowed by JIT compilation.
    """
    with _WARM_LOCK:
        if _WARMED.is_set():
            return
        from compute import clusters
        render.warm_up()
        rng = np.random.default_rng(0)
        x, y = rng.uniform(0, 1000, 200), rng.uniform(0, 1000, 200)
        labels = clusters.dbscan_labels(x, y, 100.0, 3)
        clusters.cluster_summary(x, y, labels, 1.0, table=clusters.cluster_table(x, y, labels))
        radii = clusters.default_radii_nm(100.0, 20.0)
        for edge in clusters.EDGE_CORRECTIONS:
            clusters.ripley(x, y, radii, window=(0.0, 0.0, 1000.0, 1000.0), edge=edge)
        from shapely.geometry import Polygon
        clusters.ripley(x, y, radii, window=Polygon([(0, 0), (1000, 0), (500, 1000)]), edge="ripley")
        from compute.dbscan_tree import DbscanTree
        DbscanTree.build(x, y, 3, 200.0).labels(100.0)
        _WARMED.set()


def is_warm() -> bool:
    """Whether ``warm_up`` has completed in this process."""
    return _WARMED.is_set()


def start_warm_up() -> threading.Thread | None:
    """``warm_up`` in a daemon thread (None if already warm); a failure is logged, never raised."""
    if is_warm():
        return None

    def run():
        try:
            warm_up()
        except Exception:                     # never break the app for a warm-up
            logging.getLogger(__name__).exception("kernel warm-up failed")
    thread = threading.Thread(target=run, name="viewer-warm-up", daemon=True)
    thread.start()
    return thread
