"""The Data Files table of the Dataset Details page and the dataset download buttons.

Input is ``datasets.dataset_record(dataset)["files"]``; layout only.
"""

from __future__ import annotations

import re

import dash_bootstrap_components as dbc
from dash import dcc, html

from compute.formats import FORMAT_LABELS
from server.routes_downloads import dataset_download_url, file_download_url
from components.metadata_table import EMPTY, format_number

COLUMNS = ("File", "Format", "Localisations", "Density (loc/µm²)", "Coverage", "Precision (nm)",
           "NeNA precision (nm)", "ROIs", "Tiles kept / dropped", "")
DATASET_DOWNLOADS = (("originals", "Download original data files"), ("gridded", "Download gridded data"),
                     ("images", "Download PNG images"), ("rois", "Download ROIs"))


def file_view_url(file_id: int) -> str:
    return f"/file/{int(file_id)}"


def _percent(value) -> str:
    if value is None:
        return EMPTY
    return f"{100 * float(value):.1f} %"


def _tiles(record: dict) -> str:
    total, kept = record.get("n_tiles"), record.get("n_tiles_kept")
    if total is None:
        return EMPTY
    if kept is None:
        return f"{int(total)} / {EMPTY}"
    return f"{int(kept)} / {int(total) - int(kept)}"


def breakable(name: str) -> list:
    """A file name with line-break opportunities after '_', '-', '.' and spaces only (never mid-word)."""
    parts = re.split(r"(?<=[_\-. ])", str(name))
    out = []
    for part in parts:
        if part:
            out += [part, html.Wbr()]
    return out[:-1]


def file_row(record: dict, can_download: bool):
    fid = record["id"]
    actions = []
    if can_download:
        actions.append(html.A("Download", href=file_download_url(fid), id={"type": "file-download", "index": fid},
                              className="btn btn-sm btn-outline-primary me-2 mb-1", download=""))
    actions.append(dcc.Link("View data file and analysis", href=file_view_url(fid),
                            id={"type": "file-view", "index": fid}, className="btn btn-sm btn-primary mb-1"))
    warnings = record.get("warnings") or []
    name_cell = [html.Span(breakable(record.get("name") or f"file {fid}"), className="fw-semibold nanoorg-file-name")]
    if warnings:
        name_cell.append(html.Div("; ".join(map(str, warnings)), className="small text-warning-emphasis"))
    return html.Tr([
        html.Td(name_cell),
        html.Td(FORMAT_LABELS.get(record.get("format"), record.get("format") or EMPTY), className="text-nowrap"),
        html.Td(format_number(record.get("n_locs")), className="text-end"),
        html.Td(format_number(record.get("density"), 1), className="text-end"),
        html.Td(_percent(record.get("coverage")), className="text-end"),
        html.Td(format_number(record.get("precision_median"), 1), className="text-end"),
        html.Td(format_number(record.get("precision_nena_nm"), 1), className="text-end"),
        html.Td(format_number(record.get("n_rois")), className="text-end"),
        html.Td(_tiles(record), className="text-end text-nowrap"),
        html.Td(actions, className="text-end"),
    ], id={"type": "file-row", "index": fid})


def file_table(files: list[dict], can_download: bool, id: str = "dataset-file-table"):
    if not files:
        return html.P("This dataset has no data files.", className="text-muted", id=id)
    header = html.Thead(html.Tr([html.Th(c, className="text-nowrap") for c in COLUMNS]))
    return dbc.Table([header, html.Tbody([file_row(f, can_download) for f in files])], id=id, hover=True,
                     responsive=True, size="sm", className="align-middle")


def download_buttons(dataset_id: int, can_download: bool, next_path: str, id: str = "dataset-downloads"):
    """Dataset-level downloads for registered users; a 'log in to download' note for visitors."""
    if not can_download:
        return html.Div(dbc.Alert([
            "Log in to download the data files, gridded data, images and ROIs. ",
            html.A("Log in", href=f"/login?next={next_path}", className="alert-link"), " or ",
            html.A("register", href="/register", className="alert-link"), ".",
        ], color="light", className="py-2 mb-0", id="dataset-login-to-download"), id=id, className="mb-3")
    return html.Div([
        html.A(label, href=dataset_download_url(dataset_id, kind), id=f"dataset-download-{kind}", download="",
               className="btn btn-outline-primary btn-sm me-2 mb-2")
        for kind, label in DATASET_DOWNLOADS
    ], id=id, className="mb-2")
