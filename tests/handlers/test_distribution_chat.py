"""/envoyer, /relancer and /pdf in chat, as a director meets them, against the real bot, the Bot
API emulator and the outbox's sender (mail into the data folder's Maildir, or a local SMTP
server where the timing matters)."""

from __future__ import annotations

import asyncio
import io
import itertools
import re
import time
import zipfile
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from pathlib import Path

import pytest
from pypdf import PdfReader
from sqlalchemy import select, update
from sqlmodel import Session, col
from telegram.ext import Application

import handlers
from bot.jobs import OutboxSender, RunningSender, start_sender, sweep_deletions
from bot.sandbox.botapi import ChatMessage, SandboxUser
from bot.services.accounts.passwords import PROVISIONAL_ALPHABET, verify_password
from bot.services.distribution.planning import plan_email_distribution, plan_paper_letters
from bot.services.letters.settings import (
    get_letter_password,
    get_retention_hours,
    set_letter_password,
)
from bot.services.mail.transport import maildir_path
from bot.services.roster.onde.importer import import_roster
from handlers.distribution import progress as distribution_progress
from handlers.distribution import state
from models import (
    Account,
    AccountState,
    AuditEvent,
    DistributionChannel,
    Guardian,
    ScheduledDeletion,
    School,
    utcnow,
)
from tests.handlers.conftest import BotHarness, DirectorChat
from tests.mailtools import SmtpTestServer, plain_text, read_maildir

pytestmark = [
    pytest.mark.timeout(90),
    pytest.mark.filterwarnings("ignore::telegram.warnings.PTBUserWarning"),
]

SAMPLE_FILES = ("eleves.csv", "responsables.csv")
DOCUMENT_PASSWORD = "Cartable-Bleu-2026"
PASSWORD_IN_TEXT = re.compile(rf"\b[{PROVISIONAL_ALPHABET}]{{8}}\b")


# --- helpers ----------------------------------------------------------------------------------


@pytest.fixture
async def sender(bot_harness: BotHarness) -> AsyncIterator[RunningSender]:
    """The outbox's sender, as the bot process runs it beside the application."""
    running = start_sender(
        OutboxSender.from_settings(bot_harness.settings, bot_harness.engine, poll_interval=0.2)
    )
    yield running
    await running.stop()


