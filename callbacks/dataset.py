"""Callbacks of the Dataset Details page (/dataset/<id>): the owner's edit, visibility and delete.

Every data-touching callback takes the dataset id from the page's URL (``dataset-url.pathname``),
never from component props, and the data layer re-checks ``write`` permission for the signed-in
user (``access.get_dataset(current_user, id, "write")`` / ``datasets.update_metadata`` / ...), so a
forged pathname or request from a non-owner changes nothing.

``register(app)`` wires the callbacks to ``app``.
"""

from __future__ import annotations

import re

from dash import ALL, Input, Output, State, no_update
from flask_login import current_user

from databank import datasets
from databank.access import AccessDenied, get_dataset
from databank.metadata import FIELDS_BY_NAME, MetadataError
from components.metadata_table import dataset_info
import ids

PATH_RE = re.compile(r"^/dataset/(\d+)/?$")

DENIED = "You may not change this dataset."


def dataset_id_from_path(pathname) -> int | None:
    """The dataset id of a /dataset/<id> URL path, else None."""
    match = PATH_RE.match(str(pathname or ""))
    return int(match.group(1)) if match else None


def _owned_dataset(pathname):
    """The dataset of the page if the current user may write it, else None."""
    dataset_id = dataset_id_from_path(pathname)
    if dataset_id is None:
        return None
    try:
        return get_dataset(current_user, dataset_id, "write")
    except AccessDenied:
        return None


def _alert(message, colour="danger"):
    import dash_bootstrap_components as dbc
    return dbc.Alert(message, color=colour, className="py-2 mb-0")


def save_metadata(n_clicks, field_values, field_ids, flag_values, flag_ids, pathname):
    """Owner saves the edit form -> (invalid flags, per-field messages, feedback, modal open, info)."""
    n_fields = len(field_ids or [])
    unchanged = ([no_update] * n_fields, [no_update] * n_fields)
    if not n_clicks:
        return *unchanged, no_update, no_update, no_update
    dataset = _owned_dataset(pathname)
    if dataset is None:
        return *unchanged, _alert(DENIED), no_update, no_update
    changes = {}
    for ident, value in zip(field_ids or [], field_values or []):
        name = ident.get("name") if isinstance(ident, dict) else None
        if name in FIELDS_BY_NAME:
            changes[name] = value.strip() if isinstance(value, str) else value
    for ident, value in zip(flag_ids or [], flag_values or []):
        name = ident.get("name") if isinstance(ident, dict) else None
        if name in FIELDS_BY_NAME and FIELDS_BY_NAME[name].kind == "bool":
            changes[name] = bool(value)
    try:
        dataset = datasets.update_metadata(current_user, dataset.id, changes)
    except AccessDenied:
        return *unchanged, _alert(DENIED), no_update, no_update
    except MetadataError as exc:
        names = [ident.get("name") for ident in field_ids or []]
        invalid = [name in exc.errors for name in names]
        messages = [exc.errors.get(name, "") for name in names]
        other = [f"{k}: {v}" for k, v in exc.errors.items() if k not in names]
        text = "Please correct the highlighted fields." + (" " + "; ".join(other) if other else "")
        return invalid, messages, _alert(text), no_update, no_update
    return ([False] * n_fields, [""] * n_fields, "", False,
            dataset_info(datasets.display_record(dataset, is_owner=True)))


def save_visibility(n_clicks, visibility, shared_text, pathname):
    """Owner sets private / shared with named users / public -> (feedback, modal open, info)."""
    if not n_clicks:
        return no_update, no_update, no_update
    dataset = _owned_dataset(pathname)
    if dataset is None:
        return _alert(DENIED), no_update, no_update
    try:
        dataset = datasets.set_visibility(current_user, dataset.id, visibility,
                                          shared_text if visibility == "shared" else ())
    except AccessDenied:
        return _alert(DENIED), no_update, no_update
    except MetadataError as exc:
        return _alert("; ".join(exc.errors.values())), no_update, no_update
    return "", False, dataset_info(datasets.display_record(dataset, is_owner=True))


def delete_dataset(n_clicks, pathname):
    """Owner confirms deletion -> (feedback, navigate to /databank)."""
    if not n_clicks:
        return no_update, no_update
    dataset = _owned_dataset(pathname)
    if dataset is None:
        return _alert(DENIED), no_update
    try:
        datasets.delete_dataset(current_user, dataset.id)
    except AccessDenied:
        return _alert(DENIED), no_update
    return _alert("Dataset deleted.", "success"), "/databank"



TOGGLE = "function(open_clicks, cancel_clicks, is_open) { return !is_open; }"
SHARED_INPUT_DISABLED = "function(choice) { return choice !== 'shared'; }"


def register(app) -> None:
    """Wire the Dataset Details callbacks to ``app`` ."""
    callback = app.callback
    clientside = app.clientside_callback
    for name in ("edit", "visibility", "delete"):
        clientside(TOGGLE, Output(f"dataset-{name}-modal", "is_open"),
                   Input(f"dataset-{name}-open", "n_clicks"), Input(f"dataset-{name}-cancel", "n_clicks"),
                   State(f"dataset-{name}-modal", "is_open"), prevent_initial_call=True)
    clientside(SHARED_INPUT_DISABLED, Output("dataset-visibility-users", "disabled"),
               Input("dataset-visibility-choice", "value"))
    callback(
        Output({"type": ids.Dataset.FIELD_TYPE, "name": ALL}, "invalid"),
        Output({"type": ids.Dataset.FEEDBACK_TYPE, "name": ALL}, "children"),
        Output("dataset-edit-feedback", "children"),
        Output("dataset-edit-modal", "is_open", allow_duplicate=True),
        Output(ids.Dataset.INFO, "children"),
        Input("dataset-edit-save", "n_clicks"),
        State({"type": ids.Dataset.FIELD_TYPE, "name": ALL}, "value"), State({"type": ids.Dataset.FIELD_TYPE, "name": ALL}, "id"),
        State({"type": ids.Dataset.FLAG_TYPE, "name": ALL}, "value"), State({"type": ids.Dataset.FLAG_TYPE, "name": ALL}, "id"),
        State(ids.Dataset.URL, "pathname"),
        prevent_initial_call=True,
    )(save_metadata)
    callback(
        Output("dataset-visibility-feedback", "children"),
        Output("dataset-visibility-modal", "is_open", allow_duplicate=True),
        Output(ids.Dataset.INFO, "children", allow_duplicate=True),
        Input("dataset-visibility-save", "n_clicks"),
        State("dataset-visibility-choice", "value"), State("dataset-visibility-users", "value"),
        State(ids.Dataset.URL, "pathname"),
        prevent_initial_call=True,
    )(save_visibility)
    callback(
        Output("dataset-delete-feedback", "children"),
        Output(ids.Dataset.URL, "href"),
        Input("dataset-delete-confirm", "n_clicks"),
        State(ids.Dataset.URL, "pathname"),
        prevent_initial_call=True,
    )(delete_dataset)
