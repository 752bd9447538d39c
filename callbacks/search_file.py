"""Callbacks of "search with your own file" (/search): the files are analysed and ranked in a
background job for the signed-in user, never stored (``databank.query_files``). Rules as in
``callbacks.similarity``."""

from __future__ import annotations



from dash import dcc, Input, Output, State, html, no_update
from dash.exceptions import PreventUpdate

from databank import search

from databank import query_files

import ids
from databank import jobs
from server.dash_jobs import job_app_context, job_callback, job_user
from callbacks.similarity import (alert, build_filters, progress_box_job, progress_reporter, request_user,
                                  set_columns, status)


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
        return None, alert("Log in to search with your own file.", "danger")
    contents = contents if isinstance(contents, list) else [contents]
    filenames = filenames if isinstance(filenames, list) else [filenames]
    files = []
    for name, content in zip(filenames, contents):
        try:
            _, encoded = str(content).split(",", 1)
            files.append((str(name), base64.b64decode(encoded, validate=False)))
        except ValueError:
            return None, alert(f"{name}: the file could not be read in the browser; choose it again.", "danger")
    try:
        staged = query_files.stage_query_files(user, files)
    except query_files.QueryFileError as exc:
        return None, alert(str(exc), "danger")
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
             dcc.Link("Upload Data", href="/upload"), "."]
    warnings = summary.get("warnings") or []
    return html.Div([html.Div(items)] + ([alert(" ".join(warnings[:3]))] if warnings else []), className="small")


def run_query(set_progress, _n_clicks, token, target, pixel_size, protein, cell_type, modality, tags, server=None):
    """Background job: analyse the staged file (once) and rank the readable bank against it."""
    from databank.ingest import IngestError

    if not token:
        return [], alert("Choose a detection file first (and its ROI files if it has any)."), None
    report = progress_reporter(set_progress)
    with job_app_context(server) as app_server:
        user = job_user(app_server)
        if user is None:
            return [], alert("Log in to search with your own file.", "danger"), None
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
            return [], alert(str(exc), "danger"), None
        reason = search.no_scores_reason([summary.get("stats") or {}], target, label="your file")
        return rows, status(rows, target, query_label="your file", reason=reason), _query_summary(summary, target)


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


def register(app) -> None:
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
        prevent_initial_call=True, **progress_box_job(ids.SearchFile, ids.SearchFile.STATUS),
    )(_run)
    callback(Output(ids.SearchFile.GRID, "columnDefs"), Input(ids.SearchFile.METRIC, "value"), Input(ids.SearchFile.TARGET, "value"))(set_columns)
    callback(Output(ids.SearchFile.DOWNLOAD_FILE, "data"), Output(ids.SearchFile.DOWNLOAD_MESSAGE, "children"),
             Input(ids.SearchFile.DOWNLOAD, "n_clicks"), State(ids.SearchFile.GRID, "rowData"), State(ids.SearchFile.TARGET, "value"),
             State(ids.SearchFile.METRIC, "value"), prevent_initial_call=True)(download_query_results)
