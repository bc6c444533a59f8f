"""The director's roster features in chat, as a director meets them: sending the ONDE files,
/classes, /responsables, /etat and /export — against the real bot and the Bot API emulator."""

from __future__ import annotations

import asyncio
import csv
import gc
import io
import re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlmodel import Session, col

from bot.i18n import format_percentage, use_language
from bot.sandbox.botapi import ChatMessage, SandboxUser
from bot.services.roster import MAX_FILE_BYTES
from bot.services.roster.onde.importer import import_roster
from bot.services.roster.onde.report import ImportReport
from bot.services.roster.states import STATE_LIGHTS
from bot.services.roster.statistics import Counts, school_statistics
from handlers import roster
from handlers.keyboards import split_text
from models import (
    Account,
    AccountState,
    AuditEvent,
    Guardian,
    Pupil,
    PupilGuardian,
    ScheduledDeletion,
    SchoolClass,
)
from tests.handlers.conftest import BotHarness, DirectorChat

pytestmark = [
    pytest.mark.timeout(60),
    pytest.mark.filterwarnings("ignore::telegram.warnings.PTBUserWarning"),
]

SAMPLE_FILES = ("eleves.csv", "responsables.csv")
NOTIFIED, ACTIVATING, ACTIVATED = (
    AccountState.NOTIFIED,
    AccountState.ACTIVATING,
    AccountState.ACTIVATED,
)


# --- helpers ----------------------------------------------------------------------------------


def has_button(data: str) -> Callable[[ChatMessage], bool]:
    return lambda message: any(
        button.callback_data == data for row in message.inline_keyboard for button in row
    )


def lights(counts: Counts) -> str:
    return " ".join(f"{STATE_LIGHTS[state]} {n}" for state, n in counts.by_state().items())


def button_data(message: ChatMessage) -> list[str]:
    return [b.callback_data for row in message.inline_keyboard for b in row if b.callback_data]


def count(harness: BotHarness, model: type, school_id: int) -> int:
    with Session(harness.engine) as session:
        column = model.school_id  # type: ignore[attr-defined]
        return int(session.execute(select(func.count()).where(column == school_id)).scalar_one())


def uploads(harness: BotHarness) -> list[Path]:
    folder = harness.settings.data_dir / "uploads"
    return [path for path in folder.rglob("*") if path.is_file()] if folder.exists() else []


def import_samples(harness: BotHarness, school_id: int, samples_dir: Path) -> ImportReport:
    files = [(name, (samples_dir / name).read_bytes()) for name in SAMPLE_FILES]
    return harness.call(import_roster, school_id=school_id, files=files, actor="test")


def class_id(harness: BotHarness, school_id: int, label: str) -> int:
    with Session(harness.engine) as session:
        return int(
            session.execute(
                select(col(SchoolClass.id)).where(
                    col(SchoolClass.school_id) == school_id, col(SchoolClass.label) == label
                )
            ).scalar_one()
        )


def identifiers_in(text: str) -> set[str]:
    """The identifiers a list shows (in <code>, so the emulator's text has them bare)."""
    return set(re.findall(r"\b[a-z][a-z-]*\.[a-z0-9-]+\b", text))


async def send_sample(user: SandboxUser, samples_dir: Path, name: str) -> None:
    await user.send_document((samples_dir / name).read_bytes(), filename=name, mime_type="text/csv")


async def press(user: SandboxUser, message: ChatMessage, data: str) -> None:
    await user.answer_for(await user.press(message, data))


async def forge_press(
    harness: BotHarness, user: SandboxUser, message: ChatMessage, data: str
) -> None:
    """A button press with callback data the bot never sent (a forged or very old button)."""
    await user.answer_for(await user.press_data(message, data))


# --- Import by sending the files ----------------------------------------------------------------


