"""Sign-in, registration and sign-out: plain server-rendered forms posting to Flask routes.

Routes (blueprint ``auth``):
  GET/POST /login      ?next=<relative path>   form; wrong credentials: the form again with the
                                               message (200, so browsers log no error); throttled -> 429
  GET/POST /register   ?next=<relative path>   form; field errors shown next to the field (200)
  POST     /logout                             signs out everywhere (every session of the user ends:
                                               ``users.end_sessions``), CSRF token required, redirects to /
  GET      /logout                             a confirmation button (never signs out by GET)

Failed logins are throttled per account name and per client address (``users.authenticate``);
throttled attempts are logged (name, address). Every POST is CSRF-protected by the app-wide ``CSRFProtect`` (missing or bad token -> 400). The
forms share the navbar and footer of the Dash pages (``components.navbar.nav_items``).
"""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

from flask import Blueprint, current_app, redirect, render_template_string, request, session
from flask_login import current_user, login_user, logout_user
from flask_wtf.csrf import generate_csrf

from databank import users
from components.footer import LEGAL_NOTICE, contact_href
from components.navbar import BRAND, nav_items

bp = Blueprint("auth", __name__)
log = logging.getLogger(__name__)


# --------------------------------------------------------------------------------------------
# helpers shared with the app factory

def safe_next(target: str | None, default: str = "/") -> str:
    """``target`` if it is a relative path on this site, else ``default`` (no open redirects).

    Accepted: "/databank", "/dataset/3?tab=files". Refused: "//evil.com", "/\\evil.com",
    "https://evil.com/", "javascript:...", anything with control characters or a host.
    """
    if not target or not isinstance(target, str):
        return default
    target = target.strip()
    if not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in target):
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return default
    if parts.path.startswith(("/login", "/logout", "/register")):
        return default
    return target


