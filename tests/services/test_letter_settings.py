"""The school's document password (stored encrypted, key file private), how long PDFs stay in
the chat, and the bot messages waiting to be deleted."""

from __future__ import annotations

import stat
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, select
from sqlmodel import Session, col

from bot.db import session_scope
from bot.services.letters.settings import (
    SECRET_KEY_FILE,
    LetterSettingsError,
    due_deletions,
    get_letter_password,
    get_retention_hours,
    has_letter_password,
    mark_deletions_done,
    next_deletion_at,
    schedule_letter_deletion,
    set_letter_password,
    set_retention_hours,
)
from bot.services.schools.registry import add_school
from models import AuditEvent, School, utcnow


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    """A session on a clean database, SQLite and PostgreSQL (this module's tests run on both)."""
    with Session(engine, expire_on_commit=False) as session:
        yield session


@pytest.fixture
def school_id(engine: Engine) -> int:
    with session_scope(engine) as session:
        school = add_school(session=session, uai="0751234X", name="École Jules Ferry", actor="t")
        assert school.id is not None
        return school.id


def test_document_password_is_stored_encrypted_with_a_private_key_file(
    engine: Engine, school_id: int, tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    with session_scope(engine) as session:
        assert not has_letter_password(session=session, school_id=school_id, data_dir=data_dir)
        set_letter_password(
            session=session,
            school_id=school_id,
            password="trois petits chats",
            data_dir=data_dir,
            actor="telegram:1",
        )
    key = data_dir / SECRET_KEY_FILE
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    with session_scope(engine) as session:
        stored = session.get(School, school_id)
        assert stored is not None and stored.letter_password_encrypted
        assert "chats" not in stored.letter_password_encrypted
        assert (
            get_letter_password(session=session, school_id=school_id, data_dir=data_dir)
            == "trois petits chats"
        )
        assert has_letter_password(session=session, school_id=school_id, data_dir=data_dir)
        events = session.execute(
            select(AuditEvent).where(col(AuditEvent.action) == "school.letter_password_set")
        ).scalars()
        assert all("chats" not in str(event.details) for event in events)


def test_a_lost_key_file_means_setting_the_password_again(
    engine: Engine, school_id: int, tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    with session_scope(engine) as session:
        set_letter_password(
            session=session,
            school_id=school_id,
            password="correct horse",
            data_dir=data_dir,
            actor="t",
        )
    (data_dir / SECRET_KEY_FILE).unlink()
    with session_scope(engine) as session:
        assert get_letter_password(session=session, school_id=school_id, data_dir=data_dir) is None
        assert not has_letter_password(session=session, school_id=school_id, data_dir=data_dir)


@pytest.mark.parametrize("password", ["court", " espace devant", "ligne\ncoupée", "x" * 200])
def test_unusable_document_passwords_are_refused(session: Session, password: str) -> None:
    school = add_school(session=session, uai="0751234X", name="École", actor="t")
    assert school.id is not None
    with pytest.raises(LetterSettingsError):
        set_letter_password(
            session=session,
            school_id=school.id,
            password=password,
            data_dir=Path("/nonexistent"),
            actor="t",
        )
    assert school.letter_password_encrypted is None


def test_retention_defaults_to_24_hours_and_stays_within_telegrams_48(
    engine: Engine, school_id: int
) -> None:
    with session_scope(engine) as session:
        assert get_retention_hours(session=session, school_id=school_id) == 24
        set_retention_hours(session=session, school_id=school_id, hours=6, actor="t")
    with session_scope(engine) as session:
        assert get_retention_hours(session=session, school_id=school_id) == 6
        for hours in (0, 49):
            with pytest.raises(LetterSettingsError):
                set_retention_hours(session=session, school_id=school_id, hours=hours, actor="t")


def test_scheduled_deletions_come_due_after_the_schools_retention_and_once(
    engine: Engine, school_id: int
) -> None:
    now = utcnow()
    with session_scope(engine) as session:
        set_retention_hours(session=session, school_id=school_id, hours=2, actor="t")
        delete_at = schedule_letter_deletion(
            session=session, school_id=school_id, chat_id=10**11, message_id=42, now=now
        )
    assert delete_at == now + timedelta(hours=2)
    with session_scope(engine) as session:
        assert due_deletions(session=session, now=now + timedelta(hours=1)) == []
        assert next_deletion_at(session=session) == delete_at
        due = due_deletions(session=session, now=now + timedelta(hours=2, seconds=1))
        assert [(d.chat_id, d.message_id) for d in due] == [(10**11, 42)]
        mark_deletions_done(session=session, deletion_ids=[d.id for d in due])
    with session_scope(engine) as session:
        assert due_deletions(session=session, now=now + timedelta(days=3)) == []
        assert next_deletion_at(session=session) is None
