"""The analysis panel of the file viewer: region choice, DBSCAN, Ripley, parameter sweep, downloads.

Layout only (ids are constants used by ``callbacks.viewer``); the numbers come from callbacks.
"""

from __future__ import annotations

import dash_bootstrap_components as dbc
from dash import dcc, html

from compute import clusters
from databank import analysis_inputs
import ids
from components.viewer_figures import sweep_figure


EDGE_LABELS = {"ripley": "Ripley isotropic", "buffer": "Guard zone (buffer)", "none": "None"}
EPS_MIN, EPS_MAX = (int(v) for v in analysis_inputs.EPS_RANGE_NM)
MIN_MIN, MIN_MAX = analysis_inputs.MIN_SAMPLES_RANGE


def _slider(ident, label, lo, hi, value, step, marks, unit=""):
    return html.Div([
        dbc.Label([label, html.Span(unit, className="text-muted ms-1 small")], html_for=ident, className="mb-0"),
        dcc.Slider(id=ident, min=lo, max=hi, step=step, value=value, marks=marks, updatemode="mouseup",
                   tooltip={"placement": "bottom", "always_visible": False}),
    ], className="mb-2")


def region_section(options, value) -> html.Div:
    return html.Div([
        dbc.Label("Region", html_for=ids.Viewer.REGION, className="fw-semibold mb-1"),
        dcc.Dropdown(id=ids.Viewer.REGION, options=options, value=value, clearable=False, searchable=True),
        html.Div("Or draw a box on the plot (rectangle tool in the plot's toolbar).",
                 className="form-text"),
        html.Div(id=ids.Viewer.REGION_INFO, className="small mt-1"),
    ], className="mb-3")


def _progress(ident, cancel_id):
    return html.Div([
        dbc.Progress(id=ident, value=0, max=100, striped=True, animated=True, style={"height": "1.1rem"},
                     className="flex-grow-1 me-2"),
        dbc.Button("Cancel", id=cancel_id, size="sm", color="secondary", outline=True),
    ], id=f"{ident}-row", className="align-items-center mb-2", style={"display": "none"})


def dbscan_tab() -> dbc.Tab:
    return dbc.Tab(label="DBSCAN", tab_id="tab-dbscan", children=html.Div([
        _slider(ids.Viewer.EPS, "eps", EPS_MIN, EPS_MAX, int(clusters.DEFAULT_EPS_NM), 1,
                {5: "5", 50: "50", 100: "100", 150: "150", 200: "200"}, "(nm)"),
        _slider(ids.Viewer.MIN_SAMPLES, "minPts", MIN_MIN, MIN_MAX, int(clusters.DEFAULT_MIN_SAMPLES), 1,
                {2: "2", 10: "10", 20: "20", 30: "30", 40: "40", 50: "50"}, "(localisations, the point itself included)"),
        html.Div(id=ids.Viewer.DBSCAN_STATUS, className="small text-muted mb-1"),
        _progress(ids.Viewer.DBSCAN_PROGRESS, ids.Viewer.DBSCAN_CANCEL),
        dbc.Card(dbc.CardBody(id=ids.Viewer.DBSCAN_STATS, className="p-2"), className="mb-2"),
        dcc.Graph(id=ids.Viewer.DBSCAN_HIST, config={"displaylogo": False, "displayModeBar": False},
                  style={"height": "230px"}),
    ], className="pt-2"))


def ripley_tab() -> dbc.Tab:
    return dbc.Tab(label="Ripley", tab_id="tab-ripley", children=html.Div([
        _slider(ids.Viewer.RIPLEY_RMAX, "r max", 100, 1500, 500, 50, {100: "100", 500: "500", 1000: "1000", 1500: "1500"}, "(nm)"),
        _slider(ids.Viewer.RIPLEY_STEP, "step", 5, 50, 10, 5, {5: "5", 10: "10", 25: "25", 50: "50"}, "(nm)"),
        dbc.Label("Edge correction", className="mb-0"),
        dbc.RadioItems(id=ids.Viewer.RIPLEY_EDGE, options=[{"label": EDGE_LABELS[e], "value": e} for e in clusters.EDGE_CORRECTIONS
                                                if e in EDGE_LABELS],
                       value="ripley", inline=True, className="mb-2 small"),
        dcc.Loading(dcc.Graph(id=ids.Viewer.RIPLEY_GRAPH, config={"displaylogo": False, "displayModeBar": False}, style={"height": "300px"}),
                    type="dot", delay_show=300),
        html.Div(id=ids.Viewer.RIPLEY_INFO, className="small mb-2"),
        html.Div([
            dbc.Label("CSR envelope", className="mb-0 me-2"),
            dcc.Dropdown(id=ids.Viewer.ENVELOPE_SIMS, options=[{"label": f"{n} simulations", "value": n}
                                                    for n in analysis_inputs.ENVELOPE_SIMULATIONS],
                         value=analysis_inputs.ENVELOPE_SIMULATIONS[1], clearable=False, style={"width": "11rem"},
                         className="me-2"),
            dbc.Button("Compute envelope", id=ids.Viewer.ENVELOPE_RUN, size="sm", color="primary"),
        ], className="d-flex align-items-center mb-2"),
        _progress(ids.Viewer.ENVELOPE_PROGRESS, ids.Viewer.ENVELOPE_CANCEL),
        html.Div(id=ids.Viewer.ENVELOPE_STATUS, className="small text-muted"),
    ], className="pt-2"))


