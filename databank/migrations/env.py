"""Alembic environment for the ``alembic`` command (new revisions); the database is ``DATABASE_URL``
(config.py). nano-org itself runs migrations through ``databank.schema.upgrade_schema``."""

from alembic import context
from sqlalchemy import create_engine

from config import load_settings
from databank.models import db

engine = create_engine(load_settings().database_url)
with engine.connect() as connection:
    context.configure(connection=connection, target_metadata=db.metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