@pytest.fixture
def fast_progress(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(distribution_progress, "POLL_INTERVAL", 0.1)
    monkeypatch.setattr(distribution_progress, "EDIT_INTERVAL", 0.5)


def slow_menus(monkeypatch: pytest.MonkeyPatch) -> None:
    """Command menus that take 1.5 s to install, as hundreds of directors' do at a start: the
    scheduler, which starts after them, then finds the jobs added for the start late."""
    install = handlers.install_command_menus

    async def slowly(application: Application) -> None:
        await asyncio.sleep(1.5)
        await install(application)

    monkeypatch.setattr(handlers, "install_command_menus", slowly)


async def director_with_roster(harness: BotHarness, samples_dir: Path) -> DirectorChat:
    director = await harness.new_director()
    files = [(name, (samples_dir / name).read_bytes()) for name in SAMPLE_FILES]
    harness.call(import_roster, school_id=director.school_id, files=files, actor="test")
    return director


def button_data(message: ChatMessage) -> list[str]:
    return [b.callback_data for row in message.inline_keyboard for b in row if b.callback_data]


def has_button(prefix: str) -> Callable[[ChatMessage], bool]:
    """A message with a button whose data starts with `prefix` (confirmations end with the
    preview's nonce)."""
    return lambda message: any(value.startswith(prefix) for value in button_data(message))


def data_of(message: ChatMessage, prefix: str) -> str:
    return next(value for value in button_data(message) if value.startswith(prefix))


def with_prefix(prefix: str) -> Callable[[ChatMessage], bool]:
    return lambda message: any(value.startswith(prefix) for value in button_data(message))


async def ask(user: SandboxUser, text: str, wanted: Callable[[ChatMessage], bool]) -> ChatMessage:
    user.drain()
    await user.send_text(text)
    return await user.wait_for(wanted, timeout=20)


async def press(user: SandboxUser, message: ChatMessage, prefix: str) -> None:
    """Press the message's button whose data starts with `prefix`."""
    callback = await user.press(message, data_of(message, prefix))
    await user.answer_for(callback, timeout=20)


def accounts(harness: BotHarness, school_id: int) -> dict[int, Account]:
    with Session(harness.engine) as session:
        rows = session.execute(
            select(Account)
            .join(Guardian, col(Guardian.id) == col(Account.guardian_id))
            .where(col(Guardian.school_id) == school_id)
        ).scalars()
        return {row.id: row for row in rows if row.id is not None}


def account_in(text: str, by_identifier: dict[str, Account]) -> Account:
    """The account whose identifier the text holds (the longest: « a.roux » is in
    « a.roux2 »)."""
    found = [i for i in by_identifier if re.search(rf"(?<![\w.]){re.escape(i)}(?![\w])", text)]
    assert found, "no identifier in the text"
    return by_identifier[max(found, key=len)]


def letters_ready(message: ChatMessage) -> bool:
    return message.content.startswith("✅") and message.document is None


def contains_summary(message: ChatMessage) -> bool:
    return "✅" in message.content and "❌" in message.content


# --- /envoyer ---------------------------------------------------------------------------------


async def test_envoyer_class_previews_sends_and_summarises(
    bot_harness: BotHarness, samples_dir: Path, sender: RunningSender, fast_progress: None
) -> None:
    director = await director_with_roster(bot_harness, samples_dir)
    user = director.user
    preview = bot_harness.call(
        plan_email_distribution, school_id=director.school_id, scope_tokens=["CM1"]
    )
    expected = {entry.account_id for entry in preview.planned}
    assert expected and preview.skipped  # CM1 has guardians without an address

    shown = await ask(user, "/envoyer CM1", has_button(state.SEND))
    assert "CM1" in shown.content
    assert str(len(expected)) in shown.content
    assert str(preview.skip_counts()[next(iter(preview.skip_counts()))]) in shown.content
    # Nothing is sent before the confirmation.
    assert not maildir_path(bot_harness.settings).exists() or not read_maildir(
        maildir_path(bot_harness.settings)
    )

    await press(user, shown, state.SEND)
    summary = await user.wait_for(contains_summary, timeout=30)
    assert f"✅ Sent: {len(expected)}" in summary.content or str(len(expected)) in summary.content

    mails = read_maildir(maildir_path(bot_harness.settings))
    assert len(mails) == len(expected)
    states = accounts(bot_harness, director.school_id)
    by_identifier = {account.identifier: account for account in states.values()}
    for mail in mails:
        text = plain_text(mail)
        account = account_in(text, by_identifier)
        assert account.id in expected
        password = PASSWORD_IN_TEXT.findall(text)
        assert any(verify_password(account.password_hash or "", p) for p in password)
    for account_id in expected:
        assert states[account_id].state == AccountState.NOTIFIED
        assert states[account_id].distribution_channel == DistributionChannel.EMAIL
    with Session(bot_harness.engine) as session:
        actions = set(session.execute(select(col(AuditEvent.action))).scalars())
    assert "distribution.emails_queued" in actions


async def test_envoyer_alone_asks_for_the_class_with_buttons(
    bot_harness: BotHarness, samples_dir: Path
) -> None:
    director = await director_with_roster(bot_harness, samples_dir)
    question = await ask(director.user, "/envoyer", with_prefix(f"{state.EMAIL_PREFIX}s:"))
    cm1 = next(
        b.callback_data
        for row in question.inline_keyboard
        for b in row
        if b.text == "CM1" and b.callback_data
    )
    director.user.drain()
    await press(director.user, question, cm1)
    shown = await director.user.wait_for(has_button(state.SEND), timeout=20)
    assert "CM1" in shown.content


async def test_envoyer_several_classes_and_the_whole_school(
    bot_harness: BotHarness, samples_dir: Path
) -> None:
    director = await director_with_roster(bot_harness, samples_dir)
    both = bot_harness.call(
        plan_email_distribution, school_id=director.school_id, scope_tokens=["CE1", "CM1"]
    )
    shown = await ask(director.user, "/envoyer CE1 CM1", has_button(state.SEND))
    assert "CE1" in shown.content and "CM1" in shown.content
    assert str(len(both.planned)) in shown.content
    school = bot_harness.call(
        plan_email_distribution, school_id=director.school_id, scope_tokens=["ecole"]
    )
    shown = await ask(director.user, "/envoyer ecole", has_button(state.SEND))
    assert str(len(school.planned)) in shown.content
    # A class label with spaces is one class, not two words.
    shown = await ask(director.user, "/envoyer GS M. Petit", has_button(state.SEND))
    assert "GS M. Petit" in shown.content


async def test_unknown_class_lists_the_known_ones(
    bot_harness: BotHarness, samples_dir: Path
) -> None:
    director = await director_with_roster(bot_harness, samples_dir)
    reply = await ask(director.user, "/envoyer CM7", with_prefix(f"{state.EMAIL_PREFIX}s:"))
    assert "CM7" in reply.content and "CE2-CM1" in reply.content


async def test_cancel_and_older_previews_send_nothing(
    bot_harness: BotHarness, samples_dir: Path
) -> None:
    director = await director_with_roster(bot_harness, samples_dir)
    user = director.user
    shown = await ask(user, "/envoyer CM1", has_button(state.SEND))
    await press(user, shown, state.CANCEL_SEND)
    await bot_harness.settle()
    older = await ask(user, "/envoyer CM1", has_button(state.SEND))
    newer = await ask(user, "/envoyer CE1", has_button(state.SEND))
    # The older preview's button does not confirm the newer one.
    callback = await user.press(older, data_of(older, state.SEND))
    answer = await user.answer_for(callback)
    assert answer.show_alert
    await bot_harness.settle()
    await asyncio.sleep(0.3)
    assert all(
        a.state == AccountState.NOT_NOTIFIED
        for a in accounts(bot_harness, director.school_id).values()
    )
    assert not any("⏳" in m.content for m in user.bot_messages)
    # The newer one still works.
    await press(user, newer, state.SEND)
    await user.wait_for(lambda m: "⏳" in m.content, timeout=20)


async def test_non_director_is_refused(bot_harness: BotHarness) -> None:
    family = bot_harness.new_family()
    for command in ("/envoyer CM1", "/pdf CM1", "/relancer"):
        family.drain()
        await family.send_text(command)
        reply = await family.next_message()
        assert "/start" in reply.content


async def test_progress_is_throttled_and_the_director_keeps_using_the_bot(
    bot_harness: BotHarness, samples_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A slow mail server: the progress message is edited at most every EDIT_INTERVAL seconds,
    never with the same text, and /etat answers while the batch is being sent."""
    monkeypatch.setattr(distribution_progress, "POLL_INTERVAL", 0.1)
    monkeypatch.setattr(distribution_progress, "EDIT_INTERVAL", 1.0)
    director = await director_with_roster(bot_harness, samples_dir)
    with SmtpTestServer() as smtp:
        original = smtp.handler.handle_DATA

        async def slow(*args: object) -> str:
            await asyncio.sleep(0.15)
            return await original(*args)  # type: ignore[arg-type]

        smtp.handler.handle_DATA = slow  # type: ignore[method-assign]
        settings = bot_harness.settings.model_copy(
            update={"smtp_host": "127.0.0.1", "smtp_port": smtp.port, "smtp_security": "none"}
        )
        running = start_sender(
            OutboxSender.from_settings(settings, bot_harness.engine, poll_interval=0.2)
        )
        try:
            shown = await ask(director.user, "/envoyer CM1", has_button(state.SEND))
            planned = len(
                bot_harness.call(
                    plan_email_distribution, school_id=director.school_id, scope_tokens=["CM1"]
                ).planned
            )
            await press(director.user, shown, state.SEND)
            progress = await director.user.wait_for(lambda m: "▱" in m.content, timeout=30)
            await asyncio.sleep(1.0)
            director.user.drain()
            await director.user.send_text("/etat")
            status = await director.user.next_message(timeout=10)
            assert len(smtp.messages) < planned, "the batch was over before /etat"
            assert "🔴" in status.content
            await director.user.wait_for(contains_summary, timeout=60)
        finally:
            await running.stop()
    assert len(smtp.messages) == planned
    edits = [
        call
        for call in bot_harness.server.calls_to("editMessageText")
        if call.params.get("message_id") == progress.message_id
    ]
    assert len(edits) >= 2
    assert all(call.status == 200 for call in edits), "an edit was refused (not modified?)"
    texts = [call.params.get("text") for call in edits]
    assert all(a != b for a, b in itertools.pairwise(texts))
    # The bar's edits: not "Preparing…" before them, nor the last one that closes the batch.
    times = [call.time for call in edits if "▱" in str(call.params.get("text"))]
    assert len(times) >= 2
    assert all(b - a >= 0.95 for a, b in itertools.pairwise(times))


async def test_a_batch_left_in_progress_is_followed_to_its_summary_after_a_slow_restart(
    bot_harness: BotHarness,
    samples_dir: Path,
    fast_progress: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The bot stops while its e-mails wait in the outbox; after a start slow enough for
    APScheduler's one-second default to drop a late job, the progress is followed again and
    the director still gets the summary."""
    director = await director_with_roster(bot_harness, samples_dir)
    expected = {
        entry.account_id
        for entry in bot_harness.call(
            plan_email_distribution, school_id=director.school_id, scope_tokens=["CM1"]
        ).planned
    }
    shown = await ask(director.user, "/envoyer CM1", has_button(state.SEND))
    await press(director.user, shown, state.SEND)
    await director.user.wait_for(lambda m: "▱" in m.content, timeout=30)
    await bot_harness.stop()  # no sender ran: every e-mail is still in the outbox
    maildir = maildir_path(bot_harness.settings)
    assert not maildir.exists() or not read_maildir(maildir)
    slow_menus(monkeypatch)
    director.user.drain()
    await bot_harness.start()
    running = start_sender(
        OutboxSender.from_settings(bot_harness.settings, bot_harness.engine, poll_interval=0.2)
    )
    try:
        summary = await director.user.wait_for(contains_summary, timeout=30)
    finally:
        await running.stop()
    assert str(len(expected)) in summary.content
    assert len(read_maildir(maildir)) == len(expected)
    states = accounts(bot_harness, director.school_id)
    assert all(states[account_id].state == AccountState.NOTIFIED for account_id in expected)


# --- /pdf -------------------------------------------------------------------------------------


async def type_document_password(harness: BotHarness, user: SandboxUser, password: str) -> None:
    user.drain()
    typed = await user.send_text(password)
    await harness.settle()
    assert (user.chat_id, typed.message_id) in harness.server.deleted
    for message in user.bot_messages:
        assert password not in message.content


async def test_pdf_asks_for_the_document_password_then_sends_an_encrypted_pdf(
    bot_harness: BotHarness, samples_dir: Path
) -> None:
    director = await director_with_roster(bot_harness, samples_dir)
    user = director.user
    preview = bot_harness.call(
        plan_paper_letters, school_id=director.school_id, scope_tokens=["CM1"]
    )
    expected = [entry.account_id for entry in preview.planned]
    assert expected

    user.drain()
    await user.send_text("/pdf CM1")
    prompt = await user.next_message()
    assert "CM1" in prompt.content and "12" in prompt.content
    # Too short: refused, and deleted too.
    await type_document_password(bot_harness, user, "Zq7!x")
    with Session(bot_harness.engine) as session:
        school = session.get(School, director.school_id)
        assert school is not None and school.letter_password_encrypted is None
    await type_document_password(bot_harness, user, DOCUMENT_PASSWORD)
    shown = await user.wait_for(has_button(state.PRINT), timeout=20)
    assert str(len(expected)) in shown.content

    await press(user, shown, state.PRINT)
    sent = await user.wait_for(lambda m: m.document is not None, timeout=60)
    await user.wait_for(letters_ready, timeout=20)  # recorded once the PDF is in the chat
    assert sent.document is not None
    assert sent.document.filename and sent.document.filename.endswith(".pdf")
    reader = PdfReader(io.BytesIO(sent.document.data))
    assert reader.is_encrypted
    assert not reader.decrypt("wrong password")
    assert reader.decrypt(DOCUMENT_PASSWORD)
    assert len(reader.pages) == len(expected)
    states = accounts(bot_harness, director.school_id)
    by_identifier = {a.identifier: a for a in states.values()}
    for page in reader.pages:
        text = " ".join(page.extract_text().split())
        account = account_in(text, by_identifier)
        assert account.id in expected
        assert any(
            verify_password(account.password_hash or "", p) for p in PASSWORD_IN_TEXT.findall(text)
        ), (text, PASSWORD_IN_TEXT.findall(text), account.identifier)
    for account_id in expected:
        assert states[account_id].state == AccountState.NOTIFIED
        assert states[account_id].distribution_channel == DistributionChannel.PAPER
    hours = bot_harness.call(get_retention_hours, school_id=director.school_id)
    assert str(hours) in sent.content
    with Session(bot_harness.engine) as session:
        scheduled = session.execute(select(ScheduledDeletion)).scalars().all()
    assert [(row.chat_id, row.message_id) for row in scheduled] == [(user.chat_id, sent.message_id)]

    # The individual documents, on request.
    user.drain()
    await press(user, sent, state.ZIP)
    archive = await user.wait_for(
        lambda m: m.document is not None and (m.document.filename or "").endswith(".zip"),
        timeout=60,
    )
    assert archive.document is not None
    with zipfile.ZipFile(io.BytesIO(archive.document.data)) as bundle:
        names = bundle.namelist()
        assert len(names) == len(expected)
        for name in names:
            single = PdfReader(io.BytesIO(bundle.read(name)))
            assert single.is_encrypted and single.decrypt(DOCUMENT_PASSWORD)
            assert len(single.pages) == 1


async def test_pdf_is_deleted_after_the_retention_even_across_a_slow_restart(
    bot_harness: BotHarness, samples_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    director = await director_with_roster(bot_harness, samples_dir)
    bot_harness.call(
        set_letter_password,
        school_id=director.school_id,
        password=DOCUMENT_PASSWORD,
        secret_key=bot_harness.settings.secret_key_source,
        actor="test",
    )
    user = director.user
    shown = await ask(user, "/pdf CM1", has_button(state.PRINT))
    await press(user, shown, state.PRINT)
    first = await user.wait_for(lambda m: m.document is not None, timeout=60)
    await user.wait_for(letters_ready, timeout=20)
    shown = await ask(user, "/pdf CP A", has_button(state.PRINT))
    await press(user, shown, state.PRINT)
    second = await user.wait_for(
        lambda m: m.document is not None and m.message_id != first.message_id, timeout=60
    )
    await user.wait_for(letters_ready, timeout=20)
    await bot_harness.settle()
    # The first one's time has come while the bot runs.
    with Session(bot_harness.engine) as session, session.begin():
        session.execute(
            update(ScheduledDeletion)
            .where(col(ScheduledDeletion.message_id) == first.message_id)
            .values(delete_at=utcnow() - timedelta(minutes=1))
        )
    await sweep_deletions(bot_harness.app)
    assert (user.chat_id, first.message_id) in bot_harness.server.deleted
    assert (user.chat_id, second.message_id) not in bot_harness.server.deleted
    # The second one's comes while the bot is down: deleted as soon as it is back.
    await bot_harness.stop()
    with Session(bot_harness.engine) as session, session.begin():
        session.execute(
            update(ScheduledDeletion)
            .where(col(ScheduledDeletion.message_id) == second.message_id)
            .values(delete_at=utcnow() - timedelta(minutes=1))
        )
    slow_menus(monkeypatch)
    await bot_harness.start()
    deadline = time.monotonic() + 10
    while (user.chat_id, second.message_id) not in bot_harness.server.deleted:
        assert time.monotonic() < deadline, "the PDF was not deleted after the restart"
        await asyncio.sleep(0.05)
    with Session(bot_harness.engine) as session:
        assert all(
            row.done_at is not None for row in session.execute(select(ScheduledDeletion)).scalars()
        )


async def test_a_drawn_passphrase_is_offered_and_taken_with_one_button(
    bot_harness: BotHarness, samples_dir: Path
) -> None:
    director = await director_with_roster(bot_harness, samples_dir)
    user = director.user
    prompt = await ask(user, "/pdf CM1", has_button(f"{state.LETTERS_PREFIX}pw:"))
    offered = re.search(r"[a-z2-9]{4}(?:-[a-z2-9]{4}){3}", prompt.content)
    assert offered is not None
    # Eleven characters are not enough any more.
    await type_document_password(bot_harness, user, "Cartable-26")
    key = bot_harness.settings.secret_key_source
    school_id = director.school_id
    assert bot_harness.call(get_letter_password, school_id=school_id, secret_key=key) is None

    await press(user, prompt, f"{state.LETTERS_PREFIX}pw:")
    shown = await user.wait_for(has_button(state.PRINT), timeout=20)

    assert "CM1" in shown.content
    assert (
        bot_harness.call(get_letter_password, school_id=school_id, secret_key=key) == (offered[0])
    )
    await press(user, shown, state.PRINT)
    sent = await user.wait_for(lambda m: m.document is not None, timeout=60)
    assert sent.document is not None
    assert PdfReader(io.BytesIO(sent.document.data)).decrypt(offered[0])


async def test_retention_and_password_settings(bot_harness: BotHarness) -> None:
    director = await bot_harness.new_director()
    user = director.user
    shown = await ask(user, "/pdf conservation", with_prefix(f"{state.LETTERS_PREFIX}ret:"))
    assert "24" in shown.content
    await press(user, shown, f"{state.LETTERS_PREFIX}ret:48")
    await bot_harness.settle()
    assert bot_harness.call(get_retention_hours, school_id=director.school_id) == 48
    await ask(user, "/pdf conservation 1", with_prefix(f"{state.LETTERS_PREFIX}ret:"))
    await bot_harness.settle()
    assert bot_harness.call(get_retention_hours, school_id=director.school_id) == 1
    user.drain()
    await user.send_text("/pdf conservation 100")
    await user.next_message()
    assert bot_harness.call(get_retention_hours, school_id=director.school_id) == 1

    user.drain()
    await user.send_text("/pdf motdepasse")
    await user.next_message()
    await type_document_password(bot_harness, user, DOCUMENT_PASSWORD)
    with Session(bot_harness.engine) as session:
        school = session.get(School, director.school_id)
        assert school is not None and school.letter_password_encrypted
        assert DOCUMENT_PASSWORD not in school.letter_password_encrypted
        events = (
            session.execute(
                select(AuditEvent).where(col(AuditEvent.action) == "school.letter_password_set")
            )
            .scalars()
            .all()
        )
    assert len(events) == 1 and DOCUMENT_PASSWORD not in str(events[0].details)


# --- /relancer --------------------------------------------------------------------------------


def new_mails(box: Path, seen: set[str]) -> list[str]:
    """The plain text of the mails not seen yet (and remember them)."""
    found = []
    for mail in read_maildir(box):
        key = str(mail["Message-ID"])
        if key not in seen:
            seen.add(key)
            found.append(plain_text(mail))
    return found


async def test_relancer_reminder_then_reset(
    bot_harness: BotHarness, samples_dir: Path, sender: RunningSender, fast_progress: None
) -> None:
    director = await director_with_roster(bot_harness, samples_dir)
    user = director.user
    shown = await ask(user, "/envoyer CM1", has_button(state.SEND))
    await press(user, shown, state.SEND)
    await user.wait_for(contains_summary, timeout=30)
    box, seen = maildir_path(bot_harness.settings), set[str]()
    before = accounts(bot_harness, director.school_id)
    by_identifier = {a.identifier: a for a in before.values()}
    passwords: dict[int, str] = {}
    for text in new_mails(box, seen):
        account = account_in(str(text), by_identifier)
        assert account.id is not None
        passwords[account.id] = next(
            p
            for p in PASSWORD_IN_TEXT.findall(str(text))
            if verify_password(account.password_hash or "", p)
        )
    notified = {i for i, a in before.items() if a.state == AccountState.NOTIFIED}
    assert notified and set(passwords) == notified

    shown = await ask(user, "/relancer CM1", has_button(state.REMIND))
    assert has_button(state.RESET)(shown)
    user.drain()
    await press(user, shown, state.REMIND)
    await user.wait_for(contains_summary, timeout=30)
    reminders = new_mails(box, seen)
    assert len(reminders) == len(notified)
    for text in reminders:
        account = account_in(str(text), by_identifier)
        assert account.id in notified
        assert passwords[account.id] not in str(text)  # a reminder carries no password
    after = accounts(bot_harness, director.school_id)
    for account_id in notified:
        assert after[account_id].state == AccountState.NOTIFIED
        assert after[account_id].password_hash == before[account_id].password_hash
        assert after[account_id].distributed_at != before[account_id].distributed_at

    shown = await ask(user, "/relancer CM1", has_button(state.RESET))
    user.drain()
    await press(user, shown, state.RESET)
    await user.wait_for(contains_summary, timeout=30)
    resets = new_mails(box, seen)
    assert len(resets) == len(notified)
    reset = accounts(bot_harness, director.school_id)
    for text in resets:
        account = reset[account_in(str(text), by_identifier).id or 0]
        assert account.state == AccountState.NOTIFIED
        assert any(
            verify_password(account.password_hash or "", p)
            for p in PASSWORD_IN_TEXT.findall(str(text))
        )
        # The previous password stops working.
        assert not verify_password(account.password_hash or "", passwords[account.id or 0])


async def test_relancer_prints_the_reminders_of_guardians_without_an_address(
    bot_harness: BotHarness, samples_dir: Path, sender: RunningSender
) -> None:
    """Paper reminders carry no password but come in the same protected PDF, after the
    document password was asked for."""
    director = await director_with_roster(bot_harness, samples_dir)
    user = director.user
    user.drain()
    await user.send_text("/pdf CM1")
    await user.next_message()
    await type_document_password(bot_harness, user, DOCUMENT_PASSWORD)
    shown = await user.wait_for(has_button(state.PRINT), timeout=20)
    await press(user, shown, state.PRINT)
    first = await user.wait_for(lambda m: m.document is not None, timeout=60)
    await user.wait_for(letters_ready, timeout=20)
    printed = [
        a
        for a in accounts(bot_harness, director.school_id).values()
        if a.distribution_channel == DistributionChannel.PAPER
    ]
    assert first.document is not None and printed

    shown = await ask(user, "/relancer CM1", has_button(state.REMIND))
    await press(user, shown, state.REMIND)
    reminders = await user.wait_for(
        lambda m: m.document is not None and m.message_id != first.message_id, timeout=60
    )
    await user.wait_for(letters_ready, timeout=20)
    assert reminders.document is not None
    reader = PdfReader(io.BytesIO(reminders.document.data))
    assert reader.is_encrypted and reader.decrypt(DOCUMENT_PASSWORD)
    assert len(reader.pages) == len(printed)
    after = accounts(bot_harness, director.school_id)
    for page in reader.pages:
        text = " ".join(page.extract_text().split())
        account = account_in(text, {a.identifier: a for a in printed})
        # A reminder: no password that opens the account.
        assert not any(
            verify_password(after[account.id or 0].password_hash or "", p)
            for p in PASSWORD_IN_TEXT.findall(text)
        )
        assert after[account.id or 0].state == AccountState.NOTIFIED
        assert after[account.id or 0].distributed_at != account.distributed_at
