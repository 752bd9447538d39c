"""Callbacks of the similarity features: the Dataset Details similarity section, the
"search with your own file" page (/search) and the Compare page (/compare).

Rules followed here:
- every callback that touches data calls the data layer with the *current* user, which re-checks
  access (``AccessDenied`` for missing and forbidden alike); ids and values coming from the
  browser are hints, never trusted;
- heavy work runs as background jobs (progress bar, Cancel button; ``server.dash_jobs``: threads of
  the web process, or Celery workers when REDIS_URL is set), in one of the host's job slots
  (``databank.jobs.slot``). Inside a job there is no request: the user is re-derived from the
  signed session cookie of the starting request (``job_user``) inside an app context;
- a job's result belongs to the request that started it (``databank.jobs.result_key``); caching
  of scores happens in the data layer, keyed by user.

``register(app)`` wires everything (``app.callback``); ``register_section``, ``register_search_page`` and ``register_compare_page`` wire one part.
The plain functions are importable and callable in tests.
"""

from __future__ import annotations

import logging

import dash_bootstrap_components as dbc
from dash import ClientsideFunction, Input, Output, State, ctx, html, no_update
from dash.exceptions import PreventUpdate
from flask_login import current_user

from databank import search

from databank import query_files

from databank import compare
from databank.access import AccessDenied, get_dataset
from databank.models import bank_version
import ids
from databank import jobs
from server.dash_jobs import job_app_context, job_callback, job_user
from components.similarity_figures import (compare_heatmap, result_columns, self_similarity_figure,
                                             self_similarity_overlay, summary_table)

log = logging.getLogger(__name__)

NOT_FOUND = "This dataset is not available (it may have been deleted or made private)."
JOB_INTERVAL_MS = 400


# ---------------------------------------------------------------------------------------------
# users: request callbacks and background jobs

def request_user():
    """The signed-in user of a normal callback, or None (anonymous)."""
    return current_user if getattr(current_user, "is_authenticated", False) else None


def _alert(message, colour="warning"):
    return dbc.Alert(message, color=colour, className="py-2 small mb-2")


def build_filters(protein=None, cell_type=None, modality=None, tags=None) -> dict:
    """Search filters from the filter bar (empty values ignored; tags: substring)."""
    filters = {}
    for key, value in (("protein", protein), ("cell_type", cell_type), ("modality", modality)):
        if isinstance(value, str) and value.strip():
            filters[key] = value.strip()
    if isinstance(tags, str) and tags.strip():
        filters["tags"] = {"type": "contains", "filter": tags.strip()}
    return filters


def _progress_reporter(set_progress):
    def report(fraction, message):
        percent = int(round(100 * max(0.0, min(1.0, float(fraction)))))
        set_progress((percent, f"{percent} %", message))
    return report


def _status(rows, target, *, query_label="this dataset", reason=None) -> html.Div:
    """Counts of scored datasets, and why there are none: ``reason`` is ``search.no_scores_reason`` of the query."""
    scored = sum(1 for r in rows if r.get("thinned_mean") is not None)
    scored_unthinned = sum(1 for r in rows if r.get("unthinned_mean") is not None)
    parts = [html.Span(f"{len(rows):,} dataset(s) compared", className="fw-semibold"),
             f" · thinned to {target} loc/µm²: {scored:,} with scores · unthinned: {scored_unthinned:,} with scores"
             f" · bank version {bank_version()}"]
    children = [html.Div(parts)]
    reason = reason or {}
    if reason.get("unthinned"):
        children.append(_alert(f"No similarity scores: {reason['unthinned']}.", "warning"))
    elif reason.get("thinned"):
        children.append(_alert(f"No thinned scores: {reason['thinned']}.", "warning"))
    elif rows and scored == 0 and scored_unthinned:
        children.append(_alert(f"No thinned scores: {query_label} (or every other dataset) has no tile holding "
                               f"{target * 9} localisations, needed to thin to {target} loc/µm². Choose a lower "
                               "target or rank by unthinned λ̄."))
    return html.Div(children)


# ---------------------------------------------------------------------------------------------
# Dataset Details: choices, self-similarity, search, columns, download

