"""Binding the data layer to a Flask application (the web app, the CLI and tests share this)."""

from __future__ import annotations

from pathlib import Path

from flask import Flask, current_app
from sqlalchemy import inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from config import Settings, load_settings, private_file
from databank.models import db

EXTENSION_KEY = "nanoorg"


def init_databank(app: Flask, settings: Settings) -> None:
    """Configure the database on ``app``, create missing tables and remember the settings."""
    settings.ensure_dirs()
    _private_sqlite_files(settings.database_url)
    app.config.setdefault("SQLALCHEMY_DATABASE_URI", settings.database_url)
    engine_options = {"pool_pre_ping": True}
    if settings.database_url.startswith("sqlite"):
        engine_options["connect_args"] = {"timeout": 30, "check_same_thread": False}
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
        db.create_all()
        _add_missing_columns()
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


def _add_missing_columns() -> None:
    """Add columns that models gained after a database was created (``create_all`` only creates
    missing tables). Only columns with a server default can be added this way."""
    inspector = inspect(db.engine)
    for table in db.metadata.sorted_tables:
        present = {column["name"] for column in inspector.get_columns(table.name)}
        for column in table.columns:
            if column.name in present:
                continue
            if column.server_default is None:
                raise RuntimeError(f"database table {table.name} lacks column {column.name}: migrate it by hand")
            kind = column.type.compile(dialect=db.engine.dialect)
            try:
                with db.engine.begin() as connection:
                    connection.execute(text(f"ALTER TABLE {table.name} ADD COLUMN {column.name} {kind} "
                                            f"NOT NULL DEFAULT {column.server_default.arg}"))
            except SQLAlchemyError:   # another process added it at the same moment
                if column.name not in {c["name"] for c in inspect(db.engine).get_columns(table.name)}:
                    raise


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
