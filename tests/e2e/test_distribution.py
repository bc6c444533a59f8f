"""Credential distribution end to end: the bot as its own process, the local Bot API server,
and a local SMTP server. What must reach whom is computed here, independently, from the ONDE
sample files; what happened is read from the SMTP server, the chat and the database.
"""

from __future__ import annotations

import csv
import io
import re
import signal
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from email_validator import EmailNotValidError, validate_email
from pypdf import PdfReader
from sqlalchemy import select, update
from sqlmodel import Session, col

from bot.jobs import MAX_UNRECORDED
from bot.sandbox.botapi import ChatMessage, ThreadedBotApi, ThreadedUser
from bot.services.accounts.passwords import PROVISIONAL_ALPHABET, verify_password
from bot.services.roster.onde.importer import import_roster
from handlers.distribution import state
from models import Account, AccountState, DistributionChannel, Guardian, ScheduledDeletion, utcnow
from tests.conftest import SAMPLES
from tests.e2e.conftest import REPLY_TIMEOUT, BotProcess, SeededSchool, smtp_env, text_of
from tests.e2e.steps import (
    become_director,
    import_samples,
    offering,
    press,
)
from tests.mailtools import ReceivedMessage, SmtpTestServer, plain_text

pytestmark = [pytest.mark.timeout(180), pytest.mark.slow]

PASSWORD = re.compile(rf"\b[{PROVISIONAL_ALPHABET}]{{8}}\b")
DOCUMENT_PASSWORD = "Tableau-Noir-1882"


# --- what the sample files say, read here with the csv module ----------------------------------


@dataclass(frozen=True)
class SampleGuardian:
    first_name: str
    last_name: str
    email: str | None  # normalised, None when missing or invalid
    classes: frozenset[str]


def _rows(path: Path) -> list[list[str]]:
    """The header and the data rows (a one-cell summary line under the data is left out)."""
    raw = path.read_bytes()
    text = raw.decode("utf-8-sig") if raw.startswith(b"\xef\xbb\xbf") else raw.decode("cp1252")
    rows = [row for row in csv.reader(io.StringIO(text), delimiter=";") if any(row)]
    while len(rows) > 1 and len(rows[-1]) == 1:
        rows.pop()
    return rows


def sample_guardians(folder: Path) -> list[SampleGuardian]:
    """Each guardian row, with the classes of their children as the pupils file gives them."""
    pupils = _rows(folder / "eleves.csv")
    header = [name.strip() for name in pupils[0]]
    last, first, label = (
        header.index("Nom élève"),
        header.index("Prénom élève"),
        header.index("Libellé classe"),
    )
    classes: dict[tuple[str, str], set[str]] = {}
    for row in pupils[1:]:
        classes.setdefault((row[last].casefold(), row[first].casefold()), set()).add(row[label])
    guardians = []
    for row in _rows(folder / "responsables.csv")[1:]:
        children: set[str] = set()
        for start in range(12, len(row) - 3, 4):
            usage, family, child_first = row[start], row[start + 1], row[start + 2]
            for name in (family, usage):
                children |= classes.get((name.casefold(), child_first.casefold()), set())
        email: str | None
        try:
            email = validate_email(row[8].strip(), check_deliverability=False).normalized
        except EmailNotValidError:
            email = None
        guardians.append(SampleGuardian(row[3], row[2], email, frozenset(children)))
    return guardians


# --- talking to the bot ------------------------------------------------------------------------


def command(user: ThreadedUser, text: str, wanted: Callable[[ChatMessage], bool]) -> ChatMessage:
    user.drain()
    user.send_text(text)
    return user.wait_for(wanted, REPLY_TIMEOUT)


def summary(message: ChatMessage) -> bool:
    return "✅" in message.content and "❌" in message.content


def number_after(mark: str, text: str) -> int:
    match = re.search(rf"{mark}\D*?(\d[\d  ]*)", text)
    assert match, f"no number after {mark} in {text!r}"
    return int(re.sub(r"\D", "", match[1]))


# --- the database ------------------------------------------------------------------------------