@pytest.mark.parametrize(
    "order", [SAMPLE_FILES, SAMPLE_FILES[::-1]], ids=["eleves-first", "responsables-first"]
)
async def test_sending_both_files_previews_then_imports(
    bot_harness: BotHarness, samples_dir: Path, order: tuple[str, str]
) -> None:
    director = await bot_harness.new_director()
    user = director.user
    expected = bot_harness.call(
        import_roster,
        school_id=director.school_id,
        files=[(name, (samples_dir / name).read_bytes()) for name in SAMPLE_FILES],
        actor="test",
        dry_run=True,
    )

    await send_sample(user, samples_dir, order[0])
    first = await user.next_message()
    assert order[0] in first.content
    assert ("Élèves" if order[0] == "eleves.csv" else "Responsables") in first.content
    assert set(button_data(first)) == {roster.IMPORT_ALONE, roster.CANCEL}

    await send_sample(user, samples_dir, order[1])
    preview = await user.wait_for(has_button(roster.IMPORT))
    counts = [int(n) for n in re.findall(r"\d+", "\n".join(preview.content.splitlines()[3:8]))]
    assert counts == [
        *vars(expected.pupils).values(),
        *vars(expected.guardians).values(),
        *vars(expected.classes).values(),
        expected.accounts_created,
        expected.accounts_reactivated,
        expected.accounts_deactivated,
        len(expected.rejected),
        len(expected.warnings),
    ]
    # The first warning quotes the malformed address of its line, as the file gives it.
    first_warning = expected.warnings[0]
    assert first_warning.code == "invalid_email"
    lines = (samples_dir / "responsables.csv").read_bytes().decode("cp1252").split("\r\n")
    address = lines[first_warning.line - 1].split(";")[8]
    assert address and f"{first_warning.line}" in preview.content and address in preview.content
    # 12 warnings: the first 10 in the message, all of them in the attached report.
    report = await user.wait_for(lambda m: m.document is not None)
    assert report.document is not None
    text = report.document.data.decode("utf-8-sig")
    assert all(warning.message in text for warning in expected.warnings)
    assert count(bot_harness, Pupil, director.school_id) == 0  # nothing imported yet

    await press(user, preview, roster.IMPORT)
    done = await user.wait_for(lambda m: "226" in m.content, kinds=("sent",))

    assert "180" in done.content
    assert count(bot_harness, Pupil, director.school_id) == 180
    assert count(bot_harness, Guardian, director.school_id) == 226
    assert (
        school_statistics(
            session=Session(bot_harness.engine), school_id=director.school_id
        ).total.accounts
        == 226
    )
    assert uploads(bot_harness) == []  # the waiting files are deleted
    assert not user.message(preview.message_id).inline_keyboard  # no second import


async def test_cancel_imports_nothing_and_deletes_the_files(
    bot_harness: BotHarness, samples_dir: Path
) -> None:
    director = await bot_harness.new_director()
    user = director.user
    await send_sample(user, samples_dir, "eleves.csv")
    await user.next_message()
    await send_sample(user, samples_dir, "responsables.csv")
    preview = await user.wait_for(has_button(roster.IMPORT))
    stored = uploads(bot_harness)
    assert len(stored) == 2 and all(oct(p.stat().st_mode)[-3:] == "600" for p in stored)

    await press(user, preview, roster.CANCEL)
    await user.wait_for(lambda m: m.message_id == preview.message_id and not m.inline_keyboard)

    assert count(bot_harness, Pupil, director.school_id) == 0
    assert count(bot_harness, SchoolClass, director.school_id) == 0
    assert uploads(bot_harness) == []
    # An old button of the cancelled import is answered, and still imports nothing.
    await forge_press(bot_harness, user, preview, roster.IMPORT)
    assert count(bot_harness, Pupil, director.school_id) == 0


async def test_annuler_leaves_the_import(bot_harness: BotHarness, samples_dir: Path) -> None:
    director = await bot_harness.new_director()
    await send_sample(director.user, samples_dir, "eleves.csv")
    await director.user.next_message()

    await director.user.send_text("/annuler")
    await director.user.next_message()

    assert uploads(bot_harness) == []
    await director.user.send_text("hello")  # no longer inside the import
    assert "/annuler" not in (await director.user.next_message()).content


