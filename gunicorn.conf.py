"""gunicorn settings for nano-org (``gunicorn -c gunicorn.conf.py app:server``; ``make run``).

Where it listens and how many workers and threads it runs come from ``config.py``. The bank is
prepared once, in the master process before any worker starts (sweep leftovers of interrupted
ingests, seed the demo bank on first start): workers never sweep each other's staging folders.
"""

from config import load_settings

_settings = load_settings()
bind = f"{_settings.host}:{_settings.port}"
workers = _settings.web_workers
threads = _settings.web_threads
worker_class = "gthread"
timeout = 120
accesslog = "-"
errorlog = "-"


def on_starting(_server):
    from app import create_app, prepare_bank

    prepare_bank(create_app(_settings))         # no warm-up threads here: the master forks the workers
