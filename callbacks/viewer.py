"""Callbacks of the file viewer (/file/<id>): zoom re-render, region, DBSCAN, Ripley, sweep, downloads.

Every callback takes the file id from the page URL (``viewer-url.pathname``) and re-checks access
with ``access.get_file`` for the signed-in user (background jobs re-derive the user from the signed
session cookie, ``web.jobs``), so ids held in stores or sent by a forged request are never trusted.
Regions and parameters from the browser are parsed and clamped by ``databank.analysis``.

Heavy work: DBSCAN on regions above ``analysis.DBSCAN_SYNC_MAX`` points, the CSR envelope and the
parameter sweep run as background callbacks (the app's manager) with progress and a cancel button.

``register(app)`` wires everything to ``app``. The
plain functions are importable and callable in tests (the decorators are applied in ``register``).
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from pathlib import Path

import dash_bootstrap_components as dbc
import numpy as np
from dash import Input, Output, Patch, State, ctx, html, no_update
from dash.exceptions import PreventUpdate
from flask_login import current_user

from compute import render
from config import runtime_options
from databank import analysis
from databank.access import AccessDenied, get_file
from components import localisation_figure as figure
import ids

log = logging.getLogger(__name__)

PATH_RE = re.compile(r"^/file/(\d+)/?$")
MAX_CANVAS_PX = 1600
DEFAULT_CANVAS_PX = 900
DENIED = "This file is not available to you."


# ---------------------------------------------------------------------------------------------
# helpers


def file_id_from_path(pathname) -> int | None:
    match = PATH_RE.match(str(pathname or ""))
    return int(match.group(1)) if match else None


def readable_file(pathname, user=None, action: str = "read"):
    """The DataFile of the page if ``user`` (default: the signed-in user) may ``action`` it, else None."""
    file_id = file_id_from_path(pathname)
    if file_id is None:
        return None
    try:
        return get_file(current_user if user is None else user, file_id, action)
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
    view = analysis.render_view(data_file, table, extent[0], extent[1], "density", max_px=DEFAULT_CANVAS_PX)
    return view, extent


def _canvas_px(view_data) -> int:
    try:
        px = int(max(float(view_data.get("width")), float(view_data.get("height"))))
    except (TypeError, ValueError, AttributeError):
        return DEFAULT_CANVAS_PX
    return int(np.clip(px, 64, MAX_CANVAS_PX))


def _region(data_file, table, region_key):
    spec = analysis.RegionSpec.parse(region_key)
    return analysis.select_region(data_file, table, spec)


def _trigger():
    """The id of the component that triggered the running callback (None outside a callback)."""
    try:
        return ctx.triggered_id
    except Exception:       # called as a plain function (tests, jobs)
        return None


def _alert(message, colour="warning"):
    return dbc.Alert(message, color=colour, className="py-1 px-2 mb-0 small")


# ---------------------------------------------------------------------------------------------
# the view (zoom / pan / colour / tiles)

# Clientside: turn a relayout event into the visible window (after Plotly applied the aspect
# constraint) and the plot area's size in pixels, so the server renders exactly what is seen.
VIEW_REQUEST_JS = """
function(relayout) {
    const nu = window.dash_clientside.no_update;
    if (!relayout) { return nu; }
    const keys = Object.keys(relayout);
    // zoom, pan, reset, and the first autosize (the server rendered the first image before it knew
    // the plot area's size and the ranges Plotly settles on for the equal aspect ratio)
    if (!keys.some(k => k.startsWith('xaxis.') || k.startsWith('yaxis.') || k === 'autosize')) { return nu; }
    const host = document.getElementById('viewer-graph');
    const gd = host && (host.classList.contains('js-plotly-plot') ? host : host.querySelector('.js-plotly-plot'));
    if (!gd || !gd._fullLayout) { return nu; }
    const xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis;
    return {x_range: xa.range.slice(), y_range: ya.range.slice(),
            width: Math.round(xa._length), height: Math.round(ya._length), t: Date.now()};
}
"""

EXPORT_JS = """
function(n, name) {
    if (!n) { return window.dash_clientside.no_update; }
    const host = document.getElementById('viewer-graph');
    const gd = host && (host.classList.contains('js-plotly-plot') ? host : host.querySelector('.js-plotly-plot'));
    if (gd && window.Plotly) {
        window.Plotly.downloadImage(gd, {format: 'png', filename: name || 'nano-org-view', scale: 2});
    }
    return n;
}
"""


def update_view(view_request, colour_by, show_tiles, pathname, view_data, show_clusters, region_key,
                eps, min_samples):
    """Re-render the view for a zoom/pan (view request), a colour change or the tile toggle.

    Returns (figure Patch, view info text, view store).
    """
    data_file = readable_file(pathname)
    if data_file is None:
        return no_update, DENIED, no_update
    trigger = _trigger()
    view_data = dict(view_data or {})
    patch = Patch()
    if trigger == ids.Viewer.TILES:
        figure.set_tiles_visible(patch, bool(show_tiles))
        return patch, no_update, no_update
    table = load_table(data_file)
    extent = view_data.get("extent") or [list(r) for r in file_extent(data_file, table)]
    if trigger == ids.Viewer.VIEW_REQUEST and isinstance(view_request, dict):
        source = view_request
        view_data["width"], view_data["height"] = view_request.get("width"), view_request.get("height")
    else:
        source = view_data
    x_range, y_range = analysis.normalise_ranges(source.get("x_range"), source.get("y_range"), extent)
    view = analysis.render_view(data_file, table, x_range, y_range, colour_by or "density",
                                max_px=_canvas_px(view_data))
    patch = figure.view_patch(view)
    _overlay_for_view(patch, data_file, table, region_key, eps, min_samples, show_clusters, x_range, y_range,
                      _canvas_px(view_data))
    view_data.update(x_range=list(x_range), y_range=list(y_range), extent=extent)
    return patch, figure.view_info(view), view_data


def _overlay_for_view(patch, data_file, table, region_key, eps, min_samples, show_clusters, x_range, y_range,
                      max_px):
    """Re-render the cluster-label image of a large analysed region for the new view."""
    if not show_clusters or not region_key:
        return
    try:
        region = _region(data_file, table, region_key)
    except analysis.RegionError:
        return
    if region.n <= analysis.SCATTER_MAX_POINTS:
        return
    result = analysis.cached_dbscan(region, eps, min_samples, disk=result_cache())
    if result is None:
        return
    image = analysis.render_cluster_overlay(region, result, x_range, y_range, max_px=max_px)
    patch["layout"]["images"][figure.IMG_CLUSTERS] = figure.image_dict(image, visible=image is not None)


# ---------------------------------------------------------------------------------------------
# region


def _box_from_relayout(relayout, previous_key):
    """The drawn box from a relayout event: a new/edited rectangle, 'erased' or None (no shape event)."""
    if not isinstance(relayout, dict):
        return None
    if "shapes" in relayout:
        shapes = [s for s in (relayout.get("shapes") or []) if isinstance(s, dict) and s.get("type") == "rect"]
        if not shapes:
            return "erased"
        s = shapes[-1]
        return [s.get("x0"), s.get("y0"), s.get("x1"), s.get("y1")]
    edits = {k: v for k, v in relayout.items() if re.match(r"^shapes\[\d+\]\.(x0|x1|y0|y1)$", k)}
    if not edits:
        return None
    box = [None, None, None, None]
    if previous_key and str(previous_key).startswith("box:"):
        try:
            box = list(analysis.RegionSpec.parse(previous_key).box)
        except analysis.RegionError:
            pass
    for k, v in edits.items():
        box[("x0", "y0", "x1", "y1").index(k.split(".")[-1])] = v
    return box


def choose_region(value, relayout, pathname, options, current_key):
    """Region from the dropdown or from a box drawn on the plot.

    Returns (region store, region info, dropdown options, dropdown value).
    """
    data_file = readable_file(pathname)
    if data_file is None:
        return no_update, _alert(DENIED), no_update, no_update
    trigger = _trigger()
    options = list(options or [])
    key = value
    if trigger == ids.Viewer.GRAPH:
        box = _box_from_relayout(relayout, current_key)
        if box is None:
            raise PreventUpdate
        if box == "erased":
            if not str(current_key or "").startswith("box:"):
                raise PreventUpdate
            options = [o for o in options if not str(o.get("value", "")).startswith("box:")]
            key = analysis.default_region(data_file).key
        else:
            try:
                spec = analysis.RegionSpec.parse({"kind": "box", "box": box})
            except analysis.RegionError as error:
                return no_update, _alert(str(error)), no_update, no_update
            key = spec.key
            options = [o for o in options if not str(o.get("value", "")).startswith("box:")]
            options.append({"label": "Drawn box", "value": key})
    table = load_table(data_file)
    try:
        region = _region(data_file, table, key)
    except analysis.RegionError as error:
        return no_update, _alert(str(error)), no_update, no_update
    info = html.Span(region.describe(), id="viewer-region-summary")
    return region.spec.key, info, options, region.spec.key


# ---------------------------------------------------------------------------------------------
# DBSCAN


def _fmt(value, spec="{:,.1f}"):
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "–"
    return spec.format(value)


def stats_card(summary: dict, region, seconds: float | None = None):
    rows = [
        ("Clusters", html.Span(_fmt(summary["n_clusters"], "{:,d}"), id=ids.Viewer.N_CLUSTERS)),
        ("Clusters per µm²", _fmt(summary["clusters_per_um2"], "{:,.2f}")),
        ("Clustered", _fmt(summary["percent_clustered"], "{:.1f} %")),
        ("Localisations per cluster (mean / median)",
         f"{_fmt(summary['n_locs_per_cluster_mean'])} / {_fmt(summary['n_locs_per_cluster_median'])}"),
        ("Equivalent radius, nm (mean / median)",
         f"{_fmt(summary['radius_eq_nm_mean'])} / {_fmt(summary['radius_eq_nm_median'])}"),
        ("Density in clusters, loc/µm² (mean / median)",
         f"{_fmt(summary['density_locs_per_um2_mean'], '{:,.0f}')} / "
         f"{_fmt(summary['density_locs_per_um2_median'], '{:,.0f}')}"),
    ]
    body = [html.Tr([html.Td(label, className="text-muted pe-2"), html.Td(value, className="text-end fw-semibold")])
            for label, value in rows]
    note = f"{region.label}: {summary['n_locs']:,} localisations, {region.area_um2:.2f} µm²"
    if seconds is not None:
        note += f" · {seconds * 1000:.0f} ms"
    return [html.Table(html.Tbody(body), className="table table-sm small mb-1", id="viewer-dbscan-table"),
            html.Div(note, className="small text-muted")]


_SMALL_LAYOUT = dict(plot_bgcolor="white", paper_bgcolor="white", font=dict(size=11), showlegend=False)
_AXIS = dict(gridcolor="#eee", linecolor="#999", zeroline=False)


def histogram_figure(result) -> dict:
    """Histograms of cluster equivalent radius and localisations per cluster (plain figure dict)."""
    traces = []
    titles = (("radius_eq_nm", "Radius (nm)", "x", "y"), ("n_locs", "Locs per cluster", "x2", "y2"))
    for column, _title, xaxis, yaxis in titles:
        h = analysis.histogram(result.table[column].to_numpy(dtype=float) if result is not None else [])
        if h["counts"]:
            edges = np.asarray(h["edges"])
            traces.append(dict(type="bar", x=((edges[:-1] + edges[1:]) / 2).tolist(), y=h["counts"],
                               width=np.diff(edges).tolist(), marker=dict(color="#2e86c1"), xaxis=xaxis, yaxis=yaxis,
                               hovertemplate="%{x:.0f}: %{y}<extra></extra>"))
    layout = dict(_SMALL_LAYOUT, margin=dict(l=35, r=5, t=25, b=25), bargap=0.05,
                  xaxis=dict(_AXIS, domain=[0, 0.43], showgrid=False), yaxis=dict(_AXIS, anchor="x"),
                  xaxis2=dict(_AXIS, domain=[0.57, 1], showgrid=False), yaxis2=dict(_AXIS, anchor="x2"),
                  annotations=[dict(text=title, x=x, y=1.0, xref="paper", yref="paper", yanchor="bottom",
                                    showarrow=False, font=dict(size=11))
                               for (_c, title, _x, _y), x in zip(titles, (0.215, 0.785))])
    return dict(data=traces, layout=layout)


def _pending_card(region, eps, min_samples):
    return [html.Div([dbc.Spinner(size="sm", spinner_class_name="me-2"),
                      f"DBSCAN of {region.n:,} localisations (eps {eps:g} nm, minPts {min_samples}) is running in the "
                      "background; the results appear here when it is done."], className="small text-muted")]


def _dbscan_outputs(region, result, show_clusters, view_data):
    """(status, stats card, histogram figure, graph Patch) for a finished DBSCAN result."""
    overlay = None
    if show_clusters and region.n > analysis.SCATTER_MAX_POINTS:
        view_data = view_data or {}
        (x0, x1), (y0, y1) = analysis.normalise_ranges(view_data.get("x_range"), view_data.get("y_range"),
                                                       (region.bounds[0::2], region.bounds[1::2]))
        overlay = analysis.render_cluster_overlay(region, result, (x0, x1), (y0, y1), max_px=_canvas_px(view_data))
    patch = figure.cluster_patch(Patch(), region, result, overlay, show=bool(show_clusters),
                                 max_points=analysis.SCATTER_MAX_POINTS)
    status = f"eps {result.eps_nm:g} nm, minPts {result.min_samples}"
    return status, stats_card(result.summary, region, result.seconds), histogram_figure(result), patch


def update_dbscan(eps, min_samples, region_key, show_clusters, pathname, view_data):
    """DBSCAN for the sliders' eps / minPts on the chosen region (recoloured on the plot).

    Returns (status, stats card, histogram figure, graph figure Patch, background request).
    Regions above ``analysis.DBSCAN_SYNC_MAX`` points go to the background job (request store)
    unless the result is cached already; ``show_dbscan_job`` shows the job's result.
    """
    data_file = readable_file(pathname)
    if data_file is None:
        return _alert(DENIED), no_update, no_update, no_update, no_update
    if not region_key:
        raise PreventUpdate
    table = load_table(data_file)
    try:
        region = _region(data_file, table, region_key)
    except analysis.RegionError as error:
        return _alert(str(error)), no_update, no_update, no_update, no_update
    eps, min_samples = analysis.clamp_eps(eps), analysis.clamp_min_samples(min_samples)
    result = analysis.cached_dbscan(region, eps, min_samples, disk=result_cache())
    if result is None and analysis.needs_background(region):
        patch = figure.cluster_patch(Patch(), region, None)
        request = {"region": region.spec.key, "eps": eps, "min_samples": min_samples, "t": time.time()}
        status = f"{region.n:,} localisations: DBSCAN runs in the background…"
        return status, _pending_card(region, eps, min_samples), no_update, patch, request
    if result is None:
        result = analysis.run_dbscan(region, eps, min_samples)
    return (*_dbscan_outputs(region, result, show_clusters, view_data), no_update)


def show_dbscan_job(ready, eps, min_samples, region_key, show_clusters, pathname, view_data):
    """Show the result of a finished background DBSCAN if it is for the current parameters.

    Returns (status, stats card, histogram figure, graph figure Patch). Separate from
    ``update_dbscan`` so the callback graph has no cycle (request -> job -> ready -> here).
    """
    if not isinstance(ready, dict):
        raise PreventUpdate
    data_file = readable_file(pathname)
    if data_file is None:
        return _alert(DENIED), no_update, no_update, no_update
    if ready.get("error"):
        return _alert(str(ready["error"])), [], no_update, no_update
    table = load_table(data_file)
    try:
        region = _region(data_file, table, region_key)
    except analysis.RegionError as error:
        return _alert(str(error)), no_update, no_update, no_update
    result = analysis.cached_dbscan(region, eps, min_samples, disk=result_cache())
    if result is None:              # a finished job for parameters the user has moved away from
        raise PreventUpdate
    return _dbscan_outputs(region, result, show_clusters, view_data)


def dbscan_job(set_progress, request, pathname):
    """Background: DBSCAN of a large region, stored in the shared result cache.

    Returns the 'ready' store value; the user is re-derived from the session cookie and access is
    re-checked before any data is read.
    """
    from server import jobs

    if not isinstance(request, dict):
        raise PreventUpdate
    with jobs.job_app_context():
        data_file, region, error = _job_region(pathname, request.get("region"))
        if error:
            return {"error": error}

        def report(fraction, message):
            set_progress((int(100 * fraction), message))

        with jobs.job_slot("analysis", report):
            analysis.run_dbscan(region, request.get("eps"), request.get("min_samples"), disk=result_cache(),
                                progress=report)
    return {"region": region.spec.key, "eps": analysis.clamp_eps(request.get("eps")),
            "min_samples": analysis.clamp_min_samples(request.get("min_samples")), "t": time.time()}


def _anonymous():
    from flask_login import AnonymousUserMixin
    return AnonymousUserMixin()


# ---------------------------------------------------------------------------------------------
# Ripley


def _envelope_matches(envelope, data_file, region, outcome) -> bool:
    return (isinstance(envelope, dict) and envelope.get("file") == data_file.id
            and envelope.get("region") == region.spec.key and envelope.get("edge") == outcome.result.edge
            and envelope.get("n") == outcome.n_used and len(envelope.get("low") or []) == outcome.result.r.size
            and np.isclose(envelope.get("r_max", -1), outcome.r_max_nm)
            and np.isclose(envelope.get("dr", -1), outcome.dr_nm))


def _finite_list(values) -> list:
    return [None if v is None or not np.isfinite(v) else float(v) for v in np.asarray(values, dtype=float)]


def ripley_figure(outcome, envelope=None) -> dict:
    """H(r) = L(r) - r with the CSR envelope (when computed) and the maximum marked (figure dict)."""
    res = outcome.result
    r = res.r.tolist()
    traces = []
    if envelope is not None:
        traces.append(dict(type="scatter", x=r, y=envelope["high"], mode="lines", line=dict(width=0),
                           hoverinfo="skip", showlegend=False))
        traces.append(dict(type="scatter", x=r, y=envelope["low"], mode="lines", line=dict(width=0), fill="tonexty",
                           fillcolor="rgba(120,120,120,0.25)", showlegend=True, hoverinfo="skip",
                           name=f"CSR envelope ({envelope['n_simulations']} simulations, 2.5-97.5 %)"))
    traces.append(dict(type="scatter", x=r, y=_finite_list(res.H), mode="lines", name="H(r) = L(r) - r",
                       showlegend=True, line=dict(color="#1f4e79", width=2),
                       hovertemplate="r %{x:.0f} nm<br>H %{y:.2f} nm<extra></extra>"))
    if np.isfinite(res.h_max):
        traces.append(dict(type="scatter", x=[res.r_at_h_max], y=[res.h_max], mode="markers+text", name="maximum",
                           marker=dict(color="#e53935", size=9), showlegend=False, hoverinfo="skip",
                           text=[f"r {res.r_at_h_max:.0f} nm, H {res.h_max:.1f} nm"], textposition="top center",
                           cliponaxis=False))
    layout = dict(_SMALL_LAYOUT, showlegend=True, margin=dict(l=45, r=10, t=25, b=40),
                  legend=dict(orientation="h", y=-0.25, font=dict(size=10)),
                  xaxis=dict(_AXIS, title=dict(text="r (nm)")), yaxis=dict(_AXIS, title=dict(text="L(r) - r (nm)")),
                  shapes=[dict(type="line", xref="paper", x0=0, x1=1, yref="y", y0=0, y1=0,
                               line=dict(color="#999", width=1, dash="dot"))])
    return dict(data=traces, layout=layout)


def update_ripley(r_max, dr, edge, region_key, envelope, pathname):
    """Ripley H curve of the region. Returns (figure, info)."""
    data_file = readable_file(pathname)
    if data_file is None:
        return no_update, _alert(DENIED)
    if not region_key:
        raise PreventUpdate
    table = load_table(data_file)
    try:
        region = _region(data_file, table, region_key)
    except analysis.RegionError as error:
        return no_update, _alert(str(error))
    if region.n < 2:
        return dict(data=[], layout=_SMALL_LAYOUT), _alert("Fewer than 2 localisations in this region.")
    outcome = analysis.run_ripley(region, r_max, dr, edge)
    res = outcome.result
    env = envelope if _envelope_matches(envelope, data_file, region, outcome) else None
    parts = [html.Span([f"maximum of H: r = {_fmt(res.r_at_h_max, '{:.0f}')} nm, H = {_fmt(res.h_max, '{:.1f}')} nm "],
                       id="viewer-ripley-max"),
             html.Span("(r at H max indicates the cluster scale; it is not a cluster radius)", className="text-muted")]
    if outcome.subsampled:
        parts.append(html.Div(f"Estimated from a random {outcome.n_used:,} of {outcome.n_total:,} localisations "
                              "(K is unchanged by random thinning).", className="text-muted"))
    return ripley_figure(outcome, env), parts


def envelope_job(set_progress, n_clicks, n_simulations, r_max, dr, edge, region_key, pathname):
    """Background: CSR envelope of H for the current Ripley settings. Returns (envelope store, status)."""
    from server import jobs

    if not n_clicks:
        raise PreventUpdate
    sims = int(n_simulations) if n_simulations in analysis.ENVELOPE_SIMULATIONS else analysis.ENVELOPE_SIMULATIONS[1]
    with jobs.job_app_context():
        data_file, region, error = _job_region(pathname, region_key)
        if error:
            return no_update, error
        outcome = analysis.run_ripley(region, r_max, dr, edge)
        if outcome.n_used < 2:
            return no_update, "Too few localisations for an envelope."

        def report(done, total):
            set_progress((int(100 * done / total), f"{done} / {total} simulations"))

        with jobs.job_slot("analysis", lambda f, m: set_progress((0, m))):
            low, high = analysis.csr_envelope(outcome.n_used, region.window, outcome.result.r, outcome.result.edge,
                                              sims, seed=outcome.seed, progress=report)
    envelope = {"file": data_file.id, "region": region.spec.key, "edge": outcome.result.edge, "n": outcome.n_used,
                "r_max": outcome.r_max_nm, "dr": outcome.dr_nm, "n_simulations": sims, "seed": outcome.seed,
                "low": [None if not np.isfinite(v) else float(v) for v in low],
                "high": [None if not np.isfinite(v) else float(v) for v in high]}
    return envelope, f"CSR envelope from {sims} simulations of {outcome.n_used:,} points in the same window."


# ---------------------------------------------------------------------------------------------
# parameter sweep


def sweep_figure(sweep: dict | None) -> dict:
    """Heat maps of cluster count and % clustered over eps (x) x minPts (y) (figure dict)."""
    if not sweep:
        return dict(data=[], layout=dict(
            _SMALL_LAYOUT, margin=dict(l=10, r=10, t=10, b=10), xaxis=dict(visible=False), yaxis=dict(visible=False),
            annotations=[dict(text="Run a sweep to see the cluster count and % clustered over eps x minPts.",
                              showarrow=False, font=dict(color="#888"), xref="paper", yref="paper", x=0.5, y=0.5)]))
    eps = [f"{v:g}" for v in sweep["eps_nm"]]
    mins = [str(v) for v in sweep["min_samples"]]
    traces = [
        dict(type="heatmap", x=eps, y=mins, z=sweep["n_clusters"], colorscale="Viridis", texttemplate="%{z}",
             textfont=dict(size=9), colorbar=dict(len=0.42, y=0.79, thickness=10), xaxis="x", yaxis="y",
             hovertemplate="eps %{x} nm, minPts %{y}: %{z} clusters<extra></extra>"),
        dict(type="heatmap", x=eps, y=mins, z=sweep["percent_clustered"], colorscale="Cividis", zmin=0, zmax=100,
             texttemplate="%{z:.0f}", textfont=dict(size=9), colorbar=dict(len=0.42, y=0.21, thickness=10),
             xaxis="x2", yaxis="y2", hovertemplate="eps %{x} nm, minPts %{y}: %{z:.1f} %<extra></extra>"),
    ]
    axis = dict(type="category", linecolor="#999")
    layout = dict(_SMALL_LAYOUT, margin=dict(l=50, r=10, t=30, b=40),
                  xaxis=dict(axis, anchor="y", title=dict(text="eps (nm)")),
                  yaxis=dict(axis, domain=[0.58, 1], title=dict(text="minPts")),
                  xaxis2=dict(axis, anchor="y2", title=dict(text="eps (nm)")),
                  yaxis2=dict(axis, domain=[0, 0.42], title=dict(text="minPts")),
                  annotations=[dict(text="Number of clusters", x=0.5, y=1.0, xref="paper", yref="paper",
                                    yanchor="bottom", showarrow=False, font=dict(size=12)),
                               dict(text="% clustered", x=0.5, y=0.42, xref="paper", yref="paper",
                                    yanchor="bottom", showarrow=False, font=dict(size=12))])
    return dict(data=traces, layout=layout)


def sweep_job(set_progress, n_clicks, eps_range, min_range, region_key, pathname):
    """Background: DBSCAN over the eps x minPts grid. Returns (sweep figure, status)."""
    from server import jobs

    if not n_clicks:
        raise PreventUpdate
    with jobs.job_app_context():
        data_file, region, error = _job_region(pathname, region_key)
        if error:
            return no_update, error
        eps_values, min_values = analysis.sweep_values(eps_range or (20, 200), min_range or (3, 30))

        def report(done, total):
            set_progress((int(100 * done / total), f"{done} / {total} runs"))

        start = time.perf_counter()
        with jobs.job_slot("analysis", lambda f, m: set_progress((0, m))):
            sweep = analysis.parameter_sweep(region, eps_values, min_values, progress=report)
    status = (f"{region.label}: {region.n:,} localisations, {len(eps_values) * len(min_values)} DBSCAN runs in "
              f"{time.perf_counter() - start:.1f} s. Click a cell to use its parameters.")
    return sweep_figure(sweep), status


def sweep_click(click):
    """A click on a sweep cell sets the eps and minPts sliders."""
    try:
        point = click["points"][0]
        eps, min_samples = float(point["x"]), float(point["y"])
    except (TypeError, KeyError, IndexError, ValueError):
        raise PreventUpdate from None
    return analysis.clamp_eps(eps), analysis.clamp_min_samples(min_samples)


# ---------------------------------------------------------------------------------------------
# downloads


def download(n_clusters, n_labels, n_ripley, eps, min_samples, r_max, dr, edge, region_key, envelope, pathname):
    """CSV of the current result (cluster table, labels or Ripley curve). Returns (download, message)."""
    trigger = _trigger()
    if trigger not in (ids.Viewer.DL_CLUSTERS, ids.Viewer.DL_LABELS, ids.Viewer.DL_RIPLEY):
        raise PreventUpdate
    if readable_file(pathname) is None:
        return no_update, DENIED
    data_file = readable_file(pathname, action="download")
    if data_file is None:
        return no_update, "Log in to download results (public data can be downloaded by registered users)."
    table = load_table(data_file)
    try:
        region = _region(data_file, table, region_key)
    except analysis.RegionError as error:
        return no_update, str(error)
    if trigger == ids.Viewer.DL_RIPLEY:
        if region.n < 2:
            return no_update, "Fewer than 2 localisations in this region."
        outcome = analysis.run_ripley(region, r_max, dr, edge)
        env = envelope if _envelope_matches(envelope, data_file, region, outcome) else None
        text = analysis.ripley_csv(data_file, region, outcome, env)
        name = analysis.download_name(data_file, f"ripley_{region.spec.kind}")
    else:
        result = analysis.run_dbscan(region, eps, min_samples, disk=result_cache())
        if trigger == ids.Viewer.DL_CLUSTERS:
            text = analysis.cluster_table_csv(data_file, region, result)
            name = analysis.download_name(data_file, f"clusters_{region.spec.kind}")
        else:
            text = analysis.labels_csv(data_file, region, result)
            name = analysis.download_name(data_file, f"labels_{region.spec.kind}")
    return dict(content=text, filename=name, type="text/csv"), ""


# ---------------------------------------------------------------------------------------------
# wiring

_WARMED = threading.Event()
_WARM_LOCK = threading.Lock()


def warm_up() -> None:
    """Compile the numba kernels of rendering and cluster analysis once per process (~5-10 s).

    Called in a daemon thread when the callbacks are registered (disable with
    NANOORG_VIEWER_WARMUP=0), so the first file a user opens is not slowed by JIT compilation.
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
        _WARMED.set()


