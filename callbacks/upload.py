"""Callbacks of the /upload page.

Flow: the browser script (assets/chunked_upload.js) puts the chosen files' names and sizes into
``upload-selection`` -> ``show_plan`` asks ``ingest.plan_upload`` which ROI belongs to which
detection file and answers ``upload-plan`` -> the script sends the planned files in chunks to
``routes_upload`` and, when all are on the server, fills ``upload-staged`` -> "Upload" runs
``submit_upload`` (checks files, metadata, title, sharing; nothing is consumed yet) which fills
``upload-request`` -> ``run_ingest``, a background job, re-derives the user from the session
cookie, takes the staged files of that user's upload and calls ``ingest.ingest_dataset`` with the
request's ingest key, staging inside the user's own upload folder (counted in the quota). The staged
files are removed afterwards whether the ingest worked or not. "Cancel" (``cancel_ingest``; Dash
kills the job) calls ``ingest.cancel_ingest`` with that key: it waits until the job can no longer
commit, removes what it left, and the message says whether the dataset had been added already.

Every callback refuses anonymous users on the server side.
"""

from __future__ import annotations

import logging
import time

import dash_bootstrap_components as dbc
from dash import ALL, ClientsideFunction, Input, Output, State, ctx, dcc, html, no_update
from dash.exceptions import PreventUpdate
from flask_login import current_user

from databank.core import settings_of
from databank.datasets import dataset_record
from databank.ingest import (INGEST_KEY_RE, IngestCancelled, IngestError, IngestStillRunning, cancel_ingest as
                             stop_ingest, ingest_dataset, new_ingest_key, plan_upload)
from databank.metadata import FIELDS_BY_NAME, MetadataError, clean_metadata, clean_visibility
from databank import datasets
from databank.users import resolve_share_users
from databank import jobs
from server.dash_jobs import job_app_context, job_callback, job_failure_reason, job_user
from server.routes_upload import UploadError, discard_upload, max_file_bytes, quota_bytes, staged_files, user_dir
import ids

log = logging.getLogger(__name__)

EXTRA_LABELS = {"visibility": "Visibility", "shared_with": "Share with", "files": "Files"}


# --------------------------------------------------------------------------------------------
# small helpers (no science here)

def _signed_in_user():
    return current_user if getattr(current_user, "is_authenticated", False) else None


def title_taken(title: str | None) -> bool:
    return datasets.title_taken(title)


def _fmt_size(n_bytes) -> str:
    n = float(n_bytes or 0)
    for unit in ("bytes", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:,.0f} {unit}" if unit == "bytes" else f"{n:,.1f} {unit}"
        n /= 1024
    return f"{n:,.1f} GB"


def _label(key: str) -> str:
    return FIELDS_BY_NAME[key].label if key in FIELDS_BY_NAME else EXTRA_LABELS.get(key, key)


def collect_metadata(values, ids, bool_values, bool_ids) -> dict:
    """The raw metadata dict from the form's pattern-matching inputs (validation is clean_metadata's job)."""
    raw = {}
    for value, component_id in zip(values or [], ids or []):
        if isinstance(value, str):
            value = value.strip()
        raw[component_id["field"]] = None if value in ("", None) else value
    for value, component_id in zip(bool_values or [], bool_ids or []):
        raw[component_id["field"]] = bool(value)
    return {k: v for k, v in raw.items() if k in FIELDS_BY_NAME}


def _positive_float(value):
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if number > 0 else None


def error_card(title: str, lines, *, color="danger", extra=None):
    items = [html.Li(line) for line in lines if line]
    body = [html.H5(title, className="alert-heading")]
    if items:
        body.append(html.Ul(items, className="mb-0"))
    if extra:
        body.append(extra)
    return dbc.Alert(body, color=color, id="upload-error", className="mt-2")


def metadata_error_lines(errors: dict) -> list[str]:
    return [f"{_label(key)}: {message}" for key, message in errors.items()]