def accounts_by_email(bot: BotProcess, school_id: int) -> dict[str, list[Account]]:
    with Session(bot.database()) as session:
        rows = session.execute(
            select(Account, Guardian)
            .join(Guardian, col(Guardian.id) == col(Account.guardian_id))
            .where(col(Guardian.school_id) == school_id)
        ).all()
    found: dict[str, list[Account]] = {}
    for account, guardian in rows:
        found.setdefault((guardian.email or "").casefold(), []).append(account)
    return found


def all_accounts(bot: BotProcess, school_id: int) -> dict[str, Account]:
    return {a.identifier: a for group in accounts_by_email(bot, school_id).values() for a in group}


def check_credentials_mail(message: ReceivedMessage, accounts: list[Account]) -> Account:
    """The mail holds one of these accounts' identifier and a password verifying against its
    hash; returns that account."""
    text = plain_text(message.parsed())
    for account in accounts:
        if re.search(rf"(?<![\w.]){re.escape(account.identifier)}(?!\w)", text):
            assert any(
                verify_password(account.password_hash or "", p) for p in PASSWORD.findall(text)
            )
            return account
    raise AssertionError("no identifier of this address's guardians in the e-mail")


# --- fixtures ----------------------------------------------------------------------------------


@pytest.fixture
def mail_bot(make_bot: Callable[..., BotProcess], smtp: SmtpTestServer) -> BotProcess:
    process = make_bot(env=smtp_env(smtp))
    process.start()
    return process


# --- /envoyer and /relancer --------------------------------------------------------------------


def test_envoyer_cm1_then_relancer_reminder_and_reset(
    mail_bot: BotProcess, bot_api: ThreadedBotApi, smtp: SmtpTestServer
) -> None:
    bot = mail_bot
    school = bot.seed_school()
    import_samples(bot, school, SAMPLES)
    director = become_director(bot_api, school)
    in_cm1 = [g for g in sample_guardians(SAMPLES) if "CM1" in g.classes]
    expected = Counter(g.email for g in in_cm1 if g.email)
    assert expected and any(g.email is None for g in in_cm1)

    started = utcnow()
    preview = command(director, "/envoyer CM1", offering(state.SEND))
    assert "CM1" in preview.content
    assert not smtp.messages
    press(director, preview, state.SEND)
    done = director.wait_for(summary, 60)

    # Every guardian with a valid address got exactly one e-mail; nobody else got any.
    received = smtp.messages
    assert Counter(address.casefold() for m in received for address in m.rcpt_tos) == expected
    by_email = accounts_by_email(bot, school.id)
    passwords: dict[str, str] = {}
    for message in received:
        account = check_credentials_mail(message, by_email[message.rcpt_tos[0].casefold()])
        text = plain_text(message.parsed())
        passwords[account.identifier] = next(
            p for p in PASSWORD.findall(text) if verify_password(account.password_hash or "", p)
        )
    # The lights and dates of docs/PRODUCT.md: notified by e-mail now; the others untouched.
    accounts = all_accounts(bot, school.id)
    for identifier, account in accounts.items():
        if identifier in passwords:
            assert account.state == AccountState.NOTIFIED
            assert account.distribution_channel == DistributionChannel.EMAIL
            assert account.distributed_at is not None and account.distributed_at >= started
        else:
            assert account.state == AccountState.NOT_NOTIFIED
            assert account.distributed_at is None
    # The summary's numbers.
    skipped = sum(1 for g in in_cm1 if g.email is None)
    assert number_after("✅", done.content) == sum(expected.values())
    assert number_after("❌", done.content) == 0
    assert number_after("⏭", done.content) == skipped

    # /relancer, reminder: no password, states unchanged, dates updated.
    before = all_accounts(bot, school.id)
    shown = command(director, "/relancer CM1", offering(state.REMIND))
    press(director, shown, state.REMIND)
    director.wait_for(summary, 60)
    reminders = smtp.messages[len(received) :]
    assert Counter(a.casefold() for m in reminders for a in m.rcpt_tos) == expected
    for message in reminders:
        text = plain_text(message.parsed())
        assert not any(password in text for password in passwords.values())
    after = all_accounts(bot, school.id)
    for identifier in passwords:
        assert after[identifier].state == before[identifier].state == AccountState.NOTIFIED
        assert after[identifier].password_hash == before[identifier].password_hash
        assert after[identifier].distributed_at > before[identifier].distributed_at  # type: ignore[operator]

    # /relancer, reset: new passwords, the old ones stop working.
    shown = command(director, "/relancer CM1", offering(state.RESET))
    press(director, shown, state.RESET)
    director.wait_for(summary, 60)
    resets = smtp.messages[len(received) + len(reminders) :]
    assert Counter(a.casefold() for m in resets for a in m.rcpt_tos) == expected
    by_email = accounts_by_email(bot, school.id)
    for message in resets:
        account = check_credentials_mail(message, by_email[message.rcpt_tos[0].casefold()])
        assert account.state == AccountState.NOTIFIED
        assert not verify_password(account.password_hash or "", passwords[account.identifier])


