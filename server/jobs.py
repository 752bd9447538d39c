"""Helpers for Dash background callbacks (Diskcache processes or Celery workers).

Inside a background job there is no Flask request: ``flask_login.current_user`` does not work.
Dash hands the job the triggering request's cookies (``dash.ctx.cookies``), so the user is
re-derived from the signed session cookie (never from an id sent by the browser), then loaded
from the database inside an app context of the Flask server.

``job_slot`` bounds how many heavy jobs run at once on this host (2 cores): later jobs wait and
report "queued" through their progress callback.
"""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

import dash
from flask import current_app, has_app_context

from databank.core import settings_of
from databank import users
from databank.models import User, db

log = logging.getLogger(__name__)

_IMPORT_PID = os.getpid()          # the process that imported the app (web server / Celery master)
SLOT_TTL_SECONDS = 2 * 3600        # a slot held longer than this is considered abandoned
QUEUE_POLL_SECONDS = 1.0
QUEUE_TIMEOUT_SECONDS = 3600


def _server(server=None):
    if server is not None:
        return server
    if has_app_context():
        return current_app._get_current_object()
    return dash.get_app().server


def user_id_from_cookies(cookies, server=None) -> int | None:
    """The signed-in user's id from the Flask session cookie in ``cookies`` (None if absent/invalid)."""
    server = _server(server)
    raw = (cookies or {}).get(server.config.get("SESSION_COOKIE_NAME", "session"))
    if not raw:
        return None
    serializer = server.session_interface.get_signing_serializer(server)
    if serializer is None:
        return None
    try:
        session = serializer.loads(raw, max_age=int(server.permanent_session_lifetime.total_seconds()))
    except Exception:  # bad signature, expired, garbage: anonymous
        return None
    uid = session.get("_user_id")
    try:
        return int(uid) if uid is not None else None
    except (TypeError, ValueError):
        return None


def job_user_id(server=None) -> int | None:
    """The signed-in user's id inside a background callback (from ``dash.ctx.cookies``)."""
    try:
        cookies = dash.ctx.cookies
    except Exception:
        cookies = None
    return user_id_from_cookies(cookies, server)


def job_user(server=None) -> User | None:
    """The signed-in ``User`` inside a background job; needs an app context (see ``job_app_context``)."""
    uid = job_user_id(server)
    return users.get_user(uid) if uid is not None else None


@contextmanager
def job_app_context(server=None):
    """An app context for database work inside a background job.

    Reuses the current one if there is one (tests, synchronous calls); otherwise pushes the Dash
    server's. In a forked child the inherited connection pool is dropped first
    (SQLAlchemy: ``engine.dispose(close=False)`` after ``os.fork()``), so the child never shares
    the parent's database connections.
    """
    forked = os.getpid() != _IMPORT_PID
    if has_app_context() and not forked:
        yield current_app._get_current_object()
        return
    # A forked Diskcache child may have inherited the request's app context: push a fresh one so
    # it gets its own session, and drop the parent's pooled connections without closing them.
    server = _server(server)
    with server.app_context():
        if forked:
            db.engine.dispose(close=False)
        try:
            yield server
        finally:
            db.session.remove()


# --------------------------------------------------------------------------------------------
# concurrency guard

class QueueTimeout(RuntimeError):
    pass


def _slot_cache(settings):
    import diskcache

    folder = Path(settings.cache_dir) / "job-slots"
    folder.mkdir(parents=True, exist_ok=True)
    return diskcache.Cache(str(folder))


def _holder_alive(value) -> bool:
    if not isinstance(value, dict):
        return False
    if value.get("host") != socket.gethostname():
        return True                       # another host: trust the TTL
    try:
        import psutil

        return psutil.pid_exists(int(value.get("pid")))
    except Exception:
        return True


def _try_acquire(cache, name: str, slots: int, token: dict) -> str | None:
    for number in range(slots):
        key = f"{name}:slot:{number}"
        if cache.add(key, token, expire=SLOT_TTL_SECONDS):
            return key
        with cache.transact():
            holder = cache.get(key)
            if holder is not None and not _holder_alive(holder):
                cache.delete(key)         # its process was killed (cancelled job): take over
                if cache.add(key, token, expire=SLOT_TTL_SECONDS):
                    return key
    return None


@contextmanager
def job_slot(name: str = "ingest", report=None, *, settings=None, slots: int | None = None,
             timeout: float = QUEUE_TIMEOUT_SECONDS, poll: float = QUEUE_POLL_SECONDS):
    """Hold one of ``slots`` places for heavy job ``name`` on this host; wait (reporting "queued") if all are taken.

    ``report(fraction, message)`` is called while waiting. ``slots`` defaults to
    ``settings.max_concurrent_jobs`` (default 2).
    """
    settings = settings or settings_of()
    slots = slots or int(settings.max_concurrent_jobs)
    cache = _slot_cache(settings)
    token = dict(host=socket.gethostname(), pid=os.getpid(), token=uuid.uuid4().hex, since=time.time())
    started = time.monotonic()
    key = _try_acquire(cache, name, slots, token)
    while key is None:
        if time.monotonic() - started > timeout:
            cache.close()
            raise QueueTimeout(f"The server is busy with other {name} jobs; try again later.")
        if report:
            waited = int(time.monotonic() - started)
            report(0.0, f"Queued: {slots} {name} job(s) are running; yours starts when one finishes ({waited} s)…")
        time.sleep(poll)
        key = _try_acquire(cache, name, slots, token)
    try:
        yield key
    finally:
        with cache.transact():
            holder = cache.get(key)
            if isinstance(holder, dict) and holder.get("token") == token["token"]:
                cache.delete(key)
        cache.close()


@contextmanager
def exclusive(name: str, *, settings=None, ttl: float = SLOT_TTL_SECONDS):
    """Yield True if this process holds the named lock (e.g. one ingest per upload id), else False."""
    settings = settings or settings_of()
    cache = _slot_cache(settings)
    token = dict(host=socket.gethostname(), pid=os.getpid(), token=uuid.uuid4().hex)
    key = f"lock:{name}"
    got = bool(cache.add(key, token, expire=ttl))
    if not got:
        with cache.transact():
            holder = cache.get(key)
            if holder is not None and not _holder_alive(holder):
                cache.delete(key)
                got = bool(cache.add(key, token, expire=ttl))
    try:
        yield got
    finally:
        if got:
            with cache.transact():
                holder = cache.get(key)
                if isinstance(holder, dict) and holder.get("token") == token["token"]:
                    cache.delete(key)
        cache.close()