def success_card(record: dict):
    href = f"/dataset/{record['id']}"
    details = [html.Li(f"{f['name']}: {f['n_locs']:,} localisations, {f['n_rois']} ROI(s)"
                       + (" (no ROI file: convex hull of all localisations)" if f.get("roi_source") == "auto" else ""))
               for f in record["files"]]
    warnings = [html.Li(w) for f in record["files"] for w in f.get("warnings", [])]
    body = [
        html.H5("Dataset uploaded", className="alert-heading"),
        html.P([f"“{record['title']}” ({record['visibility']}) is in the databank: ",
                dcc.Link("open its page", href=href, id="upload-dataset-link"), "."]),
        html.Ul(details, className="mb-1"),
    ]
    if warnings:
        body += [html.Div("Warnings:", className="fw-semibold mt-2"), html.Ul(warnings, className="small mb-0")]
    return dbc.Alert(body, color="success", id="upload-success", className="mt-2")


# --------------------------------------------------------------------------------------------
# form behaviour

def toggle_dstorm(modality):
    return modality == "dSTORM"


def toggle_share(visibility):
    return visibility == "shared"


def live_feedback(values, ids, submitted):
    """Format checks as the user types (clean_metadata on the filled fields) plus errors from the last submit."""
    if _signed_in_user() is None:
        raise PreventUpdate
    submitted = submitted or {}
    submit_errors, submit_values = submitted.get("errors", {}), submitted.get("values", {})
    raw = collect_metadata(values, ids, [], [])
    filled = {k: v for k, v in raw.items() if v is not None}
    try:
        clean_metadata(filled, partial=True)
        live_errors = {}
    except MetadataError as error:
        live_errors = error.errors
    def message_for(name):
        if name in submit_errors and raw.get(name) == submit_values.get(name):
            return submit_errors[name]
        return live_errors.get(name)

    invalid = [bool(message_for(i["field"])) for i in ids]
    try:   # the feedback components in their own layout order
        feedback_ids = [o["id"] for o in ctx.outputs_list[1]]
    except Exception:
        feedback_ids = ids
    feedback = [(f"{_label(i['field'])} {message_for(i['field'])}" if message_for(i["field"]) else "")
                for i in feedback_ids]
    return invalid, feedback


# --------------------------------------------------------------------------------------------
# files: plan before anything is sent

