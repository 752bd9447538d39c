"""Schema migrations (Alembic, scripts in ``databank/migrations/versions/``).

- ``upgrade_schema(engine)``: bring the database to the newest revision. An empty database gets every
  migration; a bank created before migrations existed (tables present, no ``alembic_version``) is
  stamped with the first revision, which equals the schema ``db.create_all()`` made, then upgraded.
  Concurrent callers are serialised (PostgreSQL advisory lock; SQLite's write lock), so two
  processes starting at once cannot both create the tables.
- ``check_schema(engine)``: raise ``SchemaOutOfDate`` unless the database is at the newest revision
  (web and job workers only check: the migration runs once, in ``nanoorg migrate`` or gunicorn's master).

A new revision: change ``databank/models.py``, then
``alembic -c databank/migrations/alembic.ini revision --autogenerate -m "what changed"`` (it
compares the models with the database of ``DATABASE_URL``), review the script, and commit it.
"""

from __future__ import annotations

import fcntl
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.runtime.environment import EnvironmentContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection, Engine

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
BASELINE_REVISION = "0001_initial"          # the schema of nano-org before migrations existed
_PG_LOCK_ID = 0x6E616E6F                    # pg_advisory_xact_lock key ("nano")


class SchemaOutOfDate(RuntimeError):
    """The database is not at the revision this code needs."""


def alembic_config() -> Config:
    config = Config(str(MIGRATIONS_DIR / "alembic.ini"))
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


@lru_cache(maxsize=1)
def _scripts() -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config())


def head_revision() -> str:
    return _scripts().get_current_head()


def current_revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


@contextmanager
def _migration_lock(engine: Engine):
    """Serialise migrations across processes: a lock file beside a SQLite database (its DDL is not
    transactional); on PostgreSQL an advisory lock taken inside the migration's transaction."""
    database = engine.url.database if engine.dialect.name == "sqlite" else None
    if not database or database == ":memory:":
        yield
        return
    with open(f"{database}.migrate-lock", "w") as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock_file, fcntl.LOCK_UN)


@contextmanager
def _migration_connection(engine: Engine):
    """A connection in a transaction for a migration. On SQLite, foreign keys are not enforced on it:
    SQLite alters a column by copying its table into a new one (Alembic's batch mode), which fails
    while other tables' foreign keys point at it (``databank.core`` turns enforcement on for every
    connection; the pragma only takes effect outside a transaction, as SQLite's manual says)."""
    with engine.connect() as connection:
        sqlite = connection.dialect.name == "sqlite"
        if sqlite:
            connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
            connection.commit()
        try:
            with connection.begin():
                yield connection
        finally:
            if sqlite:
                connection.exec_driver_sql("PRAGMA foreign_keys=ON")
                connection.commit()


def upgrade_schema(engine: Engine, target: str = "head") -> str:
    """Migrate the database of ``engine`` to ``target``; returns the revision it ends at."""
    scripts = _scripts()
    with _migration_lock(engine), _migration_connection(engine) as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_ID})
        current = current_revision(connection)
        if current is None and inspect(connection).has_table("users"):
            # A bank made by db.create_all() before migrations existed: its tables are the baseline.
            MigrationContext.configure(connection).stamp(scripts, BASELINE_REVISION)
        if current_revision(connection) == scripts.get_revision(target).revision:
            return current_revision(connection)

        def upgrade(revision, _context):
            return scripts._upgrade_revs(target, revision)

        with EnvironmentContext(alembic_config(), scripts, fn=upgrade, destination_rev=target) as environment:
            environment.configure(connection=connection)
            with environment.begin_transaction():
                environment.run_migrations()
        return current_revision(connection)


def check_schema(engine: Engine) -> str:
    """The database's revision; ``SchemaOutOfDate`` (with the fix) unless it is the newest one."""
    with engine.connect() as connection:
        current = current_revision(connection)
    head = head_revision()
    if current != head:
        raise SchemaOutOfDate(
            f"The database schema is at revision {current or '(none: empty or created before migrations)'}, "
            f"this version of nano-org needs {head}. Run `nanoorg migrate` once (gunicorn's master "
            f"process also does it at start), then start the workers again.")
    return current
