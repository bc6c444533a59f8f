"""The school's document password (stored encrypted, key file private), how long PDFs stay in
the chat, and the bot messages waiting to be deleted."""

from __future__ import annotations

import re
import stat
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import Engine, select
from sqlmodel import Session, col

from bot.config import SecretKeySource, Settings
from bot.db import session_scope
from bot.services.letters.settings import (
    SECRET_KEY_FILE,
    LetterSettingsError,
    check_letter_password,
    due_deletions,
    generate_letter_passphrase,
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
        assert not has_letter_password(
            session=session, school_id=school_id, secret_key=SecretKeySource(data_dir)
        )
        set_letter_password(
            session=session,
            school_id=school_id,
            password="trois petits chats",
            secret_key=SecretKeySource(data_dir),
            actor="telegram:1",
        )
    key = data_dir / SECRET_KEY_FILE
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    with session_scope(engine) as session:
        stored = session.get(School, school_id)
        assert stored is not None and stored.letter_password_encrypted
        assert "chats" not in stored.letter_password_encrypted
        assert (
            get_letter_password(
                session=session, school_id=school_id, secret_key=SecretKeySource(data_dir)
            )
            == "trois petits chats"
        )
        assert has_letter_password(
            session=session, school_id=school_id, secret_key=SecretKeySource(data_dir)
        )
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
            secret_key=SecretKeySource(data_dir),
            actor="t",
        )
    (data_dir / SECRET_KEY_FILE).unlink()
    with session_scope(engine) as session:
        assert (
            get_letter_password(
                session=session, school_id=school_id, secret_key=SecretKeySource(data_dir)
            )
            is None
        )
        assert not has_letter_password(
            session=session, school_id=school_id, secret_key=SecretKeySource(data_dir)
        )


@pytest.mark.parametrize("password", ["court", " espace devant", "ligne\ncoupée", "x" * 200])
def test_unusable_document_passwords_are_refused(session: Session, password: str) -> None:
    school = add_school(session=session, uai="0751234X", name="École", actor="t")
    assert school.id is not None
    with pytest.raises(LetterSettingsError):
        set_letter_password(
            session=session,
            school_id=school.id,
            password=password,
            secret_key=SecretKeySource(Path("/nonexistent")),
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


# --- Twelve characters, or a passphrase drawn for the director -------------------------------


@pytest.mark.parametrize("password", ["Cartable-26", "onze lettre"])  # 11 characters
def test_a_document_password_needs_twelve_characters(password: str) -> None:
    with pytest.raises(LetterSettingsError):
        check_letter_password(password)
    check_letter_password(password + "!")


def test_a_drawn_passphrase_is_long_random_and_accepted() -> None:
    drawn = {generate_letter_passphrase() for _ in range(50)}

    assert len(drawn) == 50
    for passphrase in drawn:
        check_letter_password(passphrase)
        assert re.fullmatch(r"[a-z2-9]+(?:-[a-z2-9]+){3,}", passphrase), passphrase
        # Fits a button's callback data (64 bytes) with its prefix.
        assert len(passphrase.encode()) <= 40


# --- The key: SECRET_KEY, else SECRET_KEY_FILE, else DATA_DIR/secret.key --------------------


def _store_and_read(engine: Engine, school_id: int, source: SecretKeySource) -> str | None:
    with session_scope(engine) as session:
        set_letter_password(
            session=session,
            school_id=school_id,
            password="trois petits chats",
            secret_key=source,
            actor="t",
        )
    with session_scope(engine) as session:
        return get_letter_password(session=session, school_id=school_id, secret_key=source)


def test_the_key_can_come_from_a_variable_or_a_file_outside_the_data_folder(
    engine: Engine, school_id: int, tmp_path: Path
) -> None:
    key = Fernet.generate_key().decode()
    data_dir = tmp_path / "data"
    secrets_dir = tmp_path / "secrets"
    secrets_dir.mkdir()
    (secrets_dir / "educonnect.key").write_text(key + "\n")

    from_variable = Settings(_env_file=None, data_dir=data_dir, secret_key=key)
    assert _store_and_read(engine, school_id, from_variable.secret_key_source) == (
        "trois petits chats"
    )
    from_file = Settings(
        _env_file=None, data_dir=data_dir, secret_key_file=secrets_dir / "educonnect.key"
    )
    # The same key, read from the file: what the variable encrypted, the file decrypts.
    with session_scope(engine) as session:
        assert get_letter_password(
            session=session, school_id=school_id, secret_key=from_file.secret_key_source
        ) == ("trois petits chats")
    assert not (data_dir / SECRET_KEY_FILE).exists()  # nothing written in the data folder
    assert key not in repr(from_variable)

    # The variable wins over the file, the file over DATA_DIR/secret.key.
    other = Fernet.generate_key().decode()
    both = Settings(
        _env_file=None,
        data_dir=data_dir,
        secret_key=other,
        secret_key_file=secrets_dir / "educonnect.key",
    )
    with session_scope(engine) as session:
        assert (
            get_letter_password(
                session=session, school_id=school_id, secret_key=both.secret_key_source
            )
            is None
        )
    default = Settings(_env_file=None, data_dir=data_dir)
    _store_and_read(engine, school_id, default.secret_key_source)
    assert (data_dir / SECRET_KEY_FILE).exists()


def test_a_malformed_key_is_refused_when_the_settings_are_read(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="SECRET_KEY"):
        Settings(_env_file=None, data_dir=tmp_path, secret_key="not-a-fernet-key")
