"""/contact: how to reach the administrators: the configured address (NANOORG_CONTACT_EMAIL) when
there is one, and always a form whose messages are stored for them (``nanoorg messages``).
Callbacks: ``callbacks.contact``."""

from __future__ import annotations

import dash
import dash_bootstrap_components as dbc
from dash import html
from flask import current_app
from flask_login import current_user

from databank.contact import MAX_MESSAGE_CHARS
import ids

dash.register_page(__name__, path="/contact", name="Contact", title="Contact · nano-org",
                   description="Write to the administrators of this nano-org instance.")


def address_line():
    """The configured address as a mailto link, or a plain statement that there is none."""
    address = current_app.config.get("NANOORG_CONTACT_EMAIL")
    if address:
        return html.P(["Write to ", html.A(address, href=f"mailto:{address}", id=ids.Contact.EMAIL),
                       ", or use the form below."])
    return html.P("This nano-org instance has no public contact address. Use the form below: your message is "
                  "stored for the administrators, who answer by email.", id=ids.Contact.EMAIL)


def layout(**_query):
    signed_in = bool(getattr(current_user, "is_authenticated", False))
    return html.Div([
        html.H1("Contact the administrators", className="h3 mb-3"),
        address_line(),
        dbc.Form([
            dbc.Label("Your email address (for the answer)", html_for=ids.Contact.REPLY_TO),
            dbc.Input(id=ids.Contact.REPLY_TO, type="email", maxLength=255, className="mb-2",
                      value=current_user.email if signed_in else None),
            dbc.Label("Message", html_for=ids.Contact.BODY),
            dbc.Textarea(id=ids.Contact.BODY, maxLength=MAX_MESSAGE_CHARS, rows=6, className="mb-2",
                         placeholder="Your question, or what went wrong (with the dataset or file address)"),
            dbc.Button("Send", id=ids.Contact.SEND, color="primary", n_clicks=0),
        ]),
        html.Div(id=ids.Contact.RESULT, className="mt-3", role="status"),
    ], id=ids.Contact.PAGE, className="nanoorg-narrow")
