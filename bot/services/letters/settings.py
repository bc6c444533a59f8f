"""How a school's letters are protected in chat: the document password that opens the PDFs the
bot sends, how long such a PDF stays in the chat, and the bot messages waiting to be deleted.

The document password must come back in clear (each new PDF is encrypted with it), so it is
stored encrypted with the deployment's Fernet key: SECRET_KEY, else the file SECRET_KEY_FILE
(both keep it outside the data folder), else `DATA_DIR/secret.key` (mode 0600, created on first
use). Losing the key only means the director sets the password again.
"""

from __future__ import annotations

import logging
import os
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy import update
from sqlmodel import Session, col, select

from bot.config import SecretKeySource
from bot.i18n import _
from bot.services.audit import record_event
from bot.services.errors import ServiceError
from models import ScheduledDeletion, School, utcnow

log = logging.getLogger(__name__)

SECRET_KEY_FILE = "secret.key"
# A document password is typed on a phone and told to colleagues: long enough not to be
# guessed offline (the PDF can be copied and attacked at leisure), short enough to type.
MIN_LETTER_PASSWORD_LENGTH = 12
# A drawn passphrase: four groups of four characters from an alphabet without look-alikes
# (no 0/o, 1/l/i), about 78 bits, easy to read out to a colleague.
PASSPHRASE_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"
PASSPHRASE_GROUPS = 4
PASSPHRASE_GROUP_LENGTH = 4
MAX_LETTER_PASSWORD_LENGTH = 128
DEFAULT_RETENTION_HOURS = 24
MIN_RETENTION_HOURS = 1
# Telegram lets a bot delete its own messages for 48 hours only.
MAX_RETENTION_HOURS = 48


class LetterSettingsError(ServiceError):
    """A document password or retention the director must choose again (the message says why)."""


class UnknownSchoolError(ServiceError):
    """The school does not exist (removed while a conversation was open)."""


# --- The deployment's key -------------------------------------------------------------------


def _key_path(data_dir: Path) -> Path:
    return data_dir / SECRET_KEY_FILE


def _fernet(source: SecretKeySource) -> Fernet:
    """The deployment's Fernet: SECRET_KEY, else SECRET_KEY_FILE (never created here: a
    missing file is the operator's to fix), else DATA_DIR/secret.key, created (0600) on first
    use."""
    if source.value:
        return Fernet(source.value.encode("ascii"))
    if source.file is not None:
        return Fernet(source.file.read_bytes().strip())
    data_dir = source.data_dir
    path = _key_path(data_dir)
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        key = Fernet.generate_key()
        try:
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # another process created it a moment ago: use theirs
        else:
            with os.fdopen(descriptor, "wb") as handle:
                handle.write(key)
            return Fernet(key)
    return Fernet(path.read_bytes().strip())


def _school(session: Session, school_id: int) -> School:
    school = session.get(School, school_id)
    if school is None:
        raise UnknownSchoolError(_("This school does not exist."))
    return school


# --- The document password ------------------------------------------------------------------


def generate_letter_passphrase() -> str:
    """A document password drawn for the director, such as « k7mq-x3pt-9fza-hw2e »."""
    return "-".join(
        "".join(secrets.choice(PASSPHRASE_ALPHABET) for _ in range(PASSPHRASE_GROUP_LENGTH))
        for _group in range(PASSPHRASE_GROUPS)
    )


def check_letter_password(password: str) -> None:
    """Raise `LetterSettingsError` if `password` cannot be a document password."""
    if len(password) < MIN_LETTER_PASSWORD_LENGTH:
        raise LetterSettingsError(
            _(
                "This password is too short: choose at least {count} characters, for example "
                "three words you will remember, or use the passphrase I offer."
            ).format(count=MIN_LETTER_PASSWORD_LENGTH)
        )
    if len(password) > MAX_LETTER_PASSWORD_LENGTH:
        raise LetterSettingsError(
            _("This password is too long: {count} characters at most.").format(
                count=MAX_LETTER_PASSWORD_LENGTH
            )
        )
    if password != password.strip() or any(ord(c) < 32 for c in password):
        raise LetterSettingsError(
            _(
                "This password starts or ends with a space, or holds a line break: PDF readers "
                "would not accept it as typed. Choose another one."
            )
        )


def set_letter_password(
    session: Session, *, school_id: int, password: str, secret_key: SecretKeySource, actor: str
) -> None:
    """Store the school's document password (encrypted), replacing any previous one."""
    check_letter_password(password)
    school = _school(session, school_id)
    replaced = school.letter_password_encrypted is not None
    school.letter_password_encrypted = (
        _fernet(secret_key).encrypt(password.encode("utf-8")).decode("ascii")
    )
    session.add(school)
    record_event(
        session,
        actor=actor,
        action="school.letter_password_set",
        school_id=school_id,
        replaced=replaced,
    )
    session.flush()


