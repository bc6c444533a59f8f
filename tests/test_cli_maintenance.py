"""`educonnect-bot purge`, `backup` and `restore`, as the operator runs them: a dry run changes
nothing, the purge deletes what its plan said and refuses to run unattended without --yes, a
backup taken while a writer writes is a consistent database, a restore brings a backup back
(keeping the database it replaces) and refuses a file that is not one of ours."""

from __future__ import annotations

import io
import sqlite3
import stat
import sys
import threading
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest
import typer
from alembic import command
from sqlalchemy import Engine, func, select
from sqlmodel import Session, col

from bot.db import alembic_config, make_engine
from bot.services.retention import known_revisions
from models import Account, AuditEvent, Guardian, Pupil, PupilGuardian, School, utcnow
from tests.services.test_retention import build_families
from tests.test_cli import Cli


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli(tmp_path)


@pytest.fixture
def database(cli: Cli, sqlite_template: Path) -> Iterator[Engine]:
    """The CLI's SQLite database, migrated (a copy of the tests' template)."""
    cli.data_dir.mkdir(mode=0o700)
    path = cli.data_dir / "educonnect.db"
    path.write_bytes(sqlite_template.read_bytes())
    engine = make_engine(f"sqlite:///{path}")
    yield engine
    engine.dispose()


def _counts(engine: Engine) -> dict[str, int]:
    with Session(engine) as session:
        return {
            model.__name__: session.execute(select(func.count()).select_from(model)).scalar_one()
            for model in (School, Pupil, Guardian, Account, PupilGuardian, AuditEvent)
        }


def test_purge_dry_run_changes_nothing_then_the_purge_deletes_what_it_showed(
    cli: Cli, database: Engine
) -> None:
    with Session(database, expire_on_commit=False) as session:
        build_families(session, now=utcnow())
    before = _counts(database)

    plan = cli.json("purge", "--dry-run")
    assert "Simulation : rien n'a été modifié." in cli.ok("purge", "--dry-run")
    unattended = cli.run("purge")  # no terminal, no --yes: cron must say it

    assert _counts(database) == before
    assert plan["done"] is False and plan["retention_days"] == 365
    assert (plan["counts"]["pupils"], plan["counts"]["guardians"]) == (2, 1)
    assert plan["schools"] == [
        {
            "uai": "0751234X",
            "name": "École Jules Ferry",
            "pupils": 2,
            "guardians": 1,
            "help_requests": 1,
        }
    ]
    assert unattended.returncode == 1 and "--yes" in unattended.stderr

    done = cli.json("purge", "--yes")

    assert done["done"] is True and done["counts"] == plan["counts"]
    after = _counts(database)
    assert after["Pupil"] == before["Pupil"] - 2
    assert after["Guardian"] == before["Guardian"] - 1
    assert after["Account"] == before["Account"] - 1
    # Audit events are kept (plus the purge's own: one for the school, one overall).
    assert after["AuditEvent"] == before["AuditEvent"] + 2
    with Session(database) as session:
        by_operator = select(col(AuditEvent.action)).where(col(AuditEvent.actor).like("cli:%"))
        actions = set(session.execute(by_operator).scalars())
    assert actions == {"retention.purged"}
    assert cli.json("purge", "--dry-run")["counts"]["pupils"] == 0


def test_purge_refuses_a_retention_shorter_than_30_days(cli: Cli, database: Engine) -> None:
    refused = cli.run("purge", "--older-than", "7", "--dry-run")

    assert refused.returncode == 1
    assert "30" in refused.stderr and "7" in refused.stderr


def test_backup_taken_while_a_writer_writes_is_a_consistent_private_copy(
    cli: Cli, database: Engine, tmp_path: Path
) -> None:
    live = cli.data_dir / "educonnect.db"
    stop = threading.Event()
    written: list[int] = []

    def writer() -> None:
        with closing(sqlite3.connect(live, timeout=10)) as db:
            while not stop.is_set():
                db.execute(
                    "INSERT INTO auditevent (at, actor, action, details) "
                    "VALUES (CURRENT_TIMESTAMP, 'writer', 'tick', '{}')"
                )
                db.commit()
                written.append(1)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        while len(written) < 50:  # the writer is well under way
            stop.wait(0.01)
        saved = cli.json("backup", tmp_path / "backup.db")
        at_backup = len(written)
    finally:
        stop.set()
        thread.join()

    backup = Path(saved["file"])
    assert stat.S_IMODE(backup.stat().st_mode) == 0o600
    assert saved["revision"] == known_revisions()[-1]
    with closing(sqlite3.connect(backup)) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        ticks = db.execute("SELECT count(*) FROM auditevent WHERE action = 'tick'").fetchone()[0]
    assert 50 <= ticks <= len(written) and ticks <= at_backup + 1
    assert not list(tmp_path.glob("*.partial"))
    # A backup never overwrites a file.
    again = cli.run("backup", backup)
    assert again.returncode == 1 and str(backup) in again.stderr


