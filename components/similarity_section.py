"""The similarity part of the Dataset Details page: self-similarity histograms and the similarity
search results (layout only; callbacks in ``callbacks.similarity``).

``similarity_section(dataset_id)`` is placed into the page's ``#dataset-similarity-section``. The
dataset id it carries is only a hint for the callbacks: each of them re-checks that the current
user may read the dataset (the data layer raises AccessDenied otherwise).
"""

from __future__ import annotations

import dash_ag_grid as dag
import dash_bootstrap_components as dbc
from dash import dcc, html
from flask import has_app_context
from flask_login import current_user

from components.similarity_figures import result_columns
from databank.core import settings_of
import ids

# ---- component ids (shared with the callbacks) ----

FILTERS = ((ids.Similarity.FILTER_PROTEIN, "protein", "Protein"), (ids.Similarity.FILTER_CELL_TYPE, "cell_type", "Cell type"),
           (ids.Similarity.FILTER_MODALITY, "modality", "Modality"))
SELF_GUIDE = "/guide/self-similarity"
SEARCH_GUIDE = "/guide/similarity"


def thinning_targets() -> tuple[tuple[int, ...], int]:
    """(targets, default) in loc/µm² from the instance settings."""
    settings = settings_of()
    return tuple(settings.thinning_targets), int(settings.default_thinning)


def target_selector(id: str, targets, default) -> html.Div:
    return html.Div([
        dbc.Label("Thinning target", html_for=id, className="me-2 mb-0 small fw-semibold"),
        dbc.RadioItems(id=id, value=default, inline=True, className="small d-inline-block",
                       options=[{"label": f"{t} loc/µm²", "value": t} for t in targets]),
    ], className="d-flex align-items-center flex-wrap")


def _self_block() -> dbc.Card:
    def column(graph_id, summary_id, title):
        return dbc.Col([
            dcc.Loading(dcc.Graph(id=graph_id, config={"displaylogo": False, "responsive": True},
                                  style={"height": "320px"}), type="default", delay_show=300),
            html.Div(id=summary_id, className="mt-1", **{"aria-label": f"{title} summary"}),
        ], lg=6, className="mb-3")

    return dbc.Card([
        dbc.CardHeader(html.Div([
            html.H3("Self-similarity", className="h5 mb-0 me-3"),
            html.A("How to read these histograms", href=SELF_GUIDE, className="small", id="sim-self-guide-link"),
        ], className="d-flex align-items-baseline flex-wrap")),
        dbc.CardBody([
            html.P(["Dissimilarity λ between every pair of this dataset's 3 × 3 µm tiles: mass near 0 means a "
                    "homogeneous organisation; a tail beyond the dashed line (λ = 1, significantly different) "
                    "means some regions or cells differ."], className="small text-body-secondary mb-2"),
            dbc.Switch(id=ids.Similarity.SPLIT, value=False, className="small mb-2",
                       label="Split pairs within a file (same cell) and between files (different cells)"),
            html.Div(id=ids.Similarity.SELF_MESSAGE),
            dbc.Row([column(ids.Similarity.SELF_THINNED, ids.Similarity.SELF_SUMMARY_THINNED, "Thinned"),
                     column(ids.Similarity.SELF_UNTHINNED, ids.Similarity.SELF_SUMMARY_UNTHINNED, "Unthinned")]),
        ]),
    ], className="mb-4", id="sim-self-card")


def _filter_bar() -> html.Div:
    dropdowns = [dbc.Col([
        dbc.Label(label, html_for=ident, className="small mb-0"),
        dcc.Dropdown(id=ident, options=[], value=None, placeholder=f"Any {label.lower()}", clearable=True,
                     className="small"),
    ], md=3, sm=6, className="mb-2") for ident, _, label in FILTERS]
    dropdowns.append(dbc.Col([
        dbc.Label("Tags contain", html_for=ids.Similarity.FILTER_TAGS, className="small mb-0"),
        dbc.Input(id=ids.Similarity.FILTER_TAGS, value="", placeholder="e.g. treated", debounce=True, size="sm"),
    ], md=3, sm=6, className="mb-2"))
    return html.Div([
        html.Div([
            html.Span("Filters:", className="small fw-semibold me-2"),
            dbc.Button("Same protein", id=ids.Similarity.SAME_PROTEIN, size="sm", color="secondary", outline=True, className="me-1 mb-1"),
            dbc.Button("Same cell type", id=ids.Similarity.SAME_CELL_TYPE, size="sm", color="secondary", outline=True,
                       className="me-1 mb-1"),
            dbc.Button("Same modality", id=ids.Similarity.SAME_MODALITY, size="sm", color="secondary", outline=True,
                       className="me-1 mb-1"),
            dbc.Button("Clear filters", id=ids.Similarity.CLEAR_FILTERS, size="sm", color="link", className="mb-1"),
        ], className="d-flex align-items-center flex-wrap mb-1"),
        dbc.Row(dropdowns, className="g-2"),
    ], id="sim-filters", className="mb-2")


