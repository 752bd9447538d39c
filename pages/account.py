"""Account page (signed-in users): account details and personal API tokens.

Callbacks: ``callbacks.account`` (create / revoke tokens; CSRF-protected like every
Dash callback POST).
"""

from __future__ import annotations

import dash
from dash import dcc, html
from flask_login import current_user

from components.tokens import token_table, when as _when

dash.register_page(__name__, path="/account", name="Account", title="Your account · nano-org", order=90)


def layout(**_query):
    if not current_user.is_authenticated:
        return html.Div([
            html.H1("Your account", className="h3"),
            html.P(["Please ", html.A("log in", href="/login?next=/account", id="account-login"),
                    " to see your account."]),
        ], id="account-page", className="nanoorg-narrow")
    user = current_user
    return html.Div([
        html.H1("Your account", className="h3 mb-3"),
        html.Dl([
            html.Dt("User name", className="col-sm-3"), html.Dd(user.username, id="account-username", className="col-sm-9"),
            html.Dt("Email", className="col-sm-3"), html.Dd(user.email, id="account-email", className="col-sm-9"),
            html.Dt("Member since", className="col-sm-3"), html.Dd(_when(user.created_at), className="col-sm-9"),
        ], className="row mb-4"),
        html.H2("API tokens", className="h5"),
        html.P(["Tokens let scripts use the ", dcc.Link("API", href="/guide/api"), " as you (header ",
                html.Code("Authorization: Bearer <token>"), "). A new token is shown once: copy it then."],
               className="small"),
        html.Div([
            dcc.Input(id="account-token-name", type="text", placeholder="Token name",
                      maxLength=100, debounce=False, style={"width": "18rem"}),
            html.Button("Create token", id="account-token-create", n_clicks=0, className="btn btn-primary"),
        ], className="d-flex gap-2 mb-3 align-items-center"),
        html.Div(id="account-token-new"),
        html.Div(token_table(user), id="account-token-list"),
    ], id="account-page", className="nanoorg-narrow")
