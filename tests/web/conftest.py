"""Fixtures for HTTP-level tests of the web app (Flask test client, no browser).

One app per test session (``support.shared_app``: Dash's page and callback registries are global),
on a temporary instance folder; every test that uses ``app`` starts with empty tables.

Fixtures: ``app`` (the Dash app), ``server`` (its Flask app), ``settings``, ``client`` (a fresh
anonymous test client), ``make_user`` (factory -> support.Account), ``user`` (one account),
``signed_in`` (factory: account -> client signed in through the real /login form),
``make_dataset`` (factory: bare Dataset row), ``ingest`` (factory: real ingest of a small file).
Helpers to import: ``tests.web.support`` (login, dash_post, render_page, csrf_cookie, bearer ...).
"""

from __future__ import annotations

import pytest

from tests.web import support


@pytest.fixture(scope="session", autouse=True)
def _fast_password_hashing():
    """Cheap password hashes in tests (production keeps werkzeug's scrypt default)."""
    with pytest.MonkeyPatch.context() as patch:
        support.use_fast_password_hashing(patch)
        yield


@pytest.fixture(scope="session")
def app():
    return support.shared_app()


@pytest.fixture(scope="session")
def server(app):
    return app.server


@pytest.fixture(scope="session")
def settings(app):
    return app.nanoorg_settings


@pytest.fixture(autouse=True)
def _empty_tables(request):
    """Tests that use the shared app start with empty tables."""
    if "app" in request.fixturenames:
        app = request.getfixturevalue("app")
        if app is support._SHARED.get("app"):
            support.wipe_database(app)
    yield


@pytest.fixture
def client(server):
    return server.test_client()


@pytest.fixture
def make_user(app):
    def make(username=None, password=support.PASSWORD):
        return support.add_user(app, username, password)
    return make


@pytest.fixture
def user(make_user):
    return make_user()


@pytest.fixture
def signed_in(server):
    """signed_in(account) -> a new test client signed in as ``account`` through /login."""
    def sign_in(account):
        client = server.test_client()
        response = support.login(client, account)
        assert response.status_code == 302, response.text
        return client
    return sign_in


@pytest.fixture
def make_dataset(app):
    def make(owner, **kwargs):
        return support.add_dataset(app, owner, **kwargs)
    return make


@pytest.fixture
def ingest(app, tmp_path):
    def run(owner, **kwargs):
        return support.ingest_small(app, owner, tmp_path, **kwargs)
    return run
