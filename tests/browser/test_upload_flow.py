"""Upload in a real browser: register, choose a ThunderSTORM file and two ROI files, fill the form,
run the background ingest, find the dataset in the databank, open it, download its gridded data,
and check that a second user sees it only once it is public."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest
import requests
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from databank import datasets
from databank.models import Dataset, User, db
from components.metadata_table import EMPTY
from tests.browser.conftest import console_errors

pytestmark = pytest.mark.browser

PROTEIN = "Zyxinupload"          # a word no other dataset carries: the databank search must find it
TITLE = "Zyxin mEos3.2 U2OS fixed, upload flow test"


def write_files(folder):
    """cell1.csv (ThunderSTORM, 12 x 12 um at 200 loc/um^2) + cell1_ROI_1.csv + cell1_ROI_2.csv (Fiji X,Y in um)."""
    rng = np.random.default_rng(3)
    n = 12 * 12 * 200
    x, y = rng.uniform(0, 12_000, n), rng.uniform(0, 12_000, n)
    lines = ['"id","frame","x [nm]","y [nm]","uncertainty [nm]"']
    lines += [f"{i + 1},{i // 20 + 1},{a:.1f},{b:.1f},{s:.2f}"
              for i, (a, b, s) in enumerate(zip(x, y, rng.uniform(5, 25, n)))]
    paths = [folder / "cell1.csv", folder / "cell1_ROI_1.csv", folder / "cell1_ROI_2.csv"]
    paths[0].write_text("\n".join(lines) + "\n")
    paths[1].write_text("X,Y\n0.5,0.5\n7,0.5\n6.8,6\n0.5,6.2\n")
    paths[2].write_text("X,Y\n1,6.5\n11.5,6.5\n11.3,11.6\n1,11.4\n")
    return paths


def fill(dash_duo, values: dict) -> None:
    for field, value in values.items():
        element = dash_duo.driver.find_element(By.ID, field)
        element.clear()
        element.send_keys(value)


def register(dash_duo, username, next_url):
    dash_duo.driver.get(f"{dash_duo.server_url}/register?next={next_url}")
    dash_duo.wait_for_element("#register-form")
    fill(dash_duo, {"username": username, "email": f"{username}@example.org", "password": "long enough pw",
                    "password2": "long enough pw"})
    dash_duo.find_element("#register-submit").click()
    dash_duo.wait_for_text_to_equal("#nav-account", username)


def click(dash_duo, selector):
    element = dash_duo.find_element(selector)
    dash_duo.driver.execute_script("arguments[0].scrollIntoView({block: 'center', behavior: 'instant'})", element)
    element.click()


def search_databank(dash_duo, word):
    dash_duo.driver.get(f"{dash_duo.server_url}/databank")
    dash_duo.wait_for_element("#databank-search")
    fill(dash_duo, {"databank-search": word})
    dash_duo.wait_for_contains_text("#databank-count", "match" if word else "dataset", timeout=10)


def test_bupl001_upload_find_open_download_share(dash_duo, nanoorg_app, tmp_path):
    paths = write_files(tmp_path)
    dash_duo.start_server(nanoorg_app)
    register(dash_duo, "uploader", "/upload")
    dash_duo.wait_for_element("#upload-drop-zone")

    # choose three files at once on the input the page script created; the plan comes first
    dash_duo.driver.find_element(By.ID, "upload-file-input").send_keys("\n".join(str(p) for p in paths))
    dash_duo.wait_for_contains_text("#upload-plan-table", "ROI 2 of cell1.csv")
    assert "ROI 1 of cell1.csv" in dash_duo.find_element("#upload-plan-table").text
    dash_duo.wait_for_contains_text("#upload-transfer-status", "All 3 file(s) are on the server", timeout=180)

    # the form
    fill_field = dash_duo.driver.find_element
    fill_field(By.CSS_SELECTOR, "#upload-field-title input").send_keys(TITLE)
    Select(fill_field(By.CSS_SELECTOR, "#upload-field-modality select")).select_by_value("dSTORM")
    dash_duo.wait_for_element("#upload-field-primary_antibody input").send_keys("anti-zyxin")
    Select(fill_field(By.CSS_SELECTOR, "#upload-field-software select")).select_by_value("ThunderSTORM")
    fill_field(By.CSS_SELECTOR, "#upload-field-protein input").send_keys(PROTEIN)
    fill_field(By.CSS_SELECTOR, "#upload-field-uniprot_id input").send_keys("not an id")
    fill_field(By.CSS_SELECTOR, "#upload-field-pixel_size_nm input").send_keys("100")
    dash_duo.wait_for_contains_text("#upload-field-uniprot_id", "is not a UniProt accession")
    uniprot = fill_field(By.CSS_SELECTOR, "#upload-field-uniprot_id input")
    uniprot.clear()
    uniprot.send_keys("Q15942")
    fill_field(By.CSS_SELECTOR, "#upload-field-cell_type input").send_keys("U2OS")

    # upload: the background job reports progress until the success card appears
    click(dash_duo, "#upload-submit")
    dash_duo.wait_for_element("#upload-success", timeout=60)
    dash_duo.wait_for_contains_text("#upload-progress-message", "Done", timeout=10)
    assert dash_duo.find_element("#upload-progress").text.strip() == "100%"
    assert "28,800 localisations, 2 ROI(s)" in dash_duo.find_element("#upload-success").text
    link = dash_duo.find_element("#upload-dataset-link").get_attribute("href")
    dataset_id = int(link.rstrip("/").rsplit("/", 1)[1])
    dash_duo.wait_for_text_to_equal("#upload-plan-view", "No files chosen yet.")   # staged files were used

    # the databank finds it by its protein; a click opens the details
    search_databank(dash_duo, PROTEIN)
    dash_duo.wait_for_contains_text("#databank-grid", TITLE, timeout=10)
    click(dash_duo, '#databank-grid .ag-row .ag-cell[col-id="protein"]')
    dash_duo.wait_for_element("#dataset-page", timeout=10)
    assert dash_duo.driver.current_url.endswith(f"/dataset/{dataset_id}")

    # three per-file statistics: density, coverage, precision
    header = [th.text for th in dash_duo.driver.find_elements(By.CSS_SELECTOR, "#dataset-file-table thead th")]
    cells = [td.text for td in dash_duo.driver.find_elements(By.CSS_SELECTOR, "#dataset-file-table tbody tr td")]
    stats = {name: cells[header.index(column)] for name, column in
             (("density", "Density (loc/µm²)"), ("coverage", "Coverage"), ("precision", "Precision (nm)"))}
    assert all(value and value != EMPTY for value in stats.values()), stats
    assert stats["coverage"].endswith("%") and 5 < float(stats["precision"]) < 25

    # gridded data download with the browser's session
    href = dash_duo.find_element("#dataset-download-gridded").get_attribute("href")
    cookies = {c["name"]: c["value"] for c in dash_duo.driver.get_cookies()}
    response = requests.get(href, cookies=cookies, timeout=30)
    assert response.status_code == 200
    assert zipfile.ZipFile(io.BytesIO(response.content)).namelist()
    assert requests.get(href, timeout=30, allow_redirects=False).status_code in (302, 401, 403, 404)  # no session

    # a second user: not visible while private ...
    click(dash_duo, "#nav-logout")
    dash_duo.wait_for_element("#nav-login")
    register(dash_duo, "reader", "/databank")
    search_databank(dash_duo, PROTEIN)
    dash_duo.wait_for_contains_text("#databank-count", "0 datasets matching", timeout=10)
    assert TITLE not in dash_duo.find_element("#databank-grid").text
    dash_duo.driver.get(f"{dash_duo.server_url}/dataset/{dataset_id}")
    dash_duo.wait_for_element("#dataset-not-found")

    # ... visible once the owner makes it public
    with nanoorg_app.server.app_context():
        owner = db.session.scalar(db.select(User).where(User.username == "uploader"))
        datasets.set_visibility(owner, dataset_id, "public")
        db.session.remove()
    search_databank(dash_duo, PROTEIN)
    dash_duo.wait_for_contains_text("#databank-grid", TITLE, timeout=10)
    dash_duo.driver.get(f"{dash_duo.server_url}/dataset/{dataset_id}")
    dash_duo.wait_for_element("#dataset-page")

    assert console_errors(dash_duo) == []


def test_bupl002_bad_file_error_then_fix(dash_duo, nanoorg_app, tmp_path):
    """A corrupt detection file: the job names it, nothing is added; removing it lets the upload succeed."""
    paths = write_files(tmp_path)
    broken = tmp_path / "broken.csv"
    broken.write_bytes(np.random.default_rng(1).integers(0, 255, 5000, dtype=np.uint8).tobytes())
    dash_duo.start_server(nanoorg_app)
    register(dash_duo, "uploader2", "/upload")
    dash_duo.wait_for_element("#upload-drop-zone")
    dash_duo.driver.find_element(By.ID, "upload-file-input").send_keys(
        "\n".join(str(p) for p in [*paths, broken]))
    dash_duo.wait_for_contains_text("#upload-transfer-status", "All 4 file(s) are on the server", timeout=180)
    find = dash_duo.driver.find_element
    find(By.CSS_SELECTOR, "#upload-field-title input").send_keys("Broken upload")
    Select(find(By.CSS_SELECTOR, "#upload-field-modality select")).select_by_value("PALM")
    Select(find(By.CSS_SELECTOR, "#upload-field-software select")).select_by_value("ThunderSTORM")
    click(dash_duo, "#upload-submit")
    dash_duo.wait_for_element("#upload-error", timeout=60)
    assert "broken.csv" in dash_duo.find_element("#upload-error").text
    with nanoorg_app.server.app_context():
        assert db.session.scalar(db.select(db.func.count()).select_from(Dataset)) == 0
        db.session.remove()
    # the files go up again by themselves; remove the broken one and retry
    dash_duo.wait_for_contains_text("#upload-transfer-status", "All 4 file(s) are on the server", timeout=180)
    click(dash_duo, '#upload-plan-table button[title="Remove broken.csv"]')
    dash_duo.wait_for_contains_text("#upload-transfer-status", "All 3 file(s) are on the server", timeout=180)
    click(dash_duo, "#upload-submit")
    dash_duo.wait_for_element("#upload-success", timeout=60)
    assert console_errors(dash_duo) == []