def show_plan(selection):
    """Which ROI belongs to which detection file, what is rejected and why (ingest.plan_upload)."""
    if _signed_in_user() is None:
        return dbc.Alert("Sign in to upload data.", color="warning"), None
    files = (selection or {}).get("files") or []
    nonce = (selection or {}).get("nonce")
    if not files:
        return html.P("No files chosen yet.", className="text-muted mb-0", id="upload-plan-empty"), \
            {"ok": False, "send": [], "nonce": nonce}
    settings = settings_of()
    limit = max_file_bytes(settings)
    by_name = {}
    for entry in files:
        by_name.setdefault(str(entry.get("name")), entry)
    plan = plan_upload([str(f.get("name")) for f in files])
    too_large = {f["name"]: f"is {_fmt_size(f.get('size'))}; the limit is {settings.max_upload_mb:,} MB per file"
                 for f in files if (f.get("size") or 0) > limit}
    problems = [f"{name}: {reason}" for name, reason in too_large.items()] + plan.problems()
    total = sum(int(f.get("size") or 0) for f in files)
    if total > quota_bytes(settings):
        problems.append(f"Together the files hold {_fmt_size(total)}; one upload may hold at most "
                        f"{_fmt_size(quota_bytes(settings))}.")
    ok = not problems

    def progress_cells(entry):
        size = int(entry.get("size") or 0)
        sent = int(entry.get("sent") or 0)
        status = entry.get("status") or "pending"
        percent = 100 if status == "done" else (int(100 * sent / size) if size else 0)
        color = {"done": "success", "error": "danger"}.get(status)
        text = {"done": "on the server", "error": entry.get("error") or "failed", "sending": "sending…",
                "pending": "waiting" if ok else "not sent"}.get(status, status)
        index = entry.get("index")
        return [
            html.Td(dbc.Progress(id={"type": "upload-file-progress", "index": index}, value=percent,
                                 label=f"{percent}%" if percent else "", color=color, style={"minWidth": "8rem"})),
            html.Td(html.Span(text, id={"type": "upload-file-status", "index": index}, className="small")),
            html.Td(html.Button("×", title=f"Remove {entry.get('name')}",
                                className="btn btn-sm btn-link text-danger p-0",
                                **{"data-upload-remove": str(index)})),
        ]

    rows = []
    for detection, roi_names in plan.detections.items():
        entry = by_name[detection]
        role = (f"detection file with {len(roi_names)} ROI file(s)" if roi_names
                else "detection file, no ROI file: the convex hull of all localisations will be used")
        rows.append(html.Tr([html.Td(html.Strong(detection), className="text-break"), html.Td(role, className="small"),
                             html.Td(_fmt_size(entry.get("size")), className="small text-nowrap")]
                            + progress_cells(entry), className="table-danger" if detection in too_large else None))
        for number, roi in enumerate(roi_names, start=1):
            rows.append(html.Tr([html.Td("↳\u00a0" + roi, className="ps-3 text-break"),
                                 html.Td(f"ROI {number} of {detection}", className="small"),
                                 html.Td(_fmt_size(by_name[roi].get("size")), className="small text-nowrap")]
                                + progress_cells(by_name[roi])))
    for name in plan.unmatched_rois:
        rows.append(html.Tr([html.Td(name, className="text-break"),
                             html.Td("ROI file without a detection file", className="small text-danger"),
                             html.Td(_fmt_size(by_name[name].get("size")), className="small text-nowrap")]
                            + progress_cells(by_name[name]), className="table-danger"))
    for name, fix in plan.misnamed_rois.items():
        rows.append(html.Tr([html.Td(name, className="text-break"),
                             html.Td(f"looks like an ROI file but breaks the naming rule: rename it to {fix}",
                                     className="small text-danger"),
                             html.Td(_fmt_size(by_name[name].get("size")), className="small text-nowrap")]
                            + progress_cells(by_name[name]), className="table-danger"))
    for name, reason in plan.rejected.items():
        entry = by_name.get(name, {})
        rows.append(html.Tr([html.Td(name, className="text-break"),
                             html.Td("rejected: " + reason.split(". ")[0], className="small text-danger"),
                             html.Td(_fmt_size(entry.get("size")), className="small text-nowrap")]
                            + progress_cells(entry), className="table-danger"))
    table = dbc.Table([html.Thead(html.Tr([html.Th("File"), html.Th("Role"), html.Th("Size"), html.Th("Transfer"),
                                           html.Th("Status"), html.Th("")])), html.Tbody(rows)],
                      size="sm", bordered=False, hover=True, responsive=True, className="align-middle mb-2",
                      id="upload-plan-table")
    if ok:
        n_rois = sum(len(r) for r in plan.detections.values())
        summary = dbc.Alert(f"{len(plan.detections)} detection file(s) with {n_rois} ROI file(s) will be uploaded.",
                            color="light", className="py-2 mb-2", id="upload-plan-summary")
    else:
        summary = dbc.Alert([html.Strong("Nothing is sent until these problems are fixed "
                                         "(remove or rename the files, then choose them again):"),
                             html.Ul([html.Li(p) for p in problems], className="mb-0")],
                            color="danger", className="py-2 mb-2", id="upload-plan-problems")
    send = [by_name[n].get("index") for n in by_name] if ok else []
    return [summary, table], {"ok": ok, "send": send, "nonce": nonce}




# --------------------------------------------------------------------------------------------
# submit: check everything that can be checked without consuming the files