def results_grid(id: str, *, target: int, metric: str = "thinned", height: str = "460px") -> dag.AgGrid:
    return dag.AgGrid(
        id=id, rowData=[], columnDefs=result_columns(metric, target),
        defaultColDef={"sortable": True, "resizable": True, "filter": True, "suppressHeaderMenuButton": False,
                       "wrapHeaderText": True, "autoHeaderHeight": True},
        dashGridOptions={"animateRows": False, "tooltipShowDelay": 400, "suppressDragLeaveHidesColumns": True,
                         "overlayNoRowsTemplate": {"function": "'No other readable dataset matches the filters.'"},
                         "pagination": True, "paginationPageSize": 50, "paginationPageSizeSelector": [25, 50, 100, 500]},
        columnSize="autoSize", style={"height": height, "width": "100%"}, className="ag-theme-quartz",
    )


def progress_block(progress_id: str, text_id: str, cancel_id: str, box_id: str) -> html.Div:
    return html.Div([
        dbc.Progress(id=progress_id, value=0, striped=True, animated=True, className="flex-grow-1 me-2",
                     style={"height": "1.1rem"}),
        html.Span(id=text_id, className="small text-body-secondary me-2"),
        dbc.Button("Cancel", id=cancel_id, size="sm", color="danger", outline=True),
    ], id=box_id, className="align-items-center mb-2", style={"display": "none"})


def _download_block(signed_in: bool, dataset_id) -> html.Div:
    if signed_in:
        control = dbc.Button("Download table (CSV)", id=ids.Similarity.DOWNLOAD, size="sm", color="primary", outline=True)
    else:
        control = html.Span([html.A("Log in", href=f"/login?next=/dataset/{dataset_id}"),
                             " to download the full table as CSV."], className="small",
                            id="sim-download-login")
    return html.Div([control, dcc.Download(id=ids.Similarity.DOWNLOAD_FILE), html.Span(id=ids.Similarity.DOWNLOAD_MESSAGE, className="small ms-2")],
                    className="d-flex align-items-center")


def _search_block(dataset_id, target: int, signed_in: bool) -> dbc.Card:
    return dbc.Card([
        dbc.CardHeader(html.Div([
            html.H3("Similarity search results", className="h5 mb-0 me-3"),
            html.A("How to read the scores", href=SEARCH_GUIDE, className="small me-3", id="sim-search-guide-link"),
            dcc.Link("Compare datasets", href=f"/compare?ids={dataset_id}", className="small me-3"),
            dcc.Link("Search with your own file", href="/search", className="small"),
        ], className="d-flex align-items-baseline flex-wrap")),
        dbc.CardBody([
            html.P("Every other dataset you may read, ranked by mean dissimilarity λ to this one (lower = more "
                   "similar; λ > 1 = significantly different). Thinned scores compare organisation at equal "
                   "density; unthinned scores also reflect density differences.",
                   className="small text-body-secondary mb-2"),
            _filter_bar(),
            html.Div([
                html.Div([
                    dbc.Label("Rank by", html_for=ids.Similarity.METRIC, className="me-2 mb-0 small fw-semibold"),
                    dbc.RadioItems(id=ids.Similarity.METRIC, value="thinned", inline=True, className="small d-inline-block",
                                   options=[{"label": "thinned λ̄", "value": "thinned"},
                                            {"label": "unthinned λ̄", "value": "unthinned"}]),
                ], className="d-flex align-items-center me-4"),
                dbc.Button("Search again", id=ids.Similarity.RUN, size="sm", color="secondary", outline=True, className="me-3"),
                _download_block(signed_in, dataset_id),
            ], className="d-flex align-items-center flex-wrap mb-2 gap-2"),
            progress_block(ids.Similarity.PROGRESS, ids.Similarity.PROGRESS_TEXT, ids.Similarity.CANCEL, ids.Similarity.PROGRESS_BOX),
            html.Div(id=ids.Similarity.STATUS, className="small mb-2", role="status"),
            results_grid(ids.Similarity.GRID, target=target),
        ]),
    ], id="sim-search-card")


def similarity_section(dataset_id) -> html.Div:
    """Self-similarity and similarity search for ``dataset_id`` (the Dataset Details page)."""
    targets, default = thinning_targets()
    signed_in = bool(getattr(current_user, "is_authenticated", False)) if has_app_context() else False
    return html.Div([
        dcc.Store(id=ids.Similarity.DATASET, data=str(dataset_id)),
        dcc.Store(id=ids.Similarity.OWN_META, data={}),
        html.Div([
            html.H2("Similarity", className="h4 mb-0 me-4", id="similarity"),
            target_selector(ids.Similarity.TARGET, targets, default),
            html.Span("Thinning keeps the same number of localisations in every tile, so thinned scores do not "
                      "depend on density; see the guide for the two targets.", className="small text-body-secondary"),
        ], className="d-flex align-items-center flex-wrap gap-3 mb-3"),
        _self_block(),
        _search_block(dataset_id, default, signed_in),
    ], id="sim-section")