def load_choices(dataset_id):
    """Filter dropdown options (values among readable datasets) and this dataset's own metadata."""
    user = request_user()
    try:
        dataset = get_dataset(user, dataset_id, "read")
    except AccessDenied:
        return [], [], [], {}, "Same protein", "Same cell type", "Same modality"
    choices = search.filter_choices(user, ("protein", "cell_type", "modality"))
    own = {"protein": dataset.protein, "cell_type": dataset.cell_type, "modality": dataset.modality}

    def options(field):
        return [{"label": v + (" (this dataset)" if v == own.get(field) else ""), "value": v} for v in choices[field]]

    def label(text, value):
        return f"{text} ({value})" if value else text

    return (options("protein"), options("cell_type"), options("modality"), own,
            label("Same protein", own["protein"]), label("Same cell type", own["cell_type"]),
            label("Same modality", own["modality"]))


def show_self_similarity(target, split, dataset_id):
    """Thinned and unthinned self-similarity histograms with their summary tables."""
    user = request_user()
    try:
        result = search.self_similarity(user, dataset_id, target=target)
    except AccessDenied:
        empty = self_similarity_figure(None, label="Thinned")
        return empty, self_similarity_figure(None, label="Unthinned"), None, None, _alert(NOT_FOUND)
    except ValueError as exc:
        raise PreventUpdate from exc
    split = bool(split)
    thinned_label = f"Thinned to {result['target']} loc/µm²"
    reason = search.dataset_no_scores_reason(user, dataset_id, result["target"])
    message = None
    if reason["self"]:
        message = _alert(f"No self-similarity: {reason['self']}.")
    elif reason["thinned"]:
        message = _alert(f"No thinned self-similarity: {reason['thinned']}.")
    return (self_similarity_figure(result["thinned"], label=thinned_label, split=split),
            self_similarity_figure(result["unthinned"], label="Unthinned", split=split),
            summary_table(result["thinned"], split=split, id="sim-self-table-thinned"),
            summary_table(result["unthinned"], split=split, id="sim-self-table-unthinned"),
            message)


def apply_quick_filters(_protein_clicks, _cell_clicks, _modality_clicks, _clear_clicks, own):
    """"Same protein / cell type / modality" set a filter to this dataset's value; "Clear" resets all."""
    trigger = ctx.triggered_id
    own = own if isinstance(own, dict) else {}
    if trigger == ids.Similarity.CLEAR_FILTERS:
        return None, None, None, ""
    mapping = {ids.Similarity.SAME_PROTEIN: 0, ids.Similarity.SAME_CELL_TYPE: 1, ids.Similarity.SAME_MODALITY: 2}
    if trigger not in mapping:
        raise PreventUpdate
    field = ("protein", "cell_type", "modality")[mapping[trigger]]
    value = own.get(field)
    if not value:
        raise PreventUpdate
    out = [no_update, no_update, no_update, no_update]
    out[mapping[trigger]] = value
    return tuple(out)


def run_search(set_progress, _n_clicks, target, protein, cell_type, modality, tags, dataset_id, server=None):
    """Background job: the ranked results table of the page's dataset for the signed-in user."""
    report = _progress_reporter(set_progress)
    with job_app_context(server) as app_server:
        user = job_user(app_server)
        report(0.0, "Starting")
        try:
            with jobs.slot(report):
                rows = search.similar_datasets(user, dataset_id, target=target,
                                               filters=build_filters(protein, cell_type, modality, tags),
                                               progress=report)
            target = search.check_target(target)
            reason = search.dataset_no_scores_reason(user, dataset_id, target)
        except AccessDenied:
            return [], _alert(NOT_FOUND)
        except ValueError as exc:
            return [], _alert(str(exc))
        return rows, _status(rows, target, reason=reason)


def set_columns(metric, target):
    """Grid columns: the chosen lambda (thinned / unthinned) first and sorted ascending."""
    metric = metric if metric in ("thinned", "unthinned") else "thinned"
    try:
        target = int(target)
    except (TypeError, ValueError):
        target = 30
    return result_columns(metric, target)


def download_results(n_clicks, dataset_id, target, protein, cell_type, modality, tags, metric):
    """The full results table as CSV (signed-in users only; same access rules as the table)."""
    if not n_clicks:
        raise PreventUpdate
    user = request_user()
    if user is None:
        return no_update, "Log in to download the results."
    try:
        rows = search.similar_datasets(user, dataset_id, target=target,
                                       filters=build_filters(protein, cell_type, modality, tags))
    except AccessDenied:
        return no_update, NOT_FOUND
    except ValueError as exc:
        return no_update, str(exc)
    metric = metric if metric in ("thinned", "unthinned") else "thinned"
    target = search.check_target(target)
    from server.api_similarity import csv_filename

    return (dict(content=search.results_csv(search.sort_rows(rows, metric)),
                 filename=csv_filename(int(dataset_id), target, metric), type="text/csv"),
            f"{len(rows):,} rows downloaded.")


