"""Server-side rendering of localisations into PNG images (datashader), for the file viewer.

Pure: numpy arrays in nm in, PNG bytes out. The viewer shows the PNG as a Plotly layout image under
the ROI outlines and re-renders it for every zoom or pan, so a browser never receives more than one
image's worth of bytes whatever the number of localisations (10^3 to 10^7).

Image orientation: row 0 of the returned PNG is the *top* of the picture. ``y_down=True`` (the
camera / Fiji convention, y increasing downwards) puts y_min at the top; ``y_down=False`` puts y_max
at the top.
"""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass
from typing import Iterable

import numpy as np
import pandas as pd
from numba import njit
from PIL import Image, ImageDraw, ImageFont

COLOUR_BY = ("density", "frame", "precision")
# dark-background colour maps (hex, low to high)
DENSITY_CMAP = ["#5a1000", "#7f1800", "#a52a00", "#e0560b", "#f99b2b", "#fed66b", "#ffffff"]   # "fire"-like
VALUE_CMAP = ["#440154", "#3b528b", "#21918c", "#5ec962", "#fde725"]                            # viridis
# categorical palette for cluster labels (index 0 = noise)
NOISE_RGBA = (150, 150, 150, 150)
CLUSTER_PALETTE = np.array([
    (31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75),
    (227, 119, 194), (188, 189, 34), (23, 190, 207), (255, 187, 120), (152, 223, 138), (255, 152, 150),
], dtype=np.uint8)


@dataclass
class RenderedImage:
    """A rendered view: PNG bytes plus where it goes (nm) and what it shows."""
    png: bytes
    x_range: tuple[float, float]
    y_range: tuple[float, float]
    width: int
    height: int
    n_in_view: int                       # localisations inside the ranges
    colour_by: str
    value_span: tuple[float, float] | None = None   # colour scale for frame / precision

    def data_uri(self) -> str:
        return "data:image/png;base64," + base64.b64encode(self.png).decode("ascii")


def canvas_size(x_range, y_range, max_px: int = 900, min_px: int = 16) -> tuple[int, int]:
    """(width, height) in pixels with square pixels (equal aspect), the long side ``max_px``."""
    dx = max(float(x_range[1]) - float(x_range[0]), 1e-9)
    dy = max(float(y_range[1]) - float(y_range[0]), 1e-9)
    if dx >= dy:
        return int(max_px), int(np.clip(round(max_px * dy / dx), min_px, max_px))
    return int(np.clip(round(max_px * dx / dy), min_px, max_px)), int(max_px)


def data_extent(x_nm, y_nm, pad_fraction: float = 0.02) -> tuple[tuple[float, float], tuple[float, float]]:
    """Padded (x_range, y_range) covering all points (nm); a 1 um square for empty input."""
    x = np.asarray(x_nm)
    y = np.asarray(y_nm)
    if x.size == 0:
        return (0.0, 1000.0), (0.0, 1000.0)
    x0, x1 = float(np.nanmin(x)), float(np.nanmax(x))
    y0, y1 = float(np.nanmin(y)), float(np.nanmax(y))
    pad = pad_fraction * max(x1 - x0, y1 - y0, 100.0)
    return (x0 - pad, x1 + pad), (y0 - pad, y1 + pad)


@njit(cache=True)
def _count_in_box(x, y, x0, x1, y0, y1):
    n = 0
    for i in range(x.shape[0]):
        if x0 <= x[i] <= x1 and y0 <= y[i] <= y1:
            n += 1
    return n


def count_in_view(x_nm, y_nm, x_range, y_range) -> int:
    """Number of points with x in [x0, x1] and y in [y0, y1] (one pass, no temporary arrays)."""
    return int(_count_in_box(np.asarray(x_nm), np.asarray(y_nm), float(x_range[0]), float(x_range[1]),
                             float(y_range[0]), float(y_range[1])))


@njit(cache=True)
def _indices_in_box(x, y, x0, x1, y0, y1, limit):
    out = np.empty(min(limit, x.shape[0]), dtype=np.int64)
    n = 0
    for i in range(x.shape[0]):
        if x0 <= x[i] <= x1 and y0 <= y[i] <= y1:
            if n >= limit:
                return out, -1
            out[n] = i
            n += 1
    return out[:n], n


def indices_in_view(x_nm, y_nm, x_range, y_range, limit: int) -> np.ndarray | None:
    """Indices of the points inside the ranges, or None when there are more than ``limit``."""
    idx, n = _indices_in_box(np.asarray(x_nm), np.asarray(y_nm), float(x_range[0]), float(x_range[1]),
                             float(y_range[0]), float(y_range[1]), int(limit))
    return None if n < 0 else idx


