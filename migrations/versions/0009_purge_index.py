"""Phone checks indexed by the guardian chosen: the purge deletes guardians by the thousand,
and each deletion looked for its phone checks through the whole table.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03 13:45:58.543440
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("phone_check", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_phone_check_chosen_guardian_id"), ["chosen_guardian_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("phone_check", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_phone_check_chosen_guardian_id"))
