"""The navigation bar shown on every page (Dash pages and the server-rendered login forms).

``nav_items(user)`` is the single description of the bar; ``navbar(user)`` renders it with Dash
components and the Flask templates in ``server.auth`` render the same items as HTML, so both
kinds of page show the same bar. Links to Dash pages use ``dcc.Link`` (client-side navigation);
links to Flask routes (/login, /register, /logout) are plain anchors (full page load).
"""

from __future__ import annotations

from dataclasses import dataclass

from dash import dcc, html

BRAND = "nano-org"


@dataclass(frozen=True)
class NavItem:
    id: str
    label: str
    href: str
    dash_page: bool          # True: a Dash page (dcc.Link); False: a Flask route (plain <a>)
    side: str = "left"       # left or right part of the bar
    kind: str = "link"       # link, button (highlighted link) or logout (POST form)


def signed_in(user) -> bool:
    return bool(user is not None and getattr(user, "is_authenticated", False))


def nav_items(user) -> list[NavItem]:
    """What the bar shows for ``user`` (None or anonymous: signed out)."""
    items = [
        NavItem("nav-guide", "User Guide", "/guide", True),
        NavItem("nav-databank", "Databank", "/databank", True),
        NavItem("nav-compare", "Compare", "/compare", True),
    ]
    if signed_in(user):
        items += [
            NavItem("nav-search", "Search with a file", "/search", True),
            NavItem("nav-upload", "Upload Data", "/upload", True),
            NavItem("nav-account", user.username, "/account", True, side="right"),
            NavItem("nav-logout", "Log Out", "/logout", False, side="right", kind="logout"),
        ]
    else:
        items += [
            NavItem("nav-login", "Log In", "/login", False, side="right"),
            NavItem("nav-register", "Register", "/register", False, side="right", kind="button"),
        ]
    return items


def _item(item: NavItem, csrf_token: str | None):
    if item.kind == "logout":
        # A POST form: logging out changes state, so it needs the CSRF token. The token travels as
        # the submit button's name/value (html has no <input>; a submitter's value is form data).
        return html.Li(html.Form(
            html.Button(item.label, id=item.id, type="submit", name="csrf_token", value=csrf_token or "",
                        className="nav-link btn btn-link"),
            action=item.href, method="POST", className="d-inline"), className="nav-item")
    class_name = "btn btn-light btn-sm ms-lg-2 my-1" if item.kind == "button" else "nav-link"
    if item.dash_page:
        link = dcc.Link(item.label, href=item.href, id=item.id, className=class_name)
    else:
        link = html.A(item.label, href=item.href, id=item.id, className=class_name)
    return html.Li(link, className="nav-item")


def navbar(user=None, csrf_token: str | None = None):
    """The Dash navbar for ``user``. ``csrf_token`` is needed for the Log Out form when signed in."""
    items = nav_items(user)
    return html.Nav(
        html.Div([
            dcc.Link(BRAND, href="/", id="nav-home", className="navbar-brand fw-bold"),
            html.Ul([_item(i, csrf_token) for i in items if i.side == "left"],
                    className="navbar-nav me-auto flex-row flex-wrap gap-3"),
            html.Ul([_item(i, csrf_token) for i in items if i.side == "right"],
                    className="navbar-nav ms-auto flex-row flex-wrap gap-3 align-items-center"),
        ], className="container-fluid flex-wrap"),
        id="navbar", className="navbar navbar-expand navbar-dark bg-nanoorg px-3",
    )