def _start_warm_up() -> None:
    if not runtime_options().viewer_warmup or _WARMED.is_set():
        return
    def run():
        try:
            warm_up()
        except Exception:                     # never break the app for a warm-up
            log.exception("viewer warm-up failed")
    threading.Thread(target=run, name="viewer-warm-up", daemon=True).start()


def _job_region(pathname, region_key):
    """Inside a job's app context: (data file, region, None) for the job's user, or (file, None, message).

    The user comes from the session cookie of the request that started the job; access is checked
    again here, as in every callback."""
    from server import jobs

    user = jobs.job_user()
    data_file = readable_file(pathname, user=user if user is not None else _anonymous())
    if data_file is None:
        return None, None, DENIED
    try:
        return data_file, _region(data_file, load_table(data_file), region_key), None
    except analysis.RegionError as error:
        return data_file, None, str(error)


def _running(prefix, button):
    return [(Output(f"{prefix}-row", "style"), {"display": "flex"}, {"display": "none"}),
            (Output(button, "disabled"), True, False)]


def _timed(fn):
    """Log the server time of a callback (logger callbacks.viewer, level DEBUG)."""
    import functools

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            log.debug("%s: %.0f ms", fn.__name__, 1000 * (time.perf_counter() - start))
    return wrapper


def _job_manager():
    """The manager of the viewer's background jobs: None = the app's (Diskcache: one forked process
    per job, so a minutes-long sweep never holds the web process's GIL; Celery with REDIS_URL).
    NANOORG_VIEWER_JOBS=threads runs them in threads of the web process instead (web.job_threads:
    no fork, but numba kernels hold the GIL while they run)."""
    if runtime_options().viewer_jobs == "threads":
        from server.job_threads import similarity_manager
        return similarity_manager()
    return None


