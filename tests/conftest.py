"""Shared fixtures: a clean database per test, on SQLite and on a real PostgreSQL."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlmodel import Session

from bot.db import make_engine, upgrade_schema
from tests.postgres import PostgresServer

SAMPLES = Path(__file__).resolve().parents[2] / "shared" / "samples" / "onde"
if not SAMPLES.exists():  # CI lays shared/ beside the clone, like a developer's checkout
    SAMPLES = Path(os.environ.get("EDUCONNECT_SAMPLES", "../shared/samples/onde")).resolve()

_database_counter = itertools.count()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One PostgreSQL server for the whole test session (skipped where PostgreSQL is absent)."""
    server = PostgresServer()
    reason = server.unavailable_reason
    if reason:
        pytest.skip(f"PostgreSQL tests skipped: {reason}")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """A migrated, empty database: a SQLite file, or a fresh database on the test PostgreSQL."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'educonnect.db'}"
    else:
        server: PostgresServer = request.getfixturevalue("postgres_server")
        worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
        url = server.create_database(f"test_{worker}_{next(_database_counter)}")
    engine = make_engine(url)
    upgrade_schema(engine)
    try:
        yield engine
    finally:
        engine.dispose()


@pytest.fixture
def sqlite_engine(tmp_path: Path) -> Iterator[Engine]:
    """A migrated, empty SQLite database, for unit tests that need no PostgreSQL twin."""
    engine = make_engine(f"sqlite:///{tmp_path / 'educonnect.db'}")
    upgrade_schema(engine)
    try:
        yield engine
    finally:
        engine.dispose()


@pytest.fixture
def session(sqlite_engine: Engine) -> Iterator[Session]:
    """A session on a clean SQLite database."""
    with Session(sqlite_engine, expire_on_commit=False) as session:
        yield session


@pytest.fixture(scope="session")
def samples_dir() -> Path:
    """The realistic ONDE extraction shipped in shared/samples."""
    if not (SAMPLES / "eleves.csv").exists():
        pytest.fail(f"the shared ONDE samples are missing at {SAMPLES}")
    return SAMPLES
