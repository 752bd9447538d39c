"""Schema migrations (databank/schema.py, databank/migrations): the first revision equals the models,
a bank made before migrations existed is upgraded with its data, workers only check, and concurrent
starts do not race."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine

from config import load_settings
from databank.core import make_data_app
from databank.models import Dataset, User, db
from databank.schema import SchemaOutOfDate, check_schema, head_revision, upgrade_schema

LEGACY_DDL = Path(__file__).parent / "fixtures" / "schema_before_migrations.sql"


def _differences(engine) -> list:
    with engine.connect() as connection:
        return compare_metadata(MigrationContext.configure(connection), db.metadata)


def test_migrations_create_exactly_the_models_schema(app):
    """On the suite's database (SQLite, or PostgreSQL with NANOORG_TEST_DATABASE_URL)."""
    assert check_schema(db.engine) == head_revision()
    assert _differences(db.engine) == []


def test_bank_created_before_migrations_is_upgraded_with_its_data(tmp_path):
    instance = tmp_path / "instance"
    instance.mkdir()
    legacy = sqlite3.connect(instance / "nanoorg.sqlite")
    legacy.executescript(LEGACY_DDL.read_text())
    legacy.execute("INSERT INTO users (id, username, email, password_hash, created_at, failed_logins) "
                   "VALUES (1, 'alice', 'alice@example.org', 'hash', '2026-01-01 00:00:00', 0)")
    legacy.execute("INSERT INTO datasets (id, owner_id, visibility, storage_key, is_simulated, created_at, updated_at, "
                   "n_files, n_locs, n_tiles, density, title, modality, software, drift_correction, blink_correction) "
                   "VALUES (7, 1, 'private', 'k7', 0, '2026-01-01 00:00:00', '2026-01-01 00:00:00', 1, 12345, 4, 31.5, "
                   "'Old EGFR', 'dSTORM', 'SMAP', 1, 0)")
    legacy.execute("INSERT INTO bank_state (id, version) VALUES (1, 42)")
    legacy.commit()
    legacy.close()

    app = make_data_app(load_settings(instance_dir=instance, seed_demo=False, secret_key="s"))
    with app.app_context():
        assert check_schema(db.engine) == head_revision()
        assert _differences(db.engine) == []
        dataset = db.session.get(Dataset, 7)
        assert (dataset.title, dataset.owner.username, dataset.n_locs, dataset.density) == ("Old EGFR", "alice", 12345, 31.5)
        assert dataset.drift_correction is True and dataset.blink_correction is False
        assert db.session.get(User, 1).email == "alice@example.org"
        from databank.models import bank_version
        assert bank_version() == 42
        db.engine.dispose()


def test_workers_only_check_and_say_how_to_migrate(tmp_path):
    settings = load_settings(instance_dir=tmp_path / "instance", seed_demo=False, secret_key="s")
    from flask import Flask
    from databank.core import init_databank

    with pytest.raises(SchemaOutOfDate, match="nanoorg migrate"):
        init_databank(Flask("worker"), settings, migrate=False)


def test_concurrent_upgrades_of_an_empty_database_do_not_race(tmp_path):
    url = f"sqlite:///{tmp_path / 'bank.sqlite'}"
    engines = [create_engine(url) for _ in range(4)]
    results, errors = [], []

    def start(engine):
        try:
            results.append(upgrade_schema(engine))
        except Exception as exc:  # collected: the assertion below names it
            errors.append(exc)

    threads = [threading.Thread(target=start, args=(engine,)) for engine in engines]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and results == [head_revision()] * 4
    assert _differences(engines[0]) == []
    for engine in engines:
        engine.dispose()
