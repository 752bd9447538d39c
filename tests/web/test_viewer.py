"""The file viewer (/file/<id>): callbacks called as functions, access rules, result CSVs.

The bank is built once for this module on the session's shared app (tests/web/support.py): alice
owns a public clustered file and a private one; bob owns nothing; carol is the foreign user.
"""

from __future__ import annotations

import io
import json
import re
import tempfile
from contextlib import contextmanager
from contextvars import copy_context
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import shapely
from plotly.io.json import to_json_plotly as to_json
from flask_login import login_user, logout_user
from shapely.geometry import Polygon

from config import __version__
from compute import clusters, simulate
from databank import analysis
from databank import analysis_csv
from databank import analysis_inputs
from databank.demo import write_fiji_roi, write_thunderstorm_csv
from databank.ingest import StagedFile, ingest_dataset
from databank.models import DataFile, User, db
from databank.users import SESSION_GENERATION, create_user
from tests.web.support import callback_context
from tests.web import support

META = dict(modality="dSTORM", software="ThunderSTORM", protein="EGFR", cell_type="COS-7",
            fluorophore="Alexa Fluor 647", primary_antibody="anti-EGFR", primary_antibody_ref="AB-1",
            secondary_antibody="anti-rabbit", secondary_antibody_ref="AB-2")
ROI_UM = np.array([(0.6, 0.4), (9.5, 0.8), (9.2, 9.4), (0.5, 8.9), (2.0, 5.0)])   # concave, not a rectangle


def _write(folder: Path, stem: str, seed: int) -> list[StagedFile]:
    folder.mkdir(parents=True, exist_ok=True)
    pattern = simulate.simulate_clustered(300.0, 10_000.0, 10_000.0, cluster_radius_nm=30.0, locs_per_cluster=25.0,
                                          fraction_clustered=0.7, precision_nm=10.0, seed=seed)
    detection = folder / f"{stem}.csv"
    write_thunderstorm_csv(detection, pattern)
    roi = folder / f"{stem}_ROI_1.csv"
    write_fiji_roi(roi, ROI_UM)
    return [StagedFile(detection, detection.name), StagedFile(roi, roi.name)]


@pytest.fixture(scope="module")
def bank():
    app = support.shared_app()
    support.wipe_database(app)
    folder = Path(tempfile.mkdtemp(prefix="viewer-test-"))
    ids = {}
    with app.server.app_context():
        users = {name: create_user(name, f"{name}@example.org", support.PASSWORD) for name in ("alice", "bob", "carol")}
        public = ingest_dataset(_write(folder / "pub", "cell_a", 11), dict(META, title="Viewer public"),
                                users["alice"], visibility="public")
        private = ingest_dataset(_write(folder / "priv", "cell_b", 12), dict(META, title="Viewer private"),
                                 users["alice"], visibility="private")
        ids = dict(users={k: u.id for k, u in users.items()}, public=public.files[0].id, private=private.files[0].id)
        db.session.remove()
    yield app, ids
    support.wipe_database(app)


@contextmanager
def request_as(app, user_id, path="/"):
    with app.server.test_request_context(path):
        if user_id is not None:
            login_user(db.session.get(User, user_id))
        try:
            yield
        finally:
            if user_id is not None:
                logout_user()
            db.session.remove()


def as_callback(prop_id, fn, *args, cookies=None):
    """Call ``fn`` the way Dash does for a change of ``prop_id`` (dash.ctx set)."""
    def call():
        with callback_context(triggered_inputs=[{"prop_id": prop_id, "value": None}], cookies=cookies or {}):
            return fn(*args)
    return copy_context().run(call)


def _cb():
    from callbacks import viewer
    return viewer


def _text(component) -> str:
    """JSON of a component tree, compact and unescaped (to search for ids and values)."""
    return json.dumps(json.loads(to_json(component)), ensure_ascii=False, separators=(",", ":"))


def _independent_points(data_file, table, kind, index=None, box=None):
    """The region's points selected here, without databank.analysis."""
    x, y = np.asarray(table.x), np.asarray(table.y)
    if kind == "roi":
        polygon = Polygon(next(r for r in data_file.rois if r.index == index).vertices_nm)
        inside = shapely.intersects_xy(polygon, x, y)
        return x[inside], y[inside], polygon.area / 1e6, polygon
    if kind == "tile":
        tile = next(t for t in data_file.tiles if t.index == index)
        inside = (x >= tile.x0_nm) & (x < tile.x0_nm + 3000) & (y >= tile.y0_nm) & (y < tile.y0_nm + 3000)
        return x[inside], y[inside], 9.0, (tile.x0_nm, tile.y0_nm, tile.x0_nm + 3000, tile.y0_nm + 3000)
    x0, y0, x1, y1 = box
    inside = (x >= x0) & (x <= x1) & (y >= y0) & (y <= y1)
    return x[inside], y[inside], (x1 - x0) * (y1 - y0) / 1e6, box


