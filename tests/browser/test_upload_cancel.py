"""Cancel a running ingest in a real browser (issue 8, item 11): Dash kills the background job and the
page tells the truth: "nothing was added" with no dataset in the database, or (should the click land
after the commit) "had already finished" with the one dataset; either way no staging copy is left."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from databank.models import Dataset, db
from tests.browser.test_upload_flow import click, register
from tests.browser.conftest import console_errors

pytestmark = pytest.mark.browser

N_FILES = 5
LOCS_PER_FILE = 400_000          # about 1 s of analysis per file: Cancel is pressed while the job reads them


def write_files(folder: Path) -> list[Path]:
    rng = np.random.default_rng(4)
    paths = []
    for k in range(N_FILES):
        x, y = rng.uniform(0, 30_000, LOCS_PER_FILE), rng.uniform(0, 30_000, LOCS_PER_FILE)
        path = folder / f"cell{k + 1}.csv"
        with open(path, "w") as handle:
            handle.write("x [nm],y [nm]\n")
            np.savetxt(handle, np.column_stack((x, y)), fmt="%.1f", delimiter=",")
        paths.append(path)
    return paths


def test_bupl010_cancel_a_running_ingest_leaves_nothing(dash_duo, nanoorg_app, tmp_path):
    paths = write_files(tmp_path)
    store = Path(nanoorg_app.nanoorg_settings.store_dir)
    stored_before = set(store.iterdir())          # earlier tests' folders (their rows are wiped)
    dash_duo.start_server(nanoorg_app)
    register(dash_duo, "canceller", "/upload")
    dash_duo.wait_for_element("#upload-drop-zone")
    dash_duo.driver.find_element(By.ID, "upload-file-input").send_keys("\n".join(str(p) for p in paths))
    dash_duo.wait_for_contains_text("#upload-transfer-status", f"All {N_FILES} file(s) are on the server", timeout=180)
    find = dash_duo.driver.find_element
    find(By.CSS_SELECTOR, "#upload-field-title input").send_keys("Cancelled upload")
    Select(find(By.CSS_SELECTOR, "#upload-field-modality select")).select_by_value("PALM")
    Select(find(By.CSS_SELECTOR, "#upload-field-software select")).select_by_value("ThunderSTORM")
    click(dash_duo, "#upload-submit")
    dash_duo.wait_for_contains_text("#upload-progress-message", "Reading and analysing", timeout=60)
    click(dash_duo, "#upload-cancel-job")
    dash_duo.wait_for_element("#upload-cancelled", timeout=30)
    message = dash_duo.find_element("#upload-cancelled").text

    with nanoorg_app.server.app_context():
        n_datasets = db.session.scalar(db.select(db.func.count()).select_from(Dataset))
        db.session.remove()
    if "nothing was added to the databank" in message:
        assert n_datasets == 0
        assert set(store.iterdir()) == stored_before
    else:
        assert "had already finished" in message and n_datasets == 1, message
    assert list(Path(nanoorg_app.nanoorg_settings.staging_dir).rglob("ingest-*")) == []
    assert console_errors(dash_duo) == []
