"""The localisation plot of the file viewer: a Plotly figure with a fixed structure.

Layout images: [0] the density image (datashader PNG, re-rendered on zoom), [1] the cluster-label
image (large regions). Traces, in this order (callbacks patch them by index):

    0 extent     invisible corners (autorange / reset axes) and the colour bar
    1 points     real localisations (WebGL) when the view holds few enough
    2 clusters   DBSCAN labels of the analysed region (WebGL) when it is small enough
    3 tiles      3 x 3 um tile outlines (toggle)
    4 dropped    tiles dropped from analysis, hatched red (toggle)
    5 rois       ROI outlines
    6 (reserved; the "ROI 1", "ROI 2", ... labels are layout annotations)
    7 region     outline of the analysed region
    8 scale bar  a line of round length at the bottom left of the view, with its label

The y axis points down (camera / Fiji convention), the aspect ratio is 1, the plot area is black.
Only user-drawn rectangles live in ``layout.shapes`` (the region box).
"""

from __future__ import annotations

import base64

import numpy as np
from dash import Patch

from compute import render
from compute.tiles import TILE_NM

T_EXTENT, T_POINTS, T_CLUSTERS, T_TILES, T_DROPPED, T_ROIS, T_ROI_LABELS, T_REGION, T_SCALE = range(9)
IMG_DENSITY, IMG_CLUSTERS = 0, 1
FIRE_SCALE = [[i / (len(render.DENSITY_CMAP) - 1), c] for i, c in enumerate(render.DENSITY_CMAP)]
VIRIDIS_SCALE = [[i / (len(render.VALUE_CMAP) - 1), c] for i, c in enumerate(render.VALUE_CMAP)]
CLUSTER_SCALE = []
for _k in range(len(render.CLUSTER_PALETTE) + 1):
    _c = "rgba(150,150,150,0.6)" if _k == 0 else "rgb(%d,%d,%d)" % tuple(render.CLUSTER_PALETTE[_k - 1])
    CLUSTER_SCALE += [[_k / (len(render.CLUSTER_PALETTE) + 1), _c], [(_k + 1) / (len(render.CLUSTER_PALETTE) + 1), _c]]
COLOUR_TITLES = {"density": "density", "frame": "frame", "precision": "precision (nm)"}
PLOT_HEIGHT = 640
MODEBAR_SPACE_PX = 40        # top margin holding Plotly's toolbar (about 30 px high)

GRAPH_CONFIG = {
    "displaylogo": False,
    "scrollZoom": True,
    "modeBarButtonsToAdd": ["drawrect", "eraseshape"],
    "modeBarButtonsToRemove": ["lasso2d", "select2d", "autoScale2d"],
    "toImageButtonOptions": {"format": "png", "filename": "nano-org-view", "scale": 2},
}


_TYPED = {"float32": "f4", "float64": "f8", "int8": "i1", "uint8": "u1", "int16": "i2", "uint16": "u2",
          "int32": "i4", "uint32": "u4"}


def typed(value):
    """numpy arrays as plotly.js typed-array specs (base64, as plotly.py 6+ writes them); dicts recursively."""
    if isinstance(value, np.ndarray):
        if value.dtype == np.int64:
            value = value.astype(np.int32)
        code = _TYPED.get(str(value.dtype))
        if code is None or value.size == 0:
            return value.tolist()
        spec = {"dtype": code, "bdata": base64.b64encode(np.ascontiguousarray(value).tobytes()).decode("ascii")}
        if value.ndim > 1:
            spec["shape"] = ", ".join(str(n) for n in value.shape)
        return spec
    if isinstance(value, dict):
        return {k: typed(v) for k, v in value.items()}
    return value


def _closed_lines(rings) -> tuple[list, list]:
    xs, ys = [], []
    for ring in rings:
        ring = np.asarray(ring, dtype=float)
        if ring.size == 0:
            continue
        if not np.allclose(ring[0], ring[-1]):
            ring = np.vstack([ring, ring[:1]])
        xs += ring[:, 0].tolist() + [None]
        ys += ring[:, 1].tolist() + [None]
    return xs, ys


