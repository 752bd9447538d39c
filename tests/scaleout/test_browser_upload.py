"""One real-browser flow against the scale-out deployment (gunicorn x 2, Celery worker): sign in,
upload a file, watch the job's progress in the page, get the success card."""

from __future__ import annotations

import time
import uuid

import pandas as pd
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from tests.databank.conftest import rectangle_um, write_csr_file
from tests.scaleout.http import WebClient

pytestmark = [pytest.mark.scaleout, pytest.mark.browser]
PASSWORD = "correct horse battery"


def test_upload_in_the_browser_with_progress_from_the_job_worker(dash_duo, deployment, tmp_path):
    name = "browser_" + uuid.uuid4().hex[:6]
    WebClient(deployment.url).register(name, PASSWORD)
    paths = []                  # 2 x 810,000 localisations: the ingest outlasts a few progress polls
    for k in range(2):
        paths += write_csr_file(tmp_path, f"cell{k + 1}", density=900.0, size_nm=30_000.0, seed=5 + k,
                                rois=[rectangle_um(0.5, 0.5, 29.5, 29.5)])
    rows = sum(len(pd.read_csv(p)) for p in paths if "_ROI_" not in p.name)
    title = f"Browser upload {uuid.uuid4().hex[:6]}"

    dash_duo.server_url = deployment.url
    driver = dash_duo.driver
    driver.get(deployment.url + "/login")
    dash_duo.wait_for_element("#login-form")
    driver.find_element(By.ID, "username").send_keys(name)
    driver.find_element(By.ID, "password").send_keys(PASSWORD)
    dash_duo.find_element("#login-submit").click()
    dash_duo.wait_for_text_to_equal("#nav-account", name)

    driver.get(deployment.url + "/upload")
    dash_duo.wait_for_element("#upload-drop-zone")
    driver.find_element(By.ID, "upload-file-input").send_keys("\n".join(str(p) for p in paths))
    dash_duo.wait_for_contains_text("#upload-transfer-status", "All 4 file(s) are on the server", timeout=180)
    driver.find_element(By.CSS_SELECTOR, "#upload-field-title input").send_keys(title)
    Select(driver.find_element(By.CSS_SELECTOR, "#upload-field-modality select")).select_by_value("PALM")
    Select(driver.find_element(By.CSS_SELECTOR, "#upload-field-software select")).select_by_value("ThunderSTORM")
    submit = dash_duo.find_element("#upload-submit")
    driver.execute_script("arguments[0].scrollIntoView({block: 'center', behavior: 'instant'})", submit)
    submit.click()

    seen = []                                   # the progress messages the page showed, in order
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and not driver.find_elements(By.ID, "upload-success"):
        text = driver.find_element(By.ID, "upload-progress-message").text.strip()
        if text and (not seen or seen[-1] != text):
            seen.append(text)
        time.sleep(0.05)
    dash_duo.wait_for_element("#upload-success", timeout=5)
    dash_duo.wait_for_contains_text("#upload-progress-message", "Done", timeout=10)
    assert any(text.startswith(("Starting", "Reading and analysing")) for text in seen), seen
    assert dash_duo.find_element("#upload-progress-message").text == f"Done: 2 file(s), {rows:,} localisations"
    assert f"title {title!r}" in deployment.log("celery.log")          # the job worker did the ingest