# ------------------------------------------------------------------------------------------------
# same statistics as compute/


@pytest.mark.parametrize("kind", ["roi", "tile", "box"])
def test_vw001_dbscan_callback_matches_compute(bank, kind):
    app, ids = bank
    cb = _cb()
    path = f"/file/{ids['public']}"
    with request_as(app, ids["users"]["bob"]):           # public file, another signed-in user
        data_file = db.session.get(DataFile, ids["public"])
        table = cb.load_table(data_file)
        if kind == "roi":
            key, args = "roi:1", dict(index=1)
        elif kind == "tile":
            tile = max(data_file.tiles, key=lambda t: t.n_locs)
            key, args = f"tile:{tile.index}", dict(index=tile.index)
        else:
            key, args = "box:2000.0,3000.0,5500.0,6000.0", dict(box=(2000.0, 3000.0, 5500.0, 6000.0))
        x, y, area_um2, _ = _independent_points(data_file, table, kind, **args)
        eps, min_samples = 37.0, 6
        labels = clusters.dbscan_labels(x, y, eps, min_samples)
        expected = clusters.cluster_summary(x, y, labels, area_um2)

        region = analysis.select_region(data_file, table, analysis_inputs.RegionSpec.parse(key))
        assert region.n == x.size and np.isclose(region.area_um2, area_um2)
        result = analysis.run_dbscan(region, eps, min_samples)
        assert result.summary.keys() == expected.keys()
        for name, value in expected.items():
            assert result.summary[name] == pytest.approx(value, nan_ok=True), name
        assert np.array_equal(np.sort(region.x), np.sort(x))

        status, card, hist, patch, request = as_callback("viewer-eps.value", cb.update_dbscan, eps, min_samples, key,
                                                         True, path, {})
        text = _text(card)
        assert f'"children":"{expected["n_clusters"]:,d}","id":"viewer-n-clusters"' in text
        assert f"{expected['percent_clustered']:.1f} %" in text
        assert f"{expected['clusters_per_um2']:,.2f}" in text
        assert f"{expected['n_locs_per_cluster_mean']:,.1f} / {expected['n_locs_per_cluster_median']:,.1f}" in text
        assert request is cb.no_update
        assert "eps 37 nm, minPts 6" in status


def test_vw002_eps_change_changes_cluster_count(bank):
    app, ids = bank
    cb = _cb()
    path = f"/file/{ids['public']}"
    with request_as(app, None):                              # anonymous visitor of public data
        counts = []
        for eps in (15, 60, 150):
            _, card, *_ = as_callback("viewer-eps.value", cb.update_dbscan, eps, 10, "roi:1", True, path, {})
            counts.append(int(re.search(r'"children":"([\d,]+)","id":"viewer-n-clusters"', _text(card)).group(1)
                              .replace(",", "")))
    assert len(set(counts)) == 3


def test_vw003_ripley_callback_matches_compute(bank):
    app, ids = bank
    cb = _cb()
    with request_as(app, ids["users"]["alice"]):
        data_file = db.session.get(DataFile, ids["public"])
        table = cb.load_table(data_file)
        tile = max(data_file.tiles, key=lambda t: t.n_locs)
        x, y, _, window = _independent_points(data_file, table, "tile", index=tile.index)
        radii = clusters.default_radii_nm(300, 20)
        expected = clusters.ripley(x, y, radii, window=window, edge="ripley")
        figure, info, request = cb.update_ripley(300, 20, "ripley", f"tile:{tile.index}", None,
                                                 f"/file/{ids['public']}")
        assert request is cb.no_update
        curve = next(t for t in figure["data"] if t["name"].startswith("H(r)"))
        assert np.allclose(curve["y"], expected.H)
        assert np.allclose(curve["x"], radii)
        assert not expected.h_max_beyond_range
        assert f"r = {expected.r_at_h_max:.0f} nm, L(r) − r = {expected.h_max:.1f} nm" in _text(info)
        assert f"All {x.size:,} localisations" in _text(info)


