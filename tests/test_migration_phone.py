"""Migration 0004 fills the new `guardian.mobile_e164` from the mobile numbers already imported,
and goes back down cleanly, on SQLite (batch mode) and PostgreSQL."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import Engine, inspect, text

from bot.db import alembic_config, make_engine
from tests.postgres import PostgresServer

_databases = itertools.count()


def _migrate(engine: Engine, revision: str, *, down: bool = False) -> None:
    config = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        (command.downgrade if down else command.upgrade)(config, revision)


@pytest.mark.parametrize(
    "dialect", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def test_the_upgrade_backfills_mobiles_in_e164(
    dialect: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if dialect == "sqlite":
        url = f"sqlite:///{tmp_path / 'migration.db'}"
    else:
        server: PostgresServer = request.getfixturevalue("postgres_server")
        url = server.create_database(f"test_migration_phone_{next(_databases)}")
    engine = make_engine(url)
    try:
        _migrate(engine, "0003")
        with engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO school (id, uai, name, created_at, letter_retention_hours) "
                    "VALUES (1, '0751234X', 'École', '2026-09-01 00:00:00', 24)"
                )
            )
            for guardian_id, mobile in enumerate(
                ["06 12 34 56 78", "0033781234567", "12", None], start=1
            ):
                connection.execute(
                    text(
                        "INSERT INTO guardian (id, school_id, last_name, first_name, phone_mobile,"
                        " created_at, updated_at) VALUES (:id, 1, 'D', 'M', :mobile,"
                        " '2026-09-01 00:00:00', '2026-09-01 00:00:00')"
                    ),
                    {"id": guardian_id, "mobile": mobile},
                )
        _migrate(engine, "0004")
        with engine.connect() as connection:
            rows = connection.execute(
                text("SELECT id, mobile_e164 FROM guardian ORDER BY id")
            ).all()
        assert [tuple(row) for row in rows] == [
            (1, "+33612345678"),
            (2, "+33781234567"),
            (3, None),
            (4, None),
        ]
        assert "phone_check" in inspect(engine).get_table_names()

        _migrate(engine, "0003", down=True)
        inspector = inspect(engine)
        assert "phone_check" not in inspector.get_table_names()
        assert "mobile_e164" not in {c["name"] for c in inspector.get_columns("guardian")}
    finally:
        engine.dispose()