def register_section(app) -> None:
    """Wire the Dataset Details similarity section."""
    callback = app.callback
    server = app.server
    callback(
        Output(ids.Similarity.FILTER_PROTEIN, "options"), Output(ids.Similarity.FILTER_CELL_TYPE, "options"),
        Output(ids.Similarity.FILTER_MODALITY, "options"), Output(ids.Similarity.OWN_META, "data"),
        Output(ids.Similarity.SAME_PROTEIN, "children"), Output(ids.Similarity.SAME_CELL_TYPE, "children"),
        Output(ids.Similarity.SAME_MODALITY, "children"),
        Input(ids.Similarity.DATASET, "data"),
    )(load_choices)
    callback(
        Output(ids.Similarity.SELF_THINNED, "figure"), Output(ids.Similarity.SELF_UNTHINNED, "figure"),
        Output(ids.Similarity.SELF_SUMMARY_THINNED, "children"), Output(ids.Similarity.SELF_SUMMARY_UNTHINNED, "children"),
        Output(ids.Similarity.SELF_MESSAGE, "children"),
        Input(ids.Similarity.TARGET, "value"), Input(ids.Similarity.SPLIT, "value"), State(ids.Similarity.DATASET, "data"),
    )(show_self_similarity)
    callback(
        Output(ids.Similarity.FILTER_PROTEIN, "value"), Output(ids.Similarity.FILTER_CELL_TYPE, "value"),
        Output(ids.Similarity.FILTER_MODALITY, "value"), Output(ids.Similarity.FILTER_TAGS, "value"),
        Input(ids.Similarity.SAME_PROTEIN, "n_clicks"), Input(ids.Similarity.SAME_CELL_TYPE, "n_clicks"),
        Input(ids.Similarity.SAME_MODALITY, "n_clicks"), Input(ids.Similarity.CLEAR_FILTERS, "n_clicks"),
        State(ids.Similarity.OWN_META, "data"),
        prevent_initial_call=True,
    )(apply_quick_filters)

    def _run(set_progress, n_clicks, target, protein, cell_type, modality, tags, dataset_id):
        return run_search(set_progress, n_clicks, target, protein, cell_type, modality, tags, dataset_id,
                          server=server)

    job_callback(
        app, "similarity-search",
        Output(ids.Similarity.GRID, "rowData"), Output(ids.Similarity.STATUS, "children"),
        Input(ids.Similarity.RUN, "n_clicks"), Input(ids.Similarity.TARGET, "value"), Input(ids.Similarity.FILTER_PROTEIN, "value"),
        Input(ids.Similarity.FILTER_CELL_TYPE, "value"), Input(ids.Similarity.FILTER_MODALITY, "value"), Input(ids.Similarity.FILTER_TAGS, "value"),
        State(ids.Similarity.DATASET, "data"),
        interval=JOB_INTERVAL_MS,
        progress=[Output(ids.Similarity.PROGRESS, "value"), Output(ids.Similarity.PROGRESS, "label"), Output(ids.Similarity.PROGRESS_TEXT, "children")],
        progress_default=[0, "", ""],
        running=[(Output(ids.Similarity.RUN, "disabled"), True, False),
                 (Output(ids.Similarity.PROGRESS_BOX, "style"), {"display": "flex"}, {"display": "none"})],
        cancel=[Input(ids.Similarity.CANCEL, "n_clicks")],
    )(_run)
    callback(Output(ids.Similarity.GRID, "columnDefs"), Input(ids.Similarity.METRIC, "value"), Input(ids.Similarity.TARGET, "value"))(set_columns)
    callback(
        Output(ids.Similarity.DOWNLOAD_FILE, "data"), Output(ids.Similarity.DOWNLOAD_MESSAGE, "children"),
        Input(ids.Similarity.DOWNLOAD, "n_clicks"),
        State(ids.Similarity.DATASET, "data"), State(ids.Similarity.TARGET, "value"), State(ids.Similarity.FILTER_PROTEIN, "value"),
        State(ids.Similarity.FILTER_CELL_TYPE, "value"), State(ids.Similarity.FILTER_MODALITY, "value"), State(ids.Similarity.FILTER_TAGS, "value"),
        State(ids.Similarity.METRIC, "value"),
        prevent_initial_call=True,
    )(download_results)


# ---------------------------------------------------------------------------------------------
# /search: search with your own file



