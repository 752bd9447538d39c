"""The dataset metadata table and the dataset links (Dataset Details page).

Input is ``datasets.dataset_record(dataset)`` (JSON-friendly dict); output is Dash components.
Layout only: no database access.
"""

from __future__ import annotations

import dash_bootstrap_components as dbc
from dash import html

from databank.metadata import METADATA_FIELDS

EMPTY = "—"
VISIBILITY_COLOURS = {"public": "success", "shared": "info", "private": "secondary"}
LINK_FIELDS = (("licence_url", "Licence"), ("publication_url", "Publication"),
               ("repository_url", "Repository"), ("doi", "DOI"), ("raw_data_url", "Raw data"))


def doi_url(doi: str) -> str:
    return "https://doi.org/" + str(doi).strip()


def _safe_url(url) -> str | None:
    """Only http(s) links are rendered as links (metadata validation enforces it; belt and braces)."""
    text = str(url or "").strip()
    return text if text.lower().startswith(("http://", "https://")) else None


def format_number(value, digits: int = 0) -> str:
    if value is None or value == "":
        return EMPTY
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    return f"{number:,.{digits}f}"


def visibility_badge(visibility: str, id=None):
    kwargs = {"id": id} if id else {}
    return dbc.Badge(str(visibility or "private").capitalize(), color=VISIBILITY_COLOURS.get(visibility, "secondary"),
                     className="me-1", **kwargs)


def value_cell(field, value):
    """A metadata value rendered for its kind (links for URLs, DOI and email; Yes/No for booleans)."""
    if field.kind == "bool":
        return "Yes" if value else "No"
    if value is None or value == "":
        return EMPTY
    if field.kind == "url":
        url = _safe_url(value)
        return html.A(str(value), href=url, target="_blank", rel="noopener noreferrer") if url else str(value)
    if field.kind == "doi":
        return html.A(str(value), href=doi_url(value), target="_blank", rel="noopener noreferrer")
    if field.kind == "email":
        return html.A(str(value), href=f"mailto:{value}")
    if field.kind == "float":
        return format_number(value, 1)
    if field.kind == "longtext":
        return html.Div(str(value), style={"whiteSpace": "pre-wrap"})
    return str(value)


def metadata_rows(record: dict) -> list[tuple[str, object]]:
    """(label, rendered value) for every metadata field, then owner, created and summary counts."""
    rows = [(f.label, value_cell(f, record.get(f.name))) for f in METADATA_FIELDS]
    rows += [
        ("Owner", record.get("owner") or EMPTY),
        ("Created", record.get("created") or EMPTY),
        ("Visibility", visibility_badge(record.get("visibility"))),
        ("Data files", format_number(record.get("n_files"))),
        ("Localisations", format_number(record.get("n_locs"))),
        ("Tiles kept (3 x 3 µm)", format_number(record.get("n_tiles"))),
        ("Mean localisation density (loc/µm²)", format_number(record.get("density"), 1)),
    ]
    if record.get("shared_with"):
        rows.append(("Shared with", ", ".join(record["shared_with"])))
    return rows


def metadata_table(record: dict, id: str = "dataset-metadata-table"):
    body = [html.Tr([html.Th(label, scope="row", className="w-25 text-nowrap"), html.Td(value)])
            for label, value in metadata_rows(record)]
    return dbc.Table(html.Tbody(body), id=id, bordered=False, striped=True, hover=False, size="sm",
                     className="align-middle")


def dataset_links(record: dict, id: str = "dataset-links"):
    """Buttons for the links the uploader provided (licence, publication, repository, DOI, raw data)."""
    links = []
    for name, label in LINK_FIELDS:
        value = record.get(name)
        if not value:
            continue
        url = doi_url(value) if name == "doi" else _safe_url(value)
        if not url:
            continue
        links.append(dbc.Button(label, href=url, target="_blank", rel="noopener noreferrer",
                                color="primary", outline=True, size="sm", className="me-2 mb-2",
                                external_link=True, id=f"dataset-link-{name.replace('_url', '')}"))
    if record.get("contact_email"):
        links.append(dbc.Button("Contact", href=f"mailto:{record['contact_email']}", color="secondary",
                                outline=True, size="sm", className="me-2 mb-2", external_link=True,
                                id="dataset-link-contact"))
    if not links:
        links = [html.Span("No links provided.", className="text-muted")]
    return html.Div(links, id=id)


def dataset_header(record: dict, id: str = "dataset-header"):
    """Title, visibility and 'simulated' badges, owner and creation date."""
    badges = [visibility_badge(record.get("visibility"), id="dataset-visibility-badge")]
    if record.get("is_simulated"):
        badges.append(dbc.Badge("Simulated", color="warning", text_color="dark", className="me-1",
                                id="dataset-simulated-badge"))
    return html.Div([
        html.H1(record.get("title") or "Untitled dataset", className="h3 mb-1", id="dataset-title"),
        html.Div(badges + [html.Span(f"by {record.get('owner') or EMPTY}, {record.get('created') or ''}",
                                     className="text-muted small ms-1")], className="mb-2"),
    ], id=id)


def dataset_info(record: dict, id: str = "dataset-info"):
    """Header, links and metadata table: the part of the page an owner's edit refreshes."""
    return html.Div([
        dataset_header(record),
        html.H2("Dataset links", className="h5 mt-3"),
        dataset_links(record),
        html.H2("Metadata", className="h5 mt-3"),
        metadata_table(record),
    ], id=id)
