"""Benchmark of the file viewer (/file/<id>) on this machine: server time and bytes, medians.

    python bench/bench_viewer.py [--runs 5] [--instance DIR] [--n 1000000] [--quick]

Builds (or reuses, with --instance) a bank holding one simulated file of about 10^6 localisations
(clustered, 1,000 loc/um^2 over 32 x 32 um, one polygon ROI), ingested like an upload, then
calls the viewer's layout and callbacks as functions inside a request of the real app:

* first plot: the page layout for the file (figure included), with the file not yet loaded in the
  worker (file store cache dropped) and again with it loaded; bytes = JSON of the layout / figure;
* zoom re-render: the callback answering a zoom (image view, and a zoom few enough for points);
* slider update: DBSCAN callback for one 3 x 3 um tile (eps changes every run: no cache hit), and
  for the whole file (all ROIs; above the interactive limit it goes to the background job, whose
  work is timed too, cold and with the region cached).

Naive references measured in the same run: a full Scattergl figure of every localisation (time
to build + serialise, bytes) and sklearn's DBSCAN on the same tile and on the whole file.
Every timing is the median of --runs runs (>= 5 by default; the sklearn whole-file reference
uses min(runs, 3) runs because it is slow) after one untimed warm-up call.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

META = dict(title="Viewer benchmark (simulated, 10^6 localisations)", modality="dSTORM", software="ThunderSTORM",
            protein="BENCH", cell_type="simulated", fluorophore="Alexa Fluor 647", primary_antibody="anti-BENCH",
            primary_antibody_ref="SIM-1", secondary_antibody="goat anti-rabbit", secondary_antibody_ref="SIM-2",
            tags="simulated, benchmark")


def build_bank(instance: Path, n_target: int, seed: int = 7):
    """Settings of a bank with one user ('bench') and one public file of ~n_target localisations."""
    from config import load_settings
    from databank.core import make_data_app
    from databank.models import DataFile, db
    from databank.users import create_user, find_user

    settings = load_settings(instance_dir=instance, seed_demo=False, secret_key="bench-secret")
    data_app = make_data_app(settings)
    with data_app.app_context():
        existing = db.session.query(DataFile).first()
        if existing is not None:
            return settings, existing.id
        from compute import simulate
        from databank.demo import write_fiji_roi, write_thunderstorm_csv
        from databank.ingest import StagedFile, ingest_dataset

        user = find_user("bench") or create_user("bench", "bench@example.org", "bench password 123")
        side_nm = float(np.sqrt(n_target / 1000.0) * 1000.0)
        pattern = simulate.simulate_clustered(1000.0, side_nm, side_nm, cluster_radius_nm=40.0, locs_per_cluster=30.0,
                                              fraction_clustered=0.5, precision_nm=12.0, seed=seed)
        folder = Path(tempfile.mkdtemp(prefix="bench-viewer-files-"))
        try:
            detection = folder / "bench_cell.csv"
            write_thunderstorm_csv(detection, pattern)
            s = side_nm / 1000.0
            roi = folder / "bench_cell_ROI_1.csv"
            write_fiji_roi(roi, np.array([(0.2, 0.3), (s - 0.3, 0.2), (s - 0.2, s - 0.4), (0.4, s - 0.2)]))
            dataset = ingest_dataset([StagedFile(detection, detection.name), StagedFile(roi, roi.name)], META, user,
                                     visibility="public", is_simulated=True)
            file_id = dataset.files[0].id
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        return settings, file_id


def median_of(fn, runs: int, warm: bool = True):
    """(median seconds, last result) of ``fn()`` over ``runs`` timed calls (+1 untimed warm-up)."""
    if warm:
        fn()
    times, result = [], None
    for _ in range(runs):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def as_callback(prop_id: str, fn, *args):
    """Call a callback function as Dash would for a change of ``prop_id`` (sets dash.ctx)."""
    from contextvars import copy_context

    from server.dash_jobs import callback_context

    def call():
        with callback_context(triggered_inputs=[{"prop_id": prop_id, "value": None}]):
            return fn(*args)
    return copy_context().run(call)


def json_bytes(value) -> int:
    from plotly.io.json import to_json_plotly
    return len(to_json_plotly(value).encode())


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--n", type=int, default=1_000_000, help="localisations in the file (default 10^6)")
    parser.add_argument("--instance", type=Path, default=None, help="reuse / keep the bank in this folder")
    parser.add_argument("--quick", action="store_true", help="skip the sklearn whole-file reference")
    args = parser.parse_args(argv)
    runs = max(args.runs, 1)

    import os
    os.environ.setdefault("NANOORG_VIEWER_WARMUP", "0")      # warm up explicitly below, not in a thread
    temp = None
    instance = args.instance
    if instance is None:
        temp = Path(tempfile.mkdtemp(prefix="bench-viewer-"))
        instance = temp / "instance"
    try:
        t0 = time.perf_counter()
        settings, file_id = build_bank(instance, args.n)
        print(f"bank ready in {time.perf_counter() - t0:.1f} s (file id {file_id})", flush=True)
        return run(settings, file_id, runs, args.quick)
    finally:
        if temp is not None:
            shutil.rmtree(temp, ignore_errors=True)


def run(settings, file_id: int, runs: int, quick: bool) -> int:
    import plotly.graph_objects as go
    from flask_login import login_user

    from databank import analysis


    from databank import viewer_render
    from databank import analysis_inputs
    from databank.models import DataFile, User, db
    from databank.users import find_user
    from app import create_app

    app = create_app(settings)
    from callbacks import viewer as cb      # after create_app: pages register with the app
    from pages import viewer as page
    server = app.server
    rows = []

    def row(what, seconds, nbytes=None, budget=None, note=""):
        rows.append((what, seconds, nbytes, budget, note))
        size = "" if nbytes is None else f"{nbytes / 1e6:.3f} MB"
        print(f"  {what:<58} {seconds * 1000:9.1f} ms  {size:>10}  {note}", flush=True)

    with server.test_request_context("/"):
        login_user(db.session.get(User, find_user("bench").id))
        data_file = db.session.get(DataFile, file_id)
        path = f"/file/{file_id}"
        n_locs = data_file.n_locs
        print(f"file: {data_file.name}, {n_locs:,} localisations, {len(data_file.tiles)} tiles", flush=True)

        start = time.perf_counter()
        cb.warm_up()
        print(f"numba / datashader warm-up (once per worker): {time.perf_counter() - start:.1f} s", flush=True)

        # ---- first plot
        def first_plot_cold():
            server.extensions.pop("nanoorg.store", None)          # the worker has not loaded the file yet
            analysis.clear_caches()
            return page.layout(file_id=str(file_id))

        def first_plot_warm():
            analysis.clear_caches()
            return page.layout(file_id=str(file_id))

        def figure_of(layout):
            import ids
            return layout[ids.Viewer.GRAPH].figure

        seconds, layout = median_of(first_plot_cold, runs)
        row("first plot: page layout, file not loaded yet", seconds, json_bytes(layout), 1.5,
            f"figure {json_bytes(figure_of(layout)) / 1e6:.3f} MB")
        seconds, layout = median_of(first_plot_warm, runs)
        row("first plot: page layout, file already loaded", seconds, json_bytes(layout), 1.5)
        seconds, serialised = median_of(lambda: json_bytes(page.layout(file_id=str(file_id))), runs)
        row("first plot incl. JSON serialisation", seconds, serialised, 1.5)

        # ---- zoom
        view_store = {"x_range": [0, 1], "y_range": [0, 1], "width": 900, "height": 640}
        zooms = {"zoom to 16 x 11 um (image)": (4000, 20000, 6000, 17000),
                 "zoom to 8 x 6 um (real points)": (10000, 18000, 10000, 15700)}
        for name, (x0, x1, y0, y1) in zooms.items():
            counter = iter(range(10 ** 6))

            def zoom():
                k = next(counter) % 7          # a slightly different window every call
                request = {"x_range": [x0 + 10 * k, x1 + 10 * k], "y_range": [y1, y0], "width": 900, "height": 640}
                out = as_callback(f"{cb.VIEW_REQUEST_ID}.data", cb.update_view, request, "density", False, path,
                                  view_store, True, None, 100, 10)
                return out, json_bytes(out[0])

            seconds, (out, nbytes) = median_of(zoom, runs)
            row(f"{name}", seconds, nbytes, 0.5, out[1][:48])

        def zoom_serialised():
            request = {"x_range": [4000, 20000], "y_range": [17000, 6000], "width": 900, "height": 640}
            return json_bytes(as_callback(f"{cb.VIEW_REQUEST_ID}.data", cb.update_view, request, "density", False, path,
                                          view_store, True, None, 100, 10))
        seconds, nbytes = median_of(zoom_serialised, runs)
        row("zoom (image) incl. JSON serialisation", seconds, nbytes, 0.5)

        # ---- slider, one tile
        tiles = [t for t in data_file.tiles if t.kept]
        tile = max(tiles, key=lambda t: t.n_locs)
        tile_key = f"tile:{tile.index}"
        eps_values = iter(np.linspace(60, 140, 1000))

        def slider_tile():
            out = cb.update_dbscan(float(next(eps_values)), 10, tile_key, True, path, view_store)
            return out, json_bytes(out[1]) + json_bytes(out[2]) + json_bytes(out[3])

        seconds, (out, nbytes) = median_of(slider_tile, runs)
        table = cb.load_table(data_file)
        region = analysis.select_region(data_file, table, analysis_inputs.RegionSpec.parse(tile_key))
        row(f"slider: DBSCAN one 3x3 um tile ({region.n:,} loc, {region.density:,.0f}/um2)", seconds, nbytes, 0.2)

        def slider_tile_json():
            out = cb.update_dbscan(float(next(eps_values)), 10, tile_key, True, path, view_store)
            return json_bytes(out)
        seconds, nbytes = median_of(slider_tile_json, runs)
        row("slider: tile, incl. JSON serialisation", seconds, nbytes, 0.2)

        # ---- slider, whole file
        all_region = analysis.select_region(data_file, table, analysis_inputs.RegionSpec("all"))
        seconds, out = median_of(lambda: cb.update_dbscan(float(next(eps_values)), 10, "all", True, path,
                                                          view_store), runs)
        background = out[4] is not None and out[4] is not cb.no_update
        row(f"slider: whole file ({all_region.n:,} loc) callback", seconds, None, 1.0,
            "-> background job" if background else "synchronous")

        def whole_file_job(cold: bool):
            def job():
                if cold:
                    analysis.clear_caches()
                region = analysis.select_region(data_file, table, analysis_inputs.RegionSpec("all"))
                result = analysis.run_dbscan(region, float(next(eps_values)), 10)
                viewer_render.render_cluster_overlay(region, result, (0, 32000), (0, 32000))
                return result
            return job
        seconds, result = median_of(whole_file_job(False), runs)
        row("  background job work: DBSCAN + table + overlay (region cached)", seconds, None, 1.0,
            f"{result.summary['n_clusters']:,} clusters")
        seconds, _ = median_of(whole_file_job(True), runs)
        row("  background job work incl. region selection", seconds, None, 1.0)

        # ---- Ripley (no budget in the issue; for the record)
        seconds, _ = median_of(lambda: cb.update_ripley(500, 10, "ripley", tile_key, None, path), runs, warm=True)
        row("Ripley H curve, one tile (cached after first call)", seconds)
        analysis._RIPLEY.clear()
        seconds, _ = median_of(lambda: (analysis._RIPLEY.clear(), cb.update_ripley(500, 10, "ripley", tile_key, None, path)),
                               runs)
        row("Ripley H curve, one tile, r 10..500 nm (computed)", seconds)

        # ---- naive references
        x = np.asarray(table.x)
        y = np.asarray(table.y)

        def naive_scatter():
            fig = go.Figure(go.Scattergl(x=x, y=y, mode="markers", marker=dict(size=2)))
            return len(fig.to_json().encode())
        seconds, nbytes = median_of(naive_scatter, runs)
        row("REFERENCE full Scattergl figure of every localisation", seconds, nbytes)

        from sklearn.cluster import DBSCAN
        xy_tile = np.column_stack([region.x, region.y])
        seconds, _ = median_of(lambda: DBSCAN(eps=100, min_samples=10).fit_predict(xy_tile), runs)
        row(f"REFERENCE sklearn DBSCAN, same tile ({region.n:,} loc)", seconds)
        if not quick:
            xy_all = np.column_stack([all_region.x, all_region.y])
            seconds, _ = median_of(lambda: DBSCAN(eps=100, min_samples=10).fit_predict(xy_all), min(runs, 3),
                                   warm=False)
            row(f"REFERENCE sklearn DBSCAN, whole file ({all_region.n:,} loc)", seconds)

    print()
    print(f"| measurement (median of {runs} runs, 2 cores) | server time | bytes | budget |")
    print("|---|---:|---:|---|")
    for what, seconds, nbytes, budget, note in rows:
        size = "" if nbytes is None else f"{nbytes / 1e6:.2f} MB"
        limit = "" if budget is None else f"<= {budget:g} s" + (" / 1.5 MB" if "first plot" in what else "")
        print(f"| {what.strip()}{(' — ' + note) if note else ''} | {seconds * 1000:.0f} ms | {size} | {limit} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