def sweep_tab() -> dbc.Tab:
    return dbc.Tab(label="Parameter sweep", tab_id="tab-sweep", children=html.Div([
        html.P("DBSCAN over a grid of eps x minPts on the chosen region: see how robust a choice is. "
               "Click a cell to set the sliders.", className="small text-muted mb-2"),
        dbc.Label(["eps range", html.Span("(nm)", className="text-muted ms-1 small")], className="mb-0"),
        dcc.RangeSlider(id=ids.Viewer.SWEEP_EPS, min=EPS_MIN, max=EPS_MAX, step=5, value=[20, 200],
                        marks={5: "5", 50: "50", 100: "100", 150: "150", 200: "200"}),
        dbc.Label("minPts range", className="mb-0 mt-2"),
        dcc.RangeSlider(id=ids.Viewer.SWEEP_MIN, min=MIN_MIN, max=MIN_MAX, step=1, value=[3, 30],
                        marks={2: "2", 10: "10", 20: "20", 30: "30", 40: "40", 50: "50"}),
        html.Div(dbc.Button("Run sweep", id=ids.Viewer.SWEEP_RUN, color="primary", size="sm"), className="my-2"),
        _progress(ids.Viewer.SWEEP_PROGRESS, ids.Viewer.SWEEP_CANCEL),
        html.Div(id=ids.Viewer.SWEEP_STATUS, className="small text-muted"),
        dcc.Graph(id=ids.Viewer.SWEEP_GRAPH, figure=sweep_figure(None), config={"displaylogo": False, "displayModeBar": False}, style={"height": "520px"}),
    ], className="pt-2"))


def downloads_tab(can_download: bool = True) -> dbc.Tab:
    return dbc.Tab(label="Downloads", tab_id="tab-downloads", children=html.Div([
        None if can_download else dbc.Alert("Log in to download results (registered users can download public "
                                            "data).", color="info", className="py-1 px-2 small"),
        html.P("Results of the current region and parameters, as CSV. Header lines starting with '#' give the "
               "software version, the input file and its SHA-256 checksum, the region and the parameters, so "
               "the result can be reproduced (pandas: read_csv(path, comment='#')).", className="small text-muted"),
        dbc.Button("Cluster table (one row per cluster)", id=ids.Viewer.DL_CLUSTERS, color="primary", outline=True,
                   size="sm", className="d-block mb-2"),
        dbc.Button("Labels per localisation", id=ids.Viewer.DL_LABELS, color="primary", outline=True, size="sm",
                   className="d-block mb-2"),
        dbc.Button("Ripley curve", id=ids.Viewer.DL_RIPLEY, color="primary", outline=True, size="sm", className="d-block mb-2"),
        html.Div(id=ids.Viewer.DL_STATUS, className="small text-danger"),
        dcc.Download(id=ids.Viewer.DOWNLOAD),
    ], className="pt-2"))


def analysis_panel(region_options, region_value, can_download: bool = True) -> html.Div:
    return html.Div([
        html.H2("Analysis", className="h5"),
        region_section(region_options, region_value),
        dcc.Store(id=ids.Viewer.REGION_STORE),
        dcc.Store(id=ids.Viewer.DBSCAN_REQUEST),
        dcc.Store(id=ids.Viewer.DBSCAN_READY),
        dcc.Store(id=ids.Viewer.ENVELOPE_STORE),
        dbc.Tabs([dbscan_tab(), ripley_tab(), sweep_tab(), downloads_tab(can_download)], id="viewer-tabs",
                 active_tab="tab-dbscan"),
    ], id="viewer-analysis-panel")
