"""The file viewer in a real browser: open a public file, move eps, see the cluster count change,
zoom with Plotly.relayout and get a newly rendered density image; no console errors."""

from __future__ import annotations

import time

import numpy as np
import pytest
from dash.testing.wait import until
from selenium.webdriver.common.keys import Keys

from compute import simulate
from databank import viewer_render
from databank.demo import write_fiji_roi, write_thunderstorm_csv
from databank.ingest import StagedFile, ingest_dataset
from databank.models import User, db

pytestmark = pytest.mark.browser

GD = "const gd = document.querySelector('#viewer-graph .js-plotly-plot');"


def _public_file(app, owner_id, folder) -> int:
    pattern = simulate.simulate_clustered(300.0, 10_000.0, 10_000.0, cluster_radius_nm=30.0, locs_per_cluster=25.0,
                                          fraction_clustered=0.7, precision_nm=10.0, seed=21)
    detection = folder / "demo_cell.csv"
    write_thunderstorm_csv(detection, pattern)
    roi = folder / "demo_cell_ROI_1.csv"
    write_fiji_roi(roi, np.array([(0.5, 0.5), (9.5, 0.6), (9.4, 9.5), (0.6, 9.4)]))
    meta = dict(title="Viewer flow demo (simulated)", modality="dSTORM", software="ThunderSTORM", protein="EGFR",
                cell_type="COS-7", fluorophore="Alexa Fluor 647", primary_antibody="anti-EGFR",
                primary_antibody_ref="AB-1", secondary_antibody="anti-rabbit", secondary_antibody_ref="AB-2")
    with app.server.app_context():
        dataset = ingest_dataset([StagedFile(detection, detection.name), StagedFile(roi, roi.name)], meta,
                                 db.session.get(User, owner_id), visibility="public", is_simulated=True)
        file_id = dataset.files[0].id
        db.session.remove()
    return file_id


def _cluster_count(dash_duo) -> str:
    return dash_duo.find_element("#viewer-n-clusters").text


def test_bview001_eps_slider_and_zoom(dash_duo, nanoorg_app, browser_user, tmp_path, monkeypatch):
    # few points per view: the first plot is a density image, a zoom renders a new one
    monkeypatch.setattr(viewer_render, "SCATTER_MAX_POINTS", 3000)
    file_id = _public_file(nanoorg_app, browser_user.id, tmp_path)
    dash_duo.start_server(nanoorg_app)
    dash_duo.driver.get(f"{dash_duo.server_url}/file/{file_id}")          # anonymous visitor, public data
    dash_duo.wait_for_element("#viewer-graph .js-plotly-plot", timeout=30)
    dash_duo.wait_for_element("#viewer-n-clusters", timeout=60)
    before = _cluster_count(dash_duo)

    # eps 100 -> 30 nm through the slider's number input (as a user types it)
    box = dash_duo.find_element("#viewer-eps input[type=number]")
    box.send_keys(Keys.CONTROL, "a")
    box.send_keys("30", Keys.TAB)                       # the value is committed on blur
    until(lambda: "eps 30 nm" in dash_duo.find_element("#viewer-dbscan-status").text, timeout=30)
    until(lambda: _cluster_count(dash_duo) != before, timeout=30)
    assert int(_cluster_count(dash_duo).replace(",", "")) > 0

    # zoom with Plotly.relayout: the server renders a new image for the new window
    source_before = dash_duo.driver.execute_script(GD + "return gd.layout.images[0].source;")
    assert source_before.startswith("data:image/png;base64,")
    dash_duo.driver.execute_script(GD + "Plotly.relayout(gd, {'xaxis.range[0]': 2000, 'xaxis.range[1]': 7000,"
                                        " 'yaxis.range[0]': 7000, 'yaxis.range[1]': 2000});")
    until(lambda: dash_duo.driver.execute_script(GD + "return gd.layout.images[0].source;") != source_before,
          timeout=30)
    image = dash_duo.driver.execute_script(GD + "return gd.layout.images[0];")
    assert image["visible"] and image["source"].startswith("data:image/png;base64,")
    assert image["x"] <= 2000.5 and image["x"] + image["sizex"] >= 6999.5          # covers the new window
    until(lambda: "density image" in dash_duo.find_element("#viewer-view-info").text, timeout=10)

    time.sleep(0.5)
    assert dash_duo.get_logs() == []


def test_bview002_enter_applies_a_typed_eps(dash_duo, nanoorg_app, browser_user, tmp_path):
    """Issue 12 item 6: a typed eps confirmed with Enter (no Tab, no click) re-runs DBSCAN."""
    file_id = _public_file(nanoorg_app, browser_user.id, tmp_path)
    dash_duo.start_server(nanoorg_app)
    dash_duo.driver.get(f"{dash_duo.server_url}/file/{file_id}")
    dash_duo.wait_for_element("#viewer-n-clusters", timeout=60)
    until(lambda: "eps 100 nm" in dash_duo.find_element("#viewer-dbscan-status").text, timeout=30)
    box = dash_duo.find_element("#viewer-eps input[type=number]")
    box.send_keys(Keys.CONTROL, "a")
    box.send_keys("40", Keys.ENTER)
    until(lambda: "eps 40 nm" in dash_duo.find_element("#viewer-dbscan-status").text, timeout=30)
    # the focus stays in the box: the next value can be typed straight away
    assert dash_duo.driver.execute_script("return document.activeElement.type") == "number"
    minpts = dash_duo.find_element("#viewer-minpts input[type=number]")
    minpts.send_keys(Keys.CONTROL, "a")
    minpts.send_keys("5", Keys.ENTER)
    until(lambda: "minPts 5" in dash_duo.find_element("#viewer-dbscan-status").text, timeout=30)

    # issue 12 item 13: the plot toolbar sits above the image, not on it
    toolbar, plot_area = dash_duo.driver.execute_script(
        "const g = document.querySelector('#viewer-graph');"
        "g.dispatchEvent(new MouseEvent('mousemove', {bubbles: true}));"
        "const r = e => { const b = e.getBoundingClientRect(); return {top: b.top, bottom: b.bottom}; };"
        "return [r(g.querySelector('.modebar-container')), r(g.querySelector('.nsewdrag'))];")
    assert toolbar["bottom"] <= plot_area["top"] + 1, (toolbar, plot_area)
    # ... and the plot stays in view while the taller analysis panel scrolls
    dash_duo.driver.execute_script("document.querySelector('#viewer-dbscan-hist').style.height = '1600px';")
    dash_duo.driver.execute_script("window.scrollTo(0, 1200);")
    time.sleep(0.3)
    top = dash_duo.driver.execute_script(
        "return document.querySelector('#viewer-graph').getBoundingClientRect().top;")
    assert dash_duo.driver.execute_script("return window.scrollY;") > 1000
    assert 0 <= top < 200, top
    time.sleep(0.5)
    assert dash_duo.get_logs() == []
