"""Callbacks of the Dataset Details similarity section (self-similarity and the search table).
The /search and /compare pages have their own modules (``callbacks.search_file``,
``callbacks.compare``), which share the helpers here.

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

``register(app)`` wires the section (``app.callback``). The plain functions are importable and callable in tests.
"""

from __future__ import annotations


import logging

import dash_bootstrap_components as dbc
from dash import Input, Output, State, ctx, html, no_update
from dash.exceptions import PreventUpdate
from flask_login import current_user

from databank import search


from databank.access import AccessDenied, get_dataset
from databank.models import bank_version
import ids
from databank import jobs
from server.dash_jobs import job_app_context, job_callback, job_user
from components.similarity_figures import (result_columns, self_similarity_figure,
                                             summary_table)


log = logging.getLogger(__name__)


NOT_FOUND = "This dataset is not available (it may have been deleted or made private)."


JOB_INTERVAL_MS = 400


def request_user():
    """The signed-in user of a normal callback, or None (anonymous)."""
    return current_user if getattr(current_user, "is_authenticated", False) else None


def alert(message, colour="warning"):
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


def progress_box_job(feature, failure_status: str) -> dict:
    """The ``job_callback`` options of a job shown in ``components.similarity_section.progress_block``:
    ``feature`` is an ``ids`` class with PROGRESS, PROGRESS_TEXT, PROGRESS_BOX, RUN and CANCEL
    (progress bar, percent label and message; Run disabled and the box shown while it runs);
    failures are shown in ``failure_status``."""
    return dict(
        interval=JOB_INTERVAL_MS,
        progress=[Output(feature.PROGRESS, "value"), Output(feature.PROGRESS, "label"),
                  Output(feature.PROGRESS_TEXT, "children")],
        progress_default=[0, "", ""],
        running=[(Output(feature.RUN, "disabled"), True, False),
                 (Output(feature.PROGRESS_BOX, "style"), {"display": "flex"}, {"display": "none"})],
        cancel=[Input(feature.CANCEL, "n_clicks")],
        failure_status=failure_status,
    )


def progress_reporter(set_progress):
    def report(fraction, message):
        percent = int(round(100 * max(0.0, min(1.0, float(fraction)))))
        set_progress((percent, f"{percent} %", message))
    return report


def status(rows, target, *, query_label="this dataset", reason=None) -> html.Div:
    """Counts of scored datasets, and why there are none: ``reason`` is ``search.no_scores_reason`` of the query."""
    scored = sum(1 for r in rows if r.get("thinned_mean") is not None)
    scored_unthinned = sum(1 for r in rows if r.get("unthinned_mean") is not None)
    parts = [html.Span(f"{len(rows):,} dataset(s) compared", className="fw-semibold"),
             f" · thinned to {target} loc/µm²: {scored:,} with scores · unthinned: {scored_unthinned:,} with scores"
             f" · bank version {bank_version()}"]
    children = [html.Div(parts)]
    reason = reason or {}
    if reason.get("unthinned"):
        children.append(alert(f"No similarity scores: {reason['unthinned']}.", "warning"))
    elif reason.get("thinned"):
        children.append(alert(f"No thinned scores: {reason['thinned']}.", "warning"))
    elif rows and scored == 0 and scored_unthinned:
        children.append(alert(f"No thinned scores: {query_label} (or every other dataset) has no tile holding "
                               f"{target * 9} localisations, needed to thin to {target} loc/µm². Choose a lower "
                               "target or rank by unthinned λ̄."))
    return html.Div(children)


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
        return empty, self_similarity_figure(None, label="Unthinned"), None, None, alert(NOT_FOUND)
    except ValueError as exc:
        raise PreventUpdate from exc
    split = bool(split)
    thinned_label = f"Thinned to {result['target']} loc/µm²"
    reason = search.dataset_no_scores_reason(user, dataset_id, result["target"])
    message = None
    if reason["self"]:
        message = alert(f"No self-similarity: {reason['self']}.")
    elif reason["thinned"]:
        message = alert(f"No thinned self-similarity: {reason['thinned']}.")
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
    report = progress_reporter(set_progress)
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
            return [], alert(NOT_FOUND)
        except ValueError as exc:
            return [], alert(str(exc))
        return rows, status(rows, target, reason=reason)


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


def register(app) -> None:
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
        **progress_box_job(ids.Similarity, ids.Similarity.STATUS),
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