def _frame(x, y) -> pd.DataFrame:
    return pd.DataFrame({"x": np.asarray(x), "y": np.asarray(y)}, copy=False)


def _canvas(x_range, y_range, width, height):
    import datashader as ds
    return ds.Canvas(plot_width=int(width), plot_height=int(height),
                     x_range=(float(x_range[0]), float(x_range[1])), y_range=(float(y_range[0]), float(y_range[1])))


def _palette(stops: list[str], n: int = 255) -> np.ndarray:
    """(n, 3) uint8 colours interpolated linearly between hex ``stops``."""
    rgb = np.array([[int(h[i:i + 2], 16) for i in (1, 3, 5)] for h in stops], dtype=np.float64)
    at = np.linspace(0, 1, len(stops))
    t = np.linspace(0, 1, n)
    return np.column_stack([np.interp(t, at, rgb[:, c]) for c in range(3)]).round().astype(np.uint8)


DENSITY_LUT = _palette(DENSITY_CMAP)
VALUE_LUT = _palette(VALUE_CMAP)


def _indexed_png(index: np.ndarray, lut: np.ndarray, y_down: bool, alpha: np.ndarray | None = None,
                 compress_level: int = 2) -> bytes:
    """Palette PNG from uint8 indices (rows = increasing y; 0 = transparent, k -> lut[k - 1]).

    ``alpha`` (optional, one value per lut entry) makes palette entries translucent.
    """
    from PIL import Image
    if not y_down:
        index = index[::-1]
    index = np.ascontiguousarray(index, dtype=np.uint8)
    image = Image.frombytes("P", (index.shape[1], index.shape[0]), index.tobytes())
    palette = np.zeros((256, 3), dtype=np.uint8)
    palette[1:1 + lut.shape[0]] = lut[:255]
    image.putpalette(palette.tobytes())
    transparency = np.full(1 + min(lut.shape[0], 255), 255, dtype=np.uint8)
    transparency[0] = 0
    if alpha is not None:
        transparency[1:] = np.asarray(alpha, dtype=np.uint8)[:255]
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", transparency=transparency.tobytes(), compress_level=compress_level)
    return buffer.getvalue()


def _eq_hist_index(counts: np.ndarray) -> np.ndarray:
    """Histogram equalisation of integer counts to indices 1..255 (0 = empty pixel).

    A count's level is the mid-rank of its value among the filled pixels, so a view where every
    pixel holds one localisation sits mid-scale and the most crowded pixels reach the top.
    """
    counts = np.asarray(counts)
    flat = counts.ravel().astype(np.int64, copy=False)
    hist = np.bincount(flat)
    hist[0] = 0
    total = float(hist.sum())
    if total == 0:
        return np.zeros(counts.shape, dtype=np.uint8)
    cdf = np.cumsum(hist) / total                      # fraction of filled pixels <= v
    level = (1 + np.round((cdf - 0.5 * hist / total) * 254.0)).astype(np.uint8)
    level[0] = 0
    return level[flat].reshape(counts.shape)


def _linear_index(values: np.ndarray, span: tuple[float, float]) -> np.ndarray:
    """Linear map of ``values`` over ``span`` to indices 1..255 (NaN -> 0, transparent)."""
    lo, hi = span
    filled = np.isfinite(values)
    scaled = np.clip((np.where(filled, values, lo) - lo) / max(hi - lo, 1e-12), 0.0, 1.0)
    return np.where(filled, 1 + np.round(scaled * 254.0), 0).astype(np.uint8)


def _spread(index: np.ndarray, max_fill: float = 0.1) -> np.ndarray:
    """Grow isolated pixels by one (empty pixels take their brightest neighbour) in sparse views."""
    if index.size == 0 or np.count_nonzero(index) > max_fill * index.size:
        return index
    grown = index.copy()
    padded = np.pad(index, 1)
    h, w = index.shape
    for dy in (0, 1, 2):
        for dx in (0, 1, 2):
            np.maximum(grown, padded[dy:dy + h, dx:dx + w], out=grown)
    return np.where(index > 0, index, grown)


