"""Chats that blocked the bot, kept in `blocked_chat` so that a broadcast (digests, reminders,
help-desk notices) skips them across restarts instead of trying them again every time.

Recording is idempotent: a chat recorded already keeps its first `blocked_at` and reason (since
when it refuses, which is what the operator wants to know); two broadcasts meeting the same 403
at once both succeed (`INSERT … ON CONFLICT DO NOTHING`, on SQLite and PostgreSQL alike).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

from sqlalchemy import CursorResult, delete
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col, select

from models import BlockedChat, utcnow


def record_blocked_chat(
    session: Session, *, chat_id: int, reason: str | None, now: datetime | None = None
) -> bool:
    """Remember that `chat_id` refused the bot (`reason`: Telegram's words); True if it was not
    recorded yet. A chat recorded already is left as it was (first `blocked_at` and reason)."""
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    statement = (
        insert(BlockedChat)
        .values(chat_id=chat_id, blocked_at=now or utcnow(), reason=reason)
        .on_conflict_do_nothing(index_elements=[col(BlockedChat.chat_id)])
        # The row inserted, or none: psycopg reports no row count for an ORM insert.
        .returning(col(BlockedChat.chat_id))
    )
    return session.execute(statement).first() is not None


def unblock_chat(session: Session, *, chat_id: int) -> bool:
    """Forget that `chat_id` blocked the bot (its user wrote to it again); True if it had."""
    statement = delete(BlockedChat).where(col(BlockedChat.chat_id) == chat_id)
    return cast(CursorResult[Any], session.execute(statement)).rowcount > 0


def blocked_chat_ids(session: Session) -> set[int]:
    """Every chat recorded as having blocked the bot (a few per school at most: one query)."""
    return set(session.exec(select(BlockedChat.chat_id)).all())