def load_search_choices(_pathname):
    user = request_user()
    if user is None:
        return [], [], []
    choices = search.filter_choices(user, ("protein", "cell_type", "modality"))
    return tuple([{"label": v, "value": v} for v in choices[f]] for f in ("protein", "cell_type", "modality"))


def receive_query_files(contents, filenames):
    """dcc.Upload -> the signed-in user's staged query (nothing enters the bank)."""
    import base64

    if not contents:
        raise PreventUpdate
    user = request_user()
    if user is None:
        return None, _alert("Log in to search with your own file.", "danger")
    contents = contents if isinstance(contents, list) else [contents]
    filenames = filenames if isinstance(filenames, list) else [filenames]
    files = []
    for name, content in zip(filenames, contents):
        try:
            _, encoded = str(content).split(",", 1)
            files.append((str(name), base64.b64decode(encoded, validate=False)))
        except ValueError:
            return None, _alert(f"{name}: the file could not be read in the browser; choose it again.", "danger")
    try:
        staged = query_files.stage_query_files(user, files)
    except query_files.QueryFileError as exc:
        return None, _alert(str(exc), "danger")
    rois = staged["rois"]
    return staged["token"], html.Div([
        html.Span("Ready: ", className="fw-semibold"), html.Code(staged["detection"]),
        f" with {len(rois)} ROI file(s)" if rois else " without ROI file (the convex hull of all localisations is used)",
        f" · {staged['size_bytes'] / 2 ** 20:.1f} MB. Press Search.",
    ], className="small")


def _query_summary(summary: dict, target: int) -> html.Div:
    thinned = summary.get("n_tiles_thinned", {}).get(str(target), 0)
    density = summary.get("density")
    items = [html.Span(summary.get("name") or "your file", className="fw-semibold"),
             f": {summary.get('n_locs', 0):,} localisations",
             f", {density:.0f} loc/µm² in the ROIs" if density else "",
             f", {summary.get('n_tiles', 0)} tile(s), {thinned} dense enough for {target} loc/µm². ",
             "The file was analysed and discarded; it is not in the databank. To add it, use ",
             dcc_link("Upload Data", "/upload"), "."]
    warnings = summary.get("warnings") or []
    return html.Div([html.Div(items)] + ([_alert(" ".join(warnings[:3]))] if warnings else []), className="small")


def dcc_link(text, href):
    from dash import dcc

    return dcc.Link(text, href=href)


def run_query(set_progress, _n_clicks, token, target, pixel_size, protein, cell_type, modality, tags, server=None):
    """Background job: analyse the staged file (once) and rank the readable bank against it."""
    from databank.ingest import IngestError

    if not token:
        return [], _alert("Choose a detection file first (and its ROI files if it has any)."), None
    report = _progress_reporter(set_progress)
    with job_app_context(server) as app_server:
        user = job_user(app_server)
        if user is None:
            return [], _alert("Log in to search with your own file.", "danger"), None
        try:
            target = search.check_target(target)
            pixel = float(pixel_size) if pixel_size not in (None, "") else None
            with jobs.slot(report):
                report(0.02, "Reading, tiling and fingerprinting your file")
                summary = query_files.analyse_query(user, token, pixel_size_nm=pixel)
                report(0.5, "Comparing with the bank")
                rows = query_files.search_query(user, token, target=target,
                                                filters=build_filters(protein, cell_type, modality, tags),
                                                progress=lambda f, m: report(0.5 + f / 2, m))
        except (query_files.QueryFileError, IngestError, ValueError) as exc:
            return [], _alert(str(exc), "danger"), None
        reason = search.no_scores_reason([summary.get("stats") or {}], target, label="your file")
        return rows, _status(rows, target, query_label="your file", reason=reason), _query_summary(summary, target)


def download_query_results(n_clicks, rows, target, metric):
    """The own-file results table as CSV (the rows are the user's own results)."""
    if not n_clicks:
        raise PreventUpdate
    if request_user() is None:
        return no_update, "Log in to download the results."
    if not rows:
        return no_update, "Run a search first."
    clean = [r for r in rows if isinstance(r, dict)]
    metric = metric if metric in ("thinned", "unthinned") else "thinned"
    try:
        target = int(target)
    except (TypeError, ValueError):
        target = 30
    return (dict(content=search.results_csv(search.sort_rows(clean, metric)),
                 filename=f"nano-org_own-file_similar_{metric}_{target}.csv", type="text/csv"),
            f"{len(clean):,} rows downloaded.")


