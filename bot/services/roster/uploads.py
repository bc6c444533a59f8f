"""ONDE extractions sent in a chat: recognised, kept in the data folder between the upload
and the confirmation, then imported."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from sqlmodel import Session

from bot.services.roster.onde.importer import import_roster
from bot.services.roster.onde.reader import read_extraction
from bot.services.roster.onde.report import ImportReport

#
# A director sends the two ONDE extractions one after the other, and confirms after a preview:
# the files wait in the data folder between those steps (readable by the bot's user only), so
# that a restart in the middle loses nothing; the chat state keeps only their paths and names.

UPLOADS_FOLDER = "uploads"
# How long a file waits for the rest of its import: the chat conversation ends after this
# (deleting its files), and a start deletes any older file left by a conversation whose
# timeout a restart lost.
UPLOAD_LIFETIME = timedelta(hours=2)


@dataclass(frozen=True)
class RosterFileInfo:
    """What an uploaded file is: an Élèves (`pupils`) or Responsables (`guardians`) extraction."""

    kind: str
    data_lines: int


def identify_roster_file(*, data: bytes, filename: str) -> RosterFileInfo:
    """Recognise an ONDE extraction by its header; raises `RosterFileError` (one sentence that
    names the file) when it cannot be imported at all. Reads only: no database."""
    extraction = read_extraction(data, filename=filename)
    return RosterFileInfo(kind=extraction.kind, data_lines=extraction.data_lines)


def save_upload(*, data_dir: Path, telegram_user_id: int, data: bytes) -> Path:
    """Keep an uploaded file under `data_dir/uploads/<user>/`, readable by its owner only."""
    folder = data_dir / UPLOADS_FOLDER / str(int(telegram_user_id))
    folder.mkdir(parents=True, exist_ok=True)
    for directory in (data_dir, data_dir / UPLOADS_FOLDER, folder):
        os.chmod(directory, 0o700)
    path = folder / f"{uuid.uuid4().hex}.csv"
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(data)
    return path


def discard_uploads(paths: Iterable[str], *, data_dir: Path) -> None:
    """Delete uploaded files (only inside `data_dir/uploads`: the paths come from chat state)."""
    root = (data_dir / UPLOADS_FOLDER).resolve()
    for raw in paths:
        path = Path(raw).resolve()
        if path.is_relative_to(root) and path.is_file():
            path.unlink(missing_ok=True)


def discard_stale_uploads(*, data_dir: Path, lifetime: timedelta = UPLOAD_LIFETIME) -> int:
    """Delete the uploaded files older than `lifetime` (abandoned imports); how many."""
    folder = data_dir / UPLOADS_FOLDER
    if not folder.is_dir():
        return 0
    oldest = time.time() - lifetime.total_seconds()
    stale = [path for path in folder.rglob("*.csv") if path.stat().st_mtime < oldest]
    for path in stale:
        path.unlink(missing_ok=True)
    return len(stale)


def import_uploads(
    session: Session,
    *,
    school_id: int,
    uploads: Sequence[tuple[str, str]],
    actor: str,
    dry_run: bool,
) -> ImportReport:
    """`import_roster` on uploaded files, given as (file name, path) pairs; the bytes are read
    here, in the worker thread. Raises `FileNotFoundError` if a file is gone."""
    files = [(name, Path(path).read_bytes()) for name, path in uploads]
    return import_roster(
        session=session, school_id=school_id, files=files, actor=actor, dry_run=dry_run
    )
