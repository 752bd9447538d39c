"""The Compare page in a real browser: datasets picked in the dropdown are written into the address."""

from __future__ import annotations

import time
from urllib.parse import parse_qs, urlparse

import pytest
from dash.testing.wait import until
from selenium.webdriver.common.keys import Keys

from tests.web import support

pytestmark = pytest.mark.browser


def test_bcmp001_picked_datasets_go_into_the_url(dash_duo, nanoorg_app, browser_user):
    """Issue 12 item 11: a comparison could not be shared as a link."""
    first = support.add_dataset(nanoorg_app, browser_user, title="Alpha public set")
    second = support.add_dataset(nanoorg_app, browser_user, title="Beta public set")
    dash_duo.start_server(nanoorg_app)
    dash_duo.driver.get(f"{dash_duo.server_url}/compare?ids={first}")
    until(lambda: "Alpha public set" in dash_duo.find_element("#cmp-datasets").text, timeout=30)
    dash_duo.find_element("#cmp-datasets").click()             # Dash 4: the options open in a popover
    search = dash_duo.wait_for_element("input.dash-dropdown-search", timeout=10)
    search.send_keys("Beta")
    option = dash_duo.wait_for_element(".dash-dropdown-option", timeout=10)
    until(lambda: "Beta public set" in option.text, timeout=10)
    option.click()
    search.send_keys(Keys.ESCAPE)
    until(lambda: parse_qs(urlparse(dash_duo.driver.current_url).query).get("ids") == [f"{first},{second}"],
          timeout=30)
    dash_duo.driver.refresh()          # the link restores the same choice
    until(lambda: "Beta public set" in dash_duo.find_element("#cmp-datasets").text, timeout=30)
    assert "Alpha public set" in dash_duo.find_element("#cmp-datasets").text
    time.sleep(0.5)
    assert dash_duo.get_logs() == []
