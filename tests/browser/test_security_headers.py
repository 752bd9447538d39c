"""The security headers in a real browser: every page loads under the Content-Security-Policy with
no console error (no CSP violation, no failed script), and the headers are on every response."""

from __future__ import annotations

import pytest
import requests

from databank.models import Dataset, db
from tests.web import support

pytestmark = pytest.mark.browser

PAGES = {                       # path -> an element that only appears once the page has rendered
    "/": "#app-shell", "/databank": "#databank-grid .ag-row", "/guide": "#guide-page", "/compare": "#app-shell",
    "/search": "#app-shell", "/login": "#login-form", "/register": "#register-form",
}


def _console_problems(dash_duo) -> list[str]:
    return [entry["message"] for entry in dash_duo.get_logs()
            if entry["level"] == "SEVERE" or "Content Security Policy" in entry["message"]]


def _visit(dash_duo, path: str, ready: str) -> None:
    dash_duo.driver.get(dash_duo.server_url + path)
    dash_duo.wait_for_element(ready, timeout=30)
    dash_duo.wait_for_no_elements("._dash-loading", timeout=30)


def test_bsec001_pages_load_under_the_csp_without_console_errors(dash_duo, nanoorg_app, browser_user, tmp_path):
    dataset_id = support.ingest_small(nanoorg_app, browser_user, tmp_path, visibility="public")
    with nanoorg_app.server.app_context():
        file_id = db.session.get(Dataset, dataset_id).files[0].id
        db.session.remove()
    dash_duo.start_server(nanoorg_app)

    headers = requests.get(dash_duo.server_url + "/", timeout=30).headers
    policy = headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in policy and "default-src 'self'" in policy and "'unsafe-inline'" not in \
        policy.split("script-src")[1].split(";")[0]
    assert headers["X-Frame-Options"] == "DENY" and headers["X-Content-Type-Options"] == "nosniff"
    api = requests.get(dash_duo.server_url + "/api/datasets", timeout=30).headers
    assert api["X-Content-Type-Options"] == "nosniff" and "Content-Security-Policy" in api

    pages = dict(PAGES, **{f"/dataset/{dataset_id}": "#dataset-info", f"/file/{file_id}": "#viewer-graph .js-plotly-plot"})
    for path, ready in pages.items():
        _visit(dash_duo, path, ready)
        assert _console_problems(dash_duo) == [], path

    _visit(dash_duo, "/login", "#login-form")
    dash_duo.find_element("#username").send_keys(browser_user.username)
    dash_duo.find_element("#password").send_keys(browser_user.password)
    dash_duo.find_element("#login-submit").click()
    dash_duo.wait_for_element("#nav-account", timeout=30)
    for path, ready in (("/upload", "#upload-drop-zone"), ("/account", "#app-shell"),
                        (f"/dataset/{dataset_id}", "#dataset-owner-tools")):
        _visit(dash_duo, path, ready)
        assert _console_problems(dash_duo) == [], path
