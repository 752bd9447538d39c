"""The one bridge between nano-org's jobs (``databank.jobs``) and Dash's background callbacks.

``make_job_manager(settings)`` picks the backend once, when the app is built:

- **embedded default** (no ``REDIS_URL``): ``ThreadJobManager`` runs each job in a thread of the
  web process; results, progress and cancel flags live in a diskcache in the instance's cache
  folder, so every web process of the host can answer the browser's polling requests.
  Why threads and not Dash's ``DiskcacheManager``: that one *forks* the web process for every
  job, and the web process is multi-threaded (request threads, warm-up threads). A fork taken
  while another thread holds one of SQLite's process-wide mutexes (its allocator, its list of open
  files; the bank and diskcache are both SQLite) leaves the child blocked forever on its first
  SQLite call: observed on the dataset page, the job child hung in ``sqlite3Malloc``
  (``pthread_mutex_lock``) and numba's TBB pool warned "Unable to join threads to shut down before
  fork()". So nothing here forks; a separate process, if ever needed, must be started by
  ``spawn``. Cancelling is cooperative: the job stops at its next progress report.
- **Celery** (``REDIS_URL`` set): ``CeleryJobManager`` (Dash's ``CeleryManager``) sends jobs to
  ``celery -A app:celery_app worker`` processes; Redis holds results, progress and cancel flags;
  cancelling is cooperative there too (``CeleryJobRunner``).

Both backends store a job's result under ``databank.jobs.result_key``: Dash's key for the callback
and its inputs, mixed with the user id from the starting request's signed session cookie and a
random nonce, through the public ``build_cache_key`` hook. Dash also signs that key and binds it
to the page load that started the job, so only that request can collect the result.

``job_callback(app, kind, ...)`` registers a background callback whose body runs inside a
``databank.jobs.JobRecord`` (one log line at the start, one with outcome and duration at the end),
on either backend. Job bodies find their user with ``job_user()`` (from the signed session cookie
of the starting request, re-checked against the database) inside ``job_app_context()``.

No private Dash module is imported: a thread job gets its starting request's cookies through this
module's own context variable (``_job_cookies``), not through Dash's callback context; on Celery,
Dash's worker sets its callback context itself (``dash.ctx.cookies``). Job bodies use nothing else
of the callback context. ``tests/web/test_dash_adapter.py`` pins the manager protocol this relies on.
"""

from __future__ import annotations

import functools
import logging
import threading
import traceback
import uuid
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path

import dash
from dash.background_callback.managers import BaseBackgroundCallbackManager
from dash.exceptions import PreventUpdate
from flask import current_app, has_app_context, has_request_context, request

from databank import jobs, users
from databank.models import User, db

log = logging.getLogger(__name__)

RESULT_TTL_SECONDS = 3600          # an uncollected result (the page was left) expires
FLAG_TTL_SECONDS = 600
NO_UPDATE = {"_dash_no_update": "_dash_no_update"}       # how Dash's managers store PreventUpdate


def job_key(job, what: str) -> str:
    """A job's bookkeeping key in the result store: ``what`` is state, cancel, started or alive."""
    return f"nanoorg-job:{job}:{what}"


# --------------------------------------------------------------------------------------------
# the user of a job

def _server(server=None):
    if server is not None:
        return server
    if has_app_context():
        return current_app._get_current_object()
    return dash.get_app().server


# the starting request's cookies inside a thread job (ThreadJobRunner sets it in the job's thread)
_job_cookies: ContextVar[dict | None] = ContextVar("nanoorg_job_cookies", default=None)


def job_cookies() -> dict | None:
    """The starting request's cookies inside a job: the thread job's (``_job_cookies``), else Dash's
    callback context (Celery jobs; callbacks called in a request); None outside both."""
    cookies = _job_cookies.get()
    if cookies is None:
        try:
            cookies = dash.ctx.cookies
        except Exception:
            cookies = None
    return cookies


def job_user_id(server=None) -> int | None:
    """The signed-in user's id inside a job, from the starting request's signed session cookie."""
    return jobs.user_id_from_session_cookie(job_cookies(), _server(server))


def job_user(server=None) -> User | None:
    """The signed-in ``User`` inside a job; needs an app context (``job_app_context``)."""
    uid = job_user_id(server)
    return users.get_user(uid) if uid is not None else None


@contextmanager
def job_app_context(server=None):
    """An app context for database work inside a job: the current one, else the Dash server's."""
    if has_app_context():
        yield current_app._get_current_object()
        return
    with _server(server).app_context():
        try:
            yield current_app._get_current_object()
        finally:
            db.session.remove()


