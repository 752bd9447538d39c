"""The databank in a real browser: search, sort and filters survive Back (they live in the URL)."""

from __future__ import annotations

import json
import time
from urllib.parse import parse_qs, urlparse

import pytest
from dash.testing.wait import until

from tests.web import support

pytestmark = pytest.mark.browser


def _link_titles(dash_duo) -> list[str]:
    """The grid's dataset links, read in one script (the grid may redraw between finding an element
    and reading its text: a stale element)."""
    return dash_duo.driver.execute_script(
        "return Array.from(document.querySelectorAll('#databank-grid .nanoorg-dataset-link'), e => e.innerText);")


def test_bdb001_search_sort_and_filter_survive_back(dash_duo, nanoorg_app, browser_user):
    """Issue 12 item 7: the databank forgot search, filters and sort on Back."""
    for k, (protein, density) in enumerate([("EGFR", 5.0), ("EGFR", 50.0), ("EGFR", 20.0), ("LAT", 99.0)]):
        support.add_dataset(nanoorg_app, browser_user, title=f"Set {k} {protein}", protein=protein, density=density)
    dash_duo.start_server(nanoorg_app)
    dash_duo.driver.get(f"{dash_duo.server_url}/databank")
    until(lambda: len(_link_titles(dash_duo)) == 4, timeout=30)
    # issue 12 item 10: no header is cut ('Density (loc/…', 'Localisati…')
    assert dash_duo.driver.execute_script(support.TRUNCATED_HEADERS_JS, "#databank-grid") == []
    search = dash_duo.find_element("#databank-search")
    search.send_keys("EGFR")
    until(lambda: len(_link_titles(dash_duo)) == 3, timeout=30)
    # sort by density, descending (two clicks on the heading)
    heading = dash_duo.find_element('#databank-grid .ag-header-cell[col-id="density"] .ag-header-cell-label')
    heading.click()
    time.sleep(0.6)
    heading.click()
    until(lambda: _link_titles(dash_duo) == ["Set 1 EGFR", "Set 2 EGFR", "Set 0 EGFR"], timeout=30)
    # a number filter through the grid API (what the column filter menu does)
    dash_duo.driver.execute_script(
        "dash_ag_grid.getApiAsync('databank-grid').then(a => a.setFilterModel("
        "{density: {filterType: 'number', type: 'greaterThan', filter: 10}}));")
    until(lambda: _link_titles(dash_duo) == ["Set 1 EGFR", "Set 2 EGFR"], timeout=30)
    until(lambda: "f=" in dash_duo.driver.current_url, timeout=10)
    query = parse_qs(urlparse(dash_duo.driver.current_url).query)
    assert query["q"] == ["EGFR"] and query["sort"] == ["density:desc"]
    assert json.loads(query["f"][0])["density"]["filter"] == 10
    # open a dataset, then Back: the same table
    dash_duo.find_element("#databank-grid .nanoorg-dataset-link").click()
    until(lambda: "/dataset/" in dash_duo.driver.current_url, timeout=10)
    dash_duo.wait_for_element("#dataset-info", timeout=30)
    dash_duo.driver.back()
    until(lambda: dash_duo.find_element("#databank-search").get_attribute("value") == "EGFR", timeout=30)
    until(lambda: _link_titles(dash_duo) == ["Set 1 EGFR", "Set 2 EGFR"], timeout=30)
    assert "(column filters on)" in dash_duo.find_element("#databank-count").text
    time.sleep(0.5)
    assert dash_duo.get_logs() == []
