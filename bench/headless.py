"""Serve the app on 127.0.0.1 in a thread and drive headless Chromium (bench and guide-figure scripts)."""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import threading
from contextlib import contextmanager
from pathlib import Path


def serve(app, port: int):
    """Run the Dash app with werkzeug (threaded) in a daemon thread; ``.shutdown()`` stops it."""
    from werkzeug.serving import make_server

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = make_server("127.0.0.1", port, app.server, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def chromium(width: int = 1280, height: int = 1000):
    """Selenium driving the Debian Chromium (/usr/bin/chromium), headless, no background traffic."""
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options

    os.environ.setdefault("SE_OFFLINE", "true")
    options = Options()
    options.binary_location = "/usr/bin/chromium"
    for argument in ("--headless", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                     "--remote-debugging-port=0", "--disable-background-networking", "--disable-component-update",
                     "--no-first-run", "--disable-sync", f"--window-size={width},{height}"):
        options.add_argument(argument)
    return webdriver.Chrome(options=options)


@contextmanager
def app_in_chromium(build, port: int, *, width: int = 1280, height: int = 1000, prefix: str = "nanoorg-"):
    """Build a bank in a temporary instance (``build(instance) -> (settings, extra)``), serve the app
    on 127.0.0.1:``port`` and yield (Chromium driver, base URL, extra); everything is removed after."""
    from app import create_app

    instance = Path(tempfile.mkdtemp(prefix=prefix))
    server = driver = None
    try:
        settings, extra = build(instance)
        server = serve(create_app(settings), port)
        driver = chromium(width, height)
        yield driver, f"http://127.0.0.1:{port}", extra
    finally:
        if driver is not None:
            driver.quit()
        if server is not None:
            server.shutdown()
        shutil.rmtree(instance, ignore_errors=True)
