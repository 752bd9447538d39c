"""DBSCAN slider latency measured in the browser (issue 12, item 14): from the new eps value to the
updated cluster count and the redrawn overlay, in headless Chromium driving the real app.

    python bench/bench_slider_latency.py [--moves 7] [--port 59880] [--sizes 4000,14000]

For each region size a bank with one public simulated file (clustered, one polygon ROI holding
about that many localisations) is ingested into a temporary instance, the app is served by
werkzeug (threaded, 127.0.0.1:--port) and Chromium (selenium, /usr/bin/chromium, headless) opens
/file/<id>. Each move types a new eps in the slider's number box and presses Enter (the same
value change a slider release makes). Timed in the page (performance.now()):

* total: Enter -> the cluster count shows the new eps's result AND the plot shows the new labels
  (a new cluster image in the SVG, or Plotly's afterplot event when labels are WebGL points);
* requests: the _dash-update-component requests the move caused (count, summed duration incl.
  server time, response bytes).

Medians over --moves moves (each with a new eps: no cache hit). Naive reference in the same page:
the figure update the viewer used before (Plotly.react of the whole figure for a new label image,
'react ms') against the image swap it uses now ('relayout ms'). Prints a table and the load average
(the numbers scale with the machine's load: compare columns of one run, not runs).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

META = dict(title="Slider latency benchmark (simulated)", modality="dSTORM", software="ThunderSTORM",
            protein="BENCH", cell_type="simulated", fluorophore="Alexa Fluor 647", primary_antibody="anti-BENCH",
            primary_antibody_ref="SIM-1", secondary_antibody="goat anti-rabbit", secondary_antibody_ref="SIM-2")

# Installed in the page before each move: resolves with the timings once the count shows the new
# eps and Plotly has drawn after the change.
MEASURE_JS = """
const [eps, done] = [arguments[0], arguments[arguments.length - 1]];
const status = document.querySelector('#viewer-dbscan-status');
const graph = document.querySelector('#viewer-graph .js-plotly-plot');
const t0 = window.__nanoorgT0;
const hrefs = () => Array.from(graph.querySelectorAll('image')).map(i => i.getAttribute('href') || '');
const before = new Set(hrefs());
let counted = null, drawn = null;
const finish = () => {
    if (counted === null || drawn === null) { return; }
    const requests = performance.getEntriesByType('resource')
        .filter(e => e.name.includes('_dash-update-component') && e.startTime >= t0);
    done({total: Math.max(counted, drawn) - t0, count_at: counted - t0, drawn_at: drawn - t0,
          n_requests: requests.length,
          request_ms: requests.reduce((s, e) => s + e.duration, 0),
          bytes: requests.reduce((s, e) => s + (e.encodedBodySize || 0), 0)});
};
const check = () => {
    const now = performance.now();
    if (counted === null && status.textContent.includes('eps ' + eps + ' nm')
        && document.querySelector('#viewer-n-clusters')) { counted = now; }
    if (drawn === null && hrefs().some(h => h && !before.has(h))) { drawn = now; }   // new overlay image shown
    finish();
};
new MutationObserver(check).observe(document.querySelector('#viewer-page'),
                                    {subtree: true, childList: true, characterData: true, attributes: true});
