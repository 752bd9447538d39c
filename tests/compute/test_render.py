"""compute.render: datashader density images, value colouring, label images, helpers."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from compute import render


def _decode(png: bytes) -> np.ndarray:
    """RGBA array of a PNG (row 0 = top of the picture)."""
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGBA"))


@pytest.fixture(scope="module")
def points():
    rng = np.random.default_rng(3)
    # a dense blob at (750, 250) on a sparse background over [0, 1000]^2
    bg = rng.uniform(0, 1000, (2000, 2))
    blob = rng.normal((750, 250), 20, (3000, 2))
    xy = np.vstack([bg, blob])
    frame = np.r_[np.zeros(2000), np.full(3000, 100.0)]
    return xy[:, 0], xy[:, 1], frame


def test_canvas_size_keeps_square_pixels():
    assert render.canvas_size((0, 2000), (0, 1000), 800) == (800, 400)
    assert render.canvas_size((0, 1000), (0, 4000), 800) == (200, 800)
    w, h = render.canvas_size((0, 10), (0, 10_000), 800)
    assert h == 800 and w >= 16


def test_density_png_counts_and_orientation(points):
    x, y, _ = points
    img = render.render_png(x, y, x_range=(0, 1000), y_range=(0, 1000), width=100, height=100, y_down=True)
    assert img.png[:8] == b"\x89PNG\r\n\x1a\n"
    inside = ((x >= 0) & (x <= 1000) & (y >= 0) & (y <= 1000)).sum()
    assert img.n_in_view == inside
    rgba = _decode(img.png)
    assert rgba.shape == (100, 100, 4)
    # y down: the blob at y = 250 is in the upper quarter, x = 750 in the right quarter
    brightness = rgba[..., :3].astype(int).sum(axis=2)
    row, col = np.unravel_index(np.argmax(brightness), brightness.shape)
    assert 15 <= row <= 35 and 65 <= col <= 85
    # y up puts it in the lower quarter instead
    flipped = _decode(render.render_png(x, y, x_range=(0, 1000), y_range=(0, 1000), width=100, height=100,
                                        y_down=False).png)
    row_up, _ = np.unravel_index(np.argmax(flipped[..., :3].astype(int).sum(axis=2)), (100, 100))
    assert 65 <= row_up <= 85


def test_empty_pixels_are_transparent_and_view_is_cropped(points):
    x, y, _ = points
    img = render.render_png(x, y, x_range=(2000, 3000), y_range=(2000, 3000), width=50, height=50)
    assert img.n_in_view == 0
    assert (_decode(img.png)[..., 3] == 0).all()
    zoom = render.render_png(x, y, x_range=(700, 800), y_range=(200, 300), width=64, height=64)
    expected = ((x >= 700) & (x <= 800) & (y >= 200) & (y <= 300)).sum()
    assert zoom.n_in_view == expected
    assert zoom.x_range == (700.0, 800.0) and zoom.y_range == (200.0, 300.0)


def test_colour_by_frame_uses_the_mean_per_pixel(points):
    x, y, frame = points
    img = render.render_png(x, y, x_range=(0, 1000), y_range=(0, 1000), width=50, height=50,
                            colour_by="frame", values=frame, span=(0, 100), spread=False)
    assert img.colour_by == "frame" and img.value_span == (0.0, 100.0)
    rgba = _decode(img.png)
    top_of_scale = render.VALUE_LUT[-1]
    bottom_of_scale = render.VALUE_LUT[0]
    # the blob (frame 100) is yellow; background pixels (frame 0) are purple
    blob_pixel = rgba[12, 37, :3]
    assert np.abs(blob_pixel.astype(int) - top_of_scale).sum() < 60
    background = rgba[45, 5, :3] if rgba[45, 5, 3] else rgba[40, 10, :3]
    assert np.abs(background.astype(int) - bottom_of_scale).sum() < 60


def test_unknown_colour_falls_back_or_raises(points):
    x, y, _ = points
    assert render.render_png(x, y, x_range=(0, 1000), y_range=(0, 1000), width=20, height=20,
                             colour_by="precision", values=None).colour_by == "density"
    with pytest.raises(ValueError):
        render.render_png(x, y, x_range=(0, 1000), y_range=(0, 1000), colour_by="banana")


def test_eq_hist_levels():
    counts = np.array([[0, 1, 1], [2, 5, 0]])
    index = render._eq_hist_index(counts)
    assert index[0, 0] == 0 and index[1, 2] == 0
    assert index[0, 1] == index[0, 2] < index[1, 0] < index[1, 1]
    assert index.max() <= 255 and index[index > 0].min() >= 1


def test_labels_png_colours_clusters_and_noise():
    x = np.array([10.0, 10.0, 90.0, 50.0])
    y = np.array([10.0, 10.0, 90.0, 50.0])
    labels = np.array([0, -1, 1, -1])
    img = render.render_labels_png(x, y, labels, x_range=(0, 100), y_range=(0, 100), width=10, height=10)
    rgba = _decode(img.png)
    assert tuple(rgba[1, 1, :3]) == tuple(render.CLUSTER_PALETTE[0])          # cluster beats noise in a pixel
    assert tuple(rgba[9, 9, :3]) == tuple(render.CLUSTER_PALETTE[1])
    assert tuple(rgba[5, 5]) == render.NOISE_RGBA
    assert rgba[0, 9, 3] == 0 or rgba[0, 9, 3] == render.NOISE_RGBA[3]


def test_indices_and_counts_in_view():
    x = np.array([0.0, 1.0, 2.0, 3.0, 10.0])
    y = np.array([0.0, 1.0, 2.0, 3.0, 10.0])
    assert render.count_in_view(x, y, (0.5, 3.0), (0.0, 5.0)) == 3
    assert render.indices_in_view(x, y, (0.5, 3.0), (0.0, 5.0), limit=10).tolist() == [1, 2, 3]
    assert render.indices_in_view(x, y, (0.5, 3.0), (0.0, 5.0), limit=2) is None


def test_local_density_and_scale_bar():
    x = np.array([1.0, 1.1, 1.2, 9.0])
    y = np.array([1.0, 1.1, 1.2, 9.0])
    assert render.local_density(x, y, (0, 10), (0, 10), bins=10).tolist() == [3, 3, 3, 1]
    assert render.nice_scale_bar_nm(10_000) == 2000
    assert render.nice_scale_bar_nm(800) == 100
    assert render.format_length(2000) == "2 µm"
    assert render.format_length(500) == "500 nm"


def test_large_render_counts_every_point_and_stays_small():
    """10^6 points: all counted in view, PNG far below the 1.5 MB budget (time: bench/bench_viewer.py)."""
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 30_000, 1_000_000)
    y = rng.uniform(0, 30_000, 1_000_000)
    render.render_png(x[:10], y[:10], x_range=(0, 30_000), y_range=(0, 30_000), width=16, height=16)   # JIT
    img = render.render_png(x, y, x_range=(0, 30_000), y_range=(0, 30_000))
    assert img.n_in_view == 1_000_000
    assert len(img.png) < 1_000_000
