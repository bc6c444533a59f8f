"""The emulator's test-only faults aimed at one chat: « the next sendMessage to Claire gets a
429 » while the other chats are answered as usual, and a user who blocked the bot."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from telegram import Bot
from telegram.error import Forbidden, NetworkError, RetryAfter

from bot.sandbox.botapi import BotApiServer

pytestmark = [
    pytest.mark.timeout(30),
    # RetryAfter.retry_after announces its move to timedelta on every read.
    pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning"),
]


@pytest.fixture
async def server() -> AsyncIterator[BotApiServer]:
    async with BotApiServer() as running:
        yield running


@pytest.fixture
async def bot(server: BotApiServer) -> AsyncIterator[Bot]:
    """A bare Bot (no rate limiter): each fault surfaces as it is answered."""
    async with Bot(server.token, base_url=server.base_url) as running:
        yield running


async def test_a_fault_for_one_chat_spares_the_others(server: BotApiServer, bot: Bot) -> None:
    claire, paul = server.new_user("Claire"), server.new_user("Paul")
    server.inject_fault("sendMessage", status=429, retry_after=3, times=2, chat_id=claire.id)

    await bot.send_message(paul.id, "avant")
    for _ in range(2):
        with pytest.raises(RetryAfter) as caught:
            await bot.send_message(claire.id, "bilan")
        assert caught.value.retry_after == 3
        await bot.send_message(paul.id, "pendant")
    await bot.send_message(claire.id, "bilan")

    assert [m.text for m in claire.bot_messages] == ["bilan"]
    assert [m.text for m in paul.bot_messages] == ["avant", "pendant", "pendant"]
    assert [c.status for c in server.calls_to("sendMessage")] == [200, 429, 200, 429, 200, 200]


async def test_a_general_fault_queued_after_a_chat_fault_hits_the_next_other_chat(
    server: BotApiServer, bot: Bot
) -> None:
    claire, paul = server.new_user("Claire"), server.new_user("Paul")
    server.inject_fault("sendMessage", status=429, retry_after=1, chat_id=claire.id)
    server.inject_fault("sendMessage", status=500)

    with pytest.raises(NetworkError, match="Internal Server Error"):
        await bot.send_message(paul.id, "x")  # the general fault, queued second
    with pytest.raises(RetryAfter):
        await bot.send_message(claire.id, "y")
    await bot.send_message(paul.id, "z")
    assert [m.text for m in paul.bot_messages] == ["z"]


async def test_a_user_who_blocked_the_bot_refuses_every_message(
    server: BotApiServer, bot: Bot
) -> None:
    claire = server.new_user("Claire")
    await claire.block()
    for _ in range(2):
        with pytest.raises(Forbidden, match="bot was blocked by the user"):
            await bot.send_message(claire.id, "bilan")
    await claire.unblock()
    await bot.send_message(claire.id, "bilan")
    assert [m.text for m in claire.bot_messages] == ["bilan"]