def test_vw004_ripley_of_a_large_polygon_roi_runs_as_a_job_on_every_point(bank, monkeypatch):
    """No subsampling: above the inline budget the job computes K on all the ROI's points, with the
    polygon edge correction, and the shown curve is compute's; a maximum at r max still rising is
    reported as lying beyond r max (figure, text and CSV)."""
    app, ids = bank
    cb = _cb()
    path = f"/file/{ids['public']}"
    monkeypatch.setattr(analysis, "RIPLEY_SYNC_MAX_PAIRS", 1000)
    with request_as(app, ids["users"]["bob"]):
        figure, info, request = as_callback("viewer-ripley-rmax.value", cb.update_ripley, 60, 10, "ripley", "roi:1",
                                            None, path)
        assert request["region"] == "roi:1" and "background" in _text(info)
        progress = []
        ready = as_callback("viewer-ripley-request.data", cb.ripley_job, progress.append, request, path)
        figure, info = as_callback("viewer-ripley-ready.data", cb.show_ripley_job, ready, 60, 10, "ripley", "roi:1",
                                   None, path)
        data_file = db.session.get(DataFile, ids["public"])
        x, y, _, window = _independent_points(data_file, cb.load_table(data_file), "roi", index=1)
        expected = clusters.ripley(x, y, clusters.default_radii_nm(60, 10), window=window, edge="ripley")
        assert expected.n == x.size and not isinstance(window, tuple)          # every point, a polygon window
        curve = next(t for t in figure["data"] if t["name"].startswith("H(r)"))
        np.testing.assert_allclose(curve["y"], expected.H, rtol=1e-12)
        assert expected.h_max_beyond_range                       # clustered file: H still rises at 60 nm (peaks at 80 nm)
        assert "lies beyond r max" in _text(info) and f"All {x.size:,} localisations" in _text(info)
        region = analysis.select_region(data_file, cb.load_table(data_file), analysis_inputs.RegionSpec("roi", index=1))
        text = analysis_csv.ripley_csv(data_file, region, analysis.run_ripley(region, 60, 10, "ripley"))
        assert "r_at_h_max_nm=beyond_r_max" in text and f"n_points_used={x.size}" in text and "subsampled=no" in text
        assert f"# nano-org {__version__}" in text


def test_vw005_sweep_and_envelope_jobs_as_functions(bank):
    """The background-job bodies, called with a fake set_progress and the owner's session cookie."""
    app, ids = bank
    cb = _cb()
    path = f"/file/{ids['private']}"
    serializer = app.server.session_interface.get_signing_serializer(app.server)
    cookies = {app.server.config.get("SESSION_COOKIE_NAME", "session"):
               serializer.dumps({"_user_id": str(ids["users"]["alice"]), SESSION_GENERATION: 0})}
    progress = []
    with app.server.app_context():
        figure, status = as_callback("viewer-sweep-run.n_clicks", cb.sweep_job, progress.append, 1, [20, 80], [3, 10],
                                     "tile:0", path, cookies=cookies)
        heat = figure["data"][0]
        n_runs = len(heat["x"]) * len(heat["y"])
        assert progress[-1] == (100, f"{n_runs} / {n_runs} runs") and len(progress) == n_runs
        data_file = db.session.get(DataFile, ids["private"])
        region = analysis.select_region(data_file, _cb().load_table(data_file), analysis_inputs.RegionSpec("tile", index=0))
        eps0, min0 = float(heat["x"][0]), int(heat["y"][0])
        labels = clusters.dbscan_labels(region.x, region.y, eps0, min0)
        assert heat["z"][0][0] == labels.max() + 1

        progress.clear()
        envelope, message = as_callback("viewer-envelope-run.n_clicks", cb.envelope_job, progress.append, 1, 19, 200,
                                        50, "ripley", "tile:0", path, cookies=cookies)
        assert envelope["n_simulations"] == 19 and len(envelope["low"]) == 4
        assert all(lo <= hi for lo, hi in zip(envelope["low"], envelope["high"]))
        assert progress[-1] == (100, "19 / 19 simulations")

        # anonymous (no cookie): the private file is refused inside the job
        denied = as_callback("viewer-sweep-run.n_clicks", cb.sweep_job, progress.append, 1, [20, 80], [3, 10], "tile:0",
                             path)
        assert denied[1] == cb.DENIED


