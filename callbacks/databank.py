"""Callbacks of the databank page (/databank): server-side rows for the AG Grid infinite row model.

The grid asks for blocks of rows (``getRowsRequest``: startRow, endRow, sortModel, filterModel);
``grid_rows`` answers with one page from ``datasets.list_datasets(current_user, ...)`` — only the
datasets the visitor may read, filtered, sorted and paged in SQL. The search box is a State of that
callback; typing (debounced) purges the grid's cache in the browser, so the grid asks again.

``register(app)`` wires the callbacks to ``app`` (``app.callback``).
"""

from __future__ import annotations

import logging

from dash import ClientsideFunction, Input, Output, State, no_update
from flask_login import current_user

from databank import datasets
from databank.metadata import METADATA_FIELDS
import ids

log = logging.getLogger(__name__)

MAX_BLOCK = 500

# Columns the grid may sort and filter on (the keys list_datasets understands).
GRID_KEYS = tuple(dict.fromkeys([key for key, _ in datasets.DATASET_COLUMNS]
                                + [f.name for f in METADATA_FIELDS] + ["is_simulated"]))


def _sort_model(sort_model) -> list[tuple[str, str]]:
    pairs = []
    for item in sort_model or []:
        if isinstance(item, dict) and item.get("colId") in GRID_KEYS:
            pairs.append((item["colId"], "desc" if item.get("sort") == "desc" else "asc"))
    return pairs


def _filter_model(filter_model) -> dict:
    if not isinstance(filter_model, dict):
        return {}
    return {key: spec for key, spec in filter_model.items() if key in GRID_KEYS and isinstance(spec, dict)}


def grid_row(row: dict) -> dict:
    """A list_datasets row as the grid shows it (dates and None values are already JSON-friendly)."""
    row = dict(row)
    row["simulated"] = "yes" if row.pop("is_simulated", False) else "no"
    row["row_id"] = str(row["id"])        # AG Grid row ids must be strings
    return row


def count_text(total: int, search: str | None, filtered: bool) -> str:
    noun = "dataset" if total == 1 else "datasets"
    text = f"{total:,} {noun}"
    if search and search.strip():
        text += f" matching “{search.strip()}”"
    if filtered:
        text += " (column filters on)"
    return text


def fetch_rows(request: dict | None, search: str | None):
    """(getRowsResponse, count text) for one grid block request, for the current user."""
    if not request:
        return no_update, no_update
    try:
        start = max(0, int(request.get("startRow") or 0))
        end = int(request.get("endRow") or start + datasets.GRID_PAGE_SIZE)
    except (TypeError, ValueError):
        start, end = 0, datasets.GRID_PAGE_SIZE
    limit = max(1, min(end - start, MAX_BLOCK))
    filters = _filter_model(request.get("filterModel"))
    try:
        rows, total = datasets.list_datasets(current_user, search=(search or "").strip() or None,
                                             filters=filters, sort=_sort_model(request.get("sortModel")),
                                             offset=start, limit=limit)
    except (ValueError, TypeError) as exc:       # e.g. a number filter holding text
        log.info("databank query refused: %s", exc)
        return {"rowData": [], "rowCount": 0}, f"No datasets: {exc}"
    return ({"rowData": [grid_row(r) for r in rows], "rowCount": total},
            count_text(total, search, bool(filters)))


def grid_rows(request, search):
    """Callback: Input(grid, getRowsRequest), State(search, value) -> (getRowsResponse, count)."""
    return fetch_rows(request, search)


def visible_columns(selected, column_defs):
    """Callback: the column chooser shows/hides grid columns (no data involved)."""
    if not column_defs:
        return no_update
    chosen = set(selected or [])
    return [{**c, "hide": c.get("field") not in chosen} if c.get("field") != "title" else c for c in column_defs]


# Typing in the search box: drop the grid's cached blocks and go back to the first page; the grid
# then requests rows again and grid_rows reads the new search text.
PURGE_ON_SEARCH = f"""
function(value) {{
    if (window.dash_ag_grid && window.dash_ag_grid.getApiAsync) {{
        window.dash_ag_grid.getApiAsync("{ids.Databank.GRID}").then(function(api) {{
            api.purgeInfiniteCache();
            if (api.paginationGoToFirstPage) {{ api.paginationGoToFirstPage(); }}
        }}).catch(function() {{}});
    }}
    return value || "";
}}
"""

# Clicking a cell (other than the title link, which navigates by itself) opens the dataset page.
OPEN_ON_CLICK = """
function(clicked) {
    if (!clicked || clicked.rowId === undefined || clicked.rowId === null || clicked.colId === "title") {
        return window.dash_clientside.no_update;
    }
    return "/dataset/" + encodeURIComponent(String(clicked.rowId));
}
"""


def register(app) -> None:
    """Wire the databank callbacks to ``app`` ."""
    callback = app.callback
    clientside = app.clientside_callback
    callback(Output(ids.Databank.GRID, "getRowsResponse"), Output(ids.Databank.COUNT, "children"),
             Input(ids.Databank.GRID, "getRowsRequest"), State(ids.Databank.SEARCH, "value"))(grid_rows)
    callback(Output(ids.Databank.GRID, "columnDefs"), Input(ids.Databank.COLUMNS, "value"), State(ids.Databank.GRID, "columnDefs"),
             prevent_initial_call=True)(visible_columns)
    clientside(PURGE_ON_SEARCH, Output("databank-search-applied", "data"), Input(ids.Databank.SEARCH, "value"),
               prevent_initial_call=True)
    clientside("function(n, open) { return n ? !open : open; }", Output("databank-columns-panel", "is_open"),
               Input("databank-columns-toggle", "n_clicks"), State("databank-columns-panel", "is_open"),
               prevent_initial_call=True)
    clientside(ClientsideFunction("nanoorg_databank", "url_state"), Output(ids.Databank.URL_STATE, "data"),
               Input(ids.Databank.GRID, "getRowsRequest"), State(ids.Databank.SEARCH, "value"))
    clientside(OPEN_ON_CLICK, Output(ids.Databank.NAV, "href"), Input(ids.Databank.GRID, "cellClicked"), prevent_initial_call=True)
