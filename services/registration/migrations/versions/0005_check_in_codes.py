"""check-in: each registration's code for the door, and when the door read it

Registrations stored before this revision get their code here, so that every
confirmation from now on can carry one; none of them has been checked in.

Revision ID: 0005
Revises: 0004
"""
import sqlalchemy as sa
from alembic import op

from shared.check_in import new_code

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("registrations") as table:
        table.add_column(sa.Column("check_in_code", sa.String(10)))
        table.add_column(sa.Column("checked_in_at", sa.DateTime(timezone=True)))
    rows = sa.table("registrations", sa.column("id", sa.String(32)),
                    sa.column("check_in_code", sa.String(10)))
    connection = op.get_bind()
    ids = connection.execute(sa.select(rows.c.id)).scalars().all()
    if ids:
        connection.execute(rows.update().where(rows.c.id == sa.bindparam("row_id"))
                           .values(check_in_code=sa.bindparam("code")),
                           [{"row_id": row_id, "code": new_code()} for row_id in ids])
    with op.batch_alter_table("registrations") as table:
        table.alter_column("check_in_code", existing_type=sa.String(10), nullable=False)
        table.create_index("uq_registrations_check_in_code", ["event_slug", "check_in_code"],
                           unique=True)


def downgrade() -> None:
    with op.batch_alter_table("registrations") as table:
        table.drop_index("uq_registrations_check_in_code")
        table.drop_column("checked_in_at")
        table.drop_column("check_in_code")
