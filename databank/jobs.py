"""Background jobs, independent of the web framework and of the backend that runs them.

A job (an upload's ingest, a similarity search, a viewer sweep ...) is started by one web request
and runs later in a thread of the web process (the embedded default) or on a Celery worker
(``REDIS_URL``); ``server.dash_jobs`` picks the backend and binds it to Dash. This module holds
what both backends share:

- ``JobRecord``: one job's identity (random id, kind, user id) and its log lines: start (kind,
  user id), then exactly one outcome (done / cancelled / skipped / failed) with the duration in s;
- ``result_key``: the key a job's result is stored under. It mixes the key Dash derives from the
  callback and its inputs with the user id from the starting request's signed session cookie and
  a random per-job nonce, so two requests never share a result, whoever they are and whatever
  they ask (an anonymous client asking the same question as the owner of a private dataset once
  received the owner's table: the key was the same);
- ``user_id_from_session_cookie``: the user of a job, re-derived from the signed Flask session
  cookie of the starting request (never from an id sent by the browser);
- ``slot``: at most ``settings.job_workers`` heavy jobs run at once on a host (the one concurrency
  setting, ``NANOORG_JOB_WORKERS``); later ones report "Queued" and wait;
- ``exclusive``: a named lock across processes (one ingest per upload);
- ``JobCancelled``: raised inside a job at its next progress report once it was cancelled.
"""

from __future__ import annotations

import hashlib
import logging
import os
import socket
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from databank.core import settings_of

log = logging.getLogger("nanoorg.jobs")

SLOT_TTL_SECONDS = 2 * 3600        # a slot held longer than this is considered abandoned
QUEUE_POLL_SECONDS = 1.0
QUEUE_TIMEOUT_SECONDS = 3600


class JobCancelled(BaseException):
    """Raised inside a job at its next progress report after it was cancelled.

    A ``BaseException`` (like ``KeyboardInterrupt``): a job body's ``except Exception`` (report a
    bug to the user) must not swallow it; clean-ups (``except BaseException``, ``finally``) run."""


class QueueTimeout(RuntimeError):
    """All job slots stayed busy for longer than the queue timeout."""


# --------------------------------------------------------------------------------------------
# identity, ownership and log lines

def owner_tag(user_id: int | None) -> str:
    """How a result key names its owner: ``user<id>`` or ``anonymous``."""
    return "anonymous" if user_id is None else f"user{int(user_id)}"


def result_key(dash_key: str, user_id: int | None, nonce: str) -> str:
    """The storage key of one job's result: ``<owner tag>-<SHA-256 of Dash's key, owner and nonce>``.

    Dash's key covers the callback and its inputs; ``nonce`` is random per job, so equal inputs
    from two requests (two users, anonymous and owner, one user twice) give two keys. The owner
    tag lets the collecting request be checked as well (``result_belongs_to``)."""
    owner = owner_tag(user_id)
    digest = hashlib.sha256(f"{dash_key}\x00{owner}\x00{nonce}".encode("utf-8")).hexdigest()
    return f"{owner}-{digest}"


def result_belongs_to(key: str | None, user_id: int | None) -> bool:
    """Whether the result stored under ``key`` was started by ``user_id`` (None: anonymous)."""
    return bool(key) and str(key).startswith(owner_tag(user_id) + "-")


def new_nonce() -> str:
    """A random per-job nonce (128 bits, hex)."""
    return uuid.uuid4().hex


def user_id_from_session_cookie(cookies, server) -> int | None:
    """The signed-in user's id from the Flask session cookie in ``cookies`` (None if absent/invalid).

    ``server`` is the Flask app whose secret key signed the cookie; an expired, forged or
    unreadable cookie is anonymous."""
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


@dataclass
class JobRecord:
    """One job: who started it and what it is; logs its start and its one outcome."""
    kind: str
    user_id: int | None
    job_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    started: float = field(default_factory=time.monotonic)
    outcome: str | None = None

    def __post_init__(self):
        log.info("job %s start: kind=%s user=%s", self.job_id, self.kind, self._user())

    def _user(self) -> str:
        return "anonymous" if self.user_id is None else str(self.user_id)

    @property
    def seconds(self) -> float:
        """Time since the start, s."""
        return time.monotonic() - self.started

    def finish(self, outcome: str, detail: str = "") -> None:
        """Log the outcome (done, cancelled, skipped, failed) once, with the duration in s."""
        if self.outcome is not None:
            return
        self.outcome = outcome
        level = logging.WARNING if outcome == "failed" else logging.INFO
        log.log(level, "job %s %s: kind=%s user=%s duration=%.2fs%s", self.job_id, outcome, self.kind,
                self._user(), self.seconds, f" ({detail})" if detail else "")


