"""Callbacks of the file viewer (/file/<id>): zoom re-render, region, DBSCAN, Ripley, sweep, downloads.

Every callback takes the file id from the page URL (``viewer-url.pathname``) and re-checks access
with ``access.get_file`` for the signed-in user (``databank.viewer_data.readable_file``); background
jobs (``callbacks.viewer_jobs``) re-derive the user from the signed session cookie, so ids held in
stores or sent by a forged request are never trusted. Regions and parameters from the browser are
parsed and clamped by ``databank.analysis``.

Heavy work: DBSCAN on regions above ``analysis_inputs.DBSCAN_SYNC_MAX`` points, the CSR envelope and the
parameter sweep run as background callbacks with progress and a cancel button. ``register(app)``
wires everything to ``app``; the plain functions are importable and callable in tests.
"""

from __future__ import annotations


import logging
import re
import time

import numpy as np
from dash import ClientsideFunction, Input, Output, Patch, State, ctx, html, no_update, set_props
from dash.exceptions import PreventUpdate
from flask_login import current_user

from databank import analysis
from databank import viewer_render
from databank import analysis_csv
from databank import analysis_inputs
from components import localisation_figure as figure
import ids
from callbacks.viewer_jobs import dbscan_job, envelope_job, ripley_job, sweep_job
from server.dash_jobs import job_callback
from components.viewer_figures import alert, fmt_number, histogram_figure, pending_card, ripley_figure, stats_card, SMALL_LAYOUT
from databank.viewer_data import DEFAULT_CANVAS_PX, DENIED, file_extent, load_table, readable_file, region_of, result_cache


log = logging.getLogger(__name__)


MAX_CANVAS_PX = 1600


def _canvas_px(view_data) -> int:
    try:
        px = int(max(float(view_data.get("width")), float(view_data.get("height"))))
    except (TypeError, ValueError, AttributeError):
        return DEFAULT_CANVAS_PX
    return int(np.clip(px, 64, MAX_CANVAS_PX))


def _trigger():
    """The id of the component that triggered the running callback (None outside a callback)."""
    try:
        return ctx.triggered_id
    except Exception:       # called as a plain function (tests, jobs)
        return None