def get_letter_password(
    session: Session, *, school_id: int, secret_key: SecretKeySource
) -> str | None:
    """The school's document password in clear, or None when none is set (or it can no longer
    be read: the key file was lost, so the director sets it again)."""
    stored = _school(session, school_id).letter_password_encrypted
    if stored is None:
        return None
    try:
        return _fernet(secret_key).decrypt(stored.encode("ascii")).decode("utf-8")
    except (InvalidToken, ValueError):
        log.warning("the document password of school %s cannot be decrypted", school_id)
        return None


def has_letter_password(session: Session, *, school_id: int, secret_key: SecretKeySource) -> bool:
    """Whether the school has a document password the bot can use."""
    found = get_letter_password(session=session, school_id=school_id, secret_key=secret_key)
    return found is not None


# --- How long a PDF stays in the chat -------------------------------------------------------


def get_retention_hours(session: Session, *, school_id: int) -> int:
    """Hours a PDF carrying passwords stays in the chat before the bot deletes it."""
    return _school(session, school_id).letter_retention_hours or DEFAULT_RETENTION_HOURS


def set_retention_hours(session: Session, *, school_id: int, hours: int, actor: str) -> None:
    """Change how long the school's PDFs stay in the chat (1 to 48 hours: Telegram lets a bot
    delete its messages for 48 hours only)."""
    if not MIN_RETENTION_HOURS <= hours <= MAX_RETENTION_HOURS:
        raise LetterSettingsError(
            _("Choose a number of hours between {low} and {high}.").format(
                low=MIN_RETENTION_HOURS, high=MAX_RETENTION_HOURS
            )
        )
    school = _school(session, school_id)
    previous = school.letter_retention_hours
    school.letter_retention_hours = hours
    session.add(school)
    record_event(
        session,
        actor=actor,
        action="school.letter_retention_set",
        school_id=school_id,
        hours=hours,
        previous=previous,
    )
    session.flush()


# --- Messages to delete later ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DueDeletion:
    """A bot message whose time has come."""

    id: int
    chat_id: int
    message_id: int
    delete_at: datetime


def schedule_deletion(
    session: Session, *, chat_id: int, message_id: int, delete_at: datetime
) -> int:
    """Remember to delete a bot message at `delete_at` (kept across restarts); its id."""
    row = ScheduledDeletion(chat_id=chat_id, message_id=message_id, delete_at=delete_at)
    session.add(row)
    session.flush()
    assert row.id is not None
    return row.id


def schedule_letter_deletion(
    session: Session,
    *,
    school_id: int,
    chat_id: int,
    message_id: int,
    now: datetime | None = None,
) -> datetime:
    """Remember to delete a PDF of the school's letters after the school's retention; returns
    when it will be deleted."""
    hours = get_retention_hours(session=session, school_id=school_id)
    delete_at = (now or utcnow()) + timedelta(hours=hours)
    schedule_deletion(session=session, chat_id=chat_id, message_id=message_id, delete_at=delete_at)
    return delete_at


def due_deletions(
    session: Session, *, now: datetime | None = None, limit: int = 100
) -> list[DueDeletion]:
    """The messages to delete now (oldest first), not done yet."""
    moment = now or utcnow()
    rows = session.exec(
        select(ScheduledDeletion)
        .where(
            col(ScheduledDeletion.done_at).is_(None),
            col(ScheduledDeletion.delete_at) <= moment,
        )
        .order_by(col(ScheduledDeletion.delete_at), col(ScheduledDeletion.id))
        .limit(limit)
    )
    return [
        DueDeletion(
            id=row.id, chat_id=row.chat_id, message_id=row.message_id, delete_at=row.delete_at
        )
        for row in rows
        if row.id is not None
    ]


def next_deletion_at(session: Session) -> datetime | None:
    """When the next pending deletion is due, to schedule a wake-up (None: nothing pending)."""
    return session.exec(
        select(ScheduledDeletion.delete_at)
        .where(col(ScheduledDeletion.done_at).is_(None))
        .order_by(col(ScheduledDeletion.delete_at))
        .limit(1)
    ).first()


def mark_deletions_done(
    session: Session, *, deletion_ids: Sequence[int], now: datetime | None = None
) -> None:
    """Record that these messages are deleted (or could not be: gone already, too old)."""
    if not deletion_ids:
        return
    session.execute(
        update(ScheduledDeletion)
        .where(col(ScheduledDeletion.id).in_(list(deletion_ids)))
        .values(done_at=now or utcnow())
    )