def tile_lines(tiles) -> tuple[list, list, list, list]:
    """(x, y) outlines of kept tiles and of dropped tiles (None-separated closed squares)."""
    kept = [_square(t) for t in tiles if t.kept]
    dropped = [_square(t) for t in tiles if not t.kept]
    return (*_closed_lines(kept), *_closed_lines(dropped))


def _square(tile):
    x0, y0 = float(tile.x0_nm), float(tile.y0_nm)
    return [(x0, y0), (x0 + TILE_NM, y0), (x0 + TILE_NM, y0 + TILE_NM), (x0, y0 + TILE_NM), (x0, y0)]


def roi_outline(rois) -> dict:
    xs, ys = _closed_lines([r.vertices_nm for r in rois])
    return dict(type="scatter", x=xs, y=ys, mode="lines", name="ROIs", line=dict(color="#4fc3f7", width=1.5),
                hoverinfo="skip", showlegend=False)


def roi_annotations(rois) -> list[dict]:
    """'ROI k' labels at the top vertex of each polygon (boxed, readable over the image)."""
    notes = []
    for roi in rois:
        v = np.asarray(roi.vertices_nm, dtype=float)
        if v.size == 0:
            continue
        top = v[np.argmin(v[:, 1])]            # y points down: smallest y is the top of the picture
        notes.append(dict(x=float(top[0]), y=float(top[1]), xref="x", yref="y", text=f"ROI {roi.index}",
                          showarrow=False, yanchor="top", xanchor="left", font=dict(color="#4fc3f7", size=12),
                          bgcolor="rgba(0,0,0,0.65)", borderpad=2))
    return notes


def scale_bar(x_range, y_range) -> dict:
    """Trace properties of a scale bar (round length, ~1/5 of the view) at the bottom left."""
    (x0, x1), (y0, y1) = sorted(x_range), sorted(y_range)
    width, height = x1 - x0, y1 - y0
    length = render.nice_scale_bar_nm(width)
    bx = x0 + 0.04 * width
    by = y1 - 0.05 * height            # y points down: y1 is the bottom of the picture
    return dict(x=[bx, bx + length, None, bx + length / 2], y=[by, by, None, by - 0.035 * height],
                text=["", "", "", render.format_length(length)])


def _colour_marker(colour_by: str, span) -> dict:
    """Marker colour settings (with a colour bar) for the extent trace."""
    if colour_by == "density":
        return dict(color=[0.0, 1.0], colorscale=FIRE_SCALE, cmin=0, cmax=1, showscale=True, opacity=0,
                    colorbar=dict(title=dict(text="density"), tickvals=[0, 1], ticktext=["low", "high"],
                                  thickness=12, len=0.5))
    lo, hi = span if span else (0.0, 1.0)
    return dict(color=[lo, hi], colorscale=VIRIDIS_SCALE, cmin=lo, cmax=hi, showscale=True, opacity=0,
                colorbar=dict(title=dict(text=COLOUR_TITLES.get(colour_by, colour_by)), thickness=12, len=0.5))


def image_dict(image: render.RenderedImage | None, visible: bool = True) -> dict:
    if image is None:
        return dict(source="", xref="x", yref="y", x=0, y=0, sizex=1, sizey=1, visible=False, layer="below")
    (x0, x1), (y0, y1) = image.x_range, image.y_range
    # y axis points down: the top of the picture is y0 and the image extends by sizey downwards
    return dict(source=image.data_uri(), xref="x", yref="y", x=x0, y=y0, sizex=x1 - x0, sizey=y1 - y0,
                xanchor="left", yanchor="top", sizing="stretch", layer="below", visible=visible)


