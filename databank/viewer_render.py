"""What the viewer's localisation plot shows for a window: a density image or real points, and the
cluster overlay (rendering itself is ``compute.render``). Lengths nm."""

from __future__ import annotations


from dataclasses import dataclass

import numpy as np

from compute import render
from databank.analysis import DbscanResult, Lru, Region, file_identity
from databank.analysis_inputs import SCATTER_MAX_POINTS


@dataclass(eq=False)
class ViewRender:
    """What the localisation plot shows for one window: an image, or real points (<= limit)."""
    x_range: tuple[float, float]
    y_range: tuple[float, float]
    n_in_view: int
    colour_by: str
    image: render.RenderedImage | None = None
    points: dict | None = None          # x, y, colour (float32), precision, frame (or None)
    colour_span: tuple[float, float] | None = None


def normalise_ranges(x_range, y_range, extent) -> tuple[tuple[float, float], tuple[float, float]]:
    """Sorted finite ranges (reversed axes give descending ranges), limited to 100 x the extent."""
    (ex0, ex1), (ey0, ey1) = extent
    try:
        x0, x1 = sorted(float(v) for v in x_range)
        y0, y1 = sorted(float(v) for v in y_range)
    except (TypeError, ValueError):
        return (ex0, ex1), (ey0, ey1)
    if not all(np.isfinite([x0, x1, y0, y1])) or x1 - x0 <= 0 or y1 - y0 <= 0:
        return (ex0, ex1), (ey0, ey1)
    size = max(ex1 - ex0, ey1 - ey0)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    half_w = min((x1 - x0) / 2, 50 * size)
    half_h = min((y1 - y0) / 2, 50 * size)
    half_w, half_h = max(half_w, 1.0), max(half_h, 1.0)
    return (cx - half_w, cx + half_w), (cy - half_h, cy + half_h)


def colour_values(table, colour_by: str):
    if colour_by == "frame" and table.frame is not None:
        return table.frame
    if colour_by == "precision" and table.precision is not None:
        return table.precision
    return None


_SPANS = Lru(32)


def colour_span(data_file, table, colour_by: str) -> tuple[float, float] | None:
    """Robust colour range of frame / precision over the whole file (cached per file)."""
    values = colour_values(table, colour_by)
    if values is None:
        return None
    key = file_identity(data_file) + ("span", colour_by)
    span = _SPANS.get(key)
    if span is None:
        span = _SPANS.put(key, render.value_span(values))
    return span


def render_view(data_file, table, x_range, y_range, colour_by: str = "density", *,
                max_points: int | None = None, max_px: int = 900, y_down: bool = True) -> ViewRender:
    """The view of ``x_range`` x ``y_range`` (nm): real points when at most ``max_points`` (default
    SCATTER_MAX_POINTS) are inside, else a datashader image (density, or mean frame / precision per pixel)."""
    if max_points is None:
        max_points = SCATTER_MAX_POINTS
    if colour_by not in render.COLOUR_BY or (colour_by != "density" and colour_values(table, colour_by) is None):
        colour_by = "density"
    x = np.asarray(table.x)
    y = np.asarray(table.y)
    span = colour_span(data_file, table, colour_by)
    idx = render.indices_in_view(x, y, x_range, y_range, max_points) if max_points > 0 else None
    if idx is not None:
        px, py = x[idx], y[idx]
        if colour_by == "density":
            colour = render.local_density(px, py, x_range, y_range)
        else:
            colour = np.asarray(colour_values(table, colour_by))[idx].astype(np.float32)
        points = {"index": idx, "x": px.astype(np.float32), "y": py.astype(np.float32), "colour": colour,
                  "precision": None if table.precision is None else np.asarray(table.precision)[idx].astype(np.float32),
                  "frame": None if table.frame is None else np.asarray(table.frame)[idx].astype(np.int32)}
        return ViewRender(tuple(x_range), tuple(y_range), int(idx.size), colour_by, points=points, colour_span=span)
    image = render.render_png(x, y, x_range=x_range, y_range=y_range, colour_by=colour_by,
                              values=colour_values(table, colour_by), span=span, max_px=max_px, y_down=y_down)
    return ViewRender(tuple(x_range), tuple(y_range), image.n_in_view, colour_by, image=image, colour_span=span)


def render_cluster_overlay(region: Region, result: DbscanResult, x_range, y_range, *, max_px: int = 900,
                           y_down: bool = True) -> render.RenderedImage | None:
    """Image of the region's cluster labels over the part of the view the region covers."""
    bx0, by0, bx1, by1 = region.bounds
    x0, x1 = max(x_range[0], bx0), min(x_range[1], bx1)
    y0, y1 = max(y_range[0], by0), min(y_range[1], by1)
    if x1 <= x0 or y1 <= y0:
        return None
    # pixel size of the view, so the overlay lines up with the density image
    width, height = render.canvas_size(x_range, y_range, max_px)
    px = (x_range[1] - x_range[0]) / width
    w = max(int(np.ceil((x1 - x0) / px)), 1)
    h = max(int(np.ceil((y1 - y0) / px)), 1)
    return render.render_labels_png(region.x, region.y, result.labels, x_range=(x0, x0 + w * px),
                                    y_range=(y0, y0 + h * px), width=w, height=h, y_down=y_down)
