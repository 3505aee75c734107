"""an index of the registrations still being decided

The "received" notice is now sent by the registration service for
registrations still pending after RECEIVED_NOTICE_SECONDS; it looks them up
by age every few seconds.

Revision ID: 0002
Revises: 0001
"""
from alembic import op
import sqlalchemy as sa

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

PENDING = sa.text("status = 'pending'")


def upgrade() -> None:
    op.create_index("ix_registrations_pending", "registrations", ["created_at"],
                    sqlite_where=PENDING, postgresql_where=PENDING)


def downgrade() -> None:
    op.drop_index("ix_registrations_pending", table_name="registrations")
