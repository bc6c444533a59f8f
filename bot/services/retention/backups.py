"""Backing up and restoring a SQLite database with SQLite's online backup API: a consistent copy
while the bot writes, and a restore that checks the file is one of ours first.

PostgreSQL is backed up with its own tools (`pg_dump`, `pg_restore`): see docs/OPERATIONS.md.
"""

from __future__ import annotations

import os
import sqlite3
from contextlib import closing
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from alembic.script import ScriptDirectory

from bot.db import alembic_config
from bot.i18n import _
from bot.services.errors import ServiceError
from models import Account, AuditEvent, Guardian, Pupil, School

_HEADER = b"SQLite format 3\x00"
# Tables every EduConnect database has had since its first migration.
_CORE_TABLES = frozenset(
    str(model.__tablename__) for model in (School, Pupil, Guardian, Account, AuditEvent)
)
_BUSY_MS = 10_000


class BackupError(ServiceError):
    """A backup or restore refused, with what to do."""


@dataclass(frozen=True)
class DatabaseFile:
    """An EduConnect SQLite database file, checked: its schema revision and size."""

    path: Path
    revision: str
    size: int


def known_revisions() -> list[str]:
    """The schema revisions this version knows, oldest first (the last is the newest)."""
    scripts = ScriptDirectory.from_config(alembic_config("sqlite://"))
    return [script.revision for script in reversed(list(scripts.walk_revisions()))]


def backup_sqlite(database: Path, target: Path) -> DatabaseFile:
    """Copy the live database to `target` (a new file, readable by its owner only), safe while
    the bot and workers write: one read transaction copies a consistent state."""
    if not database.is_file():
        raise BackupError(_("there is no database to back up at {path}.").format(path=database))
    if target.exists():
        raise BackupError(
            _("{path} already exists: choose a new name (with the date, for example).").format(
                path=target
            )
        )
    if not target.parent.is_dir():
        raise BackupError(_("the folder {path} does not exist.").format(path=target.parent))
    partial = target.with_name(target.name + ".partial")
    try:
        _copy(database, partial)
        checked = inspect_database(partial)
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    return DatabaseFile(target, checked.revision, target.stat().st_size)


def _copy(source: Path, target: Path) -> None:
    """SQLite's online backup, all pages in one step (so a writer cannot make it restart)."""
    fd = os.open(target, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
    os.close(fd)
    with (
        closing(sqlite3.connect(f"{source.resolve().as_uri()}?mode=ro", uri=True)) as src,
        closing(sqlite3.connect(target)) as dst,
    ):
        src.execute(f"PRAGMA busy_timeout={_BUSY_MS}")
        src.backup(dst)
        # A single file, whatever the journal mode of the source.
        dst.execute("PRAGMA journal_mode=DELETE")


def inspect_database(path: Path) -> DatabaseFile:
    """Check `path` is an intact EduConnect database at a revision this version knows; raises
    `BackupError` saying what is wrong otherwise."""
    if not path.is_file():
        raise BackupError(_("{path} does not exist or is not a file.").format(path=path))
    with path.open("rb") as file:
        header = file.read(len(_HEADER))
    if header != _HEADER:
        raise BackupError(
            _("{path} is not a SQLite database: it cannot be an EduConnect backup.").format(
                path=path
            )
        )
    try:
        with closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)) as db:
            check = db.execute("PRAGMA quick_check").fetchone()
            tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
            revision = (
                db.execute("SELECT version_num FROM alembic_version").fetchone()
                if "alembic_version" in tables
                else None
            )
    except sqlite3.DatabaseError as error:
        raise BackupError(
            _("{path} is damaged and cannot be read ({reason}).").format(path=path, reason=error)
        ) from error
    if not check or check[0] != "ok":
        raise BackupError(
            _("{path} is damaged: SQLite's check says « {reason} ».").format(
                path=path, reason=check[0] if check else "?"
            )
        )
    if not tables >= _CORE_TABLES or not revision:
        raise BackupError(
            _("{path} is a SQLite database, but not an EduConnect one.").format(path=path)
        )
    if revision[0] not in known_revisions():
        raise BackupError(
            _(
                "{path} was made by a newer version of EduConnect (schema {revision}): "
                "install that version, or a newer one, to restore it."
            ).format(path=path, revision=revision[0])
        )
    return DatabaseFile(path, str(revision[0]), path.stat().st_size)


def restore_sqlite(
    database: Path, source: Path, *, now: datetime
) -> tuple[DatabaseFile, Path | None]:
    """Replace the live database's content with `source`, after checking it and keeping the
    current content as `<database>.before-restore-<time>`; returns the restored file and that
    copy (None when there was no database). The schema is upgraded by the caller."""
    restored = inspect_database(source)
    if source.resolve() == database.resolve():
        raise BackupError(_("{path} is the live database itself.").format(path=source))
    kept: Path | None = None
    if database.is_file():
        kept = database.with_name(f"{database.name}.before-restore-{now:%Y%m%dT%H%M%SZ}")
        backup_sqlite(database, kept)
    else:
        database.parent.mkdir(parents=True, exist_ok=True)
        os.close(os.open(database, os.O_CREAT | os.O_WRONLY, 0o600))
    with (
        closing(sqlite3.connect(f"{source.resolve().as_uri()}?mode=ro", uri=True)) as src,
        closing(sqlite3.connect(database)) as dst,
    ):
        dst.execute(f"PRAGMA busy_timeout={_BUSY_MS}")
        # Page by page into the live file, under SQLite's own locks: a process that has it
        # open sees either the old content or the new one.
        src.backup(dst)
    return restored, kept


__all__ = [
    "BackupError",
    "DatabaseFile",
    "backup_sqlite",
    "inspect_database",
    "known_revisions",
    "restore_sqlite",
]