# --------------------------------------------------------------------------------------------
# registering a job

FAILED_MESSAGE = ("An error on the server stopped it; nothing was saved. Please try again, and contact the "
                  "administrators if it happens again.")


def job_failure_reason(error) -> str:
    """What the user is told when a job failed: the lost-worker message, or a general one (the
    details are in the server's log, not shown to the browser)."""
    return LOST_MESSAGE if LOST_MESSAGE in str(error) else FAILED_MESSAGE


def _show_failure(kind: str, status_id: str):
    """Dash's ``on_error`` for a job: log it, write the reason into ``status_id.children`` and leave
    the job's outputs as they are (a failed job never answers the browser with a 500)."""
    def failed(error):
        log.warning("%s job failed: %s", kind, (str(error).splitlines() or ["?"])[0][:300])
        dash.set_props(status_id, {"children": dash.html.Div(f"Failed. {job_failure_reason(error)}",
                                                              className="text-danger small", role="alert")})
        return None
    return failed


def job_callback(app, kind: str, *dependencies, failure_status: str | None = None, **options):
    """``app.callback(*dependencies, background=True, **options)`` with the body run as a ``kind`` job.

    The body's start, user id, outcome and duration are logged (``databank.jobs.JobRecord``) on
    both backends. Every job says when it failed: either ``on_error`` (Dash's: returns the outputs)
    or ``failure_status``, the id of a component whose ``children`` then shows the reason."""
    if "on_error" not in options:
        if failure_status is None:
            raise TypeError(f"job {kind!r}: give failure_status (or on_error), so that a failure is shown")
        options["on_error"] = _show_failure(kind, failure_status)

    def decorate(body):
        @functools.wraps(body)           # Dash hashes the body's source (``inspect.unwrap``)
        def run_job(*args, **kwargs):
            with job_app_context() as server:
                user_id = job_user_id(server)
            with jobs.recorded(kind, user_id) as record:
                try:
                    return body(*args, **kwargs)
                except PreventUpdate:
                    record.finish("skipped", "nothing to do")
                    raise
        run_job.nanoorg_job_kind = kind
        return app.callback(*dependencies, background=True, **options)(run_job)
    return decorate


# --------------------------------------------------------------------------------------------
# result ownership (both backends)

def _requester_id() -> int | None:
    """The user id in the current request's signed session cookie (None: anonymous or no request)."""
    if not has_request_context():
        return None
    return jobs.user_id_from_session_cookie(request.cookies, current_app._get_current_object())


class OwnedResultKeys:
    """Mixin for a Dash manager: a job's result key belongs to the request that started it.

    ``build_cache_key`` (called by Dash in the starting request) mixes the requester's user id and
    a random nonce into Dash's key; ``get_result``, ``get_progress`` and ``get_updated_props``
    (called in the polling requests) answer nothing to a requester of another user, even one
    holding a stolen handle."""

    def build_cache_key(self, fn, args, cache_args_to_ignore, triggered):
        dash_key = super().build_cache_key(fn, args, cache_args_to_ignore, triggered)
        return jobs.result_key(dash_key, _requester_id(), jobs.new_nonce())

    @staticmethod
    def _refused(key, *, report: bool = False) -> bool:
        requester = _requester_id()
        if jobs.result_belongs_to(key, requester):
            return False
        if report and key is not None:
            log.warning("job result %s… refused to %s", str(key)[:24], jobs.owner_tag(requester))
        return True

    def get_result(self, key, job):
        return self.UNDEFINED if self._refused(key, report=True) else super().get_result(key, job)

    def get_progress(self, key):
        return None if self._refused(key) else super().get_progress(key)

    def get_updated_props(self, key):
        return {} if self._refused(key) else super().get_updated_props(key)


# --------------------------------------------------------------------------------------------
# embedded backend: threads of the web process

class _JobBody:
    def __init__(self, fn, progress):
        self.fn = fn
        self.progress = progress


