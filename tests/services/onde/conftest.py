"""Fixtures for the ONDE import: a school in one line, an import run the way the CLI runs it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import pytest
from sqlalchemy import Engine, select
from sqlmodel import Session

from bot.db import session_scope
from bot.services.roster.onde.importer import import_roster
from bot.services.roster.onde.report import ImportReport
from models import School, metadata

ImportRunner = Callable[..., ImportReport]


@pytest.fixture
def school_id(engine: Engine) -> int:
    """An empty school on the test database (SQLite, then PostgreSQL)."""
    with session_scope(engine) as session:
        school = School(uai="0751234X", name="École du Parc")
        session.add(school)
        session.flush()
        assert school.id is not None
        return school.id


@pytest.fixture
def run_import(engine: Engine, school_id: int) -> ImportRunner:
    """Import files into the school in one transaction, as the CLI does."""

    def run(
        files: Sequence[tuple[str, bytes]],
        *,
        dry_run: bool = False,
        now: datetime | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> ImportReport:
        with session_scope(engine) as session:
            return import_roster(
                session=session,
                school_id=school_id,
                files=files,
                actor="director:42",
                dry_run=dry_run,
                progress=progress,
                now=now,
            )

    return run


def snapshot(engine: Engine) -> dict[str, Any]:
    """Every row of every table, in primary-key order (plus SQLite's own dump)."""
    tables: dict[str, Any] = {}
    with engine.connect() as connection:
        for table in metadata.sorted_tables:
            order = list(table.primary_key.columns)
            tables[table.name] = [
                tuple(row) for row in connection.execute(select(table).order_by(*order))
            ]
    if engine.dialect.name == "sqlite":
        raw = engine.raw_connection()
        try:
            tables["__dump__"] = "\n".join(raw.driver_connection.iterdump())  # type: ignore[union-attr]
        finally:
            raw.close()
    return tables


def open_session(engine: Engine) -> Session:
    return Session(engine, expire_on_commit=False)
