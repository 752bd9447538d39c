"""/databank: the datasets the visitor may read (anonymous visitors: the public ones).

AG Grid with the infinite row model: sorting, column filters and the search box all run on the
server (``callbacks.databank``), 100 rows per page, so the page stays fast with tens of
thousands of datasets. Clicking a title (or any cell of a row) opens /dataset/<id>.
"""

from __future__ import annotations

import json

import dash
import dash_ag_grid as dag
import dash_bootstrap_components as dbc
from dash import dcc, html

from databank.metadata import LONG_TEXT_FIELDS, METADATA_FIELDS
from databank.datasets import GRID_PAGE_SIZE
import ids

dash.register_page(__name__, path="/databank", name="Databank", title="Databank · nano-org", order=2,
                   description="Browse the single-molecule localisation microscopy datasets of nano-org.")

NUMBER_FORMAT = {"function": "params.value == null ? '' : d3.format(',.0f')(params.value)"}
DECIMAL_FORMAT = {"function": "params.value == null ? '' : d3.format(',.1f')(params.value)"}
BOOL_FORMAT = {"function": "params.value == null ? '' : (params.value ? 'yes' : 'no')"}
TEXT_FILTER = {"filter": "agTextColumnFilter",
               "filterParams": {"buttons": ["reset"], "debounceMs": 400, "maxNumConditions": 1,
                                "filterOptions": ["contains", "notContains", "equals", "startsWith", "endsWith",
                                                  "blank", "notBlank"]}}
NUMBER_FILTER = {"filter": "agNumberColumnFilter",
                 "filterParams": {"buttons": ["reset"], "debounceMs": 400, "maxNumConditions": 1,
                                  "filterOptions": ["greaterThan", "greaterThanOrEqual", "lessThan",
                                                    "lessThanOrEqual", "equals", "notEqual", "inRange"]}}


def _text(field, header, width=150, **extra):
    return {"field": field, "headerName": header, "headerTooltip": header, "minWidth": width, **TEXT_FILTER, **extra}


def _number(field, header, fmt=NUMBER_FORMAT, width=120, **extra):
    return {"field": field, "headerName": header, "headerTooltip": header, "minWidth": width, "type": "rightAligned",
            "valueFormatter": fmt, **NUMBER_FILTER, **extra}


def column_defs() -> list[dict]:
    """Grid columns: the main ones shown, every other metadata field hidden (column chooser)."""
    shown = [
        _text("title", "Title", 260, pinned="left", cellRenderer="NanoorgDatasetLink",
              tooltipField="title"),
        _text("protein", "Protein"),
        _text("cell_type", "Cell type"),
        _text("modality", "Modality", 110),
        _text("software", "Software", 130),
        _text("fluorophore", "Fluorophore"),
        _number("density", "Density (loc/µm²)", DECIMAL_FORMAT, 140),
        _number("n_files", "Files", width=90),
        _number("n_locs", "Localisations", width=140),
        _number("n_tiles", "Tiles", width=90),
        _text("owner", "Owner", 120),
        _text("visibility", "Visibility", 110, cellRenderer="NanoorgVisibilityBadge"),
        _text("created", "Created", 120),
    ]
    taken = {c["field"] for c in shown}
    hidden = []
    for field in METADATA_FIELDS:
        if field.name in taken or field.name in LONG_TEXT_FIELDS:     # long text: on the dataset page only
            continue
        if field.kind == "bool":
            hidden.append({"field": field.name, "headerName": field.label, "headerTooltip": field.label, "minWidth": 120,
                           "valueFormatter": BOOL_FORMAT, "filter": False, "hide": True})
        elif field.kind == "float":
            hidden.append(_number(field.name, field.label, DECIMAL_FORMAT, hide=True))
        else:
            hidden.append(_text(field.name, field.label, hide=True))
    hidden.append({"field": "simulated", "colId": "is_simulated", "headerName": "Simulated", "minWidth": 110,
                   "filter": False, "hide": True})
    hidden.append(_number("id", "ID", width=80, hide=True))
    return shown + hidden


def column_choices(columns: list[dict]) -> list[dict]:
    return [{"label": c["headerName"], "value": c["field"]} for c in columns if c["field"] != "title"]


