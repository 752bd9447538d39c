"""The contact form's sender address, for its rate limit (``databank.contact``).

Revision ID: 0004_contact_rate_limit
Revises: 0003_contact_messages
"""

import sqlalchemy as sa
from alembic import op

revision = "0004_contact_rate_limit"
down_revision = "0003_contact_messages"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("contact_messages") as table:
        table.add_column(sa.Column("client", sa.String(length=128), nullable=True))
        table.create_index("ix_contact_messages_client", ["client"])
        table.create_index("ix_contact_messages_created_at", ["created_at"])


def downgrade() -> None:
    with op.batch_alter_table("contact_messages") as table:
        table.drop_index("ix_contact_messages_created_at")
        table.drop_index("ix_contact_messages_client")
        table.drop_column("client")
