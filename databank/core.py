"""Binding the data layer to a Flask application (the web app, the CLI and tests share this)."""

from __future__ import annotations

from pathlib import Path

from flask import Flask, current_app
from sqlalchemy.engine import make_url

from config import Settings, load_settings, private_file
from databank.models import db
from databank.schema import check_schema, upgrade_schema

EXTENSION_KEY = "nanoorg"


def init_databank(app: Flask, settings: Settings, *, migrate: bool = True) -> None:
    """Configure the database on ``app`` and remember the settings.

    ``migrate``: bring the schema to the newest revision (``databank.schema``); off in web and job
    workers of a scaled-out deployment, which only check it (the migration ran once before them)."""
    settings.ensure_dirs()
    _private_sqlite_files(settings.database_url)
    app.config.setdefault("SQLALCHEMY_DATABASE_URI", settings.database_url)
    engine_options = {"pool_pre_ping": True}
    if settings.database_url.startswith("sqlite"):
        engine_options["connect_args"] = {"timeout": 30, "check_same_thread": False}
    else:   # one pooled connection per request thread and job: no new server connection per request
        engine_options.update(pool_size=settings.web_threads + settings.job_workers, max_overflow=settings.web_threads)
    app.config.setdefault("SQLALCHEMY_ENGINE_OPTIONS", engine_options)
    db.init_app(app)
    app.extensions[EXTENSION_KEY] = settings
    with app.app_context():
        if settings.database_url.startswith("sqlite"):
            from sqlalchemy import event

            @event.listens_for(db.engine, "connect")
            def _sqlite_pragmas(dbapi_connection, _record):
                cursor = dbapi_connection.cursor()
                cursor.execute("PRAGMA foreign_keys=ON")
                cursor.execute("PRAGMA journal_mode=WAL")
                cursor.close()
        if migrate:
            upgrade_schema(db.engine)
        else:
            check_schema(db.engine)
        _private_sqlite_files(settings.database_url)   # the -wal and -shm files now exist too


def _private_sqlite_files(database_url: str) -> None:
    """The SQLite database (and its journal files) readable by the owner only: created 0600, fixed
    to 0600 when an older instance left them readable by others. No-op for other databases."""
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return
    database = Path(url.database)
    private_file(database, make_text=str)                 # an empty file is a valid new SQLite database
    for suffix in ("-wal", "-shm", "-journal"):
        private_file(database.with_name(database.name + suffix))


def settings_of(app: Flask | None = None) -> Settings:
    """The nano-org settings of ``app`` (default: the current Flask app)."""
    return (app or current_app).extensions[EXTENSION_KEY]


def make_data_app(settings: Settings | None = None) -> Flask:
    """A minimal Flask app with the data layer only (command line, background jobs, tests)."""
    settings = settings or load_settings()
    app = Flask("databank")
    app.config["SECRET_KEY"] = settings.secret_key
    init_databank(app, settings)
    return app
