"""Account page callbacks: create and revoke API tokens.

Every call re-checks the signed-in user (never an id from the browser alone): a token id posted
by someone else is refused by ``users.revoke_api_token``, which only revokes the caller's tokens.
"""

from __future__ import annotations

from dash import ALL, Input, Output, State, ctx, dcc, html, no_update
from flask_login import current_user

from databank import users
from components.tokens import token_table


def _alert(children, kind: str = "success", alert_id: str = "account-token-message"):
    return html.Div(children, id=alert_id, className=f"alert alert-{kind}", role="alert")


def manage_tokens(_create_clicks, _revoke_clicks, name):
    """Create a token (shown once) or revoke one; returns (message, token list, name field)."""
    if not current_user.is_authenticated:
        return _alert("Your session has ended: log in again.", "warning"), no_update, no_update
    trigger = ctx.triggered_id
    if trigger == "account-token-create":
        token = users.create_api_token(current_user, (name or "").strip() or "token")
        message = _alert([
            html.Div("New token (shown only this once: copy it now):", className="mb-1"),
            html.Div([html.Code(token, id="account-token-value", className="user-select-all fs-6"),
                      dcc.Clipboard(target_id="account-token-value", title="Copy", className="d-inline-block ms-2")]),
        ])
        return message, token_table(current_user), ""
    if isinstance(trigger, dict) and trigger.get("type") == "account-token-revoke":
        if not ctx.triggered or not ctx.triggered[0].get("value"):
            return no_update, no_update, no_update
        if users.revoke_api_token(current_user, trigger.get("index")):
            return _alert("Token revoked."), token_table(current_user), no_update
        return _alert("No such token.", "warning"), token_table(current_user), no_update
    return no_update, no_update, no_update


def register(app) -> None:
    app.callback(
        Output("account-token-new", "children"),
        Output("account-token-list", "children"),
        Output("account-token-name", "value"),
        Input("account-token-create", "n_clicks"),
        Input({"type": "account-token-revoke", "index": ALL}, "n_clicks"),
        State("account-token-name", "value"),
        prevent_initial_call=True,
    )(manage_tokens)