class ThreadJobRunner(BaseBackgroundCallbackManager):
    """Background callbacks in threads of the web process (see the module docstring).

    State per job id in the diskcache ``handle``: "running" (with the running process's identity)
    while the body runs, "finished" once its result is stored (until the result is collected),
    removed when it ends without a result (cancelled), so Dash's poll loop always sees a result or
    a stopped job. A job whose process died (web server restarted) is not running any more."""

    def __init__(self, cache_dir: Path):
        import diskcache

        Path(cache_dir).mkdir(parents=True, exist_ok=True)
        self.handle = diskcache.Cache(str(cache_dir))
        super().__init__(None)           # no ``cache_by``: a result is deleted once collected

    @staticmethod
    def _progress_key(key) -> str:
        return f"{key}-progress"

    def make_job_fn(self, fn, progress, key=None):
        return _JobBody(fn, progress)

    def call_job_fn(self, key, job_fn, args, context):
        server = current_app._get_current_object()
        job = uuid.uuid4().hex
        self.handle.set(job_key(job, "state"), dict(jobs.process_identity(), state="running"),
                        expire=RESULT_TTL_SECONDS)
        threading.Thread(target=self._run, name=f"nanoorg-job-{job[:8]}", daemon=True,
                         args=(job_fn, key, args, dict(context), job, server)).start()
        return job

    def _run(self, body: _JobBody, key, args, context, job, server) -> None:
        cache = self.handle

        def set_progress(value):
            if cache.get(job_key(job, "cancel")):
                raise jobs.JobCancelled()
            cache.set(self._progress_key(key), list(value) if isinstance(value, (list, tuple)) else [value],
                      expire=RESULT_TTL_SECONDS)

        leading = [set_progress] if body.progress else []
        output = None
        try:
            _job_cookies.set(dict(context.get("cookies") or {}))     # this thread's own context: ends with it
            with server.app_context():
                try:
                    if isinstance(args, dict):
                        output = body.fn(*leading, **args)
                    elif isinstance(args, (list, tuple)):
                        output = body.fn(*leading, *args)
                    else:
                        output = body.fn(*leading, args)
                except jobs.JobCancelled:
                    return
                except PreventUpdate:
                    output = NO_UPDATE
                except Exception as error:  # shown in the browser as Dash shows a job's error
                    log.exception("background job failed")
                    output = {"background_callback_error": {"msg": str(error), "tb": traceback.format_exc()}}
                finally:
                    db.session.remove()
            if not cache.get(job_key(job, "cancel")):
                cache.set(key, output, expire=RESULT_TTL_SECONDS)
                cache.set(job_key(job, "state"), {"state": "finished"}, expire=RESULT_TTL_SECONDS)
                return
        finally:
            if self._state(job) == "running":
                cache.delete(job_key(job, "state"))

    def get_progress(self, key):
        progress = self.handle.get(self._progress_key(key))
        if progress:
            self.handle.delete(self._progress_key(key))
        return progress

    def result_ready(self, key):
        return self.handle.get(key) is not None

    def get_result(self, key, job):
        result = self.handle.get(key, self.UNDEFINED)
        if result is self.UNDEFINED:
            return self.UNDEFINED
        self.handle.delete(key)
        self.handle.delete(self._progress_key(key))
        if job is not None:
            self.handle.delete(job_key(job, "state"))
        return result

    def get_updated_props(self, key):
        return {}

    def _state(self, job) -> str | None:
        """"running", "finished" or None (no such job, or its process died)."""
        value = self.handle.get(job_key(job, "state")) if job is not None else None
        if not isinstance(value, dict):
            return None
        if value.get("state") == "running" and not jobs.process_alive(value):
            self.handle.delete(job_key(job, "state"))
            return None
        return value.get("state")

    def job_running(self, job):
        return self._state(job) is not None

    def terminate_job(self, job):
        if self._state(job) == "running":
            self.handle.set(job_key(job, "cancel"), True, expire=FLAG_TTL_SECONDS)

    def terminate_unhealthy_job(self, job):
        return False


class ThreadJobManager(OwnedResultKeys, ThreadJobRunner):
    """The embedded backend: jobs in threads, results owned by the request that started them."""


# --------------------------------------------------------------------------------------------
# Celery backend

HEARTBEAT_SECONDS = 5.0            # a Celery job refreshes its heartbeat this often ...
HEARTBEAT_TTL_SECONDS = 30         # ... and counts as lost once it is older than this (worker killed)
LOST_MESSAGE = ("The job worker stopped while running this job (it was restarted or killed); "
                "nothing was saved. Start it again.")