def register(app) -> None:
    """Wire the viewer callbacks to ``app`` ."""
    dash_callback = app.callback
    manager = _job_manager()

    def callback(*args, **kwargs):
        decorate = dash_callback(*args, **kwargs)
        # background jobs are registered as they are: Dash keys their results by the function's source
        return decorate if kwargs.get("background") else (lambda fn: decorate(_timed(fn)))

    _start_warm_up()
    clientside = app.clientside_callback

    clientside(VIEW_REQUEST_JS, Output(ids.Viewer.VIEW_REQUEST, "data"), Input(ids.Viewer.GRAPH, "relayoutData"),
               prevent_initial_call=True)
    clientside(EXPORT_JS, Output(ids.Viewer.EXPORT_DONE, "data"), Input(ids.Viewer.EXPORT, "n_clicks"), State(ids.Viewer.EXPORT_NAME, "data"),
               prevent_initial_call=True)

    callback(
        Output(ids.Viewer.GRAPH, "figure"), Output(ids.Viewer.VIEW_INFO, "children"), Output(ids.Viewer.VIEW_STORE, "data"),
        Input(ids.Viewer.VIEW_REQUEST, "data"), Input(ids.Viewer.COLOUR, "value"), Input(ids.Viewer.TILES, "value"),
        State(ids.Viewer.URL, "pathname"), State(ids.Viewer.VIEW_STORE, "data"), State(ids.Viewer.SHOW_CLUSTERS, "value"),
        State(ids.Viewer.REGION_STORE, "data"), State(ids.Viewer.EPS, "value"), State(ids.Viewer.MIN_SAMPLES, "value"),
        prevent_initial_call=True,
    )(update_view)

    callback(
        Output(ids.Viewer.REGION_STORE, "data"), Output(ids.Viewer.REGION_INFO, "children"),
        Output(ids.Viewer.REGION, "options"), Output(ids.Viewer.REGION, "value"),
        Input(ids.Viewer.REGION, "value"), Input(ids.Viewer.GRAPH, "relayoutData"),
        State(ids.Viewer.URL, "pathname"), State(ids.Viewer.REGION, "options"), State(ids.Viewer.REGION_STORE, "data"),
    )(choose_region)

    callback(
        Output(ids.Viewer.DBSCAN_STATUS, "children"), Output(ids.Viewer.DBSCAN_STATS, "children"),
        Output(ids.Viewer.DBSCAN_HIST, "figure"), Output(ids.Viewer.GRAPH, "figure", allow_duplicate=True),
        Output(ids.Viewer.DBSCAN_REQUEST, "data"),
        Input(ids.Viewer.EPS, "value"), Input(ids.Viewer.MIN_SAMPLES, "value"), Input(ids.Viewer.REGION_STORE, "data"),
        Input(ids.Viewer.SHOW_CLUSTERS, "value"),
        State(ids.Viewer.URL, "pathname"), State(ids.Viewer.VIEW_STORE, "data"),
        prevent_initial_call=True,
    )(update_dbscan)

    callback(
        Output(ids.Viewer.DBSCAN_STATUS, "children", allow_duplicate=True),
        Output(ids.Viewer.DBSCAN_STATS, "children", allow_duplicate=True),
        Output(ids.Viewer.DBSCAN_HIST, "figure", allow_duplicate=True),
        Output(ids.Viewer.GRAPH, "figure", allow_duplicate=True),
        Input(ids.Viewer.DBSCAN_READY, "data"),
        State(ids.Viewer.EPS, "value"), State(ids.Viewer.MIN_SAMPLES, "value"), State(ids.Viewer.REGION_STORE, "data"),
        State(ids.Viewer.SHOW_CLUSTERS, "value"), State(ids.Viewer.URL, "pathname"), State(ids.Viewer.VIEW_STORE, "data"),
        prevent_initial_call=True,
    )(show_dbscan_job)

    callback(
        Output(ids.Viewer.DBSCAN_READY, "data"),
        Input(ids.Viewer.DBSCAN_REQUEST, "data"), State(ids.Viewer.URL, "pathname"),
        background=True, manager=manager, prevent_initial_call=True, interval=500,
        progress=[Output(ids.Viewer.DBSCAN_PROGRESS, "value"), Output(ids.Viewer.DBSCAN_PROGRESS, "label")],
        progress_default=[0, ""],
        running=[(Output(f"{ids.Viewer.DBSCAN_PROGRESS}-row", "style"), {"display": "flex"}, {"display": "none"})],
        cancel=[Input(ids.Viewer.DBSCAN_CANCEL, "n_clicks")],
    )(dbscan_job)

    callback(
        Output(ids.Viewer.RIPLEY_GRAPH, "figure"), Output(ids.Viewer.RIPLEY_INFO, "children"),
        Input(ids.Viewer.RIPLEY_RMAX, "value"), Input(ids.Viewer.RIPLEY_STEP, "value"), Input(ids.Viewer.RIPLEY_EDGE, "value"),
        Input(ids.Viewer.REGION_STORE, "data"), Input(ids.Viewer.ENVELOPE_STORE, "data"),
        State(ids.Viewer.URL, "pathname"),
        prevent_initial_call=True,
    )(update_ripley)

    callback(
        Output(ids.Viewer.ENVELOPE_STORE, "data"), Output(ids.Viewer.ENVELOPE_STATUS, "children"),
        Input(ids.Viewer.ENVELOPE_RUN, "n_clicks"),
        State(ids.Viewer.ENVELOPE_SIMS, "value"), State(ids.Viewer.RIPLEY_RMAX, "value"), State(ids.Viewer.RIPLEY_STEP, "value"),
        State(ids.Viewer.RIPLEY_EDGE, "value"), State(ids.Viewer.REGION_STORE, "data"), State(ids.Viewer.URL, "pathname"),
        background=True, manager=manager, prevent_initial_call=True, interval=700,
        progress=[Output(ids.Viewer.ENVELOPE_PROGRESS, "value"), Output(ids.Viewer.ENVELOPE_PROGRESS, "label")],
        progress_default=[0, ""],
        running=_running(ids.Viewer.ENVELOPE_PROGRESS, ids.Viewer.ENVELOPE_RUN),
        cancel=[Input(ids.Viewer.ENVELOPE_CANCEL, "n_clicks")],
    )(envelope_job)

    callback(
        Output(ids.Viewer.SWEEP_GRAPH, "figure"), Output(ids.Viewer.SWEEP_STATUS, "children"),
        Input(ids.Viewer.SWEEP_RUN, "n_clicks"),
        State(ids.Viewer.SWEEP_EPS, "value"), State(ids.Viewer.SWEEP_MIN, "value"), State(ids.Viewer.REGION_STORE, "data"),
        State(ids.Viewer.URL, "pathname"),
        background=True, manager=manager, prevent_initial_call=True, interval=700,
        progress=[Output(ids.Viewer.SWEEP_PROGRESS, "value"), Output(ids.Viewer.SWEEP_PROGRESS, "label")],
        progress_default=[0, ""],
        running=_running(ids.Viewer.SWEEP_PROGRESS, ids.Viewer.SWEEP_RUN),
        cancel=[Input(ids.Viewer.SWEEP_CANCEL, "n_clicks")],
    )(sweep_job)

    callback(
        Output(ids.Viewer.EPS, "value"), Output(ids.Viewer.MIN_SAMPLES, "value"),
        Input(ids.Viewer.SWEEP_GRAPH, "clickData"),
        prevent_initial_call=True,
    )(sweep_click)

    callback(
        Output(ids.Viewer.DOWNLOAD, "data"), Output(ids.Viewer.DL_STATUS, "children"),
        Input(ids.Viewer.DL_CLUSTERS, "n_clicks"), Input(ids.Viewer.DL_LABELS, "n_clicks"), Input(ids.Viewer.DL_RIPLEY, "n_clicks"),
        State(ids.Viewer.EPS, "value"), State(ids.Viewer.MIN_SAMPLES, "value"), State(ids.Viewer.RIPLEY_RMAX, "value"),
        State(ids.Viewer.RIPLEY_STEP, "value"), State(ids.Viewer.RIPLEY_EDGE, "value"), State(ids.Viewer.REGION_STORE, "data"),
        State(ids.Viewer.ENVELOPE_STORE, "data"), State(ids.Viewer.URL, "pathname"),
        prevent_initial_call=True,
    )(download)