@contextmanager
def recorded(kind: str, user_id: int | None):
    """Run a job body inside a ``JobRecord``: its outcome is logged whatever happens.

    A ``JobCancelled`` is logged as cancelled; any other exception as failed; both propagate."""
    record = JobRecord(kind, user_id)
    try:
        yield record
    except JobCancelled:
        record.finish("cancelled")
        raise
    except BaseException as error:
        record.finish("failed", f"{type(error).__name__}: {error}")
        raise
    record.finish("done")


# --------------------------------------------------------------------------------------------
# concurrency: slots and locks shared by the processes of a host (diskcache in the instance folder)

def _slot_cache(settings):
    import diskcache

    folder = Path(settings.cache_dir) / "job-slots"
    folder.mkdir(parents=True, exist_ok=True)
    return diskcache.Cache(str(folder))


def _process_started(pid: int) -> float | None:
    """When process ``pid`` of this host started (s since the epoch), None if there is none."""
    try:
        import psutil

        return psutil.Process(pid).create_time()
    except Exception:
        return None


_THIS_PROCESS = dict(host=socket.gethostname(), pid=os.getpid(), started=_process_started(os.getpid()))


def process_identity() -> dict:
    """This process: host name, pid and start time (a reused pid is another process)."""
    if _THIS_PROCESS["pid"] != os.getpid():         # a forked child
        _THIS_PROCESS.update(pid=os.getpid(), started=_process_started(os.getpid()))
    return dict(_THIS_PROCESS)


def process_alive(identity) -> bool:
    """Whether the process named by ``process_identity()`` still runs (another host's: assumed so)."""
    if not isinstance(identity, dict):
        return False
    if identity.get("host") != socket.gethostname():
        return True                       # another host: trust the TTL
    try:
        started = _process_started(int(identity.get("pid")))
    except (TypeError, ValueError):
        return False
    return started is not None and (identity.get("started") is None or abs(started - identity["started"]) < 1.0)


def _token() -> dict:
    return dict(process_identity(), token=uuid.uuid4().hex, since=time.time())


def _take(cache, key: str, token: dict, ttl: float) -> bool:
    """Take ``key`` for ``token``; a key held by a dead process (killed job) is taken over."""
    if cache.add(key, token, expire=ttl):
        return True
    with cache.transact():
        holder = cache.get(key)
        if holder is not None and not process_alive(holder):
            cache.delete(key)
            return bool(cache.add(key, token, expire=ttl))
    return False


def _release(cache, key: str, token: dict) -> None:
    with cache.transact():
        holder = cache.get(key)
        if isinstance(holder, dict) and holder.get("token") == token["token"]:
            cache.delete(key)


@contextmanager
def slot(report=None, *, settings=None, slots: int | None = None, timeout: float = QUEUE_TIMEOUT_SECONDS,
         poll: float = QUEUE_POLL_SECONDS):
    """Hold one of the host's ``slots`` job places (default ``settings.job_workers``) while the body runs.

    While all are taken, ``report(0.0, "Queued …")`` is called every ``poll`` s (a cancelled job's
    report raises ``JobCancelled``, which ends the wait); after ``timeout`` s, ``QueueTimeout``."""
    settings = settings or settings_of()
    slots = slots or int(settings.job_workers)
    cache = _slot_cache(settings)
    token = _token()
    started = time.monotonic()
    try:
        key = None
        while key is None:
            key = next((f"slot:{n}" for n in range(slots)
                        if _take(cache, f"slot:{n}", token, SLOT_TTL_SECONDS)), None)
            if key is not None:
                break
            if time.monotonic() - started > timeout:
                raise QueueTimeout("The server is busy with other jobs; try again later.")
            if report:
                waited = int(time.monotonic() - started)
                report(0.0, f"Queued: {slots} job(s) are running; yours starts when one finishes ({waited} s)…")
            time.sleep(poll)
        try:
            yield key
        finally:
            _release(cache, key, token)
    finally:
        cache.close()


@contextmanager
def exclusive(name: str, *, settings=None, ttl: float = SLOT_TTL_SECONDS):
    """Yield True if this process holds the named lock (e.g. one ingest per upload id), else False."""
    settings = settings or settings_of()
    cache = _slot_cache(settings)
    token = _token()
    key = f"lock:{name}"
    got = _take(cache, key, token, ttl)
    try:
        yield got
    finally:
        if got:
            _release(cache, key, token)
        cache.close()
