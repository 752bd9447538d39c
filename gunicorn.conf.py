"""gunicorn settings for nano-org (``gunicorn -c gunicorn.conf.py app:server``; ``make run``).

Where it listens and how many workers and threads it runs come from ``config.py``. The bank is
prepared once, in the master process before any worker starts (migrate the schema, sweep leftovers
of interrupted ingests, seed the demo bank on first start): workers only check the schema and never
sweep each other's staging folders.
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
capture_output = True            # the app's log lines (one per job: start, end, failure) go to the error log
control_socket_disable = True    # no gunicornc socket in the home folder (several instances per machine)


def on_starting(_server):
    """Once, in the master: migrate the schema (workers only check it), sweep, seed, configure logs."""
    import logging

    from app import create_app, prepare_bank

    logging.basicConfig(level=logging.INFO, format="[%(asctime)s] [%(process)d] [%(levelname)s] %(name)s: %(message)s")
    prepare_bank(create_app(_settings))         # no warm-up threads here: the master forks the workers
