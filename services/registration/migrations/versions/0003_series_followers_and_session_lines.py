"""series: who follows an event, sessions waited for and sessions cancelled

A registration made without choosing sessions follows the event: sessions
added later become theirs. Registrations stored before this revision chose
nothing in that sense and do not follow; their attendee can still add a new
session from the link in its announcement.

Revision ID: 0003
Revises: 0002
"""
from alembic import op
import sqlalchemy as sa

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("registrations") as table:
        table.add_column(sa.Column("sessions_waiting", sa.JSON, nullable=False,
                                   server_default=sa.text("'[]'")))
        table.add_column(sa.Column("sessions_cancelled", sa.JSON, nullable=False,
                                   server_default=sa.text("'[]'")))
        table.add_column(sa.Column("follows", sa.Boolean, nullable=False,
                                   server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table("registrations") as table:
        table.drop_column("follows")
        table.drop_column("sessions_cancelled")
        table.drop_column("sessions_waiting")
