"""outbox rows name the registration they are about (shared.outbox)

Revision ID: 0003
Revises: 0002
"""
import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("outbox") as table:
        table.add_column(sa.Column("registration_id", sa.String(32)))
        table.create_index("ix_outbox_registration", ["registration_id"])


def downgrade() -> None:
    with op.batch_alter_table("outbox") as table:
        table.drop_index("ix_outbox_registration")
        table.drop_column("registration_id")