def submit_upload(n_clicks, staged, selection, values, ids, bool_values, bool_ids, visibility, shared_with):
    user = _signed_in_user()
    if user is None:
        return no_update, error_card("Sign in to upload data", []), no_update
    raw = collect_metadata(values, ids, bool_values, bool_ids)
    errors: dict[str, str] = {}
    file_lines: list[str] = []
    try:
        clean_metadata(raw)
    except MetadataError as error:
        errors.update(error.errors)
    if raw.get("title") and "title" not in errors and title_taken(raw["title"]):
        errors["title"] = f"a dataset titled '{raw['title']}' exists already; choose a unique title"
    try:
        visibility, names = clean_visibility(visibility, shared_with or [])
        resolve_share_users(names, user)
    except MetadataError as error:
        errors.update(error.errors)
    chosen = (selection or {}).get("files") or []
    if not chosen:
        file_lines.append("Choose your detection files (and their ROI files) first.")
    elif not staged or not staged.get("upload_id"):
        file_lines.append("The files are still being sent to the server (or could not be sent): wait until every "
                          "progress bar is green, or fix the problems listed with the files.")
    else:
        file_names = [str(f.get("name")) for f in staged.get("files") or []]
        try:
            staged_files(user.get_id(), staged["upload_id"], file_names)
            plan = plan_upload(file_names)
            file_lines += plan.problems()
        except UploadError as error:
            file_lines.append(str(error))
    if errors or file_lines:
        lines = file_lines + metadata_error_lines(errors)
        return no_update, error_card("Please fix the following before uploading", lines), \
            {"errors": errors, "values": raw, "at": time.time()}
    request = dict(upload_id=staged["upload_id"], files=[str(f.get("name")) for f in staged["files"]],
                   metadata=raw, visibility=visibility, shared_with=names, submitted=time.time(),
                   ingest_key=new_ingest_key())
    starting = dbc.Alert("Upload accepted: analysing the files…", color="info", className="mt-2",
                         id="upload-starting")
    return request, starting, {"errors": {}, "values": raw}


# --------------------------------------------------------------------------------------------
# the ingest job

def _report_to(set_progress):
    def report(fraction: float, message: str):
        percent = max(0, min(100, int(round(100 * float(fraction)))))
        # a sliver of the striped, animated bar stays visible while a file is being analysed
        set_progress((max(percent, 4), f"{percent}%", message))
    return report


def run_ingest(set_progress, request):
    """Background job: ingest the staged files of the signed-in user's upload (see module docstring)."""
    if not request or not request.get("upload_id"):
        raise PreventUpdate
    upload_id = request["upload_id"]
    report = _report_to(set_progress)
    consumed = {"upload_id": upload_id, "outcome": "failed", "at": time.time()}
    report(0.0, "Starting…")
    with job_app_context():
        user = job_user()            # from the signed session cookie, never from the browser's data
        if user is None:
            return error_card("Sign in to upload data", ["Your session has ended. Sign in and try again."]), \
                no_update, no_update
        with jobs.exclusive(f"upload:{user.id}:{upload_id}") as mine:
            if not mine:      # a second click on the same upload: the first job owns the files
                return error_card("This upload is being processed already", []), no_update, no_update
            try:
                return _ingest(user, request, report, consumed)
            finally:
                discard_upload(user.id, upload_id)    # success or failure: the staged copy is not needed


def _ingest_key(request) -> str | None:
    key = (request or {}).get("ingest_key")
    return key if isinstance(key, str) and INGEST_KEY_RE.match(key) else None


