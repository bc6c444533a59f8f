"""Broadcasts to many chats (issue 11, §5): a chat that blocked the bot is recorded and skipped
by the next broadcasts until its user writes again, a 429 is waited out and retried without
losing the message, and neither stops the other chats — through the real bot, its
AIORateLimiter and the Bot API emulator's faults."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from sqlmodel import Session, select
from telegram.error import Forbidden, NetworkError, RetryAfter

from bot.jobs import Delivery, deliver, run_reminders, send_due_digests
from bot.sandbox.botapi import SandboxUser
from bot.services.chats import blocked_chat_ids, record_blocked_chat
from models import BlockedChat, OutboxMessage
from tests.handlers.conftest import BotHarness
from tests.handlers.test_family_reminders import MONDAY, reminders, school_of_waiting_families
from tests.handlers.test_helpdesk import _file_unlinked_question as file_unlinked_question
from tests.handlers.test_helpdesk import _setup as helpdesk_setup

pytestmark = [
    # RetryAfter.retry_after announces its move to timedelta on every read.
    pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning"),
    pytest.mark.timeout(90),
]

START = datetime(2026, 10, 24, 10, tzinfo=UTC)  # a Saturday
# The weekly digests at 08:00 in Paris on the Mondays after START.
WEEK_1 = datetime(2026, 10, 26, 7, 0, 1, tzinfo=UTC)
WEEK_2 = WEEK_1 + timedelta(days=7)
WEEK_3 = WEEK_2 + timedelta(days=7)
BLOCKED = "Forbidden: bot was blocked by the user"


@pytest.fixture
def clock() -> Iterator[time_machine.Traveller]:
    with time_machine.travel(START, tick=True) as traveller:
        yield traveller


async def _directors(harness: BotHarness, count: int) -> tuple[int, list[SandboxUser]]:
    """One school and `count` directors, each through `/start <code>`."""
    first = await harness.new_director(first_name="Directrice 1")
    users = [first.user]
    for number in range(2, count + 1):
        user = harness.server.new_user(f"Directrice {number}")
        await user.send_text(f"/start {harness.invite(first.school_id)}")
        await harness.settle()
        user.drain()
        users.append(user)
    return first.school_id, users


def _sends_to(harness: BotHarness, user: SandboxUser, since: int) -> list[int | None]:
    """What the emulator answered to each message the bot sent to the user's chat after the
    first `since` calls it received."""
    return [
        call.status
        for call in harness.server.calls[since:]
        if call.method in ("sendMessage", "sendPhoto", "sendDocument")
        and str(call.params.get("chat_id")) == str(user.id)
    ]


def _digest_texts(user: SandboxUser) -> list[str]:
    """The digest texts the user received (not the answers to their /start)."""
    return [m.content for m in user.bot_messages if m.content.startswith("Bilan hebdomadaire")]


async def _digest_at(harness: BotHarness, clock: time_machine.Traveller, at: datetime) -> int:
    """Move the clock to `at` and send the digests due then (one pass at a time, so this also
    waits for a wake-up of the job queue that may have started it)."""
    clock.move_to(at)
    return await send_due_digests(harness.app)


def _blocked_rows(session: Session) -> list[tuple[int, str | None]]:
    return [(row.chat_id, row.reason) for row in session.exec(select(BlockedChat))]


async def test_a_director_who_blocked_the_bot_is_skipped_until_they_write_again(
    bot_harness: BotHarness, clock: time_machine.Traveller
) -> None:
    _school, (anne, bruno, chloe) = await _directors(bot_harness, 3)
    await chloe.block()
    await bot_harness.settle()
    before = len(bot_harness.server.calls)

    await _digest_at(bot_harness, clock, WEEK_1)
    assert len(_digest_texts(anne)) == len(_digest_texts(bruno)) == 1
    assert _digest_texts(chloe) == []
    assert bot_harness.call(_blocked_rows) == [(chloe.id, BLOCKED)]
    # The text's 403, and neither the chart nor the document tried after it.
    assert _sends_to(bot_harness, chloe, before) == [403]

    before = len(bot_harness.server.calls)
    await _digest_at(bot_harness, clock, WEEK_2)
    assert len(_digest_texts(anne)) == len(_digest_texts(bruno)) == 2
    assert _sends_to(bot_harness, chloe, before) == []  # not even tried

    await chloe.unblock()
    await chloe.send_text("/start")
    await bot_harness.settle()
    assert bot_harness.call(_blocked_rows) == []

    await _digest_at(bot_harness, clock, WEEK_3)
    assert len(_digest_texts(chloe)) == 1
    assert len(_digest_texts(anne)) == len(_digest_texts(bruno)) == 3


async def test_a_block_recorded_before_a_restart_holds_until_the_user_writes(
    bot_harness: BotHarness, clock: time_machine.Traveller
) -> None:
    _school, (anne, bruno) = await _directors(bot_harness, 2)
    bot_harness.call(record_blocked_chat, chat_id=bruno.id, reason=BLOCKED)
    await bot_harness.restart()
    before = len(bot_harness.server.calls)

    await _digest_at(bot_harness, clock, WEEK_1)
    assert len(_digest_texts(anne)) == 1
    assert _sends_to(bot_harness, bruno, before) == []

    await bruno.send_text("/start")
    await bot_harness.settle()
    assert bot_harness.call(blocked_chat_ids) == set()
    assert bruno.last_bot_message is not None  # /start was answered as usual

    await _digest_at(bot_harness, clock, WEEK_2)
    assert len(_digest_texts(bruno)) == 1


async def test_blocking_again_is_not_writing_again_but_unblocking_is(
    bot_harness: BotHarness,
) -> None:
    family = bot_harness.new_family("Camille")
    await family.send_text("/start")
    await bot_harness.settle()
    bot_harness.call(record_blocked_chat, chat_id=family.id, reason=BLOCKED)
    await bot_harness.restart()

    # Telegram's my_chat_member update of the block itself arrives after the 403 was recorded.
    await family.block()
    await bot_harness.settle()
    assert bot_harness.call(blocked_chat_ids) == {family.id}

    await family.unblock()
    await bot_harness.settle()
    assert bot_harness.call(blocked_chat_ids) == set()


async def test_a_429_is_waited_out_and_retried_and_the_others_still_get_the_digest(
    bot_harness: BotHarness, clock: time_machine.Traveller
) -> None:
    _school, (anne, bruno, chloe) = await _directors(bot_harness, 3)
    bot_harness.server.inject_fault(
        "sendMessage", status=429, retry_after=1, times=1, chat_id=bruno.id
    )
    before = len(bot_harness.server.calls)

    loop = asyncio.get_running_loop()
    started = loop.time()
    assert await _digest_at(bot_harness, clock, WEEK_1) == 1
    elapsed = loop.time() - started

    for director in (anne, bruno, chloe):
        assert len(_digest_texts(director)) == 1
    # The text refused once, then sent (a school without pupils has no chart).
    assert _sends_to(bot_harness, bruno, before) == [429, 200]
    assert bot_harness.call(blocked_chat_ids) == set()
    # Waited retry_after once (AIORateLimiter holds every chat meanwhile), and no more.
    assert 1.0 <= elapsed < 4.0


async def test_deliver_sorts_out_what_telegram_answered(bot_harness: BotHarness) -> None:
    app = bot_harness.app

    async def refused() -> None:
        raise Forbidden(BLOCKED)

    async def limited() -> None:  # what AIORateLimiter raises once its retries are spent
        raise RetryAfter(3)

    async def unreachable() -> None:
        raise NetworkError("connection reset")

    async def sent() -> None:
        return None

    assert await deliver(app, 501, limited) is Delivery.FAILED
    assert await deliver(app, 501, unreachable) is Delivery.FAILED
    assert await deliver(app, 501, refused) is Delivery.BLOCKED
    assert await deliver(app, 501, sent) is Delivery.SKIPPED
    assert await deliver(app, 502, sent) is Delivery.DELIVERED
    assert bot_harness.call(_blocked_rows) == [(501, BLOCKED)]


async def test_a_family_chat_that_blocked_the_bot_gets_its_reminder_by_email_and_is_recorded(
    bot_harness: BotHarness,
) -> None:
    linked = bot_harness.new_family("Camille")
    blocked = bot_harness.new_family("Éloïse")
    built = bot_harness.call(school_of_waiting_families, chats=[linked.id, blocked.id])
    first, second, _third = built.account_ids
    await blocked.block()
    await bot_harness.settle()

    assert await run_reminders(bot_harness.app, now=MONDAY) == 3

    assert bot_harness.call(reminders)[first] == ["email", "chat"]
    assert bot_harness.call(reminders)[second] == ["email"]
    emailed = bot_harness.call(
        lambda session: session.exec(
            select(OutboxMessage.account_id).where(OutboxMessage.account_id == second)
        ).all()
    )
    assert emailed == [second]
    assert bot_harness.call(_blocked_rows) == [(blocked.id, BLOCKED)]
    await linked.next_message()


async def test_a_help_request_reaches_the_directors_who_did_not_block_the_bot(
    bot_harness: BotHarness,
) -> None:
    _school_id, first, second = await helpdesk_setup(bot_harness)
    await second.block()
    await bot_harness.settle()
    family = bot_harness.new_family("Léa")
    before = len(bot_harness.server.calls)

    await file_unlinked_question(family, "Mon fils n'apparaît pas")
    await bot_harness.settle()
    await first.next_message()
    assert _sends_to(bot_harness, second, before) == [403]
    assert bot_harness.call(blocked_chat_ids) == {second.id}

    before = len(bot_harness.server.calls)
    await file_unlinked_question(family, "Et sa sœur non plus")
    await bot_harness.settle()
    await first.next_message()
    assert _sends_to(bot_harness, second, before) == []  # not tried again
