"""A director and a family talk to the running bot as they would through Telegram: the import
of a school's ONDE extractions and the queries on it, refusals, a restart in the middle of a
conversation, a rate limit, and files that are not what the bot expects."""

from __future__ import annotations

import csv
import io
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlmodel import Session, col

from bot.sandbox.botapi import ChatMessage, ThreadedBotApi, ThreadedUser
from handlers.roster import IMPORT
from models import Account, Guardian, Pupil, PupilGuardian, SchoolClass
from tests.e2e.conftest import (
    REPLY_TIMEOUT,
    BotProcess,
    SeededSchool,
    ask,
    press,
    send_file,
    text_of,
    with_button,
)
from tests.postgres import PostgresServer

pytestmark = [pytest.mark.timeout(120), pytest.mark.slow]


# --- what the database says ------------------------------------------------------------------


@dataclass(frozen=True)
class ClassFacts:
    label: str
    pupils: int
    guardians: int


@dataclass(frozen=True)
class SchoolFacts:
    pupils: int
    guardians: int
    accounts: int
    classes: list[ClassFacts]
    identifiers: set[str]


def school_facts(session: Session, *, school_id: int) -> SchoolFacts:
    """Counts straight from the tables, independently of the bot's own queries."""
    active_pupil = (col(Pupil.school_id) == school_id) & col(Pupil.archived_at).is_(None)
    classes = []
    for school_class in session.execute(
        select(SchoolClass).where(
            col(SchoolClass.school_id) == school_id, col(SchoolClass.archived_at).is_(None)
        )
    ).scalars():
        in_class = active_pupil & (col(Pupil.class_id) == school_class.id)
        pupils = session.execute(select(func.count()).select_from(Pupil).where(in_class)).scalar()
        guardians = session.execute(
            select(func.count(func.distinct(PupilGuardian.guardian_id)))
            .join(Pupil, col(Pupil.id) == col(PupilGuardian.pupil_id))
            .where(in_class)
        ).scalar()
        classes.append(ClassFacts(school_class.label, int(pupils or 0), int(guardians or 0)))
    accounts = session.execute(
        select(col(Account.identifier))
        .join(Guardian, col(Guardian.id) == col(Account.guardian_id))
        .where(col(Guardian.school_id) == school_id, col(Account.deactivated_at).is_(None))
    ).scalars()
    identifiers = set(accounts)
    pupils = session.execute(select(func.count()).select_from(Pupil).where(active_pupil)).scalar()
    guardians = session.execute(
        select(func.count()).select_from(Guardian).where(col(Guardian.school_id) == school_id)
    ).scalar()
    return SchoolFacts(
        int(pupils or 0), int(guardians or 0), len(identifiers), classes, identifiers
    )


def guardians_without_email(session: Session, *, school_id: int, class_label: str) -> set[str]:
    """Identifiers of the class's guardians who have no e-mail address."""
    rows = session.execute(
        select(col(Account.identifier))
        .join(Guardian, col(Guardian.id) == col(Account.guardian_id))
        .join(PupilGuardian, col(PupilGuardian.guardian_id) == col(Guardian.id))
        .join(Pupil, col(Pupil.id) == col(PupilGuardian.pupil_id))
        .join(SchoolClass, col(SchoolClass.id) == col(Pupil.class_id))
        .where(
            col(Guardian.school_id) == school_id,
            col(SchoolClass.label) == class_label,
            col(Pupil.archived_at).is_(None),
            col(Guardian.email).is_(None),
        )
    ).scalars()
    return set(rows)


def facts(bot: BotProcess, school: SeededSchool) -> SchoolFacts:
    found: SchoolFacts = bot.service(school_facts, school_id=school.id)
    return found


def code_spans(message: ChatMessage) -> list[str]:
    """The texts the bot set in <code>: identifiers, commands."""
    text = message.content
    units = text.encode("utf-16-le")
    return [
        units[2 * e["offset"] : 2 * (e["offset"] + e["length"])].decode("utf-16-le")
        for e in message.entities
        if e["type"] == "code"
    ]


