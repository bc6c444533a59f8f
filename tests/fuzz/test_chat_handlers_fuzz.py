"""Fuzzing the bot itself: commands with random arguments and forged button data, sent through
the Bot API emulator to the real application. Every update gets an answer (a reply, or the
button's query answered) and no exception reaches the error handler."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, TypeVar

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from sqlmodel import Session, col

from bot.context import BotContext
from bot.sandbox.botapi import ChatMessage, SandboxUser
from bot.services.accounts import linked_guardians
from bot.services.accounts.family_links import create_link_codes
from bot.services.roster import import_roster
from bot.services.schools import create_inspector_invitation
from models import Account, Guardian, utcnow
from tests.conftest import SAMPLES
from tests.fuzz.conftest import NOW, examples
from tests.fuzz.strategies import MAX_MESSAGE, forged_button_data, onde_files, typed
from tests.handlers.conftest import BotHarness, DirectorChat

T = TypeVar("T")

SECOND_UAI = "0759876K"


@dataclass
class Errors:
    """What reached the application's error handlers."""

    seen: list[BaseException] = field(default_factory=list)

    async def collect(self, update: object, context: BotContext) -> None:
        if context.error is not None:
            self.seen.append(context.error)


@dataclass
class Chats:
    """The people chatting with the running bot, and what its error handlers received."""

    harness: BotHarness
    director: DirectorChat
    inspector: SandboxUser
    family: SandboxUser
    linked_family: SandboxUser  # linked to a guardian of the school by the code of a letter
    errors: Errors
    loop: asyncio.AbstractEventLoop

    def run(self, action: Callable[[], Coroutine[Any, Any, T]]) -> T:
        """Run a coroutine of the test on the bot's event loop, from Hypothesis' thread."""
        return asyncio.run_coroutine_threadsafe(action(), self.loop).result(timeout=60)

    def check_no_error(self, what: str) -> None:
        if self.errors.seen:
            error = self.errors.seen[0]
            self.errors.seen.clear()
            kind = f"{type(error).__name__}: {str(error)[:200]}"
            raise AssertionError(f"{what[:100]!r} reached the error handler ({kind})") from error


@pytest.fixture
async def chats(bot_harness: BotHarness) -> Chats:
    """A director of two schools (the first with the demo roster), an inspector of both, and a
    family; the errors the application meets are collected."""
    director = await bot_harness.new_director()
    files = [(name, (SAMPLES / name).read_bytes()) for name in ("eleves.csv", "responsables.csv")]
    bot_harness.call(
        import_roster, school_id=director.school_id, files=files, actor="test", now=NOW
    )
    await bot_harness.new_director(SECOND_UAI, school_name="École Victor Hugo", user=director.user)
    invitation = bot_harness.call(
        create_inspector_invitation, uais=[director.uai, SECOND_UAI], actor="test"
    )
    inspector = bot_harness.new_family("Inspecteur")
    await inspector.send_text(f"/start {invitation.code}")
    await bot_harness.settle()
    assert inspector.last_bot_message is not None
    family = bot_harness.new_family("Parent")
    linked = bot_harness.new_family("Parent lié")
    await linked.send_text(f"/start {bot_harness.call(_link_code, school_id=director.school_id)}")
    await bot_harness.settle()
    assert bot_harness.call(linked_guardians, telegram_user_id=linked.id)
    errors = Errors()
    bot_harness.app.add_error_handler(errors.collect)
    return Chats(
        bot_harness, director, inspector, family, linked, errors, asyncio.get_running_loop()
    )


def _link_code(session: Session, *, school_id: int) -> str:
    """The code of a letter for the school's first guardian with an address (valid a week)."""
    account_id = session.execute(
        select(col(Account.id))
        .join(Guardian, col(Guardian.id) == col(Account.guardian_id))
        .where(col(Guardian.school_id) == school_id, col(Guardian.email).is_not(None))
        .order_by(col(Account.id))
        .limit(1)
    ).scalar_one()
    expiry = utcnow() + timedelta(days=7)
    return create_link_codes(session, expiries={account_id: expiry})[account_id]


