"""nano-org web app: the application factory, and the process entry points.

``create_app(settings=None) -> dash.Dash`` builds the Flask server, the data layer, sign-in, CSRF,
the Dash pages (``pages/``, found by Dash next to this file) and the Flask routes (``server/``).

Entry points (built lazily on first access, so that importing ``create_app`` has no side effects):
- ``app:server``: the WSGI application (``gunicorn 'app:server'``; ``make run``);
- ``app:celery_app``: the Celery application when ``REDIS_URL`` is set (``celery -A app:celery_app worker``);
  without it, background jobs run in threads of the web process (``server.dash_jobs``);
- ``python app.py``: Flask's debug server (``make dev``), for development only.
On start, leftovers of interrupted ingests are swept away; on first start, when the bank is empty and
NANOORG_SEED_DEMO is on (default), the demo bank is seeded (``prepare_bank``).

Security wiring (DASH_NOTES §5):
- flask-login: session sign-in (``/login`` form) and ``Authorization: Bearer <token>`` for API
  clients (``users.user_for_token``); a bad or revoked token is answered 401 on every route.
- Flask-WTF ``CSRFProtect`` on every POST/PUT/PATCH/DELETE. The signed token is also sent in the
  ``_csrf_token`` cookie, which the Dash renderer copies into the ``X-CSRFToken`` header of every
  callback POST; server-rendered forms carry it as the ``csrf_token`` field.
- Anonymous visitors may browse public data, so no global gate: every layout, callback and route
  that touches data calls the data layer's authorisation (``access.get_dataset`` ...).
- Logout ends every session of the user (session generation checked by ``auth.session_user``);
  request bodies are capped (``NANOORG_MAX_REQUEST_MB``); API and callback errors are always JSON;
  security headers and the CSP come from ``server/headers.py``. The model: docs/SECURITY.md.

Several apps in one process (tests): Dash executes the modules of ``pages/`` on each ``create_app``
(``dash.page_registry`` is module-global, keyed by module name, so a later call overwrites the
entries). Pages hold layout only; every callback is registered on the app being built through the
``register(app)`` of its module in ``callbacks/``.
"""

from __future__ import annotations

from urllib.parse import urlencode

import dash
from dash import Dash, html
import numpy as np
from flask import Flask, Request, current_app, g, jsonify, redirect, request
from flask.json.provider import DefaultJSONProvider
from flask_login import LoginManager, current_user
from flask_wtf.csrf import CSRFError, CSRFProtect, generate_csrf
from werkzeug.exceptions import BadRequest, InternalServerError, RequestEntityTooLarge
from werkzeug.middleware.proxy_fix import ProxyFix

from config import Settings, load_settings
from databank import users
from databank.core import init_databank
from callbacks import register_callbacks
from components.footer import footer
from components.navbar import navbar
from databank.demo import retire_documented_password, seed_demo
from databank.ingest import sweep_orphans
from databank.similarity_index import warm_bank_index
from compute.warm_up import start_warm_up
from server import api, auth, headers, health
from server.dash_jobs import CeleryJobManager, make_job_manager

CSRF_COOKIE = "_csrf_token"
# Requests for static files and the health check need neither a session nor a CSRF cookie.
STATIC_PREFIXES = ("/assets/", "/_dash-component-suites/", "/_favicon.ico", "/healthz")


# --------------------------------------------------------------------------------------------
# Flask server

class _JSONProvider(DefaultJSONProvider):
    """Flask JSON that also writes numpy scalars and arrays (statistics come from numpy), and
    refuses request bodies nested too deeply to parse as bad JSON (400), not a crash (500)."""

    def loads(self, s, **kwargs):
        try:
            return super().loads(s, **kwargs)
        except RecursionError:
            raise ValueError("the JSON is nested too deeply") from None

    @staticmethod
    def default(o):
        if isinstance(o, np.generic):
            return o.item()
        if isinstance(o, np.ndarray):
            return o.tolist()
        return DefaultJSONProvider.default(o)


class _Request(Request):
    def on_json_loading_failed(self, e):
        """Say why a JSON body was refused (Flask says so only in debug mode)."""
        if e is None:
            return super().on_json_loading_failed(e)
        raise BadRequest(f"The request body is not valid JSON: {e}.")


