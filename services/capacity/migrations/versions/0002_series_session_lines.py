"""series: followers, arrival order, cancelled sessions and each session's line

Reservations decided before this revision keep arrival 0 (they came first)
and do not follow: nobody is enrolled in a session they did not ask for.

Revision ID: 0002
Revises: 0001
"""
from alembic import op
import sqlalchemy as sa

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("reservations") as table:
        table.add_column(sa.Column("arrival_seq", sa.Integer, nullable=False, server_default="0"))
        table.add_column(sa.Column("follows", sa.Boolean, nullable=False, server_default=sa.false()))
    with op.batch_alter_table("seat_pools") as table:
        table.add_column(sa.Column("cancelled", sa.Boolean, nullable=False,
                                   server_default=sa.false()))
    op.create_table(
        "session_waits",
        sa.Column("registration_id", sa.String(32), primary_key=True),
        sa.Column("session", sa.String(80), primary_key=True),
        sa.Column("event_slug", sa.String(80), nullable=False),
        sa.Column("queue_seq", sa.Integer, nullable=False),
    )
    op.create_index("ix_session_waits_line", "session_waits", ["event_slug", "session", "queue_seq"])


def downgrade() -> None:
    op.drop_index("ix_session_waits_line", table_name="session_waits")
    op.drop_table("session_waits")
    with op.batch_alter_table("seat_pools") as table:
        table.drop_column("cancelled")
    with op.batch_alter_table("reservations") as table:
        table.drop_column("follows")
        table.drop_column("arrival_seq")