def test_vw007_large_region_goes_to_the_background_job(bank, monkeypatch):
    """Above DBSCAN_SYNC_MAX the slider callback asks for the job; the job's result is then shown."""
    app, ids = bank
    cb = _cb()
    monkeypatch.setattr(analysis, "DBSCAN_SYNC_MAX", 1000)
    path = f"/file/{ids['public']}"
    with request_as(app, ids["users"]["bob"]):
        status, card, hist, patch, request = as_callback("viewer-eps.value", cb.update_dbscan, 42, 8, "roi:1", True,
                                                         path, {})
        assert request["region"] == "roi:1" and request["eps"] == 42 and request["min_samples"] == 8
        assert "background" in status and "viewer-n-clusters" not in _text(card)
        progress = []
        ready = as_callback("viewer-dbscan-request.data", cb.dbscan_job, progress.append, request, path)
        assert ready["region"] == "roi:1" and progress[-1][0] == 100
        status, card, hist, patch = as_callback("viewer-dbscan-ready.data", cb.show_dbscan_job, ready, 42, 8, "roi:1",
                                                True, path, {})
        data_file = db.session.get(DataFile, ids["public"])
        x, y, area, _ = _independent_points(data_file, cb.load_table(data_file), "roi", index=1)
        expected = clusters.cluster_summary(x, y, clusters.dbscan_labels(x, y, 42, 8), area)
        assert f'"children":"{expected["n_clusters"]:,d}","id":"viewer-n-clusters"' in _text(card)
        # a finished job for parameters the user has left is not shown
        with pytest.raises(cb.PreventUpdate):
            as_callback("viewer-dbscan-ready.data", cb.show_dbscan_job, ready, 43, 8, "roi:1", True, path, {})
        # the job built the region's DBSCAN tree for minPts 8: every other eps is answered inline, exactly
        for eps in (12, 57, 150):
            status, card, hist, patch, request = as_callback("viewer-eps.value", cb.update_dbscan, eps, 8, "roi:1",
                                                             True, path, {})
            assert request is cb.no_update and "precomputed DBSCAN tree" in status
            expected = clusters.cluster_summary(x, y, clusters.dbscan_labels(x, y, eps, 8), area)
            assert f'"children":"{expected["n_clusters"]:,d}","id":"viewer-n-clusters"' in _text(card)
            region = analysis.select_region(data_file, cb.load_table(data_file), analysis_inputs.RegionSpec("roi", index=1))
            np.testing.assert_array_equal(analysis.run_dbscan(region, eps, 8).labels,
                                          clusters.dbscan_labels(region.x, region.y, eps, 8))
        # another minPts has no tree yet: back to the job
        *_, request = as_callback("viewer-eps.value", cb.update_dbscan, 57, 9, "roi:1", True, path, {})
        assert request["min_samples"] == 9


def test_vw006_sweep_click_sets_sliders():
    cb = _cb()
    assert cb.sweep_click({"points": [{"x": "75", "y": "12"}]}) == (75.0, 12)
    assert cb.sweep_click({"points": [{"x": "1e9", "y": "-3"}]}) == (200.0, 2)      # clamped


# ------------------------------------------------------------------------------------------------
# access


def test_vw010_foreign_private_file_is_refused_everywhere(bank):
    app, ids = bank
    cb = _cb()
    from pages import viewer as page

    path = f"/file/{ids['private']}"
    for user in (ids["users"]["carol"], None):
        with request_as(app, user, path):
            layout = page.layout(file_id=str(ids["private"]))
            assert layout.id == "viewer-not-found"
            assert as_callback("viewer-eps.value", cb.update_dbscan, 100, 10, "all", True, path, {})[0] \
                .children == cb.DENIED
            assert as_callback("viewer-ripley-rmax.value", cb.update_ripley, 500, 10, "ripley", "all", None, path)[1] \
                .children == cb.DENIED
            assert as_callback("viewer-region.value", cb.choose_region, "all", None, path, [], None)[1].children \
                == cb.DENIED
            view = as_callback("viewer-view-request.data", cb.update_view, {"x_range": [0, 1000], "y_range": [0, 1000]},
                               "density", False, path, {}, True, "all", 100, 10)
            assert view[1] == cb.DENIED and view[0] is cb.no_update
            download = as_callback("viewer-dl-labels.n_clicks", cb.download, 0, 1, 0, 100, 10, 500, 10, "ripley",
                                   "all", None, path)
            assert download == (cb.no_update, cb.DENIED)
    # the owner sees it
    with request_as(app, ids["users"]["alice"], path):
        assert page.layout(file_id=str(ids["private"])).id == "viewer-page"
    # a page id that is not a number, or missing
    with request_as(app, ids["users"]["alice"]):
        assert page.layout(file_id="../1").id == "viewer-not-found"
        assert page.layout(file_id="999999").id == "viewer-not-found"


