"""The similarity section of a dataset page in a real browser: both self-similarity histograms, the
results table (background job), a metadata filter, the CSV download, no console errors."""

from __future__ import annotations

import csv
import glob
import os
import time

import pytest

from tests.web import support
from selenium.webdriver.common.by import By

from databank.models import db
from databank.users import create_user
from tests.web.helpers_datasets import PASSWORD, Bank, ingest, make_files

pytestmark = pytest.mark.browser

DENSE = 12_000


def _bank(app, folder) -> Bank:
    bank = Bank(app=app, settings=app.nanoorg_settings, folder=folder)
    with app.server.app_context():
        for name in ("alice", "bob"):
            bank.users[name] = create_user(name, f"{name}@example.org", PASSWORD).id
        specs = [("query", "alice", "Query EGFR COS-7", "public", "COS-7"),
                 ("hela_1", "alice", "EGFR in HeLa one", "public", "HeLa"),
                 ("hela_2", "bob", "EGFR in HeLa two", "public", "HeLa"),
                 ("cos", "bob", "EGFR in COS-7 other", "public", "COS-7"),
                 ("secret", "bob", "Bob secret dataset", "private", "HeLa")]
        for k, (key, owner, title, visibility, cell_type) in enumerate(specs):
            ingest(bank, key, owner, title=title, visibility=visibility, cell_type=cell_type,
                   files=make_files(folder / key, f"cell{k}", n=DENSE, seed=k))
        db.session.remove()
    return bank


def _section_wired(app, dataset_id) -> bool:
    from tests.web.helpers_datasets import find_ids, page_layout

    with app.server.test_request_context(f"/dataset/{dataset_id}"):
        layout = page_layout("/dataset/<dataset_id>")(dataset_id=str(dataset_id))
    return "sim-section" in find_ids(layout) and any("sim-grid.rowData" in key for key in app.callback_map)


def _click(dash_duo, selector):
    element = dash_duo.find_element(selector)
    dash_duo.driver.execute_script("arguments[0].scrollIntoView({block: 'center'}); arguments[0].click();", element)


def _grid_rows(dash_duo):
    return dash_duo.driver.find_elements(By.CSS_SELECTOR, "#sim-grid .ag-center-cols-container .ag-row")


def _until(condition, timeout=60.0, message="condition"):
    end = time.time() + timeout
    while time.time() < end:
        try:
            value = condition()
            if value:
                return value
        except Exception:  # stale elements while the grid re-renders
            pass
        time.sleep(0.25)
    raise AssertionError(f"timed out waiting for {message}")


def test_bsim001_dataset_page_similarity(dash_duo, nanoorg_app, tmp_path):
    bank = _bank(nanoorg_app, tmp_path)
    query = bank.datasets["query"]
    if not _section_wired(nanoorg_app, query):
        pytest.skip("similarity_section() is not in the dataset page / register_section() not called yet")

    dash_duo.start_server(nanoorg_app)
    dash_duo.driver.execute_cdp_cmd("Page.setDownloadBehavior",
                                    {"behavior": "allow", "downloadPath": dash_duo.download_path})
    dash_duo.driver.get(dash_duo.server_url + f"/login?next=/dataset/{query}")
    dash_duo.wait_for_element("#login-form")
    dash_duo.find_element("#username").send_keys("alice")
    dash_duo.find_element("#password").send_keys(PASSWORD)
    dash_duo.find_element("#login-submit").click()
    dash_duo.wait_for_element("#sim-section", timeout=30)

    # both self-similarity histograms (bars + the line at lambda = 1) and their summaries
    for graph in ("#sim-self-thinned", "#sim-self-unthinned"):
        dash_duo.wait_for_element(f"{graph} .barlayer .point", timeout=90)
    dash_duo.wait_for_element("#sim-self-table-thinned", timeout=30)
    assert "Fraction λ > 1" in dash_duo.find_element("#sim-self-summary-unthinned").text

    # the results table: every other dataset alice may read, never bob's private one
    _until(lambda: "dataset(s) compared" in dash_duo.find_element("#sim-status").text, 120, "search results")
    _until(lambda: len(_grid_rows(dash_duo)) == 3, 30, "3 result rows")
    page = dash_duo.driver.find_element(By.ID, "sim-grid").text
    assert "EGFR in HeLa one" in page and "Bob secret dataset" not in page
    # issue 12 item 10: headers fit (wrapped, not cut) and the fraction column says it is a percentage
    assert dash_duo.driver.execute_script(support.TRUNCATED_HEADERS_JS, "#sim-grid") == []
    assert "% pairs λ > 1" in page and " %" in page

    # metadata filter: same cell type (COS-7) leaves one dataset
    _click(dash_duo, "#sim-same-cell-type")
    grid_text = lambda: dash_duo.driver.find_element(By.ID, "sim-grid").text  # noqa: E731
    _until(lambda: len(_grid_rows(dash_duo)) == 1 and "EGFR in COS-7 other" in grid_text()
           and "HeLa one" not in grid_text(), 90, "filtered rows")
    assert "1 dataset(s) compared" in dash_duo.find_element("#sim-status").text

    # CSV of the filtered table
    _click(dash_duo, "#sim-download")
    files = _until(lambda: glob.glob(os.path.join(dash_duo.download_path, "*.csv")), 30, "the CSV download")
    with open(files[0], newline="") as handle:
        table = list(csv.DictReader(handle))
    assert [row["title"] for row in table] == ["EGFR in COS-7 other"]
    assert table[0]["thinned_lambda_mean"] and table[0]["unthinned_lambda_mean"]

    assert dash_duo.get_logs() == []
