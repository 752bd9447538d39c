"""/compare: pick 2-10 datasets you may read and compare them.

Heat map of the mean thinned (or unthinned) dissimilarity λ between every pair, rows and columns in
the leaf order of average-linkage hierarchical clustering (scipy), the diagonal holding each
dataset's self-similarity mean; and the datasets' self-similarity distributions overlaid.
``/compare?ids=3,5,8`` preselects datasets, and the address follows the picker (a comparison is a link). Callbacks: ``callbacks.compare``.
"""

from __future__ import annotations

import dash
import dash_bootstrap_components as dbc
from dash import dcc, html

from components.similarity_figures import empty_figure
from components.similarity_section import SEARCH_GUIDE, SELF_GUIDE, progress_block, target_selector, thinning_targets
import ids

dash.register_page(__name__, path="/compare", name="Compare datasets", title="Compare datasets · nano-org",
                   description="Pairwise similarity of chosen nano-org datasets.")



def layout(**_query):
    targets, default = thinning_targets()
    graph_config = {"displaylogo": False, "responsive": True}
    return dbc.Container([
        dcc.Location(id=ids.Compare.URL, refresh=False),
        dcc.Store(id=ids.Compare.URL_STATE),
        html.H1("Compare datasets", className="h3 mt-3"),
        html.P(["Choose 2 to 10 datasets. The heat map shows the mean dissimilarity λ between every pair (lower = "
                "more similar; λ > 1 = significantly different), ordered so that similar datasets sit together; the "
                "diagonal is each dataset's self-similarity. ", html.A("Similarity guide", href=SEARCH_GUIDE),
                " · ", html.A("Self-similarity guide", href=SELF_GUIDE)], className="text-body-secondary"),
        dbc.Card(dbc.CardBody([
            dbc.Label("Datasets", html_for=ids.Compare.PICKER, className="small fw-semibold mb-1"),
            dcc.Dropdown(id=ids.Compare.PICKER, options=[], value=[], multi=True, placeholder="Choose datasets…",
                         className="mb-2"),
            html.Div(id=ids.Compare.LINK_MESSAGE),
            html.Div([
                target_selector(ids.Compare.TARGET, targets, default),
                html.Div([
                    dbc.Label("Show", html_for=ids.Compare.KIND, className="small mb-0 me-2 fw-semibold"),
                    dbc.RadioItems(id=ids.Compare.KIND, value="thinned", inline=True, className="small",
                                   options=[{"label": "thinned λ̄", "value": "thinned"},
                                            {"label": "unthinned λ̄", "value": "unthinned"}]),
                ], className="d-flex align-items-center"),
                dbc.Button("Compare again", id=ids.Compare.RUN, size="sm", color="secondary", outline=True),
            ], className="d-flex flex-wrap align-items-center gap-4"),
        ]), className="mb-3"),
        progress_block(ids.Compare.PROGRESS, ids.Compare.PROGRESS_TEXT, ids.Compare.CANCEL, ids.Compare.PROGRESS_BOX),
        html.Div(id=ids.Compare.MESSAGE),
        dbc.Row([
            dbc.Col(dcc.Graph(id=ids.Compare.HEATMAP, config=graph_config, figure=empty_figure("Mean λ", "Choose at least two datasets.")),
                    lg=7, className="mb-3"),
            dbc.Col(dcc.Graph(id=ids.Compare.OVERLAY, config=graph_config, figure=empty_figure("Self-similarity", "")), lg=5, className="mb-3"),
        ]),
        html.Div(id=ids.Compare.TABLE),
    ], id=ids.Compare.PAGE, className="py-3")

