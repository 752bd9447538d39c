"""``GET /healthz``: is this web worker able to serve? For load balancers and operators.

JSON: ``status`` ("ok", or "degraded" with HTTP 503), ``database`` ({ok, backend, schema, error}),
``bank_version``, ``redis`` ({ok, error}; null without REDIS_URL), ``job_workers`` ({ok, names,
error}: Celery workers answering a ping; null without REDIS_URL), ``pid`` (this web worker's
process id: tells the gunicorn workers of one deployment apart). Nothing private: no user, no dataset.

With more than one web worker (NANOORG_WEB_WORKERS > 1), every response also carries the answering
worker's pid in ``X-Nanoorg-Worker-Pid``, to see which worker served what (logs, load balancing, tests).
"""

from __future__ import annotations

import os

from flask import Flask, jsonify
from sqlalchemy import text

from databank.core import settings_of
from databank.models import bank_version, db
from databank.schema import check_schema

JOB_WORKER_PING_SECONDS = 1.0
WORKER_PID_HEADER = "X-Nanoorg-Worker-Pid"


def _problem(exc: Exception) -> str:
    return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:300]


def _database() -> tuple[dict, int | None]:
    backend = db.engine.dialect.name
    try:
        db.session.execute(text("SELECT 1"))
        schema = check_schema(db.engine)
        return dict(ok=True, backend=backend, schema=schema, error=None), bank_version()
    except Exception as exc:  # reported, not raised: the point of a health check
        db.session.rollback()
        return dict(ok=False, backend=backend, schema=None, error=_problem(exc)), None


def _redis(redis_url: str) -> dict:
    import redis

    try:
        client = redis.Redis.from_url(redis_url, socket_connect_timeout=2, socket_timeout=2)
        client.ping()
        client.close()
        return dict(ok=True, error=None)
    except Exception as exc:
        return dict(ok=False, error=_problem(exc))


def _job_workers(celery_app) -> dict:
    try:
        replies = celery_app.control.ping(timeout=JOB_WORKER_PING_SECONDS) or []
        names = sorted(name for reply in replies for name in reply)
        return dict(ok=bool(names), names=names, error=None if names else "no Celery worker answered")
    except Exception as exc:
        return dict(ok=False, names=[], error=_problem(exc))


def register(server: Flask, celery_app=None) -> None:
    """Add ``/healthz`` to ``server``; ``celery_app``: the job workers' app when REDIS_URL is set."""

    @server.get("/healthz")
    def healthz():
        settings = settings_of(server)
        database, version = _database()
        redis_state = _redis(settings.redis_url) if settings.redis_url else None
        workers = _job_workers(celery_app) if celery_app is not None else None
        healthy = database["ok"] and all(part is None or part["ok"] for part in (redis_state, workers))
        body = dict(status="ok" if healthy else "degraded", database=database, bank_version=version,
                    redis=redis_state, job_workers=workers, pid=os.getpid())
        return jsonify(body), 200 if healthy else 503

    if settings_of(server).web_workers > 1:
        @server.after_request
        def worker_pid_header(response):
            response.headers[WORKER_PID_HEADER] = str(os.getpid())
            return response
