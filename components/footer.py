"""The footer shown on every page: legal notice and a contact link."""

from __future__ import annotations

from dash import dcc, html

LEGAL_NOTICE = ("Datasets belong to the people who uploaded them and are shared under the licences they "
                "chose (see each dataset's licence link). nano-org and its analyses are provided as they are, "
                "without warranty of any kind; check results before relying on them.")


def contact_href(contact_email: str | None) -> str:
    """mailto: link when a contact address is configured, else the contact section of the guide."""
    return f"mailto:{contact_email}" if contact_email else "/guide#contact"


def footer(contact_email: str | None = None):
    return html.Footer(
        html.Div([
            html.P(LEGAL_NOTICE, id="footer-legal", className="mb-1 small"),
            html.P([
                html.A("Contact us", href=contact_href(contact_email), id="footer-contact"),
                " · ",
                dcc.Link("User Guide", href="/guide"),
                " · ",
                dcc.Link("API", href="/guide/api"),
            ], className="mb-0 small"),
        ], className="container-fluid px-3"),
        id="footer", className="nanoorg-footer border-top mt-5 py-3 text-body-secondary",
    )