def points_props(view) -> dict:
    """Trace properties for real points (empty when the view is an image)."""
    if view is None or view.points is None:
        return dict(x=[], y=[], customdata=None, marker=dict(color=[]), visible=False)
    pts = view.points
    n = pts["x"].shape[0]
    precision = pts["precision"] if pts["precision"] is not None else np.full(n, np.nan, dtype=np.float32)
    frame = pts["frame"] if pts["frame"] is not None else np.full(n, -1, dtype=np.int32)
    customdata = np.column_stack([precision.astype(np.float32), frame.astype(np.float32)])
    if view.colour_by == "density":
        marker = dict(color=pts["colour"], colorscale=FIRE_SCALE, cmin=float(pts["colour"].min(initial=0)),
                      cmax=float(max(pts["colour"].max(initial=1), 1)), size=3, showscale=False)
    else:
        lo, hi = view.colour_span or (0, 1)
        marker = dict(color=pts["colour"], colorscale=VIRIDIS_SCALE, cmin=lo, cmax=hi, size=3, showscale=False)
    return dict(x=pts["x"], y=pts["y"], customdata=customdata, marker=marker, visible=True)


def view_info(view) -> str:
    if view.points is not None:
        return (f"{view.n_in_view:,} localisations in view, shown as points (hover for x, y, precision, frame; "
                f"colour: {view.colour_by}).")
    img = view.image
    return (f"{view.n_in_view:,} localisations in view, rendered as a {img.width} x {img.height} px "
            f"density image (colour: {view.colour_by}); zoom in to see points.")


def build_figure(data_file, view, *, extent, show_tiles: bool = False, region=None,
                 ui_revision=None) -> dict:
    """The first figure of a file (a plain dict: no plotly.py validation, so it builds in ms)."""
    (ex0, ex1), (ey0, ey1) = extent
    kx, ky, dx, dy = tile_lines(data_file.tiles)
    rx, ry = _closed_lines(region.outline) if region is not None else ([], [])
    traces = [
        dict(type="scatter", x=[ex0, ex1], y=[ey0, ey1], mode="markers", hoverinfo="skip", showlegend=False,
             name="extent", marker=_colour_marker(view.colour_by, view.colour_span)),
        dict(type="scattergl", name="localisations", mode="markers", showlegend=False,
             hovertemplate="x %{x:.1f} nm<br>y %{y:.1f} nm<br>precision %{customdata[0]:.1f} nm"
                           "<br>frame %{customdata[1]:.0f}<extra></extra>",
             **typed(points_props(view))),
        dict(type="scattergl", name="clusters", mode="markers", showlegend=False, x=[], y=[], visible=False,
             marker=dict(size=4, color=[], colorscale=CLUSTER_SCALE, cmin=0, cmax=len(render.CLUSTER_PALETTE) + 1),
             hovertemplate="cluster %{customdata}<br>x %{x:.1f} nm<br>y %{y:.1f} nm<extra></extra>"),
        dict(type="scatter", x=kx, y=ky, mode="lines", name="tiles", line=dict(color="rgba(255,255,255,0.55)", width=1),
             hoverinfo="skip", showlegend=False, visible=show_tiles),
        dict(type="scatter", x=dx, y=dy, mode="lines", name="dropped tiles", fill="toself",
             fillcolor="rgba(229,57,53,0.18)", fillpattern=dict(shape="/", fgcolor="rgba(229,57,53,0.6)"),
             line=dict(color="rgba(229,57,53,0.9)", width=1), hoverinfo="skip", showlegend=False, visible=show_tiles),
        roi_outline(data_file.rois),
        dict(type="scatter", x=[], y=[], mode="text", name="ROI labels", hoverinfo="skip", showlegend=False),
        dict(type="scatter", x=rx, y=ry, mode="lines", name="analysed region", hoverinfo="skip", showlegend=False,
             line=dict(color="#ffeb3b", width=2, dash="dash")),
        dict(type="scatter", mode="lines+text", name="scale bar", hoverinfo="skip", showlegend=False,
             line=dict(color="white", width=4), textfont=dict(color="white", size=14),
             textposition="middle center", **scale_bar(view.x_range, view.y_range)),
    ]
    layout = dict(
        images=[image_dict(view.image), image_dict(None)],
        annotations=roi_annotations(data_file.rois),
        height=PLOT_HEIGHT,
        margin=dict(l=60, r=10, t=MODEBAR_SPACE_PX, b=50),    # the toolbar sits above the image, not on it
        plot_bgcolor="black",
        paper_bgcolor="white",
        dragmode="zoom",
        uirevision=ui_revision if ui_revision is not None else str(data_file.id),
        xaxis=dict(title=dict(text="x (nm)"), showgrid=False, zeroline=False, range=list(view.x_range)),
        yaxis=dict(title=dict(text="y (nm)"), showgrid=False, zeroline=False, scaleanchor="x", scaleratio=1,
                   range=[view.y_range[1], view.y_range[0]]),
        newshape=dict(line=dict(color="#ffeb3b", width=2), fillcolor="rgba(255,235,59,0.1)"),
        hovermode="closest",
        showlegend=False,
        font=dict(family="system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif", size=12),
    )
    return dict(data=traces, layout=layout)