@pytest.fixture(autouse=True)
def quiet_logs(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    # Each example logs its update; pytest keeping them all costs more than the bot's work.
    caplog.set_level("CRITICAL")
    yield


# --- Commands with random arguments -----------------------------------------------------------

_DIRECTOR_COMMANDS = (
    "/lsu", "/responsables", "/etat", "/envoyer", "/relancer", "/pdf", "/ecole", "/langue",
    "/classes", "/digest", "/demandes", "/export", "/aide", "/start",
)  # fmt: skip
# "": the arguments alone, as free text.
_FAMILY_COMMANDS = ("/start", f"/start ecole_{SECOND_UAI}", "/langue", "/aide", "/etat", "/lsu", "")
_INSPECTOR_COMMANDS = ("/etat", "/etat district", f"/etat {SECOND_UAI}", "/langue")


def _message(command: str, arguments: str) -> str:
    text = f"{command} {arguments}".strip() or "?"
    return text[:MAX_MESSAGE]


async def _send(chats: Chats, user: SandboxUser, text: str) -> list[ChatMessage]:
    """Send `text` and wait until the bot has handled it; what it sent back."""
    user.drain()
    await user.send_text(text)
    await chats.harness.settle()
    return [event.message for event in user.drain() if event.kind == "sent"]


_COMMANDS = st.sampled_from(
    [(0, command) for command in _DIRECTOR_COMMANDS]
    + [(1, command) for command in _FAMILY_COMMANDS]
    + [(2, command) for command in _INSPECTOR_COMMANDS]
    + [(3, command) for command in _FAMILY_COMMANDS]
)


async def test_commands_with_random_arguments_get_an_answer_and_no_error(chats: Chats) -> None:
    people = [chats.director.user, chats.family, chats.inspector, chats.linked_family]

    @settings(max_examples=examples(0.15))
    @given(_COMMANDS, typed())
    @example((0, "/lsu"), "99999999999999999999/1/1")
    @example((0, "/lsu"), "x" * 4090)
    @example((0, "/responsables"), "é" * 4000)
    @example((0, "/envoyer"), "x" * 4000)
    @example((2, "/etat"), "0751234Xé" * 400)
    def send(command: tuple[int, str], arguments: str) -> None:
        user = people[command[0]]
        text = _message(command[1], arguments)
        replies = chats.run(lambda: _send(chats, user, text))
        chats.check_no_error(text)
        assert replies, f"no answer to {text[:80]!r}"
        # Leave no conversation waiting for the next example's input.
        chats.run(lambda: _send(chats, user, "/annuler"))
        chats.check_no_error("/annuler")

    await asyncio.to_thread(send)


# --- Forged button data -----------------------------------------------------------------------


async def _press(chats: Chats, user: SandboxUser, message: ChatMessage, data: str) -> str | None:
    """Press a button carrying `data` under `message`; the text of the bot's answer."""
    user.drain()
    pressed = await user.press_data(message, data)
    await chats.harness.settle()
    answer = await user.answer_for(pressed, timeout=5)
    return answer.text


async def _under(chats: Chats, user: SandboxUser, command: str) -> ChatMessage:
    """A message of the bot in `user`'s chat, to press forged buttons under."""
    replies = await _send(chats, user, command)
    assert replies, command
    return replies[-1]


async def test_forged_button_data_is_answered_and_refused_cleanly(chats: Chats) -> None:
    people = [
        (chats.director.user, await _under(chats, chats.director.user, "/responsables ecole")),
        (chats.family, await _under(chats, chats.family, "/aide")),
        (chats.inspector, await _under(chats, chats.inspector, "/etat district")),
        (chats.linked_family, await _under(chats, chats.linked_family, "/aide")),
    ]

    @settings(max_examples=examples(0.2))
    @given(st.integers(0, 3), forged_button_data)
    @example(0, "etat:c²")
    @example(0, "env:s:c٣")
    @example(0, "fa:99999999999999999999")
    @example(0, "hd:open:99999999999999999999")
    @example(0, "lsu:d:2027-02-30")
    @example(0, "lsu:m:2027-13")
    @example(0, "dg:weekday:99999999999999999999")
    @example(0, "resp:p:e:-:-:99999999999999999999")
    @example(0, "pdf:ret:99999999999999999999")
    @example(1, "fh:pw:99999999999999999999")
    @example(1, "tel:99999999999999999999")
    @example(1, "fr:school:99999999999999999999")
    @example(1, "fr:school:1")
    @example(1, "fr:skip")
    @example(1, "fh:active:y")
    @example(1, "fh:go:password")
    @example(1, "fh:file:other")
    @example(1, "fa:1")
    @example(0, "hd:rep:1")
    @example(0, "hd:who:1:1")
    @example(0, "imp:go")
    @example(0, "env:go:abc")
    @example(0, "pdf:pw:abcdefghijkl")
    @example(0, "ga:email:1")
    @example(2, "ien:99999999999:e")
    @example(2, "ien:p0")  # under the district's chart: a photo, no text to edit
    @example(1, "tel:1")  # under a message whose buttons are already off
    @example(1, "fh:pw:1")
    def press(person: int, data: str) -> None:
        user, message = people[person]
        chats.run(lambda: _press(chats, user, message, data))
        chats.check_no_error(data)
        chats.run(lambda: _send(chats, user, "/annuler"))
        chats.check_no_error("/annuler")

    await asyncio.to_thread(press)


async def test_a_button_pressed_twice_answers_the_second_press_without_error(
    chats: Chats,
) -> None:
    """A double tap: the first press takes the buttons off, the second finds none to take off
    (Telegram refuses that edit) and does nothing more."""
    family = chats.family
    proposal = await _under(chats, family, "je n'ai pas reçu le mail")
    data = next(b.callback_data for row in proposal.inline_keyboard for b in row if b.callback_data)
    for _press_number in range(2):
        await _press(chats, family, proposal, data)
        chats.check_no_error(data)
    assert not family.message(proposal.message_id).inline_keyboard


# --- Conversations driven by random steps -----------------------------------------------------

# Real buttons that start heavy work (e-mails drafted, PDFs drawn with hashed passwords): the
# fuzzer presses them only forged, with a nonce that matches nothing.
_HEAVY = ("env:go", "rel:remind", "rel:reset", "pdf:go", "pdf:zip", "dg:now", "imp:go")


def _real_buttons(user: SandboxUser) -> tuple[ChatMessage | None, list[str]]:
    """The bot's latest message with buttons, and their data (heavy ones left out)."""
    for message in reversed(user.bot_messages):
        data = [b.callback_data for row in message.inline_keyboard for b in row if b.callback_data]
        if data:
            return message, [d for d in data if not d.startswith(_HEAVY)]
    return None, []


async def _step(chats: Chats, user: SandboxUser, step: tuple[str, object]) -> str:
    """Play one step; what it was, for the failure report."""
    kind, value = step
    if kind == "text" or kind == "command":
        text = str(value)[:MAX_MESSAGE] or "?"
        replies = await _send(chats, user, text)
        assert replies, f"no answer to {text[:80]!r}"
        return text
    if kind == "file":
        assert isinstance(value, bytes)
        user.drain()
        await user.send_document(value, filename="CSVExtraction.csv", mime_type="text/csv")
        await chats.harness.settle()
        return f"file of {len(value)} bytes"
    message, buttons = _real_buttons(user)
    if message is None:
        return "no button to press"
    assert isinstance(value, int | str)
    data = buttons[value % len(buttons)] if isinstance(value, int) and buttons else str(value)
    await _press(chats, user, message, data)
    return f"button {data!r}"


def _steps(commands: tuple[str, ...]) -> st.SearchStrategy[list[tuple[str, object]]]:
    command = st.builds(
        lambda name, arguments: ("command", f"{name} {arguments}".strip()),
        st.sampled_from(commands),
        st.one_of(st.sampled_from(["", "ecole", "CE1", "cm2 sans", "tous", "district"]), typed()),
    )
    step = st.one_of(
        command,
        st.tuples(st.just("text"), st.one_of(typed(), st.emails(), st.sampled_from(_TEXTS))),
        st.tuples(st.just("press"), st.integers(0, 30)),
        st.tuples(st.just("press"), st.integers(0, 30)),
        st.tuples(st.just("forge"), forged_button_data),
    )
    return st.lists(step, min_size=1, max_size=5)


_TEXTS = (
    "je n'ai pas reçu le mail", "mot de passe oublié", "Léa Dubois", "Jules Ferry Lille",
    "CE1", "0751234X", "aide", "Cartable-Bleu-2026", "oui", "non", "f_" + "A" * 32,
)  # fmt: skip


async def test_conversations_driven_by_random_steps_never_fail(chats: Chats) -> None:
    """Commands, free text, real and forged buttons and uploaded files, in random order: the
    conversations' steps read what they are given, or say what is wrong."""
    people = {
        0: (chats.director.user, _DIRECTOR_COMMANDS),
        1: (chats.family, _FAMILY_COMMANDS),
        2: (chats.inspector, _INSPECTOR_COMMANDS),
        3: (chats.linked_family, _FAMILY_COMMANDS),
    }
    director_steps = st.one_of(
        _steps(_DIRECTOR_COMMANDS),
        st.lists(st.tuples(st.just("file"), onde_files()), min_size=1, max_size=2).map(
            lambda files: [*files, ("press", 0)]
        ),
    )

    @settings(max_examples=examples(0.1))
    @given(st.data(), st.integers(0, 3))
    def converse(data: st.DataObject, person: int) -> None:
        user, commands = people[person]
        steps = data.draw(director_steps if person == 0 else _steps(commands), label="steps")
        for step in steps:
            what = chats.run(lambda step=step: _step(chats, user, step))  # type: ignore[misc]
            chats.check_no_error(what)
        chats.run(lambda: _send(chats, user, "/annuler"))
        chats.check_no_error("/annuler")

    await asyncio.to_thread(converse)