def test_vw011_ids_in_stores_are_not_trusted(bank):
    """The file comes from the URL; a region of another file or a bad region is refused cleanly."""
    app, ids = bank
    cb = _cb()
    with request_as(app, ids["users"]["carol"]):
        public_path = f"/file/{ids['public']}"
        for bad in ("roi:99", "tile:-5", "box:0,0,1,1", {"kind": "file", "index": ids["private"]}, "nonsense", 42):
            status = as_callback("viewer-region-store.data", cb.update_dbscan, 100, 10, bad, True, public_path, {})[0]
            assert "viewer-n-clusters" not in _text(status)
        # absurd slider values are clamped before any computation
        status, card, *_ = as_callback("viewer-eps.value", cb.update_dbscan, 1e12, -4, "roi:1", True,
                                       public_path, {})
        assert "eps 200 nm, minPts 2" in status


def test_vw012_http_callback_refuses_forged_path(bank):
    """Through the real Dash endpoint: carol posts the DBSCAN callback with alice's private path."""
    app, ids = bank
    server = app.server
    client = server.test_client()
    with server.app_context():
        carol = support.Account(ids["users"]["carol"], "carol", "carol@example.org")
    assert support.login(client, carol).status_code == 302
    key = next(k for k in app.callback_map if k.startswith("..viewer-dbscan-status.children"))
    graph_prop = re.search(r"viewer-graph\.(figure@[0-9a-f]+)", key).group(1)     # allow_duplicate output
    outputs = [("viewer-dbscan-status", "children"), ("viewer-dbscan-stats", "children"),
               ("viewer-dbscan-hist", "figure"), ("viewer-graph", graph_prop), ("viewer-dbscan-request", "data")]
    inputs = [("viewer-eps", "value", 100), ("viewer-minpts", "value", 10), ("viewer-region-store", "data", "all"),
              ("viewer-show-clusters", "value", True)]
    state = [("viewer-url", "pathname", f"/file/{ids['private']}"), ("viewer-view-store", "data", {})]
    response = support.dash_post(client, outputs, inputs, state, changed=["viewer-eps.value"])
    assert response.status_code == 200
    assert "not available to you" in response.text and "viewer-n-clusters" not in response.text
    state[0] = ("viewer-url", "pathname", f"/file/{ids['public']}")
    response = support.dash_post(client, outputs, inputs, state, changed=["viewer-eps.value"])
    assert response.status_code == 200 and "viewer-n-clusters" in response.text


def test_vw013_layout_shows_header_plot_and_panel(bank):
    app, ids = bank
    from pages import viewer as page

    with request_as(app, None):
        layout = page.layout(file_id=str(ids["public"]))
        text = _text(layout)
        data_file = db.session.get(DataFile, ids["public"])
        assert data_file.name in text and f"{data_file.n_locs:,}" in text
        assert '"ROI 1"' in text or "ROI 1" in text
        assert "viewer-graph" in text and "viewer-eps" in text and "viewer-sweep-run" in text
        assert len(text) < 1_500_000


# ------------------------------------------------------------------------------------------------
# result files


def _header(text):
    lines = text.splitlines()
    return [line for line in lines if line.startswith("#")], lines


