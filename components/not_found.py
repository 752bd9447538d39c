"""The "not found" card shown for missing and forbidden objects alike (ids of private data never leak)."""

from __future__ import annotations

import dash_bootstrap_components as dbc
from dash import dcc, html
from flask_login import current_user


def not_found_card(*, noun: str, path: str, object_id, url_id: str, card_id: str):
    """A card saying there is no ``noun`` the visitor can see at ``path``, with a log-in link for
    anonymous visitors (back to ``path`` afterwards). ``url_id`` is the page's dcc.Location id."""
    signed_in = getattr(current_user, "is_authenticated", False)
    return dbc.Container([
        dcc.Location(id=url_id, refresh="callback-nav"),
        html.H1(f"{noun.capitalize()} not found", className="h3 mt-4"),
        html.P(f"There is no {noun} at this address that you can see. It may have been deleted or made "
               "private, or you may need to log in.", className="text-muted"),
        html.Div([
            dcc.Link("Back to the databank", href="/databank", className="btn btn-primary me-2"),
            html.A("Log in", href=f"/login?next={path}", className="btn btn-outline-primary")
            if not signed_in and str(object_id or "").isdigit() else None,
        ]),
    ], className="py-3", id=card_id)
