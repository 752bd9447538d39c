"""The database the data-layer and web suites run on.

Default: a fresh SQLite file in each test's instance folder. With ``NANOORG_TEST_DATABASE_URL`` set
(a PostgreSQL URL, ``postgresql+psycopg://...``), the same tests run on that database instead,
emptied first (every table dropped, then the migrations run again): the way to check that nothing
works on SQLite only. tests/scaleout does this for the security tests.
"""

from __future__ import annotations

import os

TEST_DATABASE_ENV = "NANOORG_TEST_DATABASE_URL"


def service_database_url() -> str | None:
    """The PostgreSQL URL the suites should use instead of SQLite, or None."""
    return os.environ.get(TEST_DATABASE_ENV) or None


def empty_database(url: str) -> None:
    """Drop every table of the database at ``url`` (its ``public`` schema)."""
    from sqlalchemy import create_engine

    engine = create_engine(url)
    try:
        with engine.begin() as connection:
            connection.exec_driver_sql("DROP SCHEMA public CASCADE")
            connection.exec_driver_sql("CREATE SCHEMA public")
    finally:
        engine.dispose()


def database_overrides() -> dict:
    """``load_settings`` overrides for a test app: the emptied service database, or nothing (SQLite)."""
    url = service_database_url()
    if url is None:
        return {}
    empty_database(url)
    return {"database_url": url}