def import_samples(bot: BotProcess, school: SeededSchool, samples_dir: Path) -> None:
    """Import the sample school through the service, as a CLI import would."""
    from bot.services.roster.onde.importer import import_roster

    files = [
        (name, (samples_dir / name).read_bytes()) for name in ("eleves.csv", "responsables.csv")
    ]
    bot.service(import_roster, school_id=school.id, files=files, actor="e2e")


def upload(user: ThreadedUser, samples_dir: Path, name: str) -> list[ChatMessage]:
    return send_file(user, (samples_dir / name).read_bytes(), name, "text/csv")


def import_report(user: ThreadedUser, preview: ChatMessage) -> ChatMessage:
    """The bot's report once the import confirmed on `preview` is done (it counts the 180
    pupils of the samples; the « importing » notice before it does not)."""
    return user.wait_for(
        lambda m: m.message_id > preview.message_id and "180" in m.content, REPLY_TIMEOUT
    )


# --- the director's day -----------------------------------------------------------------------


def test_a_director_imports_the_school_and_every_figure_matches_the_database(
    bot: BotProcess, bot_api: ThreadedBotApi, samples_dir: Path
) -> None:
    # The operator registers the school and invites its director with the real CLI.
    school = bot.seed_school(via_cli=True)
    director = bot_api.new_user("Claire", last_name="Martin")
    welcome = text_of(ask(director, f"/start {school.code}"))
    assert school.name in welcome and school.uai in welcome

    first = text_of(upload(director, samples_dir, "eleves.csv"))
    assert "180" in first  # lines of the Élèves extraction
    upload(director, samples_dir, "responsables.csv")
    preview = with_button(director, IMPORT)
    assert facts(bot, school).pupils == 0, "nothing is imported before the confirmation"

    press(director, preview, IMPORT)
    done = import_report(director, preview)
    truth = facts(bot, school)
    assert truth.pupils == 180 and truth.accounts > 200
    # The preview announced what the import did.
    for report in (preview.content, done.content):
        assert str(truth.pupils) in report and str(truth.accounts) in report
    # Its buttons are gone: a second tap cannot import twice.
    assert IMPORT not in str(director.message(preview.message_id).buttons)

    # /classes: every class with its pupils and guardians, as counted in the tables.
    listing = text_of(ask(director, "/classes")).splitlines()
    assert len(truth.classes) == 8
    for group in truth.classes:
        lines = [line for line in listing if line.startswith(group.label + " ")]
        assert any(
            f"{group.pupils} " in line and f"{group.guardians} " in line for line in lines
        ), (group, lines)
    assert any("180" in line and str(truth.accounts) in line for line in listing)

    # /responsables CE2-CM1 sans: exactly the class's guardians without an e-mail address.
    expected: set[str] = bot.service(
        guardians_without_email, school_id=school.id, class_label="CE2-CM1"
    )
    assert expected
    answer = ask(director, "/responsables CE2-CM1 sans")
    shown = {span for message in answer for span in code_spans(message)}
    assert expected <= shown and not (shown & (truth.identifiers - expected))
    assert str(len(expected)) in text_of(answer)

    # /etat: the school's totals.
    status = text_of(ask(director, "/etat"))
    assert "180" in status and str(truth.accounts) in status

    # /export: one row per account, every identifier, no password, no formula.
    director.send_text("/export")
    exported = director.wait_for(lambda m: m.document is not None, timeout=REPLY_TIMEOUT)
    assert exported.document is not None
    text = exported.document.data.decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text), delimiter=";"))
    header, body = rows[0], rows[1:]
    assert len(body) == truth.accounts
    columns = list(zip(*body, strict=True))
    assert any(set(column) == truth.identifiers for column in columns)
    assert not any("password" in h.casefold() or "passe" in h.casefold() for h in header)
    assert not any(cell.startswith(("=", "+", "-", "@")) for row in body for cell in row)