def register_search_page(app) -> None:
    """Wire the /search page."""
    callback = app.callback
    server = app.server
    callback(Output(ids.SearchFile.PROTEIN, "options"), Output(ids.SearchFile.CELL_TYPE, "options"), Output(ids.SearchFile.MODALITY, "options"),
             Input(ids.SearchFile.PAGE, "id"))(load_search_choices)
    callback(Output(ids.SearchFile.TOKEN, "data"), Output(ids.SearchFile.FILES, "children"),
             Input(ids.SearchFile.UPLOAD, "contents"), State(ids.SearchFile.UPLOAD, "filename"),
             prevent_initial_call=True)(receive_query_files)

    def _run(set_progress, n_clicks, token, target, pixel, protein, cell_type, modality, tags):
        return run_query(set_progress, n_clicks, token, target, pixel, protein, cell_type, modality, tags,
                         server=server)

    job_callback(
        app, "similarity-own-file",
        Output(ids.SearchFile.GRID, "rowData"), Output(ids.SearchFile.STATUS, "children"), Output(ids.SearchFile.SUMMARY, "children"),
        Input(ids.SearchFile.RUN, "n_clicks"),
        State(ids.SearchFile.TOKEN, "data"), State(ids.SearchFile.TARGET, "value"), State(ids.SearchFile.PIXEL, "value"),
        State(ids.SearchFile.PROTEIN, "value"), State(ids.SearchFile.CELL_TYPE, "value"), State(ids.SearchFile.MODALITY, "value"),
        State(ids.SearchFile.TAGS, "value"),
        interval=JOB_INTERVAL_MS, prevent_initial_call=True,
        progress=[Output(ids.SearchFile.PROGRESS, "value"), Output(ids.SearchFile.PROGRESS, "label"), Output(ids.SearchFile.PROGRESS_TEXT, "children")],
        progress_default=[0, "", ""],
        running=[(Output(ids.SearchFile.RUN, "disabled"), True, False),
                 (Output(ids.SearchFile.PROGRESS_BOX, "style"), {"display": "flex"}, {"display": "none"})],
        cancel=[Input(ids.SearchFile.CANCEL, "n_clicks")],
    )(_run)
    callback(Output(ids.SearchFile.GRID, "columnDefs"), Input(ids.SearchFile.METRIC, "value"), Input(ids.SearchFile.TARGET, "value"))(set_columns)
    callback(Output(ids.SearchFile.DOWNLOAD_FILE, "data"), Output(ids.SearchFile.DOWNLOAD_MESSAGE, "children"),
             Input(ids.SearchFile.DOWNLOAD, "n_clicks"), State(ids.SearchFile.GRID, "rowData"), State(ids.SearchFile.TARGET, "value"),
             State(ids.SearchFile.METRIC, "value"), prevent_initial_call=True)(download_query_results)


# ---------------------------------------------------------------------------------------------
# /compare



def parse_ids(search_string) -> list[int]:
    """Dataset ids from a query string like ``?ids=3,5,8`` (invalid parts and repeats ignored, in order)."""
    from urllib.parse import parse_qs

    raw = parse_qs(str(search_string or "").lstrip("?")).get("ids", [""])[0]
    out = []
    for part in raw.split(","):
        part = part.strip()
        if part.isdigit() and int(part) not in out:
            out.append(int(part))
    return out


def load_compare_options(search_string):
    """Dropdown options (datasets the user may read), the preselection from ``?ids=`` (at most
    MAX_COMPARE) and a note when the link names datasets that are not chosen, and why."""
    from databank.datasets import list_datasets

    user = request_user()
    rows, _ = list_datasets(user, sort=[("title", "asc")], limit=1000)
    options = [{"label": f"{r['title']} (#{r['id']})", "value": r["id"]} for r in rows]
    readable = {r["id"] for r in rows}
    asked = parse_ids(search_string)
    available = [i for i in asked if i in readable]
    wanted = available[:compare.MAX_COMPARE]
    notes = []
    if len(available) < len(asked):
        missing = len(asked) - len(available)
        notes.append(f"{missing} dataset(s) named in the link are not available to you (or do not exist).")
    if len(available) > compare.MAX_COMPARE:
        left = ", ".join(f"#{i}" for i in available[compare.MAX_COMPARE:])
        notes.append(f"The link names {len(available)} datasets; at most {compare.MAX_COMPARE} can be compared at "
                     f"once, so the first {compare.MAX_COMPARE} are chosen and {left} are left out.")
    return options, wanted, (_alert(" ".join(notes), "warning") if notes else None)


