"""Sending one message set to one chat of a broadcast (digests, reminders, help-desk notices):
a chat that blocked the bot is recorded and skipped afterwards, and no chat's failure stops the
others.

Telegram's limits are PTB's `AIORateLimiter` (`bot.app`): 30 messages a second overall, and a
429 is waited out (`retry_after`) and retried; once its retries are spent, the `RetryAfter` it
raises is a failure of this chat only. A 403 (the user blocked the bot, or the account is gone)
is recorded in `blocked_chat` and kept in a set per application, read once from the database at
the first broadcast or update: the next broadcasts skip that chat without calling Telegram. When
the user writes to the bot again, `forget_unblocked` (a handler before every other) forgets it.

Every broadcast calls `deliver` once per chat::

    delivery = await deliver(application, chat_id, partial(bot.send_message, chat_id, text))
    if delivery is Delivery.DELIVERED: ...
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from enum import StrEnum
from typing import Any, TypeAlias
from weakref import WeakKeyDictionary

from telegram import ChatMember, Update
from telegram.error import Forbidden, TelegramError
from telegram.ext import Application

from bot.context import BotContext, educonnect
from bot.services.chats import blocked_chat_ids, record_blocked_chat, unblock_chat

log = logging.getLogger(__name__)

AnyApplication: TypeAlias = Application[Any, Any, Any, Any, Any, Any]


class Delivery(StrEnum):
    """What became of one chat's messages in a broadcast."""

    DELIVERED = "delivered"
    BLOCKED = "blocked"  # a 403 now: recorded, skipped from now on
    SKIPPED = "skipped"  # recorded as blocked before: Telegram was not called
    FAILED = "failed"  # another Telegram error (a 429 retried in vain, a network error): logged


# The chats known to have blocked the bot, per running application (a mirror of `blocked_chat`).
_blocked: WeakKeyDictionary[AnyApplication, set[int]] = WeakKeyDictionary()
# The status a user's own my_chat_member update has when they block the bot or leave the chat.
_GONE = frozenset({ChatMember.BANNED, ChatMember.LEFT})


async def blocked_chats(application: AnyApplication) -> set[int]:
    """The chats that blocked the bot, read from the database on the first call only."""
    known = _blocked.get(application)
    if known is None:
        loaded = await educonnect(application).db.run(blocked_chat_ids)
        # Another caller may have loaded them meanwhile: keep the first set, which it may
        # already have added to.
        known = _blocked.setdefault(application, loaded)
    return known


async def deliver(
    application: AnyApplication, chat_id: int, send: Callable[[], Awaitable[object]]
) -> Delivery:
    """Run `send()` (every message this chat gets in this broadcast, in order) unless the chat
    blocked the bot before; a 403 records the chat as blocked. Never raises a Telegram error:
    the caller goes on with the next chat."""
    blocked = await blocked_chats(application)
    if chat_id in blocked:
        return Delivery.SKIPPED
    try:
        await send()
    except Forbidden as error:
        blocked.add(chat_id)
        log.info("a chat blocked the bot (%s): skipped from now on", error.message)
        try:
            await educonnect(application).db.run(
                record_blocked_chat, chat_id=chat_id, reason=error.message
            )
        except Exception:  # skipped until a restart anyway; the other chats must still go
            log.exception("could not record a chat that blocked the bot")
        return Delivery.BLOCKED
    except TelegramError as error:
        log.warning(
            "a broadcast message could not be delivered (%s: %s)", type(error).__name__, error
        )
        return Delivery.FAILED
    return Delivery.DELIVERED


def _blocks_now(update: Update) -> bool:
    """Whether the update is the user blocking the bot (or leaving), not writing to it."""
    member = update.my_chat_member
    return member is not None and member.new_chat_member.status in _GONE


async def forget_unblocked(update: object, context: BotContext) -> None:
    """A user the bot believed blocked wrote to it (or unblocked it): forget the block, so the
    next broadcasts reach them. A set lookup per update; the database only in that rare case.
    Never stops the update: the other handlers run as usual."""
    if not isinstance(update, Update) or update.effective_user is None or _blocks_now(update):
        return
    user_id = update.effective_user.id
    try:
        blocked = await blocked_chats(context.application)
        if user_id not in blocked:
            return
        await context.db.run(unblock_chat, chat_id=user_id)
        blocked.discard(user_id)
    except Exception:  # a database hiccup here must not cost the user their answer
        log.exception("could not forget that a chat had blocked the bot")
