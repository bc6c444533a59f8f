"""Steps the end-to-end tests share: a director joins, imports the sample school and presses
buttons; the confirmation link a test SMTP server received."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path

from bot.sandbox.botapi import ChatMessage, ThreadedBotApi, ThreadedUser
from bot.services.roster.onde.importer import import_roster
from tests.e2e.conftest import REPLY_TIMEOUT, BotProcess, SeededSchool
from tests.mailtools import SmtpTestServer, plain_text


def buttons(message: ChatMessage) -> list[str]:
    return [b.callback_data for row in message.inline_keyboard for b in row if b.callback_data]


def offering(prefix: str) -> Callable[[ChatMessage], bool]:
    return lambda message: any(data.startswith(prefix) for data in buttons(message))


def press(user: ThreadedUser, message: ChatMessage, prefix: str) -> None:
    data = next(data for data in buttons(message) if data.startswith(prefix))
    user.drain()
    callback = user.press(message, data)
    user.answer_for(callback, timeout=REPLY_TIMEOUT)


def import_samples(bot: BotProcess, school: SeededSchool, folder: Path) -> None:
    files = [(name, (folder / name).read_bytes()) for name in ("eleves.csv", "responsables.csv")]
    bot.service(import_roster, school_id=school.id, files=files, actor="e2e")


CONFIRMATION_LINK = re.compile(r"https?://\S+/confirmer/[A-Za-z0-9_-]+")


def confirmation_link(smtp: SmtpTestServer, address: str, timeout: float = 30.0) -> str:
    """The link of the first e-mail the SMTP server accepted for `address`."""
    deadline = time.monotonic() + timeout
    while True:
        for message in smtp.messages:
            if address in message.rcpt_tos:
                match = CONFIRMATION_LINK.search(plain_text(message.parsed()))
                assert match, plain_text(message.parsed())
                return match[0]
        assert time.monotonic() < deadline, f"no e-mail reached {address}"
        time.sleep(0.1)


def become_director(bot_api: ThreadedBotApi, school: SeededSchool) -> ThreadedUser:
    user = bot_api.new_user("Claire", last_name="Martin")
    user.send_text(f"/start {school.code}")
    user.wait_for(lambda m: school.name in m.content or school.uai in m.content, REPLY_TIMEOUT)
    return user
