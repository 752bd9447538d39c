"""Callbacks of the Compare page (/compare): 2-10 datasets the user may read, compared pairwise in a
background job. Rules as in ``callbacks.similarity``."""

from __future__ import annotations



from dash import dcc, ClientsideFunction, Input, Output, html, no_update



from databank import compare
from databank.access import AccessDenied
import ids
from databank import jobs
from server.dash_jobs import job_app_context, job_callback, job_user
from components.similarity_figures import (compare_heatmap, self_similarity_overlay)
from callbacks.similarity import alert, progress_box_job, progress_reporter, request_user


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
    return options, wanted, (alert(" ".join(notes), "warning") if notes else None)


def run_compare(set_progress, dataset_ids, target, kind, server=None):
    """Background job: pairwise mean lambda of 2-10 datasets + their self-similarity."""
    report = progress_reporter(set_progress)
    dataset_ids = [i for i in (dataset_ids or []) if isinstance(i, (int, str)) and str(i).isdigit()]
    kind = kind if kind in ("thinned", "unthinned") else "thinned"
    if len(dataset_ids) < 2:
        return no_update, no_update, alert("Choose at least two datasets.", "info"), None
    if len(dataset_ids) > compare.MAX_COMPARE:
        return no_update, no_update, alert(f"Choose at most {compare.MAX_COMPARE} datasets.", "warning"), None
    with job_app_context(server) as app_server:
        user = job_user(app_server)
        try:
            with jobs.slot(report):
                result = compare.compare_datasets(user, dataset_ids, target=target, progress=report)
        except AccessDenied:
            return no_update, no_update, alert("One of the chosen datasets is not available to you."), None
        except ValueError as exc:
            return no_update, no_update, alert(str(exc)), None
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
            html.Td(dcc.Link(result["titles"][k], href=f"/dataset/{result['dataset_ids'][k]}")),
            html.Td("–" if summary.get("mean") is None else f"{summary['mean']:.3f}", className="text-end"),
            html.Td("–" if nearest is None else f"{result['titles'][nearest[1]]} ({nearest[0]:.3f})"),
        ]))
    return html.Table([
        html.Thead(html.Tr([html.Th("Dataset"), html.Th("Self-similarity mean λ", className="text-end"),
                            html.Th("Most similar in this set (mean λ)")])),
        html.Tbody(rows)], className="table table-sm small", id="cmp-summary-table")


def register(app) -> None:
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
        **progress_box_job(ids.Compare, ids.Compare.MESSAGE),
    )(_run)
