"""python-telegram-bot persistence in our own database, so conversations in progress and
user/chat data survive a restart. Documents are JSON (never pickle): handlers keep only plain
values (str, int, float, bool, None, lists and dicts of them) in user_data and chat_data.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any, cast

from sqlalchemy import Engine, delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session, col
from telegram.ext import BasePersistence, PersistenceInput
from telegram.ext._utils.types import CDCData, ConversationDict, ConversationKey

from models import BotState, utcnow

JSONDict = dict[str, Any]


class SQLPersistence(BasePersistence[JSONDict, JSONDict, JSONDict]):
    """Stores PTB's user, chat and bot data and conversation states in the `bot_state` table."""

    def __init__(self, engine: Engine, *, update_interval: float = 2.0) -> None:
        # Callback data is not stored: our buttons carry their meaning in callback_data itself.
        super().__init__(
            store_data=PersistenceInput(callback_data=False), update_interval=update_interval
        )
        self.engine = engine

    # --- storage ---------------------------------------------------------------------------

    def _load_kind(self, kind: str) -> dict[str, Any]:
        with Session(self.engine) as session:
            rows = session.execute(
                select(col(BotState.key), col(BotState.data)).where(col(BotState.kind) == kind)
            ).all()
        return {key: data for key, data in rows}

    def _store(self, kind: str, key: str, data: Any) -> None:
        values = {"kind": kind, "key": key, "data": data, "updated_at": utcnow()}
        table = cast(Any, BotState).__table__
        dialect = self.engine.dialect.name
        insert = pg_insert if dialect == "postgresql" else sqlite_insert
        statement = insert(table).values(values)
        statement = statement.on_conflict_do_update(
            index_elements=["kind", "key"],
            set_={"data": statement.excluded.data, "updated_at": statement.excluded.updated_at},
        )
        with self.engine.begin() as connection:
            connection.execute(statement)

    def _drop(self, kind: str, key: str) -> None:
        with self.engine.begin() as connection:
            connection.execute(
                delete(BotState).where(col(BotState.kind) == kind, col(BotState.key) == key)
            )

    # --- PTB interface ---------------------------------------------------------------------

    async def get_user_data(self) -> dict[int, JSONDict]:
        loaded = await asyncio.to_thread(self._load_kind, "user")
        return {int(key): dict(value or {}) for key, value in loaded.items()}

    async def get_chat_data(self) -> dict[int, JSONDict]:
        loaded = await asyncio.to_thread(self._load_kind, "chat")
        return {int(key): dict(value or {}) for key, value in loaded.items()}

    async def get_bot_data(self) -> JSONDict:
        loaded = await asyncio.to_thread(self._load_kind, "bot")
        return dict(loaded.get("bot") or {})

    async def get_callback_data(self) -> CDCData | None:
        return None

    async def get_conversations(self, name: str) -> ConversationDict:
        loaded = await asyncio.to_thread(self._load_kind, f"conversation:{name}")
        # Conversation keys are tuples of ints; JSON stores them as a list in the key string.
        return {tuple(json.loads(key)): state for key, state in loaded.items()}

    async def update_conversation(
        self, name: str, key: ConversationKey, new_state: object | None
    ) -> None:
        kind, encoded = f"conversation:{name}", json.dumps(list(key))
        if new_state is None:
            await asyncio.to_thread(self._drop, kind, encoded)
        else:
            await asyncio.to_thread(self._store, kind, encoded, new_state)

    async def update_user_data(self, user_id: int, data: JSONDict) -> None:
        await asyncio.to_thread(self._store, "user", str(user_id), data)

    async def update_chat_data(self, chat_id: int, data: JSONDict) -> None:
        await asyncio.to_thread(self._store, "chat", str(chat_id), data)

    async def update_bot_data(self, data: JSONDict) -> None:
        await asyncio.to_thread(self._store, "bot", "bot", data)

    async def update_callback_data(self, data: CDCData) -> None:
        return None

    async def drop_chat_data(self, chat_id: int) -> None:
        await asyncio.to_thread(self._drop, "chat", str(chat_id))

    async def drop_user_data(self, user_id: int) -> None:
        await asyncio.to_thread(self._drop, "user", str(user_id))

    async def refresh_user_data(self, user_id: int, user_data: JSONDict) -> None:
        return None

    async def refresh_chat_data(self, chat_id: int, chat_data: JSONDict) -> None:
        return None

    async def refresh_bot_data(self, bot_data: JSONDict) -> None:
        return None

    async def flush(self) -> None:
        # Every update is written through at once: nothing is left to flush.
        return None
