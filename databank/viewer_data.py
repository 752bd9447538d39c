"""Data access for the file viewer (/file/<id>): which file a page shows, its localisations, its
initial view, and the on-disk cache of analysis results shared with background jobs.

Every function that returns a file checks access through ``access.get_file`` for the user given
(never for an id taken on trust from the browser).
"""

from __future__ import annotations


import os
import re
import threading
from pathlib import Path

import numpy as np

from compute import render
from databank import analysis
from databank import viewer_render
from databank import analysis_inputs
from databank.access import AccessDenied, get_file


PATH_RE = re.compile(r"^/file/(\d+)/?$")


DEFAULT_CANVAS_PX = 900


DENIED = "This file is not available to you."


def file_id_from_path(pathname) -> int | None:
    match = PATH_RE.match(str(pathname or ""))
    return int(match.group(1)) if match else None


def readable_file(pathname, user, action: str = "read"):
    """The DataFile of the page if ``user`` may ``action`` it, else None."""
    file_id = file_id_from_path(pathname)
    if file_id is None:
        return None
    try:
        return get_file(user, file_id, action)
    except AccessDenied:
        return None


def _store():
    from databank.exports import current_store
    return current_store()


def load_table(data_file):
    return _store().load_locs(data_file)


_DISK = {}


_DISK_LOCK = threading.Lock()


def result_cache():
    """The on-disk cache shared with background jobs (one Cache object per process)."""
    import diskcache

    from databank.core import settings_of
    folder = Path(settings_of().cache_dir) / "viewer-results"
    key = (str(folder), os.getpid())
    with _DISK_LOCK:
        cache = _DISK.get(key)
        if cache is None:
            folder.mkdir(parents=True, exist_ok=True)
            cache = _DISK[key] = diskcache.Cache(str(folder), size_limit=2 ** 30)
    return cache


def export_name(data_file) -> str:
    from databank.exports import safe_stem
    return f"{safe_stem(data_file.name)}_view"


def file_extent(data_file, table):
    """(x_range, y_range) covering the localisations and the ROIs, padded 2 %."""
    (x0, x1), (y0, y1) = render.data_extent(table.x, table.y, pad_fraction=0.0)
    for roi in data_file.rois:
        v = np.asarray(roi.vertices_nm, dtype=float)
        if v.size:
            x0, x1 = min(x0, v[:, 0].min()), max(x1, v[:, 0].max())
            y0, y1 = min(y0, v[:, 1].min()), max(y1, v[:, 1].max())
    pad = 0.02 * max(x1 - x0, y1 - y0, 100.0)
    return (float(x0 - pad), float(x1 + pad)), (float(y0 - pad), float(y1 + pad))


def initial_view(data_file, table):
    extent = file_extent(data_file, table)
    view = viewer_render.render_view(data_file, table, extent[0], extent[1], "density", max_px=DEFAULT_CANVAS_PX)
    return view, extent


def region_of(data_file, table, region_key):
    spec = analysis_inputs.RegionSpec.parse(region_key)
    return analysis.select_region(data_file, table, spec)
