"""Conversations and user data survive a restart: they live in the database, as JSON."""

from __future__ import annotations

from sqlalchemy import Engine

from bot.persistence import SQLPersistence


async def test_conversation_state_survives_a_new_persistence_object(engine: Engine) -> None:
    first = SQLPersistence(engine)
    await first.update_conversation("import", (42, 42), "CONFIRMING")
    await first.update_conversation("envoyer", (7, 7), 1)

    restarted = SQLPersistence(engine)
    assert await restarted.get_conversations("import") == {(42, 42): "CONFIRMING"}
    assert await restarted.get_conversations("envoyer") == {(7, 7): 1}


async def test_ended_conversation_is_forgotten(engine: Engine) -> None:
    persistence = SQLPersistence(engine)
    await persistence.update_conversation("import", (42, 42), "CONFIRMING")
    await persistence.update_conversation("import", (42, 42), None)
    assert await SQLPersistence(engine).get_conversations("import") == {}


async def test_user_chat_and_bot_data_round_trip(engine: Engine) -> None:
    persistence = SQLPersistence(engine)
    big_telegram_id = 7_123_456_789  # above 32 bits, as real Telegram ids are
    await persistence.update_user_data(big_telegram_id, {"school_id": 3, "language": "ar"})
    await persistence.update_user_data(big_telegram_id, {"school_id": 4, "language": "ar"})
    await persistence.update_chat_data(-100, {"pending_import": ["a.csv"]})
    await persistence.update_bot_data({"version": 1})

    restarted = SQLPersistence(engine)
    assert await restarted.get_user_data() == {big_telegram_id: {"school_id": 4, "language": "ar"}}
    assert await restarted.get_chat_data() == {-100: {"pending_import": ["a.csv"]}}
    assert await restarted.get_bot_data() == {"version": 1}

    await restarted.drop_user_data(big_telegram_id)
    assert await SQLPersistence(engine).get_user_data() == {}
