"""/search: search the databank with your own file (signed-in users).

Choose one detection file (and its ``{stem}_ROI*.csv`` files); it is read, tiled and fingerprinted
on the server exactly like an upload, ranked against every dataset you may read, and discarded: it
is not stored in the databank (the Upload page adds files to it). Callbacks:
``callbacks.search_file``.
"""

from __future__ import annotations

import dash
import dash_bootstrap_components as dbc
from dash import dcc, html
from flask_login import current_user

from components.similarity_section import SEARCH_GUIDE, progress_block, results_grid, target_selector, thinning_targets
import ids
from databank.core import settings_of

dash.register_page(__name__, path="/search", name="Search with your file", title="Search with your file · nano-org",
                   description="Rank the nano-org databank by similarity to a file of your own.")

def _signed_out():
    return dbc.Container([
        html.H1("Search with your own file", className="h3 mt-3"),
        html.P("Sign in to rank the databank by similarity to a detection file of your own. The file is analysed "
               "and discarded, not stored.", className="text-body-secondary"),
        html.A("Log in", href="/login?next=/search", className="btn btn-primary me-2", id="own-login"),
        html.A("Register", href="/register?next=/search", className="btn btn-outline-primary"),
    ], id="own-page-signed-out", className="py-3")


def _filters():
    def dropdown(key, label):
        return dbc.Col([dbc.Label(label, html_for=getattr(ids.SearchFile, key.upper()), className="small mb-0"),
                        dcc.Dropdown(id=getattr(ids.SearchFile, key.upper()), options=[], placeholder=f"Any {label.lower()}", className="small")],
                       md=3, sm=6)
    return dbc.Row([dropdown("protein", "Protein"), dropdown("cell_type", "Cell type"),
                    dropdown("modality", "Modality"),
                    dbc.Col([dbc.Label("Tags contain", html_for=ids.SearchFile.TAGS, className="small mb-0"),
                             dbc.Input(id=ids.SearchFile.TAGS, value="", size="sm", placeholder="e.g. treated")], md=3, sm=6)],
                   className="g-2 mb-3")


def layout(**_query):
    if not getattr(current_user, "is_authenticated", False):
        return _signed_out()
    targets, default = thinning_targets()
    max_mb = settings_of().query_max_mb
    return dbc.Container([
        dcc.Store(id=ids.SearchFile.TOKEN),
        html.H1("Search with your own file", className="h3 mt-3"),
        html.P(["Rank every dataset you may read by similarity to one detection file of your own (ThunderSTORM, "
                f"SMAP, Picasso, DECODE, RapidSTORM or plain x,y CSV, up to {max_mb} MB here), with its ROI files named "
                "{FILE NAME}_ROI*.csv. The file is tiled and compared exactly like an uploaded dataset, then "
                "discarded: it is ", html.Strong("not stored"), ". To add it to the databank use ",
                dcc.Link("Upload Data", href="/upload"), ". ",
                html.A("How to read the scores", href=SEARCH_GUIDE)], className="text-body-secondary"),
        dbc.Card(dbc.CardBody([
            dcc.Upload(
                id=ids.SearchFile.UPLOAD, multiple=True, max_size=max_mb * 2 ** 20,
                children=html.Div(["Drop the detection file and its ROI files here, or ",
                                   html.A("choose them", className="link-primary", style={"cursor": "pointer"})]),
                className="nanoorg-dropzone text-center p-4 mb-2",
                style={"border": "2px dashed #adb5bd", "borderRadius": "0.5rem"},
            ),
            html.Div(id=ids.SearchFile.FILES, className="mb-3"),
            dbc.Row([
                dbc.Col(target_selector(ids.SearchFile.TARGET, targets, default), md="auto"),
                dbc.Col(html.Div([
                    dbc.Label("Pixel size (nm)", html_for=ids.SearchFile.PIXEL, className="small mb-0 me-2"),
                    dbc.Input(id=ids.SearchFile.PIXEL, type="number", min=1, step="any", size="sm", style={"width": "7rem"},
                              placeholder="if in pixels"),
                ], className="d-flex align-items-center"), md="auto"),
                dbc.Col(html.Div([
                    dbc.Label("Rank by", html_for=ids.SearchFile.METRIC, className="small mb-0 me-2 fw-semibold"),
                    dbc.RadioItems(id=ids.SearchFile.METRIC, value="thinned", inline=True, className="small",
                                   options=[{"label": "thinned λ̄", "value": "thinned"},
                                            {"label": "unthinned λ̄", "value": "unthinned"}]),
                ], className="d-flex align-items-center"), md="auto"),
            ], className="g-3 mb-2 align-items-center"),
            _filters(),
            dbc.Button("Search", id=ids.SearchFile.RUN, color="primary", className="me-2"),
        ]), className="mb-3"),
        progress_block(ids.SearchFile.PROGRESS, ids.SearchFile.PROGRESS_TEXT, ids.SearchFile.CANCEL, ids.SearchFile.PROGRESS_BOX),
        html.Div(id=ids.SearchFile.SUMMARY, className="mb-2"),
        html.Div(id=ids.SearchFile.STATUS, className="small mb-2", role="status"),
        html.Div([dbc.Button("Download table (CSV)", id=ids.SearchFile.DOWNLOAD, size="sm", color="primary", outline=True),
                  dcc.Download(id=ids.SearchFile.DOWNLOAD_FILE),
                  html.Span(id=ids.SearchFile.DOWNLOAD_MESSAGE, className="small ms-2")], className="mb-2"),
        results_grid(ids.SearchFile.GRID, target=default),
    ], id=ids.SearchFile.PAGE, className="py-3")
