"""organisations own events; their API keys; the audit trail; erasure

Events stored before this revision belong to the organisation "default"
("Events created before organisations"), made here; the installation key
(ADMIN_API_KEY) sees them as before, and can make keys of that organisation.

Revision ID: 0004
Revises: 0003
"""
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    organisations = op.create_table(
        "organisations",
        sa.Column("slug", sa.String(80), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.bulk_insert(organisations, [{"slug": "default", "name": "Events created before organisations",
                                    "created_at": datetime.now(UTC)}])
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("organisation_slug", sa.String(80), nullable=False, index=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("scopes", sa.JSON, nullable=False),
        sa.Column("events", sa.JSON),
        sa.Column("secret_hash", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True)),
    )
    op.create_table(
        "audit_trail",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("key_id", sa.String(32), nullable=False),
        sa.Column("key_name", sa.String(200), nullable=False),
        sa.Column("organisation_slug", sa.String(80), index=True),
        sa.Column("event_slug", sa.String(80), index=True),
        sa.Column("action", sa.String(40), nullable=False),
        sa.Column("details", sa.JSON, nullable=False),
    )
    with op.batch_alter_table("events") as table:
        table.add_column(sa.Column("organisation_slug", sa.String(80), nullable=False,
                                   server_default="default"))
        table.create_index("ix_events_organisation_slug", ["organisation_slug"])
    with op.batch_alter_table("registrations") as table:
        table.add_column(sa.Column("erased_at", sa.DateTime(timezone=True)))
        table.create_index("ix_registrations_list", ["event_slug", "created_at", "id"])
    # Messages written from now on name their registration (shared.outbox);
    # older ones are found by reading their bodies, as an event's are.
    with op.batch_alter_table("outbox") as table:
        table.add_column(sa.Column("registration_id", sa.String(32)))
        table.create_index("ix_outbox_registration", ["registration_id"])


def downgrade() -> None:
    with op.batch_alter_table("outbox") as table:
        table.drop_index("ix_outbox_registration")
        table.drop_column("registration_id")
    with op.batch_alter_table("registrations") as table:
        table.drop_index("ix_registrations_list")
        table.drop_column("erased_at")
    with op.batch_alter_table("events") as table:
        table.drop_index("ix_events_organisation_slug")
        table.drop_column("organisation_slug")
    op.drop_table("audit_trail")
    op.drop_table("api_keys")
    op.drop_table("organisations")
