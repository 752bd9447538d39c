"""/upload: describe a dataset and upload its detection and ROI files (signed-in users only).

Layout only; the callbacks live in ``callbacks.upload`` and the chunked transfer in
``assets/chunked_upload.js`` + ``server.routes_upload``.
"""

from __future__ import annotations

import dash
import dash_bootstrap_components as dbc
from dash import dcc, html
from flask_login import current_user

from compute.formats import DETECTION_EXTENSIONS
from databank.core import settings_of
from databank.metadata import DSTORM_ONLY, METADATA_FIELDS, VISIBILITIES, VISIBILITY_LABELS
import ids

dash.register_page(__name__, path="/upload", name="Upload data", title="Upload data · nano-org",
                   description="Upload SMLM detection files with their ROIs and metadata", requires_login=True)

# component ids (pattern-matching ids are namespaced so other pages' forms never match)
META = ids.Upload.META            # {"type": META, "field": name}: text, choice, number inputs
META_BOOL = ids.Upload.META_BOOL  # checkboxes
META_FEEDBACK = ids.Upload.META_FEEDBACK

FULL_WIDTH = {"title", "tags", "experimental_details"}


def _label(field) -> dbc.Label:
    text = field.label + (" *" if field.required else "")
    return dbc.Label(text, html_for=f"upload-field-{field.name}", className="fw-semibold mb-1")


def _example(field) -> str | None:
    """Help texts that are just an example become the placeholder; others are shown below the input."""
    return field.help if field.help.startswith("e.g.") else None


def _input(field):
    component_id = {"type": META, "field": field.name}
    common = dict(id=component_id, placeholder=_example(field))
    if field.kind == "choice":
        options = [{"label": choice, "value": choice} for choice in field.choices]
        return dbc.Select(id=component_id, options=options, placeholder=f"Choose {field.label.lower()}…")
    if field.kind == "longtext":
        return dbc.Textarea(**common, rows=4, debounce=True, maxLength=field.max_length)
    if field.kind == "float":
        return dbc.InputGroup([
            # no min=: the browser would turn "-5" into None silently; clean_metadata explains instead
            dbc.Input(**common, type="number", step="any", debounce=True),
            dbc.InputGroupText("nm"),
            dbc.FormFeedback(id={"type": META_FEEDBACK, "field": field.name}, type="invalid"),
        ], className="has-validation")
    kind = {"email": "email", "url": "url"}.get(field.kind, "text")
    return dbc.Input(**common, type=kind, debounce=True, maxLength=field.max_length)


def field_block(field, width: int = 6) -> dbc.Col:
    """Label, input, live format feedback and help text for one metadata field."""
    children = [_label(field), _input(field)]
    if field.kind != "float":   # the number input carries its feedback inside its input group
        children.append(dbc.FormFeedback(id={"type": META_FEEDBACK, "field": field.name}, type="invalid"))
    if field.help and not _example(field) and field.name not in DSTORM_ONLY:
        children.append(dbc.FormText(field.help))
    return dbc.Col(html.Div(children, id=f"upload-field-{field.name}"), md=width, className="mb-3")


def metadata_form():
    """Inputs generated from METADATA_FIELDS (new fields appear here automatically)."""
    dstorm = [field_block(f) for f in METADATA_FIELDS if f.name in DSTORM_ONLY]
    bools = [dbc.Checkbox(id={"type": META_BOOL, "field": f.name}, label=f.label, value=False, className="me-4")
             for f in METADATA_FIELDS if f.kind == "bool"]
    names = [f.name for f in METADATA_FIELDS]
    # the dSTORM block opens below the modality / software row
    dstorm_after = "software" if "software" in names else "modality"
    rows = []
    for field in METADATA_FIELDS:
        if field.name in DSTORM_ONLY or field.kind == "bool":
            continue
        rows.append(field_block(field, 12 if field.name in FULL_WIDTH else 6))
        if field.name == dstorm_after:
            rows.append(dbc.Col(dbc.Collapse(dbc.Card(dbc.CardBody([
                html.P("dSTORM: give the primary and secondary antibodies with their reference (catalogue) numbers.",
                       className="small text-muted mb-2"),
                dbc.Row(dstorm),
            ]), className="mb-3 bg-light"), id="upload-dstorm-fields", is_open=False), md=12))
    checks = dbc.Col([
        html.Div(bools, className="d-flex flex-wrap"),
        dbc.Alert([html.Strong("Fixed cells only. "),
                   "nano-org currently supports only fixed-cell data and cannot analyse live-cell datasets."],
                  color="warning", className="py-2 px-3 mt-2 mb-0 small", id="upload-fixed-cell-note"),
    ], md=12, className="mb-3")
    return dbc.Row(rows + [checks])


