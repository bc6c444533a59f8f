"""Chats that blocked the bot: recorded once (the first moment and reason kept), listed, and
forgotten when the user writes again — on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select

from bot.services.chats import blocked_chat_ids, record_blocked_chat, unblock_chat
from models import BlockedChat

NOW = datetime(2026, 12, 3, 8, 0, tzinfo=UTC)
CHAT = 8_000_000_001  # beyond 32 bits, as real Telegram ids are
OTHER = 700_000_002
BLOCKED = "Forbidden: bot was blocked by the user"


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    """A session on a clean database, SQLite and PostgreSQL."""
    with Session(engine, expire_on_commit=False) as session:
        yield session


def test_a_blocked_chat_is_recorded_with_the_moment_and_telegrams_words(session: Session) -> None:
    assert record_blocked_chat(session, chat_id=CHAT, reason=BLOCKED, now=NOW) is True
    session.commit()

    row = session.exec(select(BlockedChat)).one()
    assert (row.chat_id, row.blocked_at, row.reason) == (CHAT, NOW, BLOCKED)
    assert blocked_chat_ids(session) == {CHAT}


def test_recording_twice_keeps_the_first_moment_and_reason(session: Session) -> None:
    record_blocked_chat(session, chat_id=CHAT, reason=BLOCKED, now=NOW)
    session.commit()

    later = NOW + timedelta(days=1)
    assert record_blocked_chat(session, chat_id=CHAT, reason="Forbidden: other", now=later) is False
    session.commit()

    rows = session.exec(select(BlockedChat)).all()
    assert [(r.chat_id, r.blocked_at, r.reason) for r in rows] == [(CHAT, NOW, BLOCKED)]


def test_unblocking_forgets_only_that_chat(session: Session) -> None:
    record_blocked_chat(session, chat_id=CHAT, reason=BLOCKED, now=NOW)
    record_blocked_chat(session, chat_id=OTHER, reason=None, now=NOW)
    session.commit()

    assert unblock_chat(session, chat_id=CHAT) is True
    session.commit()
    assert blocked_chat_ids(session) == {OTHER}
    assert unblock_chat(session, chat_id=CHAT) is False  # nothing left to forget


def test_no_blocked_chat_at_first(session: Session) -> None:
    assert blocked_chat_ids(session) == set()