def url_sort(sort: str | None, columns: list[dict]) -> list[tuple[str, str]]:
    """The ``sort`` query parameter ('density:desc,title:asc') as (column id, direction) pairs of known columns."""
    known = {c.get("colId", c["field"]) for c in columns}
    pairs = []
    for part in (sort if isinstance(sort, str) else "")[:500].split(","):
        column, _, direction = part.partition(":")
        if column in known and direction in ("asc", "desc") and column not in dict(pairs):
            pairs.append((column, direction))
    return pairs


def url_filters(f: str | None, columns: list[dict]) -> dict:
    """The ``f`` query parameter (the grid's filter model as JSON) restricted to known columns; {} if unreadable.
    The server checks every filter again (``callbacks.databank``); this only restores the grid's controls."""
    known = {c.get("colId", c["field"]) for c in columns}
    try:
        model = json.loads(f) if isinstance(f, str) and len(f) <= 4000 else {}
    except ValueError:
        return {}
    return {k: v for k, v in model.items() if k in known and isinstance(v, dict)} if isinstance(model, dict) else {}


def layout(q: str | None = None, sort: str | None = None, f: str | None = None, **_ignored):
    """The databank; ``q`` (search), ``sort`` and ``f`` (filters) come from the URL, which the page keeps
    up to date (assets/databank_grid.js), so Back and shared links show the same table."""
    columns = column_defs()
    sorted_by = url_sort(sort, columns)
    for column in columns:
        key = column.get("colId", column["field"])
        if key in dict(sorted_by):
            column.update(sort=dict(sorted_by)[key], sortIndex=[k for k, _ in sorted_by].index(key))
    filters = url_filters(f, columns)
    for column in columns:
        if column.get("colId", column["field"]) in filters:
            column["hide"] = False
    visible = [c["field"] for c in columns if not c.get("hide") and c["field"] != "title"]
    search = (q if isinstance(q, str) else "")[:200]
    grid = dag.AgGrid(
        id=ids.Databank.GRID,
        rowModelType="infinite",
        columnDefs=columns,
        filterModel=filters,
        defaultColDef={"sortable": True, "resizable": True, "floatingFilter": False, "flex": 1,
                       "suppressHeaderMenuButton": False, "wrapHeaderText": True, "autoHeaderHeight": True},
        getRowId="params.data.row_id",
        dashGridOptions={
            "pagination": True,
            "paginationPageSize": GRID_PAGE_SIZE,
            "paginationPageSizeSelector": False,
            "cacheBlockSize": GRID_PAGE_SIZE,
            "maxBlocksInCache": 20,
            "maxConcurrentDatasourceRequests": 1,
            "infiniteInitialRowCount": 1,
            "tooltipShowDelay": 500,
            "animateRows": False,
        },
        style={"height": "70vh", "minHeight": "420px", "width": "100%"},
        className="ag-theme-quartz",
    )
    return dbc.Container([
        dcc.Location(id=ids.Databank.NAV, refresh="callback-nav"),
        dcc.Store(id="databank-search-applied"),
        dcc.Store(id=ids.Databank.URL_STATE),
        html.H1("Databank", className="h3 mt-3"),
        html.P("Single-molecule localisation microscopy datasets shared with the community. Click a column "
               "heading to sort, the filter icon of a heading to filter, or search all metadata below. Click a "
               "dataset to see its details, files and analysis.", className="text-muted"),
        dbc.Row([
            dbc.Col(dbc.InputGroup([
                dbc.InputGroupText("Search"),
                dbc.Input(id=ids.Databank.SEARCH, type="search", value=search, debounce=400,
                          placeholder="protein, cell type, fluorophore, tag, owner …", autocomplete="off"),
            ]), md=7, lg=6, className="mb-2"),
            dbc.Col(dbc.Button("Columns", id="databank-columns-toggle", color="secondary", outline=True,
                               size="sm"), width="auto", className="mb-2 ms-auto"),
        ], className="g-2 align-items-center"),
        dbc.Collapse(dbc.Card(dbc.CardBody(dbc.Checklist(
            id=ids.Databank.COLUMNS, options=column_choices(columns), value=visible, inline=True, switch=True,
        )), className="mb-2"), id="databank-columns-panel", is_open=False),
        html.Div(html.Span("Loading datasets …", id=ids.Databank.COUNT), className="small text-muted mb-2",
                 **{"aria-live": "polite"}),
        grid,
    ], fluid=True, className="pb-4", id="databank-page")