def update_view(view_request, colour_by, show_tiles, pathname, view_data, show_clusters, region_key,
                eps, min_samples):
    """Re-render the view for a zoom/pan (view request), a colour change or the tile toggle.

    Returns (figure Patch, view info text, view store).
    """
    data_file = readable_file(pathname, current_user)
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
    x_range, y_range = viewer_render.normalise_ranges(source.get("x_range"), source.get("y_range"), extent)
    view = viewer_render.render_view(data_file, table, x_range, y_range, colour_by or "density",
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
        region = region_of(data_file, table, region_key)
    except analysis_inputs.RegionError:
        return
    if region.n <= analysis_inputs.CLUSTER_POINTS_MAX:
        return
    result = analysis.cached_dbscan(region, eps, min_samples, disk=result_cache())
    if result is None:
        return
    image = viewer_render.render_cluster_overlay(region, result, x_range, y_range, max_px=max_px)
    patch["layout"]["images"][figure.IMG_CLUSTERS] = figure.image_dict(image, visible=image is not None,
                                                                       layer="above")


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
            box = list(analysis_inputs.RegionSpec.parse(previous_key).box)
        except analysis_inputs.RegionError:
            pass
    for k, v in edits.items():
        box[("x0", "y0", "x1", "y1").index(k.split(".")[-1])] = v
    return box


def choose_region(value, relayout, pathname, options, current_key):
    """Region from the dropdown or from a box drawn on the plot.

    Returns (region store, region info, dropdown options, dropdown value).
    """
    data_file = readable_file(pathname, current_user)
    if data_file is None:
        return no_update, alert(DENIED), no_update, no_update
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
                spec = analysis_inputs.RegionSpec.parse({"kind": "box", "box": box})
            except analysis_inputs.RegionError as error:
                return no_update, alert(str(error)), no_update, no_update
            key = spec.key
            options = [o for o in options if not str(o.get("value", "")).startswith("box:")]
            options.append({"label": "Drawn box", "value": key})
    table = load_table(data_file)
    try:
        region = region_of(data_file, table, key)
    except analysis_inputs.RegionError as error:
        return no_update, alert(str(error)), no_update, no_update
    info = html.Span(region.describe(), id="viewer-region-summary")
    return region.spec.key, info, options, region.spec.key


def _dbscan_outputs(region, result, show_clusters, view_data, *, region_changed=True):
    """(status, stats card, histogram figure, graph Patch) for a finished DBSCAN result."""
    overlay = None
    if show_clusters and region.n > analysis_inputs.CLUSTER_POINTS_MAX:
        view_data = view_data or {}
        (x0, x1), (y0, y1) = viewer_render.normalise_ranges(view_data.get("x_range"), view_data.get("y_range"),
                                                       (region.bounds[0::2], region.bounds[1::2]))
        overlay = viewer_render.render_cluster_overlay(region, result, (x0, x1), (y0, y1), max_px=_canvas_px(view_data))
    patch = figure.cluster_patch(Patch(), region, result, overlay, show=bool(show_clusters),
                                 max_points=analysis_inputs.CLUSTER_POINTS_MAX, region_changed=region_changed)
    status = f"eps {result.eps_nm:g} nm, minPts {result.min_samples}"
    if result.from_tree:
        status += " (cut from the precomputed DBSCAN tree: labels identical to a direct run)"
    return status, stats_card(result.summary, region, result.seconds), histogram_figure(result), patch


def update_dbscan(eps, min_samples, region_key, show_clusters, pathname, view_data):
    """DBSCAN for the sliders' eps / minPts on the chosen region (recoloured on the plot).

    Returns (status, stats card, histogram figure, graph figure Patch, background request).
    Regions above ``analysis_inputs.DBSCAN_SYNC_MAX`` points go to the background job (request store)
    unless the result or the region's DbscanTree for minPts is cached already (the job builds that
    tree, so later eps moves cut it inline); ``show_dbscan_job`` shows the job's result.
    """
    data_file = readable_file(pathname, current_user)
    if data_file is None:
        return alert(DENIED), no_update, no_update, no_update, no_update
    if not region_key:
        raise PreventUpdate
    table = load_table(data_file)
    try:
        region = region_of(data_file, table, region_key)
    except analysis_inputs.RegionError as error:
        return alert(str(error)), no_update, no_update, no_update, no_update
    eps, min_samples = analysis_inputs.clamp_eps(eps), analysis_inputs.clamp_min_samples(min_samples)
    result = analysis.cached_dbscan(region, eps, min_samples, disk=result_cache())
    if result is None and analysis.needs_background(region, min_samples, disk=result_cache()):
        patch = figure.cluster_patch(Patch(), region, None)
        request = {"region": region.spec.key, "eps": eps, "min_samples": min_samples, "t": time.time()}
        status = (f"{region.n:,} localisations: precomputing DBSCAN for minPts {min_samples} and every eps "
                  "in the background; eps moves are then answered at once…")
        return status, pending_card(region, eps, min_samples), no_update, patch, request
    if result is None:
        result = analysis.run_dbscan(region, eps, min_samples)
    parameters_only = _trigger() in (ids.Viewer.EPS, ids.Viewer.MIN_SAMPLES)
    status, card, histogram, patch = _dbscan_outputs(region, result, show_clusters, view_data,
                                                     region_changed=not parameters_only)
    if parameters_only and region.n > analysis_inputs.CLUSTER_POINTS_MAX and _send_image_only(patch):
        patch = no_update
    return status, card, histogram, patch, no_update


def _send_image_only(patch) -> bool:
    """Hand an image-only cluster patch to the page's CLUSTER_IMAGE store (assets/viewer.js swaps the
    image with Plotly.relayout) instead of the figure. False outside a Dash request (plain calls)."""
    image = patch.to_plotly_json()["operations"]
    images = [op for op in image if op["location"][:3] == ["layout", "images", figure.IMG_CLUSTERS]]
    if len(images) != len(image) or not images:
        return False
    try:
        set_props(ids.Viewer.CLUSTER_IMAGE, {"data": images[0]["params"]["value"]})
    except (AttributeError, KeyError, TypeError):      # no callback context to carry the side update
        return False
    return True


def show_dbscan_job(ready, eps, min_samples, region_key, show_clusters, pathname, view_data):
    """Show the result of a finished background DBSCAN if it is for the current parameters.

    Returns (status, stats card, histogram figure, graph figure Patch). Separate from
    ``update_dbscan`` so the callback graph has no cycle (request -> job -> ready -> here).
    """
    if not isinstance(ready, dict):
        raise PreventUpdate
    data_file = readable_file(pathname, current_user)
    if data_file is None:
        return alert(DENIED), no_update, no_update, no_update
    if ready.get("error"):
        return alert(str(ready["error"])), [], no_update, no_update
    table = load_table(data_file)
    try:
        region = region_of(data_file, table, region_key)
    except analysis_inputs.RegionError as error:
        return alert(str(error)), no_update, no_update, no_update
    result = analysis.cached_dbscan(region, eps, min_samples, disk=result_cache())
    if result is None:              # a finished job for parameters the user has moved away from
        raise PreventUpdate
    return _dbscan_outputs(region, result, show_clusters, view_data)


def _envelope_matches(envelope, data_file, region, outcome) -> bool:
    return (isinstance(envelope, dict) and envelope.get("file") == data_file.id
            and envelope.get("region") == region.spec.key and envelope.get("edge") == outcome.result.edge
            and envelope.get("n") == outcome.n_used and len(envelope.get("low") or []) == outcome.result.r.size
            and np.isclose(envelope.get("r_max", -1), outcome.r_max_nm)
            and np.isclose(envelope.get("dr", -1), outcome.dr_nm))


def ripley_summary(outcome) -> list:
    """The H maximum as text (nm), or that it lies beyond r max when H still rises there."""
    res = outcome.result
    if res.h_max_beyond_range:
        head = (f"the maximum of H = L(r) − r lies beyond r max: H is still rising at r = {outcome.r_max_nm:g} nm "
                f"(L(r) − r = {fmt_number(res.h_max, '{:.1f}')} nm there); increase r max ")
    else:
        head = (f"maximum of H: r = {fmt_number(res.r_at_h_max, '{:.0f}')} nm, "
                f"L(r) − r = {fmt_number(res.h_max, '{:.1f}')} nm ")
    return [html.Span([head], id="viewer-ripley-max"),
            html.Span("(r at H max indicates the cluster scale; it is not a cluster radius)", className="text-muted"),
            html.Div(f"All {outcome.n_used:,} localisations of the region, edge correction '{res.edge}', "
                     f"computed in {outcome.seconds:.2f} s.", className="text-muted")]


def _ripley_region(region_key, pathname):
    """(data file, region, None) or (None, None, (figure, info)) to return at once."""
    data_file = readable_file(pathname, current_user)
    if data_file is None:
        return None, None, (no_update, alert(DENIED))
    if not region_key:
        raise PreventUpdate
    try:
        region = region_of(data_file, load_table(data_file), region_key)
    except analysis_inputs.RegionError as error:
        return None, None, (no_update, alert(str(error)))
    if region.n < 2:
        return None, None, (dict(data=[], layout=SMALL_LAYOUT), alert("Fewer than 2 localisations in this region."))
    return data_file, region, None


def update_ripley(r_max, dr, edge, region_key, envelope, pathname):
    """Ripley H curve of all the region's points. Returns (figure, info, background request).

    Inline when cached or expected under ~200 ms (``analysis.ripley_needs_background``); else a
    request for ``ripley_job``, whose result ``show_ripley_job`` shows."""
    data_file, region, early = _ripley_region(region_key, pathname)
    if early:
        return (*early, no_update)
    outcome = analysis.cached_ripley(region, r_max, dr, edge, disk=result_cache())
    if outcome is None and analysis.ripley_needs_background(region, r_max, dr):
        request = {"region": region.spec.key, "r_max": r_max, "dr": dr, "edge": edge, "t": time.time()}
        info = f"{region.n:,} localisations: Ripley K on all of them runs in the background…"
        return dict(data=[], layout=SMALL_LAYOUT), info, request
    if outcome is None:
        outcome = analysis.run_ripley(region, r_max, dr, edge)
    env = envelope if _envelope_matches(envelope, data_file, region, outcome) else None
    return ripley_figure(outcome, env), ripley_summary(outcome), no_update


def show_ripley_job(ready, r_max, dr, edge, region_key, envelope, pathname):
    """Show a finished background Ripley if it is for the current settings. Returns (figure, info)."""
    if not isinstance(ready, dict):
        raise PreventUpdate
    if ready.get("error"):
        return no_update, alert(str(ready["error"]))
    data_file, region, early = _ripley_region(region_key, pathname)
    if early:
        return early
    outcome = analysis.cached_ripley(region, r_max, dr, edge, disk=result_cache())
    if outcome is None:              # a finished job for settings the user has moved away from
        raise PreventUpdate
    env = envelope if _envelope_matches(envelope, data_file, region, outcome) else None
    return ripley_figure(outcome, env), ripley_summary(outcome)


def sweep_click(click):
    """A click on a sweep cell sets the eps and minPts sliders."""
    try:
        point = click["points"][0]
        eps, min_samples = float(point["x"]), float(point["y"])
    except (TypeError, KeyError, IndexError, ValueError):
        raise PreventUpdate from None
    return analysis_inputs.clamp_eps(eps), analysis_inputs.clamp_min_samples(min_samples)


def download(n_clusters, n_labels, n_ripley, eps, min_samples, r_max, dr, edge, region_key, envelope, pathname):
    """CSV of the current result (cluster table, labels or Ripley curve). Returns (download, message)."""
    trigger = _trigger()
    if trigger not in (ids.Viewer.DL_CLUSTERS, ids.Viewer.DL_LABELS, ids.Viewer.DL_RIPLEY):
        raise PreventUpdate
    if readable_file(pathname, current_user) is None:
        return no_update, DENIED
    data_file = readable_file(pathname, current_user, action="download")
    if data_file is None:
        return no_update, "Log in to download results (public data can be downloaded by registered users)."
    table = load_table(data_file)
    try:
        region = region_of(data_file, table, region_key)
    except analysis_inputs.RegionError as error:
        return no_update, str(error)
    if trigger == ids.Viewer.DL_RIPLEY:
        if region.n < 2:
            return no_update, "Fewer than 2 localisations in this region."
        outcome = analysis.run_ripley(region, r_max, dr, edge, disk=result_cache())
        env = envelope if _envelope_matches(envelope, data_file, region, outcome) else None
        text = analysis_csv.ripley_csv(data_file, region, outcome, env)
        name = analysis_csv.download_name(data_file, f"ripley_{region.spec.kind}")
    else:
        result = analysis.run_dbscan(region, eps, min_samples, disk=result_cache())
        if trigger == ids.Viewer.DL_CLUSTERS:
            text = analysis_csv.cluster_table_csv(data_file, region, result)
            name = analysis_csv.download_name(data_file, f"clusters_{region.spec.kind}")
        else:
            text = analysis_csv.labels_csv(data_file, region, result)
            name = analysis_csv.download_name(data_file, f"labels_{region.spec.kind}")
    return dict(content=text, filename=name, type="text/csv"), ""


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


def register(app) -> None:
    """Wire the viewer callbacks to ``app`` ."""
    dash_callback = app.callback

    def callback(*args, **kwargs):
        decorate = dash_callback(*args, **kwargs)
        return lambda fn: decorate(_timed(fn))

    def request_job(kind, request_id, ready_id, progress_id, cancel_id, status_id):
        """A ``kind`` job started by a request store, answering in a 'ready' store, with progress;
        a failure is shown in ``status_id``."""
        return job_callback(
            app, kind,
            Output(ready_id, "data"), Input(request_id, "data"), State(ids.Viewer.URL, "pathname"),
            prevent_initial_call=True, interval=500,
            progress=[Output(progress_id, "value"), Output(progress_id, "label")], progress_default=[0, ""],
            running=[(Output(f"{progress_id}-row", "style"), {"display": "flex"}, {"display": "none"})],
            cancel=[Input(cancel_id, "n_clicks")], failure_status=status_id,
        )

    clientside = app.clientside_callback

    clientside(ClientsideFunction("nanoorg_viewer", "view_request"), Output(ids.Viewer.VIEW_REQUEST, "data"), Input(ids.Viewer.GRAPH, "relayoutData"),
               prevent_initial_call=True)
    clientside(ClientsideFunction("nanoorg_viewer", "cluster_image"), Output(ids.Viewer.CLUSTER_IMAGE_SINK, "data"),
               Input(ids.Viewer.CLUSTER_IMAGE, "data"), prevent_initial_call=True)
    clientside(ClientsideFunction("nanoorg_viewer", "export_png"), Output(ids.Viewer.EXPORT_DONE, "data"), Input(ids.Viewer.EXPORT, "n_clicks"), State(ids.Viewer.EXPORT_NAME, "data"),
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

    request_job("viewer-dbscan", ids.Viewer.DBSCAN_REQUEST, ids.Viewer.DBSCAN_READY, ids.Viewer.DBSCAN_PROGRESS,
                ids.Viewer.DBSCAN_CANCEL, ids.Viewer.DBSCAN_STATUS)(dbscan_job)

    callback(
        Output(ids.Viewer.RIPLEY_GRAPH, "figure"), Output(ids.Viewer.RIPLEY_INFO, "children"),
        Output(ids.Viewer.RIPLEY_REQUEST, "data"),
        Input(ids.Viewer.RIPLEY_RMAX, "value"), Input(ids.Viewer.RIPLEY_STEP, "value"), Input(ids.Viewer.RIPLEY_EDGE, "value"),
        Input(ids.Viewer.REGION_STORE, "data"), Input(ids.Viewer.ENVELOPE_STORE, "data"),
        State(ids.Viewer.URL, "pathname"),
        prevent_initial_call=True,
    )(update_ripley)

    callback(
        Output(ids.Viewer.RIPLEY_GRAPH, "figure", allow_duplicate=True),
        Output(ids.Viewer.RIPLEY_INFO, "children", allow_duplicate=True),
        Input(ids.Viewer.RIPLEY_READY, "data"),
        State(ids.Viewer.RIPLEY_RMAX, "value"), State(ids.Viewer.RIPLEY_STEP, "value"), State(ids.Viewer.RIPLEY_EDGE, "value"),
        State(ids.Viewer.REGION_STORE, "data"), State(ids.Viewer.ENVELOPE_STORE, "data"), State(ids.Viewer.URL, "pathname"),
        prevent_initial_call=True,
    )(show_ripley_job)

    request_job("viewer-ripley", ids.Viewer.RIPLEY_REQUEST, ids.Viewer.RIPLEY_READY, ids.Viewer.RIPLEY_PROGRESS,
                ids.Viewer.RIPLEY_CANCEL, ids.Viewer.RIPLEY_INFO)(ripley_job)

    job_callback(
        app, "viewer-envelope",
        Output(ids.Viewer.ENVELOPE_STORE, "data"), Output(ids.Viewer.ENVELOPE_STATUS, "children"),
        Input(ids.Viewer.ENVELOPE_RUN, "n_clicks"),
        State(ids.Viewer.ENVELOPE_SIMS, "value"), State(ids.Viewer.RIPLEY_RMAX, "value"), State(ids.Viewer.RIPLEY_STEP, "value"),
        State(ids.Viewer.RIPLEY_EDGE, "value"), State(ids.Viewer.REGION_STORE, "data"), State(ids.Viewer.URL, "pathname"),
        prevent_initial_call=True, interval=700,
        progress=[Output(ids.Viewer.ENVELOPE_PROGRESS, "value"), Output(ids.Viewer.ENVELOPE_PROGRESS, "label")],
        progress_default=[0, ""],
        running=_running(ids.Viewer.ENVELOPE_PROGRESS, ids.Viewer.ENVELOPE_RUN),
        cancel=[Input(ids.Viewer.ENVELOPE_CANCEL, "n_clicks")],
        failure_status=ids.Viewer.ENVELOPE_STATUS,
    )(envelope_job)

    job_callback(
        app, "viewer-sweep",
        Output(ids.Viewer.SWEEP_GRAPH, "figure"), Output(ids.Viewer.SWEEP_STATUS, "children"),
        Input(ids.Viewer.SWEEP_RUN, "n_clicks"),
        State(ids.Viewer.SWEEP_EPS, "value"), State(ids.Viewer.SWEEP_MIN, "value"), State(ids.Viewer.REGION_STORE, "data"),
        State(ids.Viewer.URL, "pathname"),
        prevent_initial_call=True, interval=700,
        progress=[Output(ids.Viewer.SWEEP_PROGRESS, "value"), Output(ids.Viewer.SWEEP_PROGRESS, "label")],
        progress_default=[0, ""],
        running=_running(ids.Viewer.SWEEP_PROGRESS, ids.Viewer.SWEEP_RUN),
        cancel=[Input(ids.Viewer.SWEEP_CANCEL, "n_clicks")],
        failure_status=ids.Viewer.SWEEP_STATUS,
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
