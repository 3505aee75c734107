"""the "received" notice is no longer scheduled here

The registration service now announces a registration as pending when its
decision takes longer than RECEIVED_NOTICE_SECONDS, and that announcement
sends the notice at once. Notices scheduled before the upgrade are dropped:
the registration service announces those registrations itself.

Revision ID: 0004
Revises: 0003
"""
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("UPDATE scheduled_messages SET state = 'cancelled' "
               "WHERE kind = 'received' AND state = 'pending'")


def downgrade() -> None:
    pass