def test_a_family_is_refused_every_director_command(
    bot: BotProcess,
    director: ThreadedUser,
    school: SeededSchool,
    family: ThreadedUser,
    samples_dir: Path,
) -> None:
    import_samples(bot, school, samples_dir)
    before = facts(bot, school)
    for command in ("/classes", "/responsables CP A sans", "/etat", "/export", "/responsables"):
        answer = ask(family, command)
        text = text_of(answer)
        # A polite refusal that says what to do, and no data of the school.
        assert "/start" in text or "/aide" in text, (command, text)
        assert "CP A" not in text and "180" not in text and school.name not in text
        assert not any(m.document for m in answer)
    upload(family, samples_dir, "eleves.csv")
    assert facts(bot, school) == before
    # The director, meanwhile, still gets answers.
    assert "CP A" in text_of(ask(director, "/classes"))


def test_a_restart_in_the_middle_of_an_import_loses_nothing(
    bot: BotProcess, director: ThreadedUser, school: SeededSchool, samples_dir: Path
) -> None:
    upload(director, samples_dir, "eleves.csv")
    bot.restart()
    upload(director, samples_dir, "responsables.csv")
    preview = with_button(director, IMPORT)
    assert "180" in preview.content
    bot.restart()
    # The button of the preview, sent by the previous process, still imports both files.
    press(director, preview, IMPORT)
    import_report(director, preview)
    truth = facts(bot, school)
    assert truth.pupils == 180 and truth.accounts > 200
    assert str(truth.accounts) in preview.content


def test_a_rate_limited_reply_is_delayed_not_lost(
    bot: BotProcess, bot_api: ThreadedBotApi, director: ThreadedUser
) -> None:
    bot_api.inject_fault("sendMessage", status=429, retry_after=1)
    since = len(bot_api.calls())
    started = time.monotonic()
    answer = ask(director, "/aide")
    assert len(answer) == 1 and "/classes" in answer[0].content
    assert time.monotonic() - started >= 1.0
    sends = [c for c in bot_api.calls("sendMessage") if c.seq >= since]
    assert [c.status for c in sends] == [429, 200]
    assert sends[0].params["text"] == sends[1].params["text"]


MALFORMED_UPLOADS = [
    ("bulletin.pdf", b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj << >> endobj\n"),
    ("eleves.csv", b"Nom;Prenom;Age\r\nDUPONT;Jean;7\r\n"),
    ("responsables.csv", bytes(range(256)) * 20),
    ("vide.csv", b" \r\n"),
]


def test_malformed_uploads_get_a_clear_answer_and_change_nothing(
    bot: BotProcess, director: ThreadedUser, school: SeededSchool, samples_dir: Path
) -> None:
    import_samples(bot, school, samples_dir)
    before = facts(bot, school)
    for filename, data in MALFORMED_UPLOADS:
        answer = send_file(director, data, filename)
        text = text_of(answer)
        # The answer names the file, and offers nothing to import.
        assert filename in text, text
        assert not any(value == IMPORT for m in answer for row in m.buttons for _, value in row)
        assert facts(bot, school) == before
    # The conversation is not stuck: the director goes on.
    assert "CP A" in text_of(ask(director, "/classes"))


@pytest.mark.postgres
def test_on_postgresql_a_large_telegram_id_imports_across_a_restart(
    bot_factory: Callable[..., BotProcess],
    bot_api: ThreadedBotApi,
    postgres_server: PostgresServer,
    postgres_template: str,
    samples_dir: Path,
) -> None:
    # A 64-bit id: SQLite's integers would hide a 32-bit column.
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    name = f"e2e_{worker}_{os.getpid()}"
    bot = bot_factory(
        database_url=postgres_server.create_database(name, template=postgres_template)
    )
    bot.start()
    school = bot.seed_school()
    # Telegram ids no longer fit in 32 bits.
    director = bot_api.new_user("Claire", user_id=5_123_456_789)
    assert school.name in text_of(ask(director, f"/start {school.code}"))
    upload(director, samples_dir, "eleves.csv")
    bot.restart()
    upload(director, samples_dir, "responsables.csv")
    preview = with_button(director, IMPORT)
    press(director, preview, IMPORT)
    import_report(director, preview)
    truth = facts(bot, school)
    assert truth.pupils == 180 and truth.accounts > 200
    assert str(truth.accounts) in preview.content
    assert "CE2-CM1" in text_of(ask(director, "/classes"))
