"""Messages sent with the contact form, kept for the administrators (``nanoorg messages``).

Revision ID: 0003_contact_messages
Revises: 0002_sessions_throttle_nena
"""

import sqlalchemy as sa
from alembic import op

revision = "0003_contact_messages"
down_revision = "0002_sessions_throttle_nena"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "contact_messages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("reply_to", sa.String(length=255), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
    )


def downgrade() -> None:
    op.drop_table("contact_messages")
