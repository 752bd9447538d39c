"""The page shown for unknown addresses (Dash pages' ``not_found_404`` module)."""

from __future__ import annotations

import dash
from dash import dcc, html

dash.register_page(__name__, path="/404", name="Not found", title="Page not found · nano-org")


def layout(**_query):
    return html.Div([
        html.H1("Page not found", className="h3"),
        html.P("There is no page at this address, or it is not available to you."),
        html.P([dcc.Link("Home", href="/"), " · ", dcc.Link("Databank", href="/databank"), " · ",
                dcc.Link("User Guide", href="/guide")]),
    ], id="not-found-page")
