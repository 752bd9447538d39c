"""Browser tests (dash_duo on headless Debian Chromium, offline). Mark them ``@pytest.mark.browser``.

Run: ``python -m pytest --headless tests/browser`` (headless is also forced here when there is no
display). Fixtures: ``nanoorg_app`` (the session's app from tests.web.support, tables emptied
before each test), ``browser_user`` (an account with a known password).
"""

from __future__ import annotations

import os

import pytest

from tests.web import support

os.environ.setdefault("DASH_TEST_CHROMEPATH", "/usr/bin/chromium")
os.environ.setdefault("SE_OFFLINE", "true")          # selenium manager must not phone home


def pytest_configure(config):
    # Several suites may run at once on one machine (worktrees): NANOORG_TEST_PORT_BASE moves their ports.
    from dash.testing.application_runners import BaseDashRunner
    BaseDashRunner._next_port = int(os.environ.get("NANOORG_TEST_PORT_BASE", "58050"))
    # selenium 4.2 (pinned by dash[testing]) calls urllib3's deprecated getheader() on every command
    config.addinivalue_line("filterwarnings", "ignore:HTTPResponse.getheader:DeprecationWarning")


def pytest_setup_options():
    """Chrome options for dash_duo: the Debian binary, no background network traffic."""
    from selenium.webdriver.chrome.options import Options

    options = Options()
    options.binary_location = os.environ["DASH_TEST_CHROMEPATH"]
    for argument in ("--disable-background-networking", "--disable-component-update", "--disable-sync",
                     "--no-first-run", "--disable-quic", "--disable-default-apps", "--window-size=1280,1000"):
        options.add_argument(argument)
    if not os.environ.get("DISPLAY"):
        options.add_argument("--headless")
    return options


@pytest.fixture(scope="session", autouse=True)
def _fast_password_hashing_browser():
    with pytest.MonkeyPatch.context() as patch:
        support.use_fast_password_hashing(patch)
        yield


@pytest.fixture
def nanoorg_app():
    app = support.shared_app()
    support.wipe_database(app)
    return app


@pytest.fixture
def browser_user(nanoorg_app):
    return support.add_user(nanoorg_app, "browser_alice")
