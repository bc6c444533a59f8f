"""Database engine, sessions and schema upgrades, for every entry point (CLI, bot, tests)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlmodel import Session

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets the bot read while an import writes; foreign keys are off by default in SQLite.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _make_sqlite_file_private(url: str) -> None:
    database = make_url(url).database
    if not database or database == ":memory:":
        return
    path = Path(database)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        # Create it ourselves so it is never readable by others, even for an instant.
        fd = os.open(path, os.O_CREAT | os.O_WRONLY, 0o600)
        os.close(fd)
    os.chmod(path, 0o600)


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for `url`, with SQLite tuned for a bot and its private database file.

    Its errors never show the statement's parameters (`hide_parameters`): they hold families'
    addresses and password hashes, and errors end up in the log.
    """
    kwargs.setdefault("hide_parameters", True)
    if url.startswith("sqlite"):
        _make_sqlite_file_private(url)
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 10}, **kwargs
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    # JIT compilation pays off for queries of minutes; ours take milliseconds to a second, and
    # compiling the digests' aggregate alone cost 0.3–0.5 s of its run (bench/RESULTS.md).
    connect_args = {"options": "-c jit=off"} if url.startswith("postgresql") else {}
    return create_engine(url, pool_pre_ping=True, connect_args=connect_args, **kwargs)


def lock_for_writing(session: Session) -> None:
    """Make the guards this transaction checks next hold until it commits.

    PostgreSQL: the rows read `FOR UPDATE` are locked; nothing to do here. SQLite has no row
    locks, and pysqlite opens a transaction only at the first write, so rows read before it
    may have changed by the time they are written (two directors printing the same letters at
    once would both pass the guards). Here a write that changes nothing takes the database's
    write lock now — waiting, up to `busy_timeout`, for another writer to finish — and what
    the transaction reads next is current until it commits.
    """
    if session.get_bind().dialect.name == "sqlite":
        session.execute(text("UPDATE school SET id = id WHERE 0"))


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """A session that commits on success and rolls everything back on any error."""
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


def alembic_config(url: str) -> Config:
    """Alembic's configuration for this project, pointed at `url`."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade_schema(engine: Engine) -> None:
    """Bring the schema to the newest migration (idempotent)."""
    config = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