def test_vw020_csv_downloads_carry_provenance(bank):
    app, ids = bank
    cb = _cb()
    path = f"/file/{ids['public']}"
    with request_as(app, ids["users"]["bob"]):
        data_file = db.session.get(DataFile, ids["public"])
        sha, name = data_file.sha256, data_file.name
        region = analysis.select_region(data_file, cb.load_table(data_file), analysis_inputs.RegionSpec("roi", index=1))
        downloads = {}
        for button, position in (("viewer-dl-clusters", 0), ("viewer-dl-labels", 1), ("viewer-dl-ripley", 2)):
            clicks = [0, 0, 0]
            clicks[position] = 1
            out, message = as_callback(f"{button}.n_clicks", cb.download, *clicks, 55, 7, 300, 20, "ripley", "roi:1",
                                       None, path)
            assert message == ""
            downloads[button] = out
    for out in downloads.values():
        header, _ = _header(out["content"])
        assert header[0] == f"# nano-org {__version__}"
        assert header[1] == f"# input {name} sha256 {sha}"
        assert any(line.startswith("# region ROI 1 key=roi:1") for line in header)
        assert out["filename"].endswith(".csv") and out["type"] == "text/csv"
    clusters_csv = downloads["viewer-dl-clusters"]["content"]
    assert "# parameters eps_nm=55 min_samples=7" in clusters_csv
    table = pd.read_csv(io.StringIO(clusters_csv), comment="#")
    labels = clusters.dbscan_labels(region.x, region.y, 55, 7)
    assert list(table.columns) == ["cluster_id", "n_locs", "area_nm2", "radius_eq_nm", "rg_nm", "density_locs_per_um2",
                                   "centroid_x_nm", "centroid_y_nm"]
    assert len(table) == labels.max() + 1 and table["n_locs"].sum() == (labels >= 0).sum()

    per_loc = pd.read_csv(io.StringIO(downloads["viewer-dl-labels"]["content"]), comment="#")
    assert len(per_loc) == region.n and np.array_equal(per_loc["cluster_id"].to_numpy(), labels)
    assert np.array_equal(per_loc["row"].to_numpy(), region.index)

    ripley_csv = downloads["viewer-dl-ripley"]["content"]
    assert "edge=ripley r_max_nm=300 dr_nm=20" in ripley_csv
    curve = pd.read_csv(io.StringIO(ripley_csv), comment="#")
    assert list(curve.columns[:4]) == ["r_nm", "K_nm2", "L_nm", "H_nm"] and len(curve) == 15


def test_vw021_anonymous_cannot_download_results(bank):
    app, ids = bank
    cb = _cb()
    with request_as(app, None):
        out, message = as_callback("viewer-dl-clusters.n_clicks", cb.download, 1, 0, 0, 100, 10, 500, 10, "ripley",
                                   "roi:1", None, f"/file/{ids['public']}")
        assert out is cb.no_update and "Log in" in message


def test_vw022_region_parsing():
    parse = analysis_inputs.RegionSpec.parse
    assert parse("roi:2") == analysis_inputs.RegionSpec("roi", index=2)
    assert parse({"kind": "tile", "index": "3"}).key == "tile:3"
    assert parse({"kind": "box", "box": [500, 900, 100, 200]}).box == (100.0, 200.0, 500.0, 900.0)
    assert parse("all").key == "all"
    for bad in ("roi:x", "box:1,2,3", {"kind": "box", "box": [0, 0, 10, 10]}, "file:1", None, 5,
                {"kind": "box", "box": ["nan", 0, 100, 100]}):
        with pytest.raises(analysis_inputs.RegionError):
            parse(bad)
    assert analysis_inputs.clamp_eps("abc") == clusters.DEFAULT_EPS_NM and analysis_inputs.clamp_eps(float("inf")) == 100.0
    assert analysis_inputs.clamp_min_samples(1000) == 50
    assert analysis_inputs.radii_for(1e9, 0.001)[-1] == 2000.0 and len(analysis_inputs.radii_for(1e9, 0.001)) <= analysis_inputs.MAX_RADII


def test_eps_move_on_a_large_region_patches_only_the_label_image():
    """Issue 12 item 14: an eps move re-sent every point and made Plotly redraw all WebGL traces;
    for a region above CLUSTER_POINTS_MAX only the label image changes (no data arrays)."""
    from types import SimpleNamespace

    from dash import Patch

    from components import localisation_figure as figure
    from compute.render import RenderedImage

    n = 5000
    region = SimpleNamespace(n=n, outline=[[(0, 0), (1, 0), (1, 1)]], x=np.zeros(n), y=np.zeros(n))
    result = SimpleNamespace(labels=np.zeros(n, dtype=np.int64))
    image = RenderedImage(png=b"\x89PNG", x_range=(0, 1), y_range=(0, 1), width=1, height=1, n_in_view=n,
                          colour_by="cluster")
    moved = figure.cluster_patch(Patch(), region, result, image, max_points=1000, region_changed=False)
    operations = moved.to_plotly_json()["operations"]
    assert [op["location"] for op in operations] == [["layout", "images", figure.IMG_CLUSTERS]]
    assert operations[0]["params"]["value"]["layer"] == "above"
    new_region = figure.cluster_patch(Patch(), region, result, image, max_points=1000)
    touched = {tuple(op["location"][:2]) for op in new_region.to_plotly_json()["operations"]}
    assert ("data", figure.T_REGION) in touched and ("data", figure.T_CLUSTERS) in touched