def view_patch(view) -> Patch:
    """Replace the image / points / colour bar / scale bar for a new view (zoom, pan, colour)."""
    patch = Patch()
    patch["layout"]["images"][IMG_DENSITY] = image_dict(view.image, visible=view.image is not None)
    props = points_props(view)
    for key, value in props.items():
        patch["data"][T_POINTS][key] = typed(value)
    patch["data"][T_EXTENT]["marker"] = _colour_marker(view.colour_by, view.colour_span)
    for key, value in scale_bar(view.x_range, view.y_range).items():
        patch["data"][T_SCALE][key] = value
    return patch


def set_tiles_visible(patch: Patch, visible: bool) -> Patch:
    patch["data"][T_TILES]["visible"] = bool(visible)
    patch["data"][T_DROPPED]["visible"] = bool(visible)
    return patch


def cluster_patch(patch: Patch, region, result, overlay_image=None, *, show: bool = True,
                  max_points: int = 100_000) -> Patch:
    """Show DBSCAN labels: WebGL points for small regions, else the label image (layout image 1)."""
    rx, ry = _closed_lines(region.outline) if region is not None else ([], [])
    patch["data"][T_REGION]["x"] = rx
    patch["data"][T_REGION]["y"] = ry
    if region is None or result is None or not show:
        patch["data"][T_CLUSTERS]["visible"] = False
        patch["data"][T_CLUSTERS]["x"] = []
        patch["data"][T_CLUSTERS]["y"] = []
        patch["layout"]["images"][IMG_CLUSTERS] = image_dict(None)
        return patch
    if region.n <= max_points:
        labels = result.labels
        code = np.where(labels >= 0, labels % len(render.CLUSTER_PALETTE) + 1, 0).astype(np.float32) + 0.5
        patch["data"][T_CLUSTERS]["x"] = typed(region.x.astype(np.float32))
        patch["data"][T_CLUSTERS]["y"] = typed(region.y.astype(np.float32))
        patch["data"][T_CLUSTERS]["customdata"] = typed(labels.astype(np.int32))
        patch["data"][T_CLUSTERS]["marker"]["color"] = typed(code)
        patch["data"][T_CLUSTERS]["marker"]["size"] = 4 if region.n < 20_000 else 3
        patch["data"][T_CLUSTERS]["visible"] = True
        patch["layout"]["images"][IMG_CLUSTERS] = image_dict(None)
    else:
        patch["data"][T_CLUSTERS]["visible"] = False
        patch["data"][T_CLUSTERS]["x"] = []
        patch["data"][T_CLUSTERS]["y"] = []
        patch["layout"]["images"][IMG_CLUSTERS] = image_dict(overlay_image, visible=overlay_image is not None)
    return patch