def _ingest(user, request, report, consumed):
    upload_id = request["upload_id"]
    metadata = dict(request.get("metadata") or {})
    key = _ingest_key(request)
    try:
        if key is None:
            raise UploadError("This upload request is not valid (no ingest key): press Upload again.")
        files = staged_files(user.id, upload_id, request.get("files") or None)
    except UploadError as error:
        report(0.0, "Failed: nothing was added to the databank.")
        return error_card("The upload failed", [str(error)]), no_update, consumed
    try:
        with jobs.slot(report):
            dataset = ingest_dataset(files, metadata, user, visibility=request.get("visibility") or "private",
                                     shared_with=request.get("shared_with") or (),
                                     pixel_size_nm=_positive_float(metadata.get("pixel_size_nm")), progress=report,
                                     key=key, staging_root=user_dir(settings_of(), user.id))
            record = dataset_record(dataset)
    except IngestCancelled:
        report(0.0, "Cancelled: nothing was added to the databank.")
        consumed["outcome"] = "cancelled"
        return _cancelled_card(None), no_update, consumed
    except IngestError as error:
        report(0.0, "Failed: nothing was added to the databank.")
        where = f"File: {error.file}" if error.file and not str(error).startswith(error.file) else None
        return error_card("The upload failed: nothing was added to the databank", [str(error), where],
                          extra=html.P("Fix the file, or remove it from the list (×), then press Upload again.",
                                       className="mb-0 mt-2")), \
            no_update, consumed
    except MetadataError as error:
        report(0.0, "Failed: nothing was added to the databank.")
        return error_card("The upload failed: please fix the form", metadata_error_lines(error.errors)), \
            {"errors": error.errors, "values": metadata, "at": time.time()}, consumed
    except jobs.QueueTimeout as error:
        report(0.0, "Not started: the server is busy.")
        return error_card("The server is busy", [str(error)]), no_update, consumed
    except Exception:  # a bug, not the user's fault: log it, tell them, leave nothing behind
        log.exception("ingest of upload %s by user %s failed", upload_id, user.id)
        report(0.0, "Failed: nothing was added to the databank.")
        return error_card("The upload failed because of an error on the server", [
            "Nothing was added to the databank. Please try again later or contact the administrators."]), \
            no_update, consumed
    consumed["outcome"] = "done"
    consumed["dataset_id"] = record["id"]
    return success_card(record), {"errors": {}, "values": metadata}, consumed


def _cancelled_card(record: dict | None, *, still_running: bool = False):
    """What a cancel really did: nothing added, the dataset committed before the cancel, or still stopping."""
    if record is not None:
        return dbc.Alert([html.H5("The upload had already finished", className="alert-heading"),
                          html.P([f"The cancel came after the dataset was saved: “{record['title']}” "
                                  f"({record['n_files']} file(s)) is in the databank: ",
                                  dcc.Link("open its page", href=f"/dataset/{record['id']}", id="upload-dataset-link"),
                                  ". Delete it there if you did not want it."], className="mb-0")],
                         color="warning", className="mt-2", id="upload-cancelled")
    if still_running:
        return dbc.Alert("Stopping the upload: it will add nothing unless it was already saving the dataset when "
                         "you cancelled. Check My datasets in a minute.", color="warning", className="mt-2",
                         id="upload-cancelled")
    return dbc.Alert("Upload cancelled: nothing was added to the databank. Your files are sent to the server "
                     "again, so you can press Upload once more when you are ready.",
                     color="warning", className="mt-2", id="upload-cancelled")


def ingest_failed(error):
    """The ingest job ended without an answer (its worker died, or a bug): say so; nothing was added
    (an ingest commits whole or not at all)."""
    log.warning("ingest job failed without an answer: %s", str(error).splitlines()[0] if str(error) else error)
    return error_card("The upload failed: nothing was added to the databank", [job_failure_reason(error)]), \
        no_update, no_update


