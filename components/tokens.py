"""The API-token table of the account page (shared by the page layout and its callbacks)."""

from __future__ import annotations

from dash import html

from databank import users


def when(moment) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC") if moment else "never"


def token_table(user):
    """The user's active tokens, each with a Revoke button (pattern-matching id)."""
    tokens = users.list_api_tokens(user)
    if not tokens:
        return html.P("You have no API tokens.", id="account-no-tokens", className="text-body-secondary")
    rows = [html.Tr([
        html.Td(token.name), html.Td(html.Code(token.prefix + "…")), html.Td(when(token.created_at)),
        html.Td(when(token.last_used_at)),
        html.Td(html.Button("Revoke", id={"type": "account-token-revoke", "index": token.id},
                            className="btn btn-outline-danger btn-sm", n_clicks=0)),
    ]) for token in tokens]
    return html.Table([
        html.Thead(html.Tr([html.Th("Name"), html.Th("Token"), html.Th("Created"), html.Th("Last used"), html.Th("")])),
        html.Tbody(rows),
    ], className="table table-sm align-middle", id="account-token-table")
