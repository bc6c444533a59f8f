"""Every foreign key of the schema as an invariant: no row points to a row that does not exist
(the databases enforce it, unless a file was restored or edited with the checks off)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ForeignKey, Select, exists, select

from bot.i18n import N_
from bot.services.integrity.invariant import Context, Invariant
from models import metadata


def _dangling(foreign_key: ForeignKey) -> Any:
    column = foreign_key.parent
    parent = foreign_key.column

    def query(_context: Context) -> Select[Any]:
        child = column.table
        # The child's own id when it has one, else the missing parent's id.
        listed = child.c.id if "id" in child.c else column
        return select(listed).where(column.is_not(None), ~exists().where(parent == column))

    return query


def _reference_invariants() -> tuple[Invariant, ...]:
    found = []
    for source in sorted(metadata.sorted_tables, key=lambda t: t.name):
        for foreign_key in sorted(source.foreign_keys, key=lambda fk: fk.parent.name):
            column = foreign_key.parent
            target = foreign_key.column.table.name
            found.append(
                Invariant(
                    code=f"reference.{source.name}.{column.name}",
                    subject=source.name if "id" in source.c else target,
                    description=N_(
                        "Rows of « {table} » whose « {column} » names a row of « {target} » "
                        "that does not exist."
                    ),
                    advice=N_(
                        "The database was changed outside the application (a restored or "
                        "edited file?): restore the latest backup, or tell the developers "
                        "before anything else."
                    ),
                    query=_dangling(foreign_key),
                    params={"table": source.name, "column": column.name, "target": target},
                )
            )
    return tuple(found)


INVARIANTS = _reference_invariants()