def run_compare(set_progress, dataset_ids, target, kind, server=None):
    """Background job: pairwise mean lambda of 2-10 datasets + their self-similarity."""
    report = _progress_reporter(set_progress)
    dataset_ids = [i for i in (dataset_ids or []) if isinstance(i, (int, str)) and str(i).isdigit()]
    kind = kind if kind in ("thinned", "unthinned") else "thinned"
    if len(dataset_ids) < 2:
        return no_update, no_update, _alert("Choose at least two datasets.", "info"), None
    if len(dataset_ids) > compare.MAX_COMPARE:
        return no_update, no_update, _alert(f"Choose at most {compare.MAX_COMPARE} datasets.", "warning"), None
    with job_app_context(server) as app_server:
        user = job_user(app_server)
        try:
            with jobs.slot(report):
                result = compare.compare_datasets(user, dataset_ids, target=target, progress=report)
        except AccessDenied:
            return no_update, no_update, _alert("One of the chosen datasets is not available to you."), None
        except ValueError as exc:
            return no_update, no_update, _alert(str(exc)), None
        return (compare_heatmap(result, kind=kind), self_similarity_overlay(result, kind=kind), None,
                compare_table(result, kind))


def compare_table(result: dict, kind: str) -> html.Table:
    """One row per dataset (hierarchical order): self-similarity mean and its nearest other dataset."""
    import numpy as np

    order = result["order"]
    matrix = np.array(result[f"{kind}_mean"], dtype=float)
    rows = []
    for k in order:
        others = [(matrix[k, j], j) for j in range(len(order)) if j != k and np.isfinite(matrix[k, j])]
        nearest = min(others) if others else None
        summary = (result["self"].get(str(result["dataset_ids"][k])) or {}).get(kind, {}).get("summary") or {}
        rows.append(html.Tr([
            html.Td(dcc_link(result["titles"][k], f"/dataset/{result['dataset_ids'][k]}")),
            html.Td("–" if summary.get("mean") is None else f"{summary['mean']:.3f}", className="text-end"),
            html.Td("–" if nearest is None else f"{result['titles'][nearest[1]]} ({nearest[0]:.3f})"),
        ]))
    return html.Table([
        html.Thead(html.Tr([html.Th("Dataset"), html.Th("Self-similarity mean λ", className="text-end"),
                            html.Th("Most similar in this set (mean λ)")])),
        html.Tbody(rows)], className="table table-sm small", id="cmp-summary-table")


def register_compare_page(app) -> None:
    """Wire the /compare page."""
    callback = app.callback
    server = app.server
    callback(Output(ids.Compare.PICKER, "options"), Output(ids.Compare.PICKER, "value"),
             Output(ids.Compare.LINK_MESSAGE, "children"),
             Input(ids.Compare.URL, "search"))(load_compare_options)
    # the chosen datasets go into the address (?ids=...), replaced in place: the comparison is a link
    app.clientside_callback(ClientsideFunction("nanoorg_compare", "ids_to_url"), Output(ids.Compare.URL_STATE, "data"),
                            Input(ids.Compare.PICKER, "value"), prevent_initial_call=True)

    def _run(set_progress, _n_clicks, dataset_ids, target, kind):
        return run_compare(set_progress, dataset_ids, target, kind, server=server)

    job_callback(
        app, "similarity-compare",
        Output(ids.Compare.HEATMAP, "figure"), Output(ids.Compare.OVERLAY, "figure"), Output(ids.Compare.MESSAGE, "children"),
        Output(ids.Compare.TABLE, "children"),
        Input(ids.Compare.RUN, "n_clicks"), Input(ids.Compare.PICKER, "value"), Input(ids.Compare.TARGET, "value"),
        Input(ids.Compare.KIND, "value"),
        interval=JOB_INTERVAL_MS,
        progress=[Output(ids.Compare.PROGRESS, "value"), Output(ids.Compare.PROGRESS, "label"), Output(ids.Compare.PROGRESS_TEXT, "children")],
        progress_default=[0, "", ""],
        running=[(Output(ids.Compare.RUN, "disabled"), True, False),
                 (Output(ids.Compare.PROGRESS_BOX, "style"), {"display": "flex"}, {"display": "none"})],
        cancel=[Input(ids.Compare.CANCEL, "n_clicks")],
    )(_run)


def register(app) -> None:
    """Wire every similarity callback (section, /search, /compare)."""
    register_section(app)
    register_search_page(app)
    register_compare_page(app)