class CeleryJobRunner(dash.CeleryManager):
    """Dash's Celery manager with cooperative cancel, plus lost jobs: a job whose worker died is
    reported as failed.

    **Cancel** (the Cancel button, a newer job replacing an older one, and Dash itself after it
    collects every result) sets a cancel flag in Redis and revokes the task (a task still queued
    never starts); the job stops at its next progress report, as on the thread backend. Dash's own
    ``control.terminate`` is never used: Dash calls it even after collecting a finished job's
    result, and it signals the *pool process* the task ran in, which may by then be running
    another user's job (Celery's documentation: never call it from a program).

    **Lost jobs**: a job, once started on a worker, marks itself started and refreshes a heartbeat
    key in Redis every ``HEARTBEAT_SECONDS`` from a thread of the pool process. Started, no result
    and no heartbeat for ``HEARTBEAT_TTL_SECONDS``: the worker died (SIGKILL, out of memory, host
    lost); the poll then gets Dash's job-error answer with ``LOST_MESSAGE`` instead of waiting
    forever. A job still queued (no worker took it yet) is not lost."""

    def make_job_fn(self, fn, progress, key=None):
        return super().make_job_fn(self._as_job(fn, progress), progress, key)

    def _as_job(self, fn, progress: bool):
        @functools.wraps(fn)
        def run(*args, **kwargs):
            from celery import current_task

            job = current_task.request.id
            client = self.handle.backend.client

            def cancelled() -> bool:
                return bool(client.exists(job_key(job, "cancel")))

            if cancelled():
                raise PreventUpdate
            if progress:
                report = args[0]

                def checked_progress(value):
                    if cancelled():
                        raise jobs.JobCancelled()
                    report(value)
                args = (checked_progress, *args[1:])
            # the first heartbeat before the started mark: a poll in between must not see a started
            # job without a heartbeat (it would report it lost, and Dash would cancel it)
            client.set(job_key(job, "alive"), 1, ex=HEARTBEAT_TTL_SECONDS)
            client.set(job_key(job, "started"), 1, ex=RESULT_TTL_SECONDS)
            stop = threading.Event()

            def beat():
                while not stop.wait(HEARTBEAT_SECONDS):
                    client.set(job_key(job, "alive"), 1, ex=HEARTBEAT_TTL_SECONDS)
            threading.Thread(target=beat, name=f"nanoorg-heartbeat-{job[:8]}", daemon=True).start()
            try:
                return fn(*args, **kwargs)
            except jobs.JobCancelled:
                raise PreventUpdate from None           # stored as "no update": the page shows nothing new
            finally:
                stop.set()           # the heartbeat expires by itself: Dash stores the result after this
        return run

    def terminate_job(self, job):
        if not job:
            return
        self.handle.backend.client.set(job_key(job, "cancel"), 1, ex=FLAG_TTL_SECONDS)
        self.handle.control.revoke(job)

    def _lost(self, job) -> bool:
        if not job:
            return False
        client = self.handle.backend.client
        return bool(client.exists(job_key(job, "started"))) and not client.exists(job_key(job, "alive"))

    def job_running(self, job):
        return bool(super().job_running(job)) and not self._lost(job)

    def get_result(self, key, job):
        result = super().get_result(key, job)
        if result is self.UNDEFINED and self._lost(job):
            self.handle.backend.client.delete(job_key(job, "started"))       # reported once
            log.warning("job %s lost: its worker stopped before it ended", job)
            return {"background_callback_error": {"msg": LOST_MESSAGE, "tb": ""}}
        return result


class CeleryJobManager(OwnedResultKeys, CeleryJobRunner):
    """The Celery backend: results owned by the request that started them, lost jobs reported."""


def make_celery(settings, server):
    """The Celery application for ``settings.redis_url`` (broker and result backend).

    A worker (``celery -A app:celery_app worker``) runs ``settings.job_workers`` jobs at once, each
    in a pool process forked from the worker's parent (which has no warm-up threads, ``app.py``);
    a pool process drops the database connections it inherited before its first job."""
    from celery import Celery
    from celery.signals import worker_process_init

    celery_app = Celery("nanoorg", broker=settings.redis_url, backend=settings.redis_url)
    celery_app.conf.update(worker_concurrency=int(settings.job_workers), worker_hijack_root_logger=False,
                           result_expires=RESULT_TTL_SECONDS, broker_connection_retry_on_startup=True)

    def fresh_connections(**_):
        with server.app_context():
            db.engine.dispose(close=False)      # SQLAlchemy's rule for a forked child: never share the pool
    worker_process_init.connect(fresh_connections, weak=False)
    return celery_app


def make_job_manager(settings, server) -> BaseBackgroundCallbackManager:
    """The app's background-job manager: Celery when ``settings.redis_url`` is set, else threads."""
    if settings.redis_url:
        return CeleryJobManager(make_celery(settings, server), expire=RESULT_TTL_SECONDS)
    return ThreadJobManager(Path(settings.cache_dir) / "jobs")
