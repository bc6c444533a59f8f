"""phone linking: guardians' mobile numbers in E.164, and the contacts families share

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03 04:53:13.531443
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

from bot.services.accounts import normalise_phone

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BACKFILL_CHUNK = 2000


def upgrade() -> None:
    op.create_table(
        "phone_check",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("telegram_user_id", sa.BigInteger(), nullable=False),
        sa.Column("phone_e164", sa.String(length=16), nullable=True),
        sa.Column("outcome", sa.String(length=20), nullable=False),
        sa.Column("offered_guardian_ids", sa.JSON(), nullable=False),
        sa.Column("chosen_guardian_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["chosen_guardian_id"],
            ["guardian.id"],
            name=op.f("fk_phone_check_chosen_guardian_id_guardian"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_phone_check")),
    )
    with op.batch_alter_table("phone_check", schema=None) as batch_op:
        batch_op.create_index(
            "ix_phone_check_user_created", ["telegram_user_id", "created_at"], unique=False
        )

    with op.batch_alter_table("guardian", schema=None) as batch_op:
        batch_op.add_column(sa.Column("mobile_e164", sa.String(length=16), nullable=True))
        batch_op.create_index(batch_op.f("ix_guardian_mobile_e164"), ["mobile_e164"], unique=False)

    _backfill_mobiles()


def _backfill_mobiles() -> None:
    """Guardians imported before this revision: their stored « Téléphone portable » in E.164."""
    guardian = sa.table(
        "guardian",
        sa.column("id", sa.Integer()),
        sa.column("phone_mobile", sa.String()),
        sa.column("mobile_e164", sa.String(length=16)),
    )
    connection = op.get_bind()
    rows = connection.execute(
        sa.select(guardian.c.id, guardian.c.phone_mobile).where(
            guardian.c.phone_mobile.is_not(None)
        )
    ).all()
    values = [
        {"guardian_id": row.id, "mobile": mobile}
        for row in rows
        if (mobile := normalise_phone(row.phone_mobile)) is not None
    ]
    statement = (
        guardian.update()
        .where(guardian.c.id == sa.bindparam("guardian_id"))
        .values(mobile_e164=sa.bindparam("mobile"))
    )
    for start in range(0, len(values), _BACKFILL_CHUNK):
        connection.execute(statement, values[start : start + _BACKFILL_CHUNK])


def downgrade() -> None:
    with op.batch_alter_table("guardian", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_guardian_mobile_e164"))
        batch_op.drop_column("mobile_e164")

    with op.batch_alter_table("phone_check", schema=None) as batch_op:
        batch_op.drop_index("ix_phone_check_user_created")

    op.drop_table("phone_check")
