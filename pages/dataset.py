"""/dataset/<dataset_id>: the Dataset Details page.

Title and badges, dataset links, the full metadata table, the Data Files table with per-file
download and "View data file and analysis" links, dataset-level downloads (registered users) and,
for the owner, edit / visibility / delete. Missing and forbidden datasets look the same ("not
found"), so private ids do not leak. Self-similarity and similarity search come from
``components.similarity_section`` at the bottom.
"""

from __future__ import annotations

import dash
import dash_bootstrap_components as dbc
from dash import dcc, html
from flask_login import current_user

from databank.access import AccessDenied, authorise, get_dataset
from databank.metadata import METADATA_FIELDS, VISIBILITIES, VISIBILITY_LABELS
from databank import datasets
from components.file_table import download_buttons, file_table
from components.metadata_table import dataset_info
from components.similarity_section import similarity_section
from components.not_found import not_found_card
import ids

dash.register_page(__name__, path_template="/dataset/<dataset_id>", name="Dataset",
                   title="Dataset · nano-org", description="A dataset of the nano-org databank.")



def not_found(dataset_id=None):
    return not_found_card(noun="dataset", path=f"/dataset/{dataset_id}", object_id=dataset_id, url_id=ids.Dataset.URL,
                          card_id="dataset-not-found")


def _field_input(field, value):
    ident = {"type": ids.Dataset.FIELD_TYPE, "name": field.name}
    text = "" if value is None else str(value)
    if field.kind == "choice":
        control = dbc.Select(id=ident, options=[{"label": c, "value": c} for c in field.choices], value=text)
    elif field.kind == "longtext":
        control = dbc.Textarea(id=ident, value=text, rows=4, maxLength=field.max_length)
    else:
        control = dbc.Input(id=ident, value=text, type="text", maxLength=field.max_length,
                            inputmode="decimal" if field.kind == "float" else None)
    label = field.label + (" *" if field.required else "")
    return dbc.Row([
        dbc.Label(label, width=4, className="text-md-end"),
        dbc.Col([control, dbc.FormFeedback(id={"type": ids.Dataset.FEEDBACK_TYPE, "name": field.name}, type="invalid"),
                 dbc.FormText(field.help) if field.help else None], width=8),
    ], className="mb-2")


def _flag_input(field, value):
    return dbc.Row(dbc.Col(dbc.Checkbox(id={"type": ids.Dataset.FLAG_TYPE, "name": field.name}, label=field.label,
                                        value=bool(value)), width={"size": 8, "offset": 4}), className="mb-1")


def edit_modal(record: dict):
    rows = [_flag_input(f, record.get(f.name)) if f.kind == "bool" else _field_input(f, record.get(f.name))
            for f in METADATA_FIELDS]
    return dbc.Modal([
        dbc.ModalHeader(dbc.ModalTitle("Edit metadata")),
        dbc.ModalBody([html.Div(rows), html.Div(id="dataset-edit-feedback")]),
        dbc.ModalFooter([dbc.Button("Cancel", id="dataset-edit-cancel", color="secondary", outline=True),
                         dbc.Button("Save", id="dataset-edit-save", color="primary")]),
    ], id="dataset-edit-modal", size="lg", scrollable=True, is_open=False)


def visibility_modal(record: dict):
    return dbc.Modal([
        dbc.ModalHeader(dbc.ModalTitle("Who can see this dataset")),
        dbc.ModalBody([
            dbc.RadioItems(id="dataset-visibility-choice", value=record.get("visibility"),
                           options=[{"label": VISIBILITY_LABELS[v], "value": v} for v in VISIBILITIES],
                           className="mb-3"),
            dbc.Label("Share with (user names, comma-separated)", html_for="dataset-visibility-users"),
            dbc.Input(id="dataset-visibility-users", value=", ".join(record.get("shared_with") or []),
                      placeholder="e.g. alice, bob", disabled=record.get("visibility") != "shared"),
            html.Div(id="dataset-visibility-feedback", className="mt-2"),
        ]),
        dbc.ModalFooter([dbc.Button("Cancel", id="dataset-visibility-cancel", color="secondary", outline=True),
                         dbc.Button("Save", id="dataset-visibility-save", color="primary")]),
    ], id="dataset-visibility-modal", is_open=False)


def delete_modal(record: dict):
    return dbc.Modal([
        dbc.ModalHeader(dbc.ModalTitle("Delete dataset")),
        dbc.ModalBody([
            html.P(["Delete ", html.Strong(record.get("title")), " with all its ",
                    f"{record.get('n_files', 0)} data file(s)? This cannot be undone."]),
            html.Div(id="dataset-delete-feedback"),
        ]),
        dbc.ModalFooter([dbc.Button("Cancel", id="dataset-delete-cancel", color="secondary", outline=True),
                         dbc.Button("Delete dataset", id="dataset-delete-confirm", color="danger")]),
    ], id="dataset-delete-modal", is_open=False)


def owner_tools(record: dict):
    return html.Div([
        dbc.Button("Edit metadata", id="dataset-edit-open", color="secondary", outline=True, size="sm",
                   className="me-2"),
        dbc.Button("Change visibility", id="dataset-visibility-open", color="secondary", outline=True, size="sm",
                   className="me-2"),
        dbc.Button("Delete dataset", id="dataset-delete-open", color="danger", outline=True, size="sm"),
        edit_modal(record), visibility_modal(record), delete_modal(record),
    ], id="dataset-owner-tools", className="float-md-end mb-2 ms-md-3")


def dataset_view(record: dict, *, is_owner: bool, can_download: bool):
    """The whole page for a dataset the visitor may read."""
    dataset_id = record["id"]
    return dbc.Container([
        dcc.Location(id=ids.Dataset.URL, refresh="callback-nav"),
        html.Div(dcc.Link("← Databank", href="/databank", className="small"), className="mt-3"),
        owner_tools(record) if is_owner else None,
        dataset_info(record, id=ids.Dataset.INFO),
        html.H2("Data Files", className="h4 mt-4", id="data-files"),
        download_buttons(dataset_id, can_download, next_path=f"/dataset/{dataset_id}"),
        file_table(record.get("files") or [], can_download),
        html.Div(similarity_section(dataset_id), id="dataset-similarity-section", className="mt-4"),
    ], className="pb-5", id="dataset-page")


def layout(dataset_id=None, **_query):
    if dataset_id is None:          # Dash's validation layout call
        return html.Div()
    try:
        dataset = get_dataset(current_user, dataset_id, "read")
    except AccessDenied:
        return not_found(dataset_id)
    is_owner = authorise(current_user, dataset, "write")
    can_download = authorise(current_user, dataset, "download")
    return dataset_view(datasets.display_record(dataset, is_owner=is_owner), is_owner=is_owner, can_download=can_download)
