"""The footer shown on every page: legal notice and a contact link."""

from __future__ import annotations

from dash import dcc, html

LEGAL_NOTICE = ("Datasets belong to the people who uploaded them and are shared under the licences they "
                "chose (see each dataset's licence link). nano-org and its analyses are provided as they are, "
                "without warranty of any kind; check results before relying on them.")


CONTACT_PATH = "/contact"


def contact_href(contact_email: str | None = None) -> str:
    """The contact page (it shows the configured address, if any, and a form stored for the administrators)."""
    return CONTACT_PATH


def footer(contact_email: str | None = None):
    address = [" (", html.A(contact_email, href=f"mailto:{contact_email}", id="footer-contact-email"), ")"] \
        if contact_email else []
    return html.Footer(
        html.Div([
            html.P(LEGAL_NOTICE, id="footer-legal", className="mb-1 small"),
            html.P([
                dcc.Link("Contact us", href=contact_href(contact_email), id="footer-contact"),
                *address,
                " · ",
                dcc.Link("User Guide", href="/guide"),
                " · ",
                dcc.Link("API", href="/guide/api"),
            ], className="mb-0 small"),
        ], className="container-fluid px-3"),
        id="footer", className="nanoorg-footer border-top mt-5 py-3 text-body-secondary",
    )
