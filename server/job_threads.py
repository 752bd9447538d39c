"""A Dash background-callback manager that runs jobs in threads of the web process.

Why not Dash's ``DiskcacheManager`` for the similarity jobs: it forks the (multi-threaded) web
process for every job. A fork taken while another thread holds one of SQLite's process-wide
mutexes (its memory allocator, its list of open database files; the database and diskcache are
both SQLite) leaves the child blocked forever on its first SQLite call. Observed on the dataset
page, where several callbacks run at once: the job child hung in ``sqlite3Malloc``
(``pthread_mutex_lock``), and numba's TBB pool warned "Unable to join threads to shut down before
fork()". Similarity jobs last seconds and spend them in numba kernels, so a small pool of threads
is enough, avoids fork altogether and reuses the warm in-memory bank index.

Protocol: as ``DiskcacheManager`` (it subclasses it): results, progress and ``set_props`` go to a
diskcache in the instance's cache folder, so any web worker on the host can answer the browser's
polling requests. Job handles are random tokens (Dash signs them). Cancelling is cooperative:
``terminate_job`` raises a flag (in the cache, so it works across workers) and the job stops at its
next progress report without a result. At most ``max_workers`` jobs run at once per process; later
ones wait. Each job runs inside a fresh app context of the Flask server that received it, with the
triggering request's Dash context (``dash.ctx.cookies`` ...), exactly as a Diskcache job does.

Scaled-out deployments (several hosts) use Celery instead: ``similarity_manager()`` returns None
when ``REDIS_URL`` is set, so those callbacks fall back to the app's manager.
"""

from __future__ import annotations

import logging
import threading
import traceback
import uuid
from pathlib import Path

from dash import DiskcacheManager
from dash._callback_context import context_value
from dash._utils import AttributeDict
from dash.background_callback.managers import BaseBackgroundCallbackManager
from dash.background_callback._proxy_set_props import ProxySetProps
from dash.exceptions import PreventUpdate
from flask import current_app

from config import runtime_options

log = logging.getLogger(__name__)

JOB_TTL_SECONDS = 3600          # a job state entry outlives any real job
FLAG_TTL_SECONDS = 600


class JobCancelled(Exception):
    """Raised inside a job at its next progress report after it was cancelled."""


class _JobSpec:
    def __init__(self, fn, progress):
        self.fn = fn
        self.progress = progress


class ThreadJobManager(DiskcacheManager):
    """Background callbacks in threads (see the module docstring)."""

    def __init__(self, max_workers: int = 2, folder_name: str = "jobs-threads"):
        BaseBackgroundCallbackManager.__init__(self, None)      # no default diskcache handle
        self.expire = None
        self.folder_name = folder_name
        self._caches: dict[str, object] = {}
        self._caches_lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(max_workers)

    # ---- the diskcache of the current app (instance folder) ----
    def cache_for(self, server) -> object:
        import diskcache

        settings = server.extensions.get("nanoorg")
        folder = Path(settings.cache_dir if settings else server.instance_path) / self.folder_name
        key = str(folder)
        with self._caches_lock:
            cache = self._caches.get(key)
            if cache is None:
                folder.mkdir(parents=True, exist_ok=True)
                cache = self._caches[key] = diskcache.Cache(key)
        return cache

    @property
    def handle(self):
        return self.cache_for(current_app._get_current_object())

    @handle.setter
    def handle(self, _value):      # DiskcacheManager.__init__ is not run; keep the property read-only
        raise AttributeError("ThreadJobManager picks its cache from the current app")

    # ---- jobs ----
    def make_job_fn(self, fn, progress, key=None):
        return _JobSpec(fn, progress)

    @staticmethod
    def _state_key(job) -> str:
        return f"thread-job:{job}:state"

    @staticmethod
    def _cancel_key(job) -> str:
        return f"thread-job:{job}:cancel"

    def call_job_fn(self, key, job_fn, args, context):
        import dash

        server = current_app._get_current_object()
        cache = self.cache_for(server)
        try:
            dash_app = dash.get_app()
        except Exception:  # pragma: no cover - always set inside a Dash request
            dash_app = None
        job = uuid.uuid4().hex
        cache.set(self._state_key(job), "running", expire=JOB_TTL_SECONDS)
        thread = threading.Thread(target=self._run, name=f"dash-job-{job[:8]}", daemon=True,
                                  args=(job_fn, cache, key, args, dict(context), job, server, dash_app))
        thread.start()
        return job

    def _run(self, spec: _JobSpec, cache, result_key, args, context, job, server, dash_app) -> None:
        from dash._get_app import app_context as dash_app_context

        if dash_app is not None:
            dash_app_context.set(dash_app)
        progress_key = self._make_progress_key(result_key)

        def cancelled() -> bool:
            return bool(cache.get(self._cancel_key(job)))

        def set_progress(value):
            if cancelled():
                raise JobCancelled()
            cache.set(progress_key, list(value) if isinstance(value, (list, tuple)) else [value],
                      expire=JOB_TTL_SECONDS)

        def set_props(component_id, props):
            cache.set(f"{result_key}-set_props", {component_id: props}, expire=JOB_TTL_SECONDS)

        acquired = False
        try:
            while not self._slots.acquire(timeout=0.5):
                if cancelled():
                    return
            acquired = True
            if cancelled():
                return
            with server.app_context():
                values = AttributeDict(**context)
                values.ignore_register_page = False
                values.updated_props = ProxySetProps(set_props)
                context_value.set(values)
                leading = [set_progress] if spec.progress else []
                try:
                    if isinstance(args, dict):
                        output = spec.fn(*leading, **args)
                    elif isinstance(args, (list, tuple)):
                        output = spec.fn(*leading, *args)
                    else:
                        output = spec.fn(*leading, args)
                except JobCancelled:
                    return
                except PreventUpdate:
                    output = {"_dash_no_update": "_dash_no_update"}
                except Exception as err:  # reported to the browser like a Diskcache job error
                    log.exception("background job failed")
                    output = {"background_callback_error": {"msg": str(err), "tb": traceback.format_exc()}}
                if not cancelled():
                    # results nobody collects (the page was left) expire instead of piling up
                    cache.set(result_key, output, expire=JOB_TTL_SECONDS)
        finally:
            if acquired:
                self._slots.release()
            cache.delete(self._state_key(job))

    def job_running(self, job):
        if job is None:
            return False
        return self.handle.get(self._state_key(job)) == "running"

    def terminate_job(self, job):
        if job is None:
            return
        cache = self.handle
        if cache.get(self._state_key(job)) == "running":
            cache.set(self._cancel_key(job), True, expire=FLAG_TTL_SECONDS)

    def terminate_unhealthy_job(self, job):
        return False


_MANAGER: ThreadJobManager | None = None
_MANAGER_LOCK = threading.Lock()


def similarity_manager() -> ThreadJobManager | None:
    """The shared thread manager for the similarity callbacks (None with REDIS_URL: use Celery)."""
    global _MANAGER
    options = runtime_options()
    if options.redis_url:
        return None
    with _MANAGER_LOCK:
        if _MANAGER is None:
            _MANAGER = ThreadJobManager(max_workers=options.thread_jobs)
        return _MANAGER
