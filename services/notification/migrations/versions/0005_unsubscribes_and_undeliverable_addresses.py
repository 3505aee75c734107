"""attendees who unsubscribed from bulk mail, and addresses refused for good

Revision ID: 0005
Revises: 0004
"""
import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("attendees") as batch:
        batch.add_column(sa.Column("email_key", sa.String(320)))
        batch.add_column(sa.Column("unsubscribed_at", sa.DateTime(timezone=True)))
        batch.create_index("ix_attendees_email_key", ["email_key"])
    attendees = sa.table("attendees", sa.column("registration_id", sa.String),
                         sa.column("snapshot", sa.JSON), sa.column("email_key", sa.String))
    connection = op.get_bind()
    for registration_id, snapshot in connection.execute(
            sa.select(attendees.c.registration_id, attendees.c.snapshot)).all():
        connection.execute(attendees.update().where(attendees.c.registration_id == registration_id)
                           .values(email_key=snapshot["attendee"]["email"].lower()))
    op.create_table(
        "undeliverable_addresses",
        sa.Column("address_key", sa.String(320), primary_key=True),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("refused_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("undeliverable_addresses")
    with op.batch_alter_table("attendees") as batch:
        batch.drop_index("ix_attendees_email_key")
        batch.drop_column("unsubscribed_at")
        batch.drop_column("email_key")