def visibility_block():
    """Visibility choice; sharing by exact user names (no list of accounts is ever shown)."""
    return html.Div([
        dbc.RadioItems(id="upload-visibility", value="private",
                       options=[{"label": VISIBILITY_LABELS.get(v, v), "value": v} for v in VISIBILITIES]),
        dbc.Collapse(html.Div([
            dbc.Label("Share with", html_for="upload-share-with", className="mt-2 mb-1 fw-semibold"),
            dbc.Input(id="upload-share-with", value="", maxLength=2000, placeholder="e.g. jdoe, asmith"),
            dbc.FormText("Exact user names, separated by commas (ask your collaborators for theirs)."),
        ]), id="upload-share-wrap", is_open=False),
    ])


def files_block(max_mb: int):
    extensions = ", ".join(DETECTION_EXTENSIONS)
    return html.Div([
        html.Div([
            html.Div("Drop files here", className="fs-5 fw-semibold"),
            html.Div([f"Detection files ({extensions}) and their polygon ROI files, named ",
                      html.Code("{DETECTION_FILE_NAME}_ROI*.csv"),
                      " (e.g. cell1_ROI_1.csv and cell1_ROI_2.csv for cell1.csv)."], className="small text-muted"),
            html.Div([
                dbc.Button("Choose files…", id="upload-choose", color="primary", className="me-2", n_clicks=0),
                dbc.Button("Clear", id="upload-clear", color="secondary", outline=True, n_clicks=0),
            ], className="mt-2"),
            html.Div(f"Up to {max_mb:,} MB per file. Several files at once; files are sent in chunks as soon as "
                     "the list below has no problems.", className="small text-muted mt-2"),
        ], id="upload-drop-zone", className="upload-drop-zone text-center p-4 mb-3",
            **{"data-max-bytes": str(max_mb * 1024 * 1024), "data-accept": ",".join(DETECTION_EXTENSIONS)}),
        html.Div(id="upload-plan-view"),
        html.Div(id="upload-transfer-status", className="small mt-2", role="status"),
    ])


def anonymous_layout():
    return dbc.Container(dbc.Alert([
        html.H4("Sign in to upload data", className="alert-heading"),
        html.P("Only registered users can upload datasets to nano-org."),
        html.A("Log in", href="/login?next=/upload", className="btn btn-primary me-2", id="upload-login-link"),
        html.A("Register", href="/register?next=/upload", className="btn btn-outline-primary"),
    ], color="info", className="mt-4"), className="py-3", id="upload-page")


def layout(**_kwargs):
    if not getattr(current_user, "is_authenticated", False):
        return anonymous_layout()
    settings = settings_of()
    return dbc.Container([
        html.H2("Upload data", className="mt-3"),
        html.P("Complete the form as thoroughly as possible: detailed metadata makes your dataset easier to "
               "find and improves filtering. Fields marked * are required.", className="text-muted"),
        dbc.Card([dbc.CardHeader(html.H5("1. Files", className="mb-0")),
                  dbc.CardBody(files_block(settings.max_upload_mb))],
                 className="mb-3"),
        dbc.Card([dbc.CardHeader(html.H5("2. Describe the dataset", className="mb-0")), dbc.CardBody(metadata_form())],
                 className="mb-3"),
        dbc.Card([dbc.CardHeader(html.H5("3. Who can see it", className="mb-0")),
                  dbc.CardBody(visibility_block())], className="mb-3"),
        html.Div([
            dbc.Button("Upload", id="upload-submit", color="success", size="lg", className="me-2", n_clicks=0),
            dbc.Button("Cancel", id="upload-cancel-job", color="danger", outline=True, disabled=True, n_clicks=0),
        ], className="mb-3"),
        html.Div([
            dbc.Progress(id="upload-progress", value=0, label="", striped=True, animated=True,
                         style={"height": "1.5rem"}),
            html.Div(id="upload-progress-message", className="small text-muted mt-1", role="status"),
        ], id="upload-progress-wrap", style={"display": "none"}, className="mb-3"),
        html.Div(id="upload-result", className="mb-5"),
        dcc.Store(id="upload-selection"),     # JS -> server: chosen files [{index, name, size, status, sent}]
        dcc.Store(id="upload-plan"),          # server -> JS: which files to send
        dcc.Store(id="upload-staged"),        # JS -> server: {upload_id, files} once every file is on the server
        dcc.Store(id="upload-request"),       # validated submission that starts the ingest job
        dcc.Store(id="upload-meta-errors"),   # field errors found on submit
        dcc.Store(id="upload-consumed"),      # server -> JS: the staged upload was used or removed
        dcc.Store(id="upload-js-sink"),
        dcc.Store(id="upload-js-sink-2"),
    ], className="py-2", id="upload-page", fluid="lg")