def _make_server(settings: Settings, migrate_schema: bool) -> Flask:
    server = Flask(__name__)
    server.request_class = _Request
    server.json = _JSONProvider(server)
    secure = settings.secure_cookies
    server.config.update(
        SECRET_KEY=settings.secret_key,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=secure,          # set NANOORG_SECURE_COOKIES=1 behind HTTPS
        REMEMBER_COOKIE_HTTPONLY=True,
        REMEMBER_COOKIE_SECURE=secure,
        WTF_CSRF_TIME_LIMIT=24 * 3600,         # a page left open for a day still works
        WTF_CSRF_SSL_STRICT=secure,
        NANOORG_CONTACT_EMAIL=settings.contact_email,
        NANOORG_SECURE_COOKIES=secure,
        MAX_CONTENT_LENGTH=settings.max_request_mb * 1024 * 1024,   # files: chunked upload only
    )
    if settings.proxy_hops:
        server.wsgi_app = ProxyFix(server.wsgi_app, x_for=settings.proxy_hops, x_proto=settings.proxy_hops)
    init_databank(server, settings, migrate=migrate_schema)
    _init_login(server)
    _init_csrf(server)
    _init_errors(server)
    return server


def _bearer_user():
    """The user of the request's Bearer token (cached per request); None if absent or invalid."""
    if "nanoorg_bearer_user" not in g:
        token = auth.bearer_token()
        g.nanoorg_bearer_user = users.user_for_token(token) if token else None
    return g.nanoorg_bearer_user


def _wants_json() -> bool:
    path = request.path
    return (path.startswith(("/api/", "/_dash-")) or request.is_json
            or request.accept_mimetypes.best == "application/json")


def _init_login(server: Flask) -> None:
    manager = LoginManager(server)
    manager.session_protection = "basic"

    manager.user_loader(auth.session_user)

    @manager.request_loader
    def load_user_from_request(_request):
        return _bearer_user()

    @manager.unauthorized_handler
    def unauthorized():
        if _wants_json():
            return jsonify(error="Sign in (or send an API token) to do this.", status=401), 401
        return redirect("/login?" + urlencode({"next": auth.safe_next(request.full_path.rstrip("?"))}))

    @server.before_request
    def refuse_bad_tokens():
        token = auth.bearer_token()
        if token is not None and _bearer_user() is None:
            response = jsonify(error="Invalid or revoked API token.", status=401)
            response.status_code = 401
            response.headers["WWW-Authenticate"] = 'Bearer realm="nano-org", error="invalid_token"'
            return response
        return None


def _init_csrf(server: Flask) -> None:
    CSRFProtect(server)

    @server.after_request
    def csrf_cookie(response):
        # API clients with a token and static files get no session and no cookie.
        if request.path.startswith(STATIC_PREFIXES) or auth.bearer_token() is not None:
            return response
        response.set_cookie(CSRF_COOKIE, generate_csrf(), samesite="Lax",
                            secure=server.config["SESSION_COOKIE_SECURE"], httponly=False)
        return response

    @server.errorhandler(CSRFError)
    def csrf_error(exc):
        if _wants_json():
            return jsonify(error=f"CSRF check failed: {exc.description}", status=400), 400
        return auth.render_page("Form expired", auth.MESSAGE, 400, heading="The form has expired",
                                text=f"{exc.description} Reload the page and try again.",
                                link=request.path, link_text="Reload")



def _init_errors(server: Flask) -> None:
    """API and callback clients always get JSON errors; nothing answers with a bare HTML 500."""

    @server.errorhandler(404)
    def not_found(exc):
        if request.path.startswith("/api/"):
            return jsonify(error="Not found.", status=404), 404
        return exc

    @server.errorhandler(405)
    def method_not_allowed(exc):
        if request.path.startswith("/api/"):
            return jsonify(error="Method not allowed (the API is read-only).", status=405), 405
        return exc

    @server.errorhandler(BadRequest)
    def bad_request(exc):
        if _wants_json():
            return jsonify(error=exc.description, status=400), 400
        return exc

    @server.errorhandler(KeyError)
    def unknown_callback(exc):
        # Dash answers a callback POST naming no registered output with KeyError (a forged or stale page)
        if request.path == "/_dash-update-component" and "Callback function not found" in str(exc):
            return jsonify(error="There is no callback for these outputs: reload the page.", status=400), 400
        raise exc

    @server.errorhandler(RequestEntityTooLarge)
    def too_large(_exc):
        limit_mb = server.config["MAX_CONTENT_LENGTH"] // (1024 * 1024)
        text = (f"The request is larger than the limit of {limit_mb} MB. Send data files through the "
                "Upload page (they are sent in chunks); search with a smaller file.")
        if _wants_json():
            return jsonify(error=text, status=413), 413
        return auth.render_page("Request too large", auth.MESSAGE, 413, heading="Request too large", text=text,
                                link="/", link_text="Home")

    @server.errorhandler(InternalServerError)
    def internal_error(exc):
        # Flask has logged the exception (with its traceback) already; say nothing about it here.
        text = "Something went wrong on the server; it has been logged. Try again, or report what you did."
        if _wants_json():
            return jsonify(error=text, status=500), 500
        return auth.render_page("Server error", auth.MESSAGE, 500, heading="Server error", text=text,
                                link="/", link_text="Home")


