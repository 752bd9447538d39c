"""Sessions that logout ends, an atomic login throttle, NeNA precision per file.

Revision ID: 0002_sessions_throttle_nena
Revises: 0001_initial
- users.session_generation: bumped by logout; a session signed for an older generation signs no one in.
- login_throttle: failed-login counts per user name (known or not) and per client address; replaces
  users.failed_logins / users.last_failed_at, which are dropped.
- data_files.precision_nena_nm: localisation precision by NeNA (nm), NULL where a file has no frames.
"""

import sqlalchemy as sa
from alembic import op

revision = "0002_sessions_throttle_nena"
down_revision = "0001_initial"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("session_generation", sa.Integer(), nullable=False, server_default="0"))
        batch.drop_column("failed_logins")
        batch.drop_column("last_failed_at")
    op.create_table(
        "login_throttle",
        sa.Column("key", sa.String(length=160), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("blocked_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("key"),
    )
    op.create_index(op.f("ix_login_throttle_last_attempt_at"), "login_throttle", ["last_attempt_at"])
    with op.batch_alter_table("data_files") as batch:
        batch.add_column(sa.Column("precision_nena_nm", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("data_files") as batch:
        batch.drop_column("precision_nena_nm")
    op.drop_index(op.f("ix_login_throttle_last_attempt_at"), table_name="login_throttle")
    op.drop_table("login_throttle")
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("last_failed_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("failed_logins", sa.Integer(), nullable=False, server_default="0"))
        batch.drop_column("session_generation")
