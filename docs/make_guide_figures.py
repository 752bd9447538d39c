"""Regenerate the user guide's figures (assets/guide/*.png) from the demo bank, so they stay true.

    python docs/make_guide_figures.py [--port 59890] [--out assets/guide]

Seeds the demo bank (``databank.demo.seed_demo``: the real files in data/ and the simulated
datasets) into a temporary instance, serves the app on 127.0.0.1:--port, opens the pages in
headless Chromium (1280 px wide) and screenshots one element per figure: the databank table, a
dataset page (metadata and Data Files), the file viewer with DBSCAN, the self-similarity
histograms and the similarity search results. Each PNG is reduced to a 256-colour palette (and
scaled down if needed) so that it stays under 150 KB. pages/guide.py shows them.
"""

from __future__ import annotations

import argparse
import io
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

MAX_BYTES = 150 * 1024
DEMO_TITLE = "EGFR in COS-7 (simulated)"       # the dataset shown on the dataset, viewer and similarity figures


def small_png(png: bytes, max_bytes: int = MAX_BYTES, max_width: int = 1100) -> bytes:
    """The screenshot as a 256-colour PNG, scaled down until it is under ``max_bytes``."""
    from PIL import Image

    image = Image.open(io.BytesIO(png)).convert("RGB")
    width = min(image.width, max_width)
    while True:
        scaled = image if width == image.width else image.resize((width, round(image.height * width / image.width)),
                                                                 Image.LANCZOS)
        buffer = io.BytesIO()
        scaled.quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(buffer, "PNG", optimize=True)
        if buffer.tell() <= max_bytes or width < 400:
            return buffer.getvalue()
        width = int(width * 0.85)


def wait_for(driver, css: str, timeout: float = 120.0, text: str | None = None):
    """The element for ``css`` once it exists (and shows ``text``, when given)."""
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.common.by import By

    end = time.time() + timeout
    while time.time() < end:
        try:
            found = driver.find_elements(By.CSS_SELECTOR, css)
            if found and (text is None or text in found[0].text):
                return found[0]
        except TimeoutException:          # the renderer is busy (a large figure drawing): ask again
            pass
        time.sleep(0.3)
    raise TimeoutError(f"{css} did not appear" + (f" with '{text}'" if text else ""))


def element_png(driver, element) -> bytes:
    """The element as PNG. One shorter than the window is pinned to the window's top left for a
    moment and cropped from a window screenshot (fast: Chromium's element screenshot far down a
    long page can keep the renderer busy past chromedriver's 10 s); a taller one uses Chromium's."""
    from PIL import Image

    width, height, window_height, scale = driver.execute_script(
        "const r = arguments[0].getBoundingClientRect();"
        "return [r.width, r.height, window.innerHeight, window.devicePixelRatio];", element)
    if height > window_height:
        return element.screenshot_as_png
    pin = ("const e = arguments[0]; e.dataset.savedStyle = e.getAttribute('style') || '';"
           "e.style.cssText += `;position:fixed;top:0;left:0;width:${arguments[1]}px;z-index:10000;"
           "background:white;margin:0`;")
    unpin = "const e = arguments[0]; e.setAttribute('style', e.dataset.savedStyle);"
    driver.execute_script(pin, element, width)
    try:
        time.sleep(0.5)
        window = Image.open(io.BytesIO(driver.get_screenshot_as_png()))
    finally:
        driver.execute_script(unpin, element)
    crop = window.crop((0, 0, round(width * scale), round(height * scale)))
    buffer = io.BytesIO()
    crop.save(buffer, "PNG")
    return buffer.getvalue()


def shoot(driver, css: str, out: Path, name: str, attempts: int = 5) -> int:
    """Screenshot of one element into ``out/name`` (retried: a busy renderer may time out); its size in bytes."""
    from selenium.common.exceptions import TimeoutException

    for attempt in range(attempts):
        element = wait_for(driver, css)
        try:
            driver.execute_script("arguments[0].scrollIntoView({block: 'start'}); window.scrollBy(0, -8);", element)
            time.sleep(1.0 + 2 * attempt)                # let Plotly and the grid finish drawing
            png = element_png(driver, element)
            break
        except TimeoutException:
            if attempt == attempts - 1:
                raise
    data = small_png(png)
    (out / name).write_bytes(data)
    return len(data)


def build_bank(instance: Path):
    """(settings, (dataset id, file id)) of ``instance`` holding the demo bank."""
    from config import load_settings
    from databank.core import make_data_app
    from databank.demo import seed_demo
    from databank.models import Dataset, db

    settings = load_settings(instance_dir=instance, seed_demo=False, secret_key="guide-figures")
    with make_data_app(settings).app_context():
        seed_demo(settings, progress=lambda message: print(message, file=sys.stderr))
        dataset = db.session.query(Dataset).filter_by(title=DEMO_TITLE).one()
        ids = dataset.id, dataset.files[0].id
        db.session.remove()
    return settings, ids


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=59890)
    parser.add_argument("--out", default=str(ROOT / "assets" / "guide"))
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    from bench.headless import app_in_chromium

    with app_in_chromium(build_bank, args.port, width=1280, height=1100, prefix="nanoorg-guide-") as (
            driver, base, (dataset_id, file_id)):
        sizes = {}
        driver.get(f"{base}/file/{file_id}")
        wait_for(driver, "#viewer-n-clusters")
        sizes["viewer.png"] = shoot(driver, "#viewer-page", out, "viewer.png")
        driver.get(f"{base}/databank")
        wait_for(driver, "#databank-grid .nanoorg-dataset-link")
        sizes["databank.png"] = shoot(driver, "#databank-page", out, "databank.png")
        driver.get(f"{base}/dataset/{dataset_id}")
        wait_for(driver, "#dataset-file-table")
        hide = "document.querySelector('#dataset-similarity-section').style.display = arguments[0];"
        driver.execute_script(hide, "none")               # metadata and Data Files only
        sizes["dataset.png"] = shoot(driver, "#dataset-page", out, "dataset.png")
        driver.execute_script(hide, "")
        wait_for(driver, "#sim-self-thinned .barlayer .point")
        sizes["self_similarity.png"] = shoot(driver, "#sim-self-card", out, "self_similarity.png")
        wait_for(driver, "#sim-grid .ag-row")
        sizes["similarity_results.png"] = shoot(driver, "#sim-search-card", out, "similarity_results.png")
        for name, size in sizes.items():
            print(f"{name:<24} {size / 1024:6.1f} KB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