def value_span(values, quantiles=(0.01, 0.99)) -> tuple[float, float]:
    """Robust colour range of a column (1st to 99th percentile by default, on a subsample)."""
    v = np.asarray(values)
    if v.size > 200_000:
        v = v[:: v.size // 200_000]
    v = v[np.isfinite(v)]
    if v.size == 0:
        return 0.0, 1.0
    lo, hi = (float(q) for q in np.quantile(v, quantiles))
    if hi <= lo:
        hi = lo + 1.0
    return lo, hi


def render_png(x_nm, y_nm, *, x_range, y_range, width: int | None = None, height: int | None = None,
               colour_by: str = "density", values=None, span: tuple[float, float] | None = None,
               max_px: int = 900, y_down: bool = True, spread: bool = True) -> RenderedImage:
    """Render the points inside ``x_range`` x ``y_range`` (nm) into a palette PNG.

    colour_by='density': localisations per pixel, histogram-equalised (eq_hist) on a fire map.
    colour_by='frame' or 'precision': mean of ``values`` per pixel on viridis, linear over ``span``
    (default: 1st-99th percentile of ``values``). Empty pixels are transparent. ``width``/``height``
    default to an equal-aspect canvas with long side ``max_px``. ``spread`` grows isolated pixels
    by one so sparse views stay visible.
    """
    import datashader as ds

    if colour_by not in COLOUR_BY:
        raise ValueError(f"colour_by must be one of {COLOUR_BY}, got {colour_by!r}")
    if colour_by != "density" and values is None:
        colour_by = "density"
    if width is None or height is None:
        width, height = canvas_size(x_range, y_range, max_px)
    xr = (float(x_range[0]), float(x_range[1]))
    yr = (float(y_range[0]), float(y_range[1]))
    if colour_by == "density":
        canvas = _canvas(x_range, y_range, width, height)
        counts = np.asarray(canvas.points(_frame(x_nm, y_nm), "x", "y", agg=ds.count()).values)
        n_in_view = int(counts.sum())
        index, lut, used_span = _eq_hist_index(counts), DENSITY_LUT, None
    else:
        used_span = tuple(float(v) for v in span) if span is not None else value_span(values)
        counts, sums = _binned_sum(*_xy64(x_nm, y_nm), np.asarray(values, dtype=np.float64), xr[0], xr[1],
                                   yr[0], yr[1], int(width), int(height))
        n_in_view = int(counts.sum())
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where(counts > 0, sums / counts, np.nan)
        index, lut = _linear_index(mean, used_span), VALUE_LUT
    if spread:
        index = _spread(index)
    return RenderedImage(_indexed_png(index, lut, y_down), xr, yr, int(width), int(height), n_in_view,
                         colour_by, used_span)


def render_labels_png(x_nm, y_nm, labels, *, x_range, y_range, width: int | None = None,
                      height: int | None = None, max_px: int = 900, y_down: bool = True) -> RenderedImage:
    """Render DBSCAN labels: each pixel takes the colour of its highest cluster id (noise grey).

    Used as an overlay when a region holds too many points to send as WebGL markers.
    """
    if width is None or height is None:
        width, height = canvas_size(x_range, y_range, max_px)
    labels = np.asarray(labels)
    code = np.where(labels >= 0, labels % len(CLUSTER_PALETTE) + 2, 1).astype(np.uint8)
    index = _binned_max(*_xy64(x_nm, y_nm), code, float(x_range[0]), float(x_range[1]), float(y_range[0]),
                        float(y_range[1]), int(width), int(height))
    lut = np.vstack([np.array([NOISE_RGBA[:3]], dtype=np.uint8), CLUSTER_PALETTE])
    alpha = np.r_[NOISE_RGBA[3], np.full(len(CLUSTER_PALETTE), 255)]
    return RenderedImage(_indexed_png(_spread(index), lut, y_down, alpha=alpha),
                         (float(x_range[0]), float(x_range[1])), (float(y_range[0]), float(y_range[1])),
                         int(width), int(height), int(np.count_nonzero(index)), "cluster")


def _xy64(x_nm, y_nm):
    return np.ascontiguousarray(x_nm, dtype=np.float64), np.ascontiguousarray(y_nm, dtype=np.float64)


@njit(cache=True)
def _pixel(x, y, x0, x1, y0, y1, width, height):
    """Flat pixel index of (x, y) on a width x height canvas over [x0, x1] x [y0, y1] (rows = y), or -1.

    Same binning as datashader: floor((x - x0) / (x1 - x0) * width), the upper edge in the last pixel.
    """
    if not (x0 <= x <= x1 and y0 <= y <= y1):
        return -1
    col = int((x - x0) / (x1 - x0) * width)
    row = int((y - y0) / (y1 - y0) * height)
    if col >= width:
        col = width - 1
    if row >= height:
        row = height - 1
    return row * width + col


@njit(cache=True)
def _binned_sum(x, y, v, x0, x1, y0, y1, width, height):
    """Per-pixel count and sum of finite ``v`` (for the mean frame / precision per pixel)."""
    counts = np.zeros(height * width, dtype=np.int64)
    sums = np.zeros(height * width, dtype=np.float64)
    for i in range(x.shape[0]):
        p = _pixel(x[i], y[i], x0, x1, y0, y1, width, height)
        if p >= 0 and np.isfinite(v[i]):
            counts[p] += 1
            sums[p] += v[i]
    return counts.reshape(height, width), sums.reshape(height, width)


@njit(cache=True)
def _binned_max(x, y, code, x0, x1, y0, y1, width, height):
    """Per-pixel maximum of the uint8 ``code`` (0 where no point falls)."""
    out = np.zeros(height * width, dtype=np.uint8)
    for i in range(x.shape[0]):
        p = _pixel(x[i], y[i], x0, x1, y0, y1, width, height)
        if p >= 0 and code[i] > out[p]:
            out[p] = code[i]
    return out.reshape(height, width)


def local_density(x_nm, y_nm, x_range, y_range, bins: int = 200) -> np.ndarray:
    """Per-point count of its cell on a ``bins`` x ``bins`` grid over the ranges (colour for points)."""
    x = np.asarray(x_nm, dtype=np.float64)
    y = np.asarray(y_nm, dtype=np.float64)
    if x.size == 0:
        return np.empty(0, dtype=np.float32)
    sx = bins / max(x_range[1] - x_range[0], 1e-9)
    sy = bins / max(y_range[1] - y_range[0], 1e-9)
    col = np.clip(((x - x_range[0]) * sx).astype(np.int64), 0, bins - 1)
    row = np.clip(((y - y_range[0]) * sy).astype(np.int64), 0, bins - 1)
    cell = row * bins + col
    counts = np.bincount(cell, minlength=bins * bins)
    return counts[cell].astype(np.float32)


def nice_scale_bar_nm(view_width_nm: float, fraction: float = 0.2) -> float:
    """A round scale-bar length (1, 2 or 5 x 10^k nm) close to ``fraction`` of the view width."""
    target = max(float(view_width_nm) * fraction, 1e-3)
    exponent = np.floor(np.log10(target))
    for mantissa in (5, 2, 1):
        length = mantissa * 10 ** exponent
        if length <= target:
            return float(length)
    return float(10 ** exponent)


def format_length(nm: float) -> str:
    """'500 nm', '2 µm', '1.5 µm'."""
    if nm >= 1000:
        um = nm / 1000
        return f"{um:g} µm"
    return f"{nm:g} nm"


# ---------------------------------------------------------------------------------------------
# density images for downloads (PNG with ROI outlines and a scale bar)

# Inferno colour map (matplotlib), sampled at 0, 0.1, ..., 1 (density images of the downloads).
INFERNO_LUT = _palette(["#000004", "#160b39", "#420a68", "#6a176e", "#932667", "#bc3754",
                        "#dd513a", "#f37819", "#fca50a", "#f6d746", "#fcffa4"], 256)


_FONT_FILES = ("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", "DejaVuSans.ttf",
               "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf")


def _font(size: int):
    """A scalable font with a µ glyph when the system has one, else Pillow's default."""
    for name in _FONT_FILES:
        try:
            return ImageFont.truetype(name, size), True
        except OSError:
            continue
    try:
        return ImageFont.load_default(size=size), False
    except TypeError:          # Pillow without FreeType
        return ImageFont.load_default(), False


def _span(arrays) -> tuple[float, float]:
    """(min, max) of the finite values of several arrays; (0, 1000) when there are none."""
    lows, highs = [], []
    for values in arrays:
        if values.size:
            with np.errstate(all="ignore"):
                low, high = np.nanmin(values), np.nanmax(values)
            if np.isfinite(low) and np.isfinite(high):
                lows.append(float(low))
                highs.append(float(high))
            elif np.isfinite(values).any():
                finite = values[np.isfinite(values)]
                lows.append(float(finite.min()))
                highs.append(float(finite.max()))
    return (min(lows), max(highs)) if lows else (0.0, 1000.0)


@njit(cache=True)
def _histogram(x, y, x_lo, y_lo, scale, size):
    """(size, size) counts of points in square pixels of 1/scale nm from (x_lo, y_lo); one pass,
    no temporary arrays (10 M points in ~0.1 s). Row = y bin, column = x bin; NaN and outside skipped."""
    counts = np.zeros((size, size), dtype=np.int64)
    for i in range(x.shape[0]):
        fx = (x[i] - x_lo) * scale
        fy = (y[i] - y_lo) * scale
        if fx >= 0 and fx < size and fy >= 0 and fy < size:
            counts[int(fy), int(fx)] += 1
    return counts


def density_image(x: np.ndarray, y: np.ndarray, *, size: int = 1024, rois: Iterable = (),
                  scaling: str = "log") -> Image.Image:
    """A ``size`` x ``size`` RGB density image of localisations (nm).

    2-D histogram over the square extent of the points (and ROI vertices), square pixels, image
    convention (y increases downwards, as in ThunderSTORM and Fiji renders), ``scaling`` 'log' or
    'eqhist', inferno colours, ROI outlines in cyan and a scale bar at the bottom right.
    """
    x = np.ascontiguousarray(x)
    y = np.ascontiguousarray(y)
    if x.dtype != y.dtype or x.dtype not in (np.float32, np.float64):
        x, y = x.astype(np.float64), y.astype(np.float64)
    rois = [np.asarray(v, dtype=np.float64).reshape(-1, 2) for v in rois]
    x_min, x_max = _span([x] + [v[:, 0] for v in rois])
    y_min, y_max = _span([y] + [v[:, 1] for v in rois])
    side = max(x_max - x_min, y_max - y_min, 100.0) * 1.02
    x_lo = (x_min + x_max) / 2 - side / 2
    y_lo = (y_min + y_max) / 2 - side / 2
    pixel = side / size

    counts = _histogram(x, y, x_lo, y_lo, 1.0 / pixel, size).astype(np.float64)
    if counts.max() > 0:
        if scaling == "eqhist":
            nonzero = np.sort(counts[counts > 0])
            ranks = np.searchsorted(nonzero, counts, side="right") / nonzero.size
            level = np.where(counts > 0, 0.15 + 0.85 * ranks, 0.0)
        else:
            # log scale saturating at the 99.5th percentile of occupied pixels, so that a few
            # very bright pixels do not leave the rest of the picture black
            top = max(float(np.percentile(counts[counts > 0], 99.5)), 1.0)
            level = np.clip(np.log1p(counts) / np.log1p(top), 0.0, 1.0)
    else:
        level = counts
    rgb = INFERNO_LUT[np.clip((level * 255).round().astype(np.int64), 0, 255)]
    image = Image.fromarray(rgb, mode="RGB")
    draw = ImageDraw.Draw(image)

    def to_px(vx, vy):
        return [((a - x_lo) / pixel, (b - y_lo) / pixel) for a, b in zip(vx, vy)]

    width = max(1, size // 400)
    for vertices in rois:
        if len(vertices) >= 2:
            points = to_px(vertices[:, 0], vertices[:, 1])
            draw.line(points + [points[0]], fill=(0, 255, 255), width=width)

    bar_nm = nice_scale_bar_nm(side, 0.2)
    bar_px = bar_nm / pixel
    margin = size // 32
    bar_h = max(3, size // 128)
    x1, y1 = size - margin, size - margin
    draw.rectangle([x1 - bar_px, y1 - bar_h, x1, y1], fill=(255, 255, 255))
    font, has_micro = _font(max(10, size // 40))
    label = format_length(bar_nm)
    if not has_micro:
        label = label.replace("µm", "um")
    left, top, right, bottom = draw.textbbox((0, 0), label, font=font)
    draw.text((x1 - bar_px / 2 - (right - left) / 2, y1 - bar_h - (bottom - top) - size // 100 - top),
              label, fill=(255, 255, 255), font=font)
    return image


def warm_up() -> None:
    """Compile the numba kernels (datashader's count and ours) on tiny input: call at worker start.

    Datashader compiles its aggregation in every new process (~2-12 s on 2 cores); our kernels are
    cached on disk by numba (``cache=True``).
    """
    x = np.array([0.0, 1.0, 2.0, 3.0])
    y = np.array([0.0, 1.0, 2.0, 3.0])
    for colour_by in COLOUR_BY:
        render_png(x, y, x_range=(0, 3), y_range=(0, 3), width=8, height=8, colour_by=colour_by,
                   values=np.array([1.0, 2.0, 3.0, 4.0]))
    render_labels_png(x, y, np.array([-1, 0, 0, 1]), x_range=(0, 3), y_range=(0, 3), width=8, height=8)
    count_in_view(x, y, (0, 3), (0, 3))
    indices_in_view(x, y, (0, 3), (0, 3), 10)