def test_restore_brings_a_backup_back_and_keeps_the_database_it_replaces(
    cli: Cli, database: Engine, tmp_path: Path
) -> None:
    cli.ok("school", "add", "0751234X", "École Jules Ferry")
    cli.ok("backup", tmp_path / "monday.db")
    cli.ok("school", "add", "0759999Z", "École Victor Hugo")

    restored = cli.json("restore", tmp_path / "monday.db", "--yes")

    assert [s["uai"] for s in cli.json("school", "list")] == ["0751234X"]
    previous = Path(restored["previous_database"])
    assert previous.name.startswith("educonnect.db.before-restore-")
    with closing(sqlite3.connect(previous)) as db:
        assert db.execute("SELECT count(*) FROM school").fetchone() == (2,)


def test_restore_upgrades_a_backup_of_an_older_version(cli: Cli, tmp_path: Path) -> None:
    old = tmp_path / "old.db"
    engine = make_engine(f"sqlite:///{old}")
    config = alembic_config(f"sqlite:///{old}")
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, known_revisions()[-2])
    engine.dispose()

    restored = cli.json("restore", old, "--yes")

    assert restored["revision"] == known_revisions()[-2]
    assert restored["previous_database"] is None  # there was none
    current = cli.json("db", "upgrade")
    assert current["revision"] == known_revisions()[-1]


def test_restore_refuses_what_is_not_an_educonnect_database(
    cli: Cli, database: Engine, tmp_path: Path
) -> None:
    cli.ok("school", "add", "0751234X", "École Jules Ferry")
    garbage = tmp_path / "notes.txt"
    garbage.write_text("not a database\n" * 100)
    foreign = tmp_path / "other.db"
    with closing(sqlite3.connect(foreign)) as db:
        db.execute("CREATE TABLE things (id INTEGER)")
    truncated = tmp_path / "truncated.db"
    cli.ok("backup", tmp_path / "full.db")
    truncated.write_bytes((tmp_path / "full.db").read_bytes()[:5000])

    for path in (garbage, foreign, truncated, tmp_path / "missing.db"):
        refused = cli.run("restore", path, "--yes")
        assert refused.returncode == 1, path
        assert str(path) in refused.stderr and "Traceback" not in refused.stderr

    assert [s["uai"] for s in cli.json("school", "list")] == ["0751234X"]
    assert not list(cli.data_dir.glob("*.before-restore-*"))


def test_backup_and_restore_on_postgresql_give_the_pg_dump_and_pg_restore_commands(
    tmp_path: Path,
) -> None:
    cli = Cli(tmp_path, DATABASE_URL="postgresql+psycopg://edu:s3cret@db.example:5433/educonnect")

    backup = cli.run("backup", tmp_path / "dump")
    restore = cli.run("restore", tmp_path / "dump", "--yes")

    assert backup.returncode == restore.returncode == 1
    assert "pg_dump --format=custom" in backup.stderr
    assert "pg_restore --clean" in restore.stderr
    for result in (backup, restore):
        assert "postgresql://edu@db.example:5433/educonnect" in result.stderr
        assert "s3cret" not in result.stderr


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_purge_on_a_terminal_asks_and_a_no_deletes_nothing(
    cli: Cli, database: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    with Session(database, expire_on_commit=False) as session:
        build_families(session, now=utcnow())
    before = _counts(database)
    questions: list[str] = []
    monkeypatch.setattr(sys, "stdin", _Terminal())

    def say_no(text: str, **_: object) -> bool:
        questions.append(text)
        return False

    monkeypatch.setattr(typer, "confirm", say_no)

    declined = cli.run("purge")

    assert declined.returncode == 1
    assert questions and "18" in questions[0]  # every row of the plan, counted
    assert _counts(database) == before