# --------------------------------------------------------------------------------------------
# Dash app

def serve_layout():
    """The app shell, built per page load so the navbar shows the current user."""
    contact = current_app.config.get("NANOORG_CONTACT_EMAIL")
    user = current_user if current_user and current_user.is_authenticated else None
    return html.Div([
        navbar(user, csrf_token=generate_csrf() if user else None),
        html.Main(dash.page_container, id="main", className="container-fluid px-3 py-4 nanoorg-main"),
        footer(contact),
    ], id="app-shell", className="d-flex flex-column min-vh-100")


def _register_route_modules(server: Flask) -> None:
    """Routes owned by the other web modules: downloads, chunked upload, similarity results."""
    from server import api_similarity, routes_downloads, routes_upload

    routes_downloads.register(server)
    routes_upload.register(server)
    api_similarity.register(server)


def create_app(settings: Settings | None = None, *, migrate_schema: bool = True) -> Dash:
    """Build the nano-org web app (Dash) on a fresh Flask server for ``settings``.

    ``migrate_schema``: upgrade the database schema first (default); False only checks it (the
    web and job workers of a deployment, whose schema was migrated once before they started)."""
    settings = settings or load_settings()
    server = _make_server(settings, migrate_schema)
    auth.register_routes(server)
    api.register(server)
    _register_route_modules(server)

    job_manager = make_job_manager(settings, server)      # threads of this process, or Celery (REDIS_URL)
    health.register(server, job_manager.handle if isinstance(job_manager, CeleryJobManager) else None)
    app = Dash(
        __name__,                           # finds pages/ and assets/ beside this file
        server=server,
        use_pages=True,
        external_stylesheets=[],            # Bootstrap is vendored in assets/ (offline)
        external_scripts=[],
        suppress_callback_exceptions=True,
        background_callback_manager=job_manager,
        title="nano-org",
        update_title=None,
        meta_tags=[{"name": "viewport", "content": "width=device-width, initial-scale=1"}],
    )
    app.layout = serve_layout
    app.nanoorg_settings = settings
    app.nanoorg_job_manager = job_manager
    register_callbacks(app)
    headers.install(app)
    return app


# --------------------------------------------------------------------------------------------
# Entry points

def prepare_bank(app: Dash) -> None:
    """Sweep leftovers of interrupted ingests, retire the demo owner's once-documented password,
    seed the demo bank on first start.

    Run once per deployment before serving (gunicorn's master does it, see gunicorn.conf.py)."""
    settings = app.nanoorg_settings
    with app.server.app_context():
        removed = sweep_orphans(settings)
        if removed:
            print(f"Removed {len(removed)} leftover folder(s) of interrupted ingests.", flush=True)
        retire_documented_password(settings, progress=lambda message: print(message, flush=True))
        if settings.seed_demo:
            created = seed_demo(settings, progress=lambda message: print("  seeding demo bank " + message, flush=True))
            if created:
                print(f"Demo bank ready: {len(created)} datasets.", flush=True)


def warm_process(app: Dash) -> None:
    """Load the similarity index and compile the viewer's kernels in background threads.

    Only in a process that serves and will not fork again (a gunicorn worker, ``python app.py``):
    a fork taken while such a thread holds a lock (SQLite's, numba's) hangs the child (see
    ``server.dash_jobs``). So never in gunicorn's master nor in a Celery worker's parent."""
    warm_bank_index(app.server)
    if app.nanoorg_settings.viewer_warmup:
        start_warm_up()


_default_app: Dash | None = None


def default_app(*, warm: bool = True) -> Dash:
    """The process's app for the settings in the environment, built once (warmed if ``warm``).

    Gunicorn and Celery workers only check the schema: it was migrated before they started
    (``nanoorg migrate``, or gunicorn's master in ``on_starting``), so workers never race on it."""
    global _default_app
    if _default_app is None:
        _default_app = create_app(load_settings(), migrate_schema=False)
        if warm:
            warm_process(_default_app)
    return _default_app


def __getattr__(name: str):
    """``app:server`` (WSGI), ``app:app`` and ``app:celery_app``, built on first access."""
    if name == "server":
        return default_app().server
    if name == "app":
        return default_app()
    if name == "celery_app":             # a Celery worker's parent forks its pool: no warm-up threads
        manager = default_app(warm=False).nanoorg_job_manager
        return manager.handle if isinstance(manager, CeleryJobManager) else None
    raise AttributeError(f"module 'app' has no attribute {name!r}")


if __name__ == "__main__":
    development_app = create_app(load_settings())
    prepare_bank(development_app)
    warm_process(development_app)
    settings = development_app.nanoorg_settings
    print(f"nano-org (development server) on http://{settings.host}:{settings.port}/", flush=True)
    development_app.run(host=settings.host, port=settings.port, debug=False)