def cancel_ingest(n_clicks, request):
    """The job is cancelled by Dash (``cancel=``); say truthfully what was added and leave nothing behind.

    Removes this user's staged files of that upload, then ``ingest.cancel_ingest`` waits until the job can
    no longer commit, removes its staging copy and reports the dataset if it was committed before.
    """
    user = _signed_in_user()
    if user is None or not n_clicks:
        raise PreventUpdate
    upload_id = (request or {}).get("upload_id")
    if upload_id:
        discard_upload(user.get_id(), upload_id)
    outcome = {"upload_id": upload_id, "outcome": "cancelled", "at": time.time()}
    key = _ingest_key(request)
    if key is None:
        return _cancelled_card(None), outcome
    try:
        dataset = stop_ingest(key, user, staging_root=user_dir(settings_of(), user.get_id()))
    except IngestStillRunning:
        return _cancelled_card(None, still_running=True), outcome
    if dataset is None:
        return _cancelled_card(None), outcome
    outcome.update(outcome="done", dataset_id=dataset.id)
    return _cancelled_card(dataset_record(dataset)), outcome


# --------------------------------------------------------------------------------------------
# wiring

def register(app) -> None:
    """Wire the upload callbacks to ``app`` ."""
    callback = app.callback
    clientside = app.clientside_callback

    callback(Output("upload-dstorm-fields", "is_open"), Input({"type": ids.Upload.META, "field": "modality"}, "value"))(
        toggle_dstorm)
    callback(Output("upload-share-wrap", "is_open"), Input("upload-visibility", "value"))(toggle_share)
    callback(
        Output({"type": ids.Upload.META, "field": ALL}, "invalid"),
        Output({"type": ids.Upload.META_FEEDBACK, "field": ALL}, "children"),
        Input({"type": ids.Upload.META, "field": ALL}, "value"),
        State({"type": ids.Upload.META, "field": ALL}, "id"),
        Input("upload-meta-errors", "data"),
    )(live_feedback)
    callback(Output("upload-plan-view", "children"), Output("upload-plan", "data"),
             Input("upload-selection", "data"))(show_plan)
    clientside(ClientsideFunction("nanoorg_upload", "plan"), Output("upload-js-sink", "data"),
               Input("upload-plan", "data"))
    clientside(ClientsideFunction("nanoorg_upload", "consumed"), Output("upload-js-sink-2", "data"),
               Input("upload-consumed", "data"), prevent_initial_call=True)
    callback(
        Output("upload-request", "data"),
        Output("upload-result", "children"),
        Output("upload-meta-errors", "data"),
        Input("upload-submit", "n_clicks"),
        State("upload-staged", "data"),
        State("upload-selection", "data"),
        State({"type": ids.Upload.META, "field": ALL}, "value"),
        State({"type": ids.Upload.META, "field": ALL}, "id"),
        State({"type": ids.Upload.META_BOOL, "field": ALL}, "value"),
        State({"type": ids.Upload.META_BOOL, "field": ALL}, "id"),
        State("upload-visibility", "value"),
        State("upload-share-with", "value"),
        prevent_initial_call=True,
    )(submit_upload)
    job_callback(
        app, "ingest",
        Output("upload-result", "children", allow_duplicate=True),
        Output("upload-meta-errors", "data", allow_duplicate=True),
        Output("upload-consumed", "data"),
        Input("upload-request", "data"),
        progress=[Output("upload-progress", "value"), Output("upload-progress", "label"),
                  Output("upload-progress-message", "children")],
        running=[
            (Output("upload-submit", "disabled"), True, False),
            (Output("upload-cancel-job", "disabled"), False, True),
            (Output("upload-choose", "disabled"), True, False),
            (Output("upload-clear", "disabled"), True, False),
            (Output("upload-progress-wrap", "style"), {"display": "block"}, {"display": "block"}),
        ],
        cancel=[Input("upload-cancel-job", "n_clicks")],
        interval=500,
        prevent_initial_call=True,
        on_error=ingest_failed,
    )(run_ingest)
    callback(
        Output("upload-result", "children", allow_duplicate=True),
        Output("upload-consumed", "data", allow_duplicate=True),
        Input("upload-cancel-job", "n_clicks"),
        State("upload-request", "data"),
        prevent_initial_call=True,
    )(cancel_ingest)