async def test_an_abandoned_import_deletes_its_files(
    bot_harness: BotHarness, samples_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(roster, "IMPORT_TIMEOUT_SECONDS", 0.5)
    await bot_harness.restart()  # the conversation reads its timeout when it is built
    director = await bot_harness.new_director()
    await send_sample(director.user, samples_dir, "eleves.csv")
    await director.user.next_message()
    assert len(uploads(bot_harness)) == 1

    told = await director.user.next_message(timeout=10)

    assert uploads(bot_harness) == []
    assert count(bot_harness, Pupil, director.school_id) == 0
    assert "/annuler" not in told.content
    await director.user.send_text("hello")  # no longer inside the import
    assert "/annuler" not in (await director.user.next_message()).content


async def test_one_file_alone_can_be_imported(bot_harness: BotHarness, samples_dir: Path) -> None:
    director = await bot_harness.new_director()
    user = director.user
    await send_sample(user, samples_dir, "eleves.csv")
    first = await user.next_message()

    await press(user, first, roster.IMPORT_ALONE)
    preview = await user.wait_for(has_button(roster.IMPORT))
    assert "180" in preview.content
    await press(user, preview, roster.IMPORT)
    await user.wait_for(lambda m: "180" in m.content, kinds=("sent",))

    assert count(bot_harness, Pupil, director.school_id) == 180
    assert count(bot_harness, Guardian, director.school_id) == 0


async def test_a_restart_between_the_two_files_loses_nothing(
    bot_harness: BotHarness, samples_dir: Path
) -> None:
    director = await bot_harness.new_director()
    await send_sample(director.user, samples_dir, "responsables.csv")
    await director.user.next_message()

    await bot_harness.restart()
    await send_sample(director.user, samples_dir, "eleves.csv")
    preview = await director.user.wait_for(has_button(roster.IMPORT))
    await press(director.user, preview, roster.IMPORT)
    await director.user.wait_for(lambda m: "226" in m.content, kinds=("sent",))

    assert count(bot_harness, Guardian, director.school_id) == 226


@pytest.mark.parametrize(
    ("filename", "data", "mime_type"),
    [
        ("liste.pdf", b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj", "application/pdf"),
        ("eleves.xlsx", b"PK\x03\x04" + bytes(200), None),
        ("eleves.csv", b"%PDF-1.4 disguised", "text/csv"),
        ("eleves.csv", bytes(range(256)) * 8, "text/csv"),
        ("photo.jpg", b"\xff\xd8\xff\xe0" + bytes(100), "image/jpeg"),
    ],
    ids=["pdf", "spreadsheet", "pdf-named-csv", "binary-named-csv", "picture"],
)
async def test_files_that_are_not_onde_csv_are_refused_and_change_nothing(
    bot_harness: BotHarness, filename: str, data: bytes, mime_type: str | None
) -> None:
    director = await bot_harness.new_director()

    await director.user.send_document(data, filename=filename, mime_type=mime_type)
    refusal = await director.user.next_message()

    assert filename in refusal.content
    assert refusal.inline_keyboard == ()
    assert uploads(bot_harness) == []
    assert count(bot_harness, SchoolClass, director.school_id) == 0


async def test_a_file_over_the_size_limit_is_refused_before_downloading(
    bot_harness: BotHarness,
) -> None:
    director = await bot_harness.new_director()
    downloads = len(bot_harness.server.calls_to("getFile"))

    await director.user.send_document(b"x" * (MAX_FILE_BYTES + 1), filename="big.csv")
    refusal = await director.user.next_message()

    assert "big.csv" in refusal.content
    assert str(MAX_FILE_BYTES // (1024 * 1024)) in refusal.content
    assert len(bot_harness.server.calls_to("getFile")) == downloads
    assert uploads(bot_harness) == []


class LoopLag:
    """The longest the event loop went without running a task that asked to wake every 5 ms."""

    def __init__(self) -> None:
        self.longest = 0.0


@asynccontextmanager
async def loop_lag() -> AsyncIterator[LoopLag]:
    """Measure the event loop's longest stall. The garbage collector is off meanwhile: its
    full collections stop every thread of the test process for ≈ 0.2 s whatever runs, and
    the stalls measured here are the ones the bot's own work causes."""
    loop, lag = asyncio.get_running_loop(), LoopLag()

    async def probe() -> None:
        while True:
            asked = loop.time()
            await asyncio.sleep(0.005)
            lag.longest = max(lag.longest, loop.time() - asked - 0.005)

    gc.disable()
    task = asyncio.create_task(probe())
    try:
        yield lag
    finally:
        task.cancel()
        gc.enable()


async def test_a_roster_far_above_a_school_is_refused_at_once_and_others_are_answered(
    bot_harness: BotHarness, samples_dir: Path
) -> None:
    director = await bot_harness.new_director()
    family = bot_harness.new_family()
    loop = asyncio.get_running_loop()

    async def help_latency() -> float:
        asked = loop.time()
        await family.send_text("/aide")
        await family.next_message(timeout=60)
        return loop.time() - asked

    baseline = await help_latency()
    header, *rows = [
        line for line in (samples_dir / "eleves.csv").read_bytes().split(b"\r\n") if line
    ]
    # 35,000 lines (≈ 4.6 MB, under the byte limit): seven times the largest school accepted.
    hostile = b"\r\n".join([header, *(rows[i % len(rows)] for i in range(35_000))]) + b"\r\n"
    assert len(hostile) < MAX_FILE_BYTES

    async with loop_lag() as lag:
        await director.user.send_document(hostile, filename="eleves.csv", mime_type="text/csv")
        latency = await help_latency()
        refusal = await director.user.next_message(timeout=60)

    # Another user waits for no more than the refusal itself.
    assert latency < baseline + 1.0, f"/aide took {latency:.2f} s (baseline {baseline:.2f} s)"
    assert lag.longest < 0.25, f"the event loop was blocked for {lag.longest:.2f} s"
    assert "eleves.csv" in refusal.content and "35" in refusal.content
    assert refusal.inline_keyboard == ()
    assert uploads(bot_harness) == []


async def test_a_file_at_the_limit_is_previewed_without_blocking_the_event_loop(
    bot_harness: BotHarness, samples_dir: Path
) -> None:
    director = await bot_harness.new_director()
    header, *rows = [
        line for line in (samples_dir / "eleves.csv").read_bytes().split(b"\r\n") if line
    ]
    # 5,000 lines, the most accepted: the sample's pupils and thousands of duplicate lines.
    at_limit = b"\r\n".join([header, *(rows[i % len(rows)] for i in range(5_000))]) + b"\r\n"

    async with loop_lag() as lag:
        await director.user.send_document(at_limit, filename="eleves.csv", mime_type="text/csv")
        received = await director.user.next_message(timeout=60)
        await press(director.user, received, roster.IMPORT_ALONE)
        preview = await director.user.wait_for(has_button(roster.IMPORT), timeout=60)
        report = await director.user.wait_for(lambda m: m.document is not None, timeout=60)

    assert "5" in received.content and "eleves.csv" in received.content
    assert preview.content and report.document is not None
    assert lag.longest < 0.25, f"the event loop was blocked for {lag.longest:.2f} s"


# --- Reading the roster -----------------------------------------------------------------------


@pytest.fixture
async def school(bot_harness: BotHarness, samples_dir: Path) -> DirectorChat:
    """A director whose school holds the sample roster, with a few accounts further along."""
    director = await bot_harness.new_director("0751234X")
    import_samples(bot_harness, director.school_id, samples_dir)
    with Session(bot_harness.engine) as session:
        accounts = session.execute(select(Account).order_by(col(Account.id))).scalars().all()
        for index, account in enumerate(accounts[:60]):
            account.state = (NOTIFIED, ACTIVATING, ACTIVATED)[index % 3]
            session.add(account)
        session.commit()
    return director


async def test_classes_lists_every_class_with_counts_and_lights(
    bot_harness: BotHarness, school: DirectorChat
) -> None:
    await school.user.send_text("/classes")
    reply = await school.user.next_message()

    stats = school_statistics(session=Session(bot_harness.engine), school_id=school.school_id)
    for group in stats.classes:
        assert group.label in reply.content
        assert lights(group) in reply.content
    assert lights(stats.total) in reply.content
    assert len(reply.inline_keyboard) >= len(stats.classes) // 2


async def test_responsables_sans_lists_the_guardians_without_e_mail_page_by_page(
    bot_harness: BotHarness, school: DirectorChat
) -> None:
    user = school.user
    ce2_cm1 = class_id(bot_harness, school.school_id, "CE2-CM1")
    with Session(bot_harness.engine) as session:
        expected = set(
            session.execute(
                select(col(Account.identifier))
                .join(Guardian, col(Guardian.id) == col(Account.guardian_id))
                .join(PupilGuardian, col(PupilGuardian.guardian_id) == col(Guardian.id))
                .join(Pupil, col(Pupil.id) == col(PupilGuardian.pupil_id))
                .where(col(Pupil.class_id) == ce2_cm1, col(Guardian.email).is_(None))
            ).scalars()
        )
    assert expected

    await user.send_text("/responsables ce2 - cm1 sans")
    first = await user.next_message()

    assert "CE2-CM1" in first.content.splitlines()[0] and "19" in first.content.splitlines()[0]
    assert identifiers_in(first.content) == expected  # few enough for one page
    assert "@" not in first.content  # never an address in a list

    await user.send_text("/responsables ecole")
    page = await user.next_message()
    seen = identifiers_in(page.content)
    while "▶️" in page.button_labels:
        await press(user, page, page.button("▶️").callback_data or "")
        page = await user.next_edit()
        seen |= identifiers_in(page.content)
    with Session(bot_harness.engine) as session:
        everyone = set(session.execute(select(col(Account.identifier))).scalars())
    assert seen == everyone  # 226 guardians over 16 pages, each once
    await press(user, page, page.button("◀️").callback_data or "")
    assert identifiers_in((await user.next_edit()).content) < everyone


async def test_responsables_without_arguments_is_a_guided_choice(
    bot_harness: BotHarness, school: DirectorChat
) -> None:
    user = school.user
    ce2_cm1 = class_id(bot_harness, school.school_id, "CE2-CM1")

    await user.send_text("/responsables")
    choice = await user.next_message()
    assert f"resp:s:c{ce2_cm1}:-:-" in button_data(choice)
    assert "resp:s:lCM1:-:-" in button_data(choice) and "resp:s:e:-:-" in button_data(choice)

    await press(user, choice, f"resp:s:c{ce2_cm1}:-:-")
    filters_step = await user.next_edit()
    assert "CE2-CM1" in filters_step.content
    await press(user, filters_step, f"resp:p:c{ce2_cm1}:s:-:0")
    listing = await user.next_edit()

    await user.send_text("/responsables CE2-CM1 sans")
    typed = await user.next_message()
    assert identifiers_in(listing.content) == identifiers_in(typed.content)

    # Filters typed without a class: the class button then lists straight away.
    await user.send_text("/responsables sans")
    choice = await user.next_message()
    await press(user, choice, f"resp:s:c{ce2_cm1}:s:-")
    assert identifiers_in((await user.next_edit()).content) == identifiers_in(typed.content)


async def test_an_unknown_class_lists_the_known_ones_as_buttons(
    bot_harness: BotHarness, school: DirectorChat
) -> None:
    await school.user.send_text("/responsables CM3 Mme Bidule avec")
    answer = await school.user.next_message()

    labels = [info for info in ("CP A", "CP B", "CE2-CM1", "CM1/2 Mme N'Diaye", "PS-MS Mme Roux")]
    assert all(label in answer.content for label in labels)
    assert all(label in answer.button_labels for label in labels)
    # The typed filter is kept: a class button lists that class's guardians with an e-mail.
    ce2_cm1 = class_id(bot_harness, school.school_id, "CE2-CM1")
    assert f"resp:p:c{ce2_cm1}:a:-:0" in button_data(answer)


async def test_etat_shows_the_statistics_and_both_percentages(
    bot_harness: BotHarness, school: DirectorChat
) -> None:
    await school.user.send_text("/etat")
    reply = await school.user.wait_for(lambda m: "CE2-CM1" in m.content)

    stats = school_statistics(session=Session(bot_harness.engine), school_id=school.school_id)
    with use_language("fr"):
        for counts in (stats.total, *stats.classes, *stats.levels):
            assert format_percentage(counts.activated_accounts_percent / 100) in reply.content
            assert (
                format_percentage(counts.pupils_with_activated_guardian_percent / 100)
                in reply.content
            )
    for state, number in stats.total.by_state().items():
        assert re.search(rf"^{STATE_LIGHTS[state]} .*: {number}$", reply.content, re.MULTILINE)
    for group in stats.classes:
        assert f"{group.label} : {lights(group)}" in reply.content
    assert "/envoyer" in reply.content and "/pdf" in reply.content

    ce2_cm1 = class_id(bot_harness, school.school_id, "CE2-CM1")
    await press(school.user, reply, f"etat:c{ce2_cm1}")
    focused = await school.user.next_edit()
    one = next(group for group in stats.classes if group.class_id == ce2_cm1)
    assert "CE2-CM1" in focused.content.splitlines()[1]
    for state, number in one.by_state().items():
        assert re.search(rf"^{STATE_LIGHTS[state]} .*: {number}$", focused.content, re.MULTILINE)
    assert "etat:e" in button_data(focused)


async def test_export_sends_a_csv_of_the_accounts(
    bot_harness: BotHarness, school: DirectorChat
) -> None:
    await school.user.send_text("/export")
    sent = await school.user.wait_for(lambda m: m.document is not None)

    assert sent.document is not None
    assert re.fullmatch(r"comptes-0751234X-\d{4}-\d{2}-\d{2}\.csv", sent.document.filename or "")
    data = sent.document.data
    assert data.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig")), delimiter=";"))
    header, body = rows[0], rows[1:]
    identifier = header.index("Identifiant")
    with Session(bot_harness.engine) as session:
        accounts = set(session.execute(select(col(Account.identifier))).scalars())
        audit = session.execute(
            select(AuditEvent).where(col(AuditEvent.action) == "accounts.exported")
        ).scalar_one()
    assert {row[identifier] for row in body} == accounts and len(body) == 226
    assert not any(
        word in title.lower() for title in header for word in ("password", "mot de passe")
    )
    assert audit.details == {"rows": 226} and audit.actor == f"telegram:{school.user.id}"
    # Deleted from the chat after the school's retention, like the letters' PDFs.
    await bot_harness.settle()
    with Session(bot_harness.engine) as session:
        deletion = session.execute(
            select(ScheduledDeletion).where(col(ScheduledDeletion.message_id) == sent.message_id)
        ).scalar_one()
    assert deletion.chat_id == school.user.id and deletion.done_at is None
    left = deletion.delete_at.replace(tzinfo=UTC) - datetime.now(UTC)
    assert timedelta(hours=23, minutes=55) < left <= timedelta(hours=24)
    assert bot_harness.app.job_queue is not None
    assert bot_harness.app.job_queue.jobs()


# --- Who sees what ----------------------------------------------------------------------------


async def test_a_family_is_refused_everything(bot_harness: BotHarness, samples_dir: Path) -> None:
    director = await bot_harness.new_director("0751234X")
    import_samples(bot_harness, director.school_id, samples_dir)
    family = bot_harness.new_family()

    for command in ("/classes", "/responsables ecole", "/etat", "/export"):
        await family.send_text(command)
        refusal = await family.next_message()
        assert "/start" in refusal.content and refusal.document is None
        assert not identifiers_in(refusal.content) and "CE2-CM1" not in refusal.content
    await send_sample(family, samples_dir, "eleves.csv")
    refusal = await family.next_message()
    assert "/start" in refusal.content
    assert uploads(bot_harness) == []
    assert count(bot_harness, Pupil, director.school_id) == 180


async def test_a_director_never_sees_another_schools_data(
    bot_harness: BotHarness, samples_dir: Path
) -> None:
    school_a = await bot_harness.new_director("0751234X")
    import_samples(bot_harness, school_a.school_id, samples_dir)
    school_b = await bot_harness.new_director("0751235Y")
    user = school_b.user
    with Session(bot_harness.engine) as session:
        identifiers_a = set(session.execute(select(col(Account.identifier))).scalars())

    await user.send_text("/classes")
    classes = await user.next_message()
    await user.send_text("/responsables ecole")
    listing = await user.next_message()
    await user.send_text("/responsables CE2-CM1")
    unknown = await user.next_message()
    await user.send_text("/etat")
    status = await user.next_message()
    await user.send_text("/export")
    export = await user.next_message()

    for reply in (classes, listing, unknown, status, export):
        assert "CE2-CM1" not in reply.content and not identifiers_in(reply.content) & identifiers_a
        assert reply.document is None
    # A button naming school A's class, pressed by school B's director, shows nothing of it.
    class_a = class_id(bot_harness, school_a.school_id, "CE2-CM1")
    await forge_press(bot_harness, user, listing, f"resp:p:c{class_a}:-:-:0")
    await forge_press(bot_harness, user, status, f"etat:c{class_a}")
    for message in user.bot_messages:
        assert not identifiers_in(message.content) & identifiers_a
        assert "CE2-CM1" not in message.content


def test_long_screens_are_split_between_blocks_under_telegram_limit() -> None:
    blocks = [f"<b>Class {n}</b>: " + "x" * 300 for n in range(40)]

    texts = split_text(blocks, limit=4096)

    assert len(texts) > 1 and all(len(text) <= 4096 for text in texts)
    assert "\n".join(texts) == "\n".join(blocks)  # nothing lost, no block cut in two
    assert split_text(["a" * 5000]) == ["a" * 4096, "a" * 904]
