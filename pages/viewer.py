"""/file/<file_id>: "View data file and analysis".

One localisation file: a density image (datashader, re-rendered on zoom) or real points when few
enough are in view, ROI outlines and the 3 x 3 um tile grid, the per-file statistics, and the
analysis panel (region, DBSCAN, Ripley, parameter sweep, downloads). Same access rule as the
dataset the file belongs to; missing and forbidden files look the same ("not found").
"""

from __future__ import annotations

import dash
import dash_bootstrap_components as dbc
from dash import dcc, html
from flask_login import current_user

from databank import analysis

from databank import analysis_inputs
from databank.access import AccessDenied, authorise, get_file
from databank import viewer_data
from components import analysis_panel as panel
from components import localisation_figure as figure
from components.not_found import not_found_card
import ids

dash.register_page(__name__, path_template="/file/<file_id>", name="Data file",
                   title="Data file · nano-org", description="A localisation file and its cluster analysis.")


def not_found(file_id=None):
    return not_found_card(noun="data file", path=f"/file/{file_id}", object_id=file_id, url_id=ids.Viewer.URL,
                          card_id="viewer-not-found")


def _fmt(value, spec="{:,.0f}", unit=""):
    if value is None:
        return "–"
    try:
        return spec.format(value) + unit
    except (TypeError, ValueError):
        return str(value)


def file_header(data_file) -> html.Div:
    """File name, dataset link and the per-file statistics."""
    stats = data_file.stats or {}
    items = [
        ("Localisations", _fmt(data_file.n_locs)),
        ("In ROIs", _fmt(stats.get("n_locs_roi"))),
        ("ROI area", _fmt(stats.get("roi_area_um2"), "{:,.1f}", " µm²")),
        ("Density", _fmt(data_file.density, "{:,.0f}", " loc/µm²")),
        ("Coverage", _fmt(None if data_file.coverage is None else 100 * data_file.coverage, "{:.0f}", " %")),
        ("Precision (median)", _fmt(data_file.precision_median, "{:.1f}", " nm")),
        ("Precision (NeNA)", _fmt(data_file.precision_nena_nm, "{:.1f}", " nm")),
        ("ROIs", _fmt(len(data_file.rois))),
        ("Tiles kept / all", f"{_fmt(stats.get('n_tiles_kept'))} / {_fmt(stats.get('n_tiles'))}"),
    ]
    dataset = data_file.dataset
    return html.Div([
        html.Div([
            dcc.Link(f"← {dataset.title}", href=f"/dataset/{dataset.id}", className="small"),
        ]),
        html.H1(data_file.name, className="h4 mb-1 text-break", id="viewer-title"),
        html.Div([
            html.Span([html.Span(label, className="text-muted me-1"), html.Strong(value)],
                      className="me-3 text-nowrap d-inline-block")
            for label, value in items
        ], className="small mb-1", id="viewer-file-stats"),
        html.Div([dbc.Badge("simulated data", color="warning", className="me-1")] if dataset.is_simulated else [])
        if dataset.is_simulated else None,
        html.Div([html.Div(w, className="small text-warning-emphasis") for w in data_file.warnings[:3]])
        if data_file.warnings else None,
    ], className="mb-2")


def plot_controls(data_file, table) -> html.Div:
    colour_options = [
        {"label": "density", "value": "density"},
        {"label": "frame", "value": "frame", "disabled": table.frame is None},
        {"label": "precision", "value": "precision", "disabled": table.precision is None},
    ]
    return html.Div([
        html.Span("Colour by", className="small text-muted me-2"),
        dbc.RadioItems(id=ids.Viewer.COLOUR, options=colour_options, value="density", inline=True,
                       className="small me-3"),
        dbc.Switch(id=ids.Viewer.TILES, label="3 x 3 µm tiles", value=False, className="small me-3 mb-0"),
        dbc.Switch(id=ids.Viewer.SHOW_CLUSTERS, label="clusters", value=True, className="small me-3 mb-0"),
        dbc.Button("Export PNG", id=ids.Viewer.EXPORT, size="sm", color="secondary", outline=True,
                   className="ms-auto"),
    ], className="d-flex flex-wrap align-items-center mb-1")


def viewer_layout(data_file) -> html.Div:
    table = viewer_data.load_table(data_file)
    view, extent = viewer_data.initial_view(data_file, table)
    region_spec = analysis.default_region(data_file)
    try:
        region = analysis.select_region(data_file, table, region_spec)
    except analysis_inputs.RegionError:
        region_spec, region = analysis_inputs.RegionSpec("all"), None
    fig = figure.build_figure(data_file, view, extent=extent, region=region)
    config = dict(figure.GRAPH_CONFIG)
    config["toImageButtonOptions"] = dict(config["toImageButtonOptions"],
                                          filename=viewer_data.export_name(data_file))
    return html.Div([
        dcc.Location(id=ids.Viewer.URL, refresh="callback-nav"),
        dcc.Store(id=ids.Viewer.VIEW_STORE, data={"x_range": list(view.x_range), "y_range": list(view.y_range),
                                                    "extent": [list(extent[0]), list(extent[1])]}),
        dcc.Store(id=ids.Viewer.VIEW_REQUEST),
        dcc.Store(id=ids.Viewer.EXPORT_NAME, data=viewer_data.export_name(data_file)),
        dcc.Store(id=ids.Viewer.EXPORT_DONE),
        file_header(data_file),
        dbc.Row([
            dbc.Col([
                plot_controls(data_file, table),
                dcc.Graph(id=ids.Viewer.GRAPH, figure=fig, config=config, className="border rounded",
                          style={"height": f"{figure.PLOT_HEIGHT}px"}),
                html.Div(figure.view_info(view), id=ids.Viewer.VIEW_INFO, className="small text-muted mt-1"),
            ], lg=7, xl=8, className="mb-3 nanoorg-viewer-plot"),
            dbc.Col(panel.analysis_panel(analysis.region_options(data_file), region_spec.key,
                                         can_download=authorise(current_user, data_file.dataset, "download")),
                    lg=5, xl=4),
        ]),
    ], id="viewer-page", **{"data-file-id": str(data_file.id)})


def layout(file_id=None, **_query):
    if file_id is None:          # validation layout (no request path)
        return html.Div()
    try:
        data_file = get_file(current_user, file_id, "read")
    except AccessDenied:
        return not_found(file_id)
    return viewer_layout(data_file)
