"""Shared fixtures: a clean database per test, on SQLite and on a real PostgreSQL."""

from __future__ import annotations

import gc
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from argon2 import PasswordHasher, Type
from sqlalchemy import Engine
from sqlmodel import Session

from bot.db import make_engine, upgrade_schema
from bot.services.accounts import login, passwords
from tests.postgres import PostgresServer

# The demo school's two ONDE extractions, written by the generator (tests/test_bench_generator.py
# checks they are still exactly what it writes).
SAMPLES = Path(__file__).resolve().parent / "data" / "onde"


def pytest_configure(config: pytest.Config) -> None:
    # A test process holds ≈ 500,000 long-lived objects (every module, SQLAlchemy's and
    # pydantic's classes, the collected tests) and makes many short-lived ones: at Python's
    # default thresholds its garbage collector walked the whole heap again and again, ≈ 15 % of
    # the suite's CPU. Young collections come 10× less often here; see also the freeze below.
    gc.set_threshold(10_000, 10, 10)


def pytest_collection_finish(session: pytest.Session) -> None:
    # What collection made lives until the process ends: no collection needs to walk it again.
    gc.freeze()


# argon2id costs ≈ 35 ms a provisional password and ≈ 125 ms a chosen one, on purpose; the suite
# hashes and verifies thousands (≈ 4 minutes of its time). The test processes use argon2id at
# its lowest cost instead, one parameter set per kind so that a password hashed as the wrong
# kind still shows. The parameters themselves are tested where a test is marked
# `production_argon2`, and the end-to-end tests' bot and portal processes use them throughout.
PRODUCTION_HASHERS = (passwords.PROVISIONAL_HASHER, passwords.CHOSEN_HASHER)
TEST_HASHERS = (
    PasswordHasher(time_cost=1, memory_cost=64, parallelism=1, type=Type.ID),
    PasswordHasher(time_cost=1, memory_cost=128, parallelism=2, type=Type.ID),
)


def _use_hashers(monkeypatch: pytest.MonkeyPatch, hashers: tuple[PasswordHasher, ...]) -> None:
    provisional, chosen = hashers
    monkeypatch.setattr(passwords, "PROVISIONAL_HASHER", provisional)
    monkeypatch.setattr(passwords, "CHOSEN_HASHER", chosen)
    login._decoy_hash.cache_clear()  # made at the other parameters


@pytest.fixture(scope="session", autouse=True)
def _cheap_argon2() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as monkeypatch:
        _use_hashers(monkeypatch, TEST_HASHERS)
        yield
    login._decoy_hash.cache_clear()


@pytest.fixture(autouse=True)
def _production_argon2(request: pytest.FixtureRequest) -> Iterator[None]:
    if request.node.get_closest_marker("production_argon2") is None:
        yield
        return
    with pytest.MonkeyPatch.context() as monkeypatch:
        _use_hashers(monkeypatch, PRODUCTION_HASHERS)
        yield
    login._decoy_hash.cache_clear()


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


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated, empty SQLite file, made once: each test gets a copy (migrating takes 100 ms
    a database, copying a fraction of one)."""
    path = tmp_path_factory.mktemp("template") / "educonnect.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade_schema(engine)
    engine.dispose()
    return path


@pytest.fixture(scope="session")
def postgres_template(postgres_server: PostgresServer) -> str:
    """A migrated, empty PostgreSQL database per test worker, which each test's database
    copies."""
    name = f"template_{os.environ.get('PYTEST_XDIST_WORKER', 'main')}"
    engine = make_engine(postgres_server.create_database(name))
    upgrade_schema(engine)
    engine.dispose()
    return name


def _sqlite_copy(template: Path, tmp_path: Path) -> str:
    target = tmp_path / "educonnect.db"
    shutil.copyfile(template, target)
    return f"sqlite:///{target}"


@pytest.fixture(scope="session")
def postgres_database(postgres_server: PostgresServer, postgres_template: str) -> str:
    """The test worker's own PostgreSQL database, a copy of the template, emptied before each
    test that uses it."""
    name = f"test_{os.environ.get('PYTEST_XDIST_WORKER', 'main')}"
    postgres_server.create_database(name, template=postgres_template)
    return name


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A migrated, empty database's URL: a SQLite file, then the worker's PostgreSQL database
    emptied (no connection left, no row, sequences restarted). Every test that touches a
    database runs on both."""
    if request.param == "sqlite":
        return _sqlite_copy(request.getfixturevalue("sqlite_template"), tmp_path)
    server: PostgresServer = request.getfixturevalue("postgres_server")
    name: str = request.getfixturevalue("postgres_database")
    server.empty_database(name)
    return server.url(name)


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    """An engine on `database_url` (SQLite, then PostgreSQL)."""
    engine = make_engine(database_url)
    # A no-op on the copy of a migrated template (and what a real start does).
    upgrade_schema(engine)
    try:
        yield engine
    finally:
        engine.dispose()


@pytest.fixture
def sqlite_engine(tmp_path: Path, sqlite_template: Path) -> Iterator[Engine]:
    """A migrated, empty SQLite database, for unit tests that need no PostgreSQL twin."""
    engine = make_engine(_sqlite_copy(sqlite_template, tmp_path))
    try:
        yield engine
    finally:
        engine.dispose()


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    """A session on a clean database (SQLite, then PostgreSQL)."""
    with Session(engine, expire_on_commit=False) as session:
        yield session


@pytest.fixture(scope="session")
def samples_dir() -> Path:
    """The folder of the demo school's realistic ONDE extractions (eleves.csv, responsables.csv)."""
    return SAMPLES
