"""Callbacks of /contact: store the message for the administrators (``databank.contact``)."""

from __future__ import annotations

import dash_bootstrap_components as dbc
from dash import Input, Output, State
from dash.exceptions import PreventUpdate
from flask import request
from flask_login import current_user

from databank.contact import ContactError, store_message
import ids


def send_message(n_clicks, reply_to, body):
    """-> (result alert, body value): the body is cleared once the message is stored."""
    if not n_clicks:
        raise PreventUpdate
    try:
        store_message(current_user, reply_to, body, client=request.remote_addr)
    except ContactError as error:
        return dbc.Alert(str(error), color="danger", className="py-2"), body
    return dbc.Alert("Thank you: your message is stored for the administrators, who answer by email.",
                     color="success", className="py-2"), ""


def register(app) -> None:
    """Wire the contact callbacks to ``app``."""
    app.callback(Output(ids.Contact.RESULT, "children"), Output(ids.Contact.BODY, "value"),
                 Input(ids.Contact.SEND, "n_clicks"), State(ids.Contact.REPLY_TO, "value"),
                 State(ids.Contact.BODY, "value"), prevent_initial_call=True)(send_message)