def bearer_token(req=None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header ('' if the header is malformed),
    None when the request has no Authorization header at all."""
    req = req or request
    header = req.headers.get("Authorization")
    if header is None:
        return None
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer":
        return ""
    return token.strip()


# --------------------------------------------------------------------------------------------
# templates (autoescaped: render_template_string escapes every {{ value }})

BASE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ title }} · {{ brand }}</title>
<link rel="stylesheet" href="/assets/bootstrap.min.css">
<link rel="stylesheet" href="/assets/nanoorg.css">
</head>
<body>
<nav id="navbar" class="navbar navbar-expand navbar-dark bg-nanoorg px-3">
 <div class="container-fluid flex-wrap">
  <a id="nav-home" class="navbar-brand fw-bold" href="/">{{ brand }}</a>
  {% for side in ("left", "right") %}
  <ul class="navbar-nav {{ 'me-auto' if side == 'left' else 'ms-auto align-items-center' }} flex-row flex-wrap gap-3">
   {% for item in items if item.side == side %}
   <li class="nav-item">
    {% if item.kind == "logout" %}
    <form action="{{ item.href }}" method="POST" class="d-inline">
     <input type="hidden" name="csrf_token" value="{{ csrf_token() }}">
     <button id="{{ item.id }}" type="submit" class="nav-link btn btn-link">{{ item.label }}</button>
    </form>
    {% else %}
    <a id="{{ item.id }}" href="{{ item.href }}"
       class="{{ 'btn btn-light btn-sm ms-lg-2 my-1' if item.kind == 'button' else 'nav-link' }}">{{ item.label }}</a>
    {% endif %}
   </li>
   {% endfor %}
  </ul>
  {% endfor %}
 </div>
</nav>
<main class="container py-4" style="max-width: 32rem">
{{ body|safe }}
</main>
<footer id="footer" class="nanoorg-footer border-top mt-5 py-3 text-body-secondary">
 <div class="container-fluid px-3">
  <p id="footer-legal" class="mb-1 small">{{ legal }}</p>
  <p class="mb-0 small"><a id="footer-contact" href="{{ contact }}">Contact us</a> ·
   <a href="/guide">User Guide</a> · <a href="/guide/api">API</a></p>
 </div>
</footer>
</body>
</html>
"""

FIELD = """{% macro field(name, label, type="text", value="", autocomplete="", help="") -%}
<div class="mb-3">
 <label for="{{ name }}" class="form-label">{{ label }}</label>
 <input id="{{ name }}" name="{{ name }}" type="{{ type }}" value="{{ value }}"
        class="form-control{{ ' is-invalid' if errors.get(name) }}" autocomplete="{{ autocomplete }}" required
        {% if errors.get(name) %}aria-describedby="{{ name }}-error"{% endif %}>
 {% if errors.get(name) %}<div id="{{ name }}-error" class="invalid-feedback">{{ errors[name] }}</div>{% endif %}
 {% if help %}<div class="form-text">{{ help }}</div>{% endif %}
</div>
{%- endmacro %}"""

LOGIN = FIELD + """
<h1 class="h3 mb-3">Log in</h1>
{% if message %}<div id="login-error" class="alert alert-danger" role="alert">{{ message }}</div>{% endif %}
<form id="login-form" method="POST" action="/login" novalidate>
 <input type="hidden" name="csrf_token" value="{{ csrf_token() }}">
 <input type="hidden" name="next" value="{{ next }}">
 {{ field("username", "User name", value=username, autocomplete="username") }}
 {{ field("password", "Password", type="password", autocomplete="current-password") }}
 <button id="login-submit" type="submit" class="btn btn-primary w-100">Log in</button>
</form>
<p class="mt-3 small">No account yet? <a href="/register{{ next_qs }}">Register</a>.</p>
"""

REGISTER = FIELD + """
<h1 class="h3 mb-3">Register</h1>
<p class="small text-body-secondary">An account lets you upload datasets, share them with other users
and download data files.</p>
<form id="register-form" method="POST" action="/register" novalidate>
 <input type="hidden" name="csrf_token" value="{{ csrf_token() }}">
 <input type="hidden" name="next" value="{{ next }}">
 {{ field("username", "User name", value=username, autocomplete="username",
          help="3-64 letters, digits, '.', '_' or '-'. Shown to other users.") }}
 {{ field("email", "Email", type="email", value=email, autocomplete="email") }}
 {{ field("password", "Password", type="password", autocomplete="new-password", help="At least 8 characters.") }}
 {{ field("password2", "Repeat password", type="password", autocomplete="new-password") }}
 <button id="register-submit" type="submit" class="btn btn-primary w-100">Create account</button>
</form>
<p class="mt-3 small">Already registered? <a href="/login{{ next_qs }}">Log in</a>.</p>
"""

LOGOUT = """
<h1 class="h3 mb-3">Log out</h1>
<p>You are signed in as <strong>{{ username }}</strong>.</p>
<form id="logout-form" method="POST" action="/logout">
 <input type="hidden" name="csrf_token" value="{{ csrf_token() }}">
 <button id="logout-submit" type="submit" class="btn btn-primary">Log out</button>
 <a class="btn btn-link" href="/">Cancel</a>
</form>
"""

MESSAGE = """<h1 class="h3 mb-3">{{ heading }}</h1><p id="message">{{ text }}</p>
<p><a href="{{ link }}">{{ link_text }}</a></p>"""


def render_page(title: str, template: str, status: int = 200, **context):
    """Render ``template`` inside the shared page frame (navbar + footer)."""
    context.setdefault("errors", {})
    body = render_template_string(template, csrf_token=generate_csrf, **context)
    html = render_template_string(
        BASE, title=title, brand=BRAND, body=body, items=nav_items(current_user), csrf_token=generate_csrf,
        legal=LEGAL_NOTICE, contact=contact_href(current_app.config.get("NANOORG_CONTACT_EMAIL")))
    response = current_app.make_response((html, status))
    response.headers["Cache-Control"] = "no-store"
    return response


def _next_qs(next_url: str) -> str:
    from urllib.parse import urlencode

    return "?" + urlencode({"next": next_url}) if next_url and next_url != "/" else ""


# --------------------------------------------------------------------------------------------
# sessions

SESSION_GENERATION = "nanoorg_session_generation"


def sign_in(user) -> None:
    """Start a session for ``user``, stamped with the user's session generation (logout bumps it)."""
    login_user(user)
    session[SESSION_GENERATION] = user.session_generation


def session_user(user_id):
    """flask-login's user loader: the session's user, unless that user has logged out since the
    session was signed in (its generation is older) -> None (anonymous)."""
    user = users.get_user(user_id)
    if user is None or session.get(SESSION_GENERATION) != user.session_generation:
        return None
    return user


# --------------------------------------------------------------------------------------------
# routes

@bp.route("/login", methods=["GET", "POST"])
def login():
    next_url = safe_next(request.values.get("next"))
    if request.method == "GET":
        if current_user.is_authenticated:
            return redirect(next_url)
        return render_page("Log in", LOGIN, next=next_url, next_qs=_next_qs(next_url), username="", message=None)

    username = (request.form.get("username") or "").strip()
    password = request.form.get("password") or ""
    try:
        user = users.authenticate(username, password, client=request.remote_addr)
    except users.LoginThrottled as exc:
        log.warning("login throttled: name %r from %s, %d s to wait", username[:64], request.remote_addr, exc.seconds)
        return render_page("Log in", LOGIN, 429, next=next_url, next_qs=_next_qs(next_url), username=username,
                           message=f"Too many failed attempts. Try again in {exc.seconds} s.")
    if user is None:
        return render_page("Log in", LOGIN, next=next_url, next_qs=_next_qs(next_url), username=username,
                           message="Wrong user name or password.")
    sign_in(user)
    return redirect(next_url)


@bp.route("/register", methods=["GET", "POST"])
def register():
    next_url = safe_next(request.values.get("next"))
    if request.method == "GET":
        if current_user.is_authenticated:
            return redirect(next_url)
        return render_page("Register", REGISTER, next=next_url, next_qs=_next_qs(next_url), username="", email="")

    username = (request.form.get("username") or "").strip()
    email = (request.form.get("email") or "").strip()
    password = request.form.get("password") or ""
    context = dict(next=next_url, next_qs=_next_qs(next_url), username=username, email=email)
    if password != (request.form.get("password2") or ""):
        return render_page("Register", REGISTER, errors={"password2": "The two passwords differ."}, **context)
    try:
        user = users.create_user(username, email, password)
    except users.AccountError as exc:
        return render_page("Register", REGISTER, errors={exc.field: str(exc)}, **context)
    sign_in(user)
    return redirect(next_url)


@bp.route("/logout", methods=["GET", "POST"])
def logout():
    if request.method == "GET":
        # GET never changes state (a link or an image tag could trigger it): ask for a POST.
        if not current_user.is_authenticated:
            return redirect("/")
        return render_page("Log out", LOGOUT, username=current_user.username)
    if current_user.is_authenticated:
        users.end_sessions(current_user)      # every copy of every session cookie of this user dies
    logout_user()
    return redirect("/")


def register_routes(server) -> None:
    server.register_blueprint(bp)