# --- /pdf --------------------------------------------------------------------------------------


def test_pdf_cm1_is_encrypted_and_deleted_after_the_retention_across_a_restart(
    bot: BotProcess, bot_api: ThreadedBotApi, school: SeededSchool
) -> None:
    import_samples(bot, school, SAMPLES)
    director = become_director(bot_api, school)
    in_cm1 = [g for g in sample_guardians(SAMPLES) if "CM1" in g.classes]
    without_email = [g for g in in_cm1 if g.email is None]
    assert without_email

    director.drain()
    director.send_text("/pdf CM1")
    director.next_message(REPLY_TIMEOUT)  # asks for the document password
    typed = director.send_text(DOCUMENT_PASSWORD)
    preview = director.wait_for(offering(state.PRINT), REPLY_TIMEOUT)
    assert (director.chat_id, typed.message_id) in bot_api.deleted
    assert all(DOCUMENT_PASSWORD not in m.content for m in director.bot_messages)
    press(director, preview, state.PRINT)
    sent = director.wait_for(lambda m: m.document is not None, 60)
    director.wait_for(lambda m: m.content.startswith("✅") and m.document is None, REPLY_TIMEOUT)

    assert sent.document is not None
    reader = PdfReader(io.BytesIO(sent.document.data))
    assert reader.is_encrypted
    with pytest.raises(Exception):  # noqa: B017 - any failure to read without the password
        reader.pages[0].extract_text()
    reader = PdfReader(io.BytesIO(sent.document.data))
    assert not reader.decrypt("not the password")
    assert reader.decrypt(DOCUMENT_PASSWORD)
    assert len(reader.pages) == len(without_email)
    accounts = all_accounts(bot, school.id)
    seen: set[str] = set()
    for page in reader.pages:
        text = " ".join(page.extract_text().split())
        found = [
            a
            for identifier, a in accounts.items()
            if re.search(rf"(?<![\w.]){re.escape(identifier)}(?!\w)", text)
        ]
        account = max(found, key=lambda a: len(a.identifier))
        assert account.state == AccountState.NOTIFIED
        assert account.distribution_channel == DistributionChannel.PAPER
        assert any(verify_password(account.password_hash or "", p) for p in PASSWORD.findall(text))
        seen.add(account.identifier)
    assert len(seen) == len(without_email)

    # The retention passes while the bot is being restarted: the PDF goes as soon as it is back.
    with Session(bot.database()) as session, session.begin():
        rows = session.execute(select(ScheduledDeletion)).scalars().all()
        assert [(r.chat_id, r.message_id) for r in rows] == [(director.chat_id, sent.message_id)]
        session.execute(update(ScheduledDeletion).values(delete_at=utcnow() + timedelta(seconds=3)))
    bot.restart()
    deadline = time.monotonic() + 30
    while (director.chat_id, sent.message_id) not in bot_api.deleted:
        assert time.monotonic() < deadline, "the PDF was not deleted after its retention"
        time.sleep(0.2)


# --- a crash in the middle of a batch ----------------------------------------------------------


PUPIL_COUNT = 160  # two guardians each, with an address: 320 e-mails