graph.on('plotly_afterplot', () => {                   // points mode: the WebGL traces were redrawn
    if (drawn === null && counted !== null) { drawn = performance.now(); finish(); }
});
setTimeout(() => done({timeout: true}), 20000);
"""


# The two ways of showing new labels, timed in the same page: a figure update (what dcc.Graph does
# for a figure Patch: Plotly.react with the figure, only the label image changed) against swapping
# the image alone (Plotly.relayout, what assets/viewer.js cluster_image does).
REDRAW_JS = """
const gd = document.querySelector('#viewer-graph .js-plotly-plot');
const canvas = document.createElement('canvas'); canvas.width = 400; canvas.height = 400;
const paint = canvas.getContext('2d');
const image = () => {
    paint.fillStyle = 'rgba(255,0,0,0.5)'; paint.fillRect(Math.random() * 380, Math.random() * 380, 20, 20);
    const xr = gd.layout.xaxis.range, yr = gd.layout.yaxis.range;
    return {source: canvas.toDataURL(), xref: 'x', yref: 'y', x: xr[0], y: yr[1], sizex: xr[1] - xr[0],
            sizey: yr[0] - yr[1], xanchor: 'left', yanchor: 'top', sizing: 'stretch', layer: 'below', visible: true};
};
let t = performance.now();
const layout = Object.assign({}, gd.layout, {images: [gd.layout.images[0], image()]});
Plotly.react(gd, gd.data, layout);
const react = performance.now() - t;
t = performance.now();
Plotly.relayout(gd, {'images[1]': image()});
return {react: react, relayout: performance.now() - t};
"""


def build_bank(instance: Path, sizes: list[int], seed: int = 11) -> tuple[object, list[int]]:
    """(settings, file ids): one public clustered file per size, its ROI holding ~size localisations."""
    from compute import simulate
    from config import load_settings
    from databank.core import make_data_app
    from databank.demo import write_fiji_roi, write_thunderstorm_csv
    from databank.ingest import StagedFile, ingest_dataset
    from databank.models import db
    from databank.users import create_user

    settings = load_settings(instance_dir=instance, seed_demo=False, secret_key="bench-secret")
    side_um = 10.0
    file_ids = []
    with make_data_app(settings).app_context():
        user = create_user("bench", "bench@example.org", "bench password 123")
        for k, n_target in enumerate(sizes):
            density = n_target / (side_um - 1.0) ** 2
            pattern = simulate.simulate_clustered(density, side_um * 1000, side_um * 1000, cluster_radius_nm=40.0,
                                                  locs_per_cluster=20.0, fraction_clustered=0.6, precision_nm=10.0,
                                                  seed=seed + k)
            folder = instance / "upload" / str(k)
            folder.mkdir(parents=True, exist_ok=True)
            detection = folder / "bench_cell.csv"
            write_thunderstorm_csv(detection, pattern)
            roi = folder / "bench_cell_ROI_1.csv"
            write_fiji_roi(roi, np.array([(0.5, 0.5), (side_um - 0.5, 0.5), (side_um - 0.5, side_um - 0.5),
                                          (0.5, side_um - 0.5)]))
            dataset = ingest_dataset([StagedFile(detection, detection.name), StagedFile(roi, roi.name)],
                                     dict(META, title=f"{META['title']} {n_target}"), user, visibility="public",
                                     is_simulated=True)
            file_ids.append(dataset.files[0].id)
        db.session.remove()
    return settings, file_ids


def measure(driver, url: str, moves: int) -> list[dict]:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(url)
    wait = WebDriverWait(driver, 90)
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#viewer-n-clusters"))
    wait.until(lambda d: "eps " in d.find_element(By.CSS_SELECTOR, "#viewer-dbscan-status").text)
    driver.set_script_timeout(30)
    box = driver.find_element(By.CSS_SELECTOR, "#viewer-eps input[type=number]")
    results = []
    for k in range(moves + 1):                         # the first move warms caches: not counted
        eps = 31 + 7 * k
        box.send_keys(Keys.CONTROL, "a")
        box.send_keys(str(eps))
        driver.execute_script("performance.clearResourceTimings(); window.__nanoorgT0 = performance.now();")
        box.send_keys(Keys.ENTER)
        outcome = driver.execute_async_script(MEASURE_JS, eps)
        if k and not outcome.get("timeout"):
            results.append(outcome)
        time.sleep(0.3)
    return results


def redraw_costs(driver, repeats: int) -> list[dict]:
    """Plotly.react (figure update) against Plotly.relayout (image swap) on the open page, in ms."""
    return [driver.execute_script(REDRAW_JS) for _ in range(repeats)]


def median(rows, key):
    return statistics.median(r[key] for r in rows) if rows else float("nan")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--moves", type=int, default=7)
    parser.add_argument("--port", type=int, default=59880)
    parser.add_argument("--sizes", default="4000,14000", help="localisations in the analysed ROI")
    args = parser.parse_args(argv)
    os.environ.setdefault("NANOORG_VIEWER_WARMUP", "1")
    from bench.headless import app_in_chromium

    print(f"{'ROI locs':>9} {'moves':>5} {'total ms':>9} {'count ms':>9} {'drawn ms':>9} {'requests':>8} "
          f"{'request ms':>10} {'KB':>7} {'react ms':>9} {'relayout ms':>11} {'ratio':>6}")
    sizes = [int(s) for s in args.sizes.split(",")]
    with app_in_chromium(lambda instance: build_bank(instance, sizes), args.port,
                         prefix="nanoorg-bench-slider-") as (driver, base, file_ids):
        for n_target, file_id in zip(sizes, file_ids):
            rows = measure(driver, f"{base}/file/{file_id}", args.moves)
            redraws = redraw_costs(driver, args.moves)
            react, relayout = median(redraws, "react"), median(redraws, "relayout")
            print(f"{n_target:>9,} {len(rows):>5} {median(rows, 'total'):>9.0f} {median(rows, 'count_at'):>9.0f} "
                  f"{median(rows, 'drawn_at'):>9.0f} {median(rows, 'n_requests'):>8.0f} "
                  f"{median(rows, 'request_ms'):>10.0f} {median(rows, 'bytes') / 1024:>7.1f} {react:>9.0f} "
                  f"{relayout:>11.1f} {react / max(relayout, 0.1):>6.0f}")
        print(f"load average while measuring: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPU(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