def big_school_files(folder: Path) -> tuple[bytes, bytes]:
    """ONDE extractions of a school whose 320 guardians all have an e-mail address (the sample
    files' own headers)."""
    pupil_header = (folder / "eleves.csv").read_bytes().splitlines()[0].decode("cp1252")
    guardian_header = (folder / "responsables.csv").read_bytes().splitlines()[0].decode("cp1252")
    pupils, guardians = [pupil_header], [guardian_header]
    levels = ("CP", "CE1", "CE2", "CM1", "CM2")
    for number in range(PUPIL_COUNT):
        level = levels[number % len(levels)]
        surname, first = f"FAMILLE{number:03d}", f"Élève{number:03d}"
        pupils.append(
            f"{surname};;{first};01/02/2017;M;;1 rue de l'École;59000;Lille;FRANCE;;;;;"
            f"CYCLE III;{level};{level};{100 + levels.index(level)};Oui;Non;Oui;"
        )
        for parent, civility in (("Anaïs", "MME"), ("Jérôme", "M.")):
            guardians.append(
                f"{civility};;{surname};{parent};1 rue de l'École;59000;Lille;FRANCE;"
                f"{parent[0].lower()}.{surname.lower()}@exemple.fr;;;0600000000;;{surname};"
                f"{first};{level}"
            )
    encode = lambda lines: ("\r\n".join(lines) + "\r\n").encode("cp1252")  # noqa: E731
    return encode(pupils), encode(guardians)


# On PostgreSQL, where a district sends: a kill in the middle of a send is tested on both
# databases, on a smaller batch, by test_kill_faults.py.
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_kill_during_a_300_message_batch_loses_no_guardian(
    make_bot: Callable[..., BotProcess], bot_api: ThreadedBotApi, smtp: SmtpTestServer
) -> None:
    original = smtp.handler.handle_DATA

    async def slow(*args: object) -> str:
        import asyncio

        await asyncio.sleep(0.02)  # a mail server a bit slow, so the kill lands mid-batch
        return await original(*args)  # type: ignore[arg-type]

    smtp.handler.handle_DATA = slow  # type: ignore[method-assign]
    bot = make_bot(env=smtp_env(smtp))
    bot.start()
    school = bot.seed_school()
    eleves, responsables = big_school_files(SAMPLES)
    bot.service(
        import_roster,
        school_id=school.id,
        files=[("eleves.csv", eleves), ("responsables.csv", responsables)],
        actor="e2e",
    )
    director = become_director(bot_api, school)
    expected = {a for a in accounts_by_email(bot, school.id) if a}
    assert len(expected) == 2 * PUPIL_COUNT >= 300

    preview = command(director, "/envoyer ecole", offering(state.SEND))
    press(director, preview, state.SEND)
    deadline = time.monotonic() + 90
    while len(smtp.messages) < 80:
        assert time.monotonic() < deadline, f"only {len(smtp.messages)} e-mails sent"
        time.sleep(0.05)
    assert bot.process is not None
    bot.process.send_signal(signal.SIGKILL)
    bot.process.wait(10)
    assert bot.stop() == -signal.SIGKILL
    at_kill = len(smtp.messages)
    assert at_kill < len(expected), "the batch was over before the kill"

    bot.start()
    director.drain()
    deadline = time.monotonic() + 90
    while {a for m in smtp.messages for a in m.rcpt_tos} != expected:
        assert time.monotonic() < deadline, "some guardians never got their e-mail"
        time.sleep(0.2)
    # The follower resumes after the restart and posts the summary.
    done = director.wait_for(summary, 60)
    assert number_after("✅", done.content) == len(expected)

    received = Counter(a for m in smtp.messages for a in m.rcpt_tos)
    duplicates = sum(count - 1 for count in received.values())
    assert duplicates <= MAX_UNRECORDED, f"{duplicates} duplicates"
    # Every guardian's e-mail carries the password that works now (the last one sent).
    by_email = accounts_by_email(bot, school.id)
    latest: dict[str, ReceivedMessage] = {}
    for message in smtp.messages:
        latest[message.rcpt_tos[0]] = message
    for address, message in latest.items():
        account = check_credentials_mail(message, by_email[address])
        assert account.state == AccountState.NOTIFIED
    assert "Traceback" not in text_of([done])
