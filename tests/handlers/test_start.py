"""/start, the command menus, /aide, /annuler and the error handler, as a person meets them."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import signal
import struct
import sys
import zlib
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, select
from sqlmodel import Session, col

import handlers.help
from bot.sandbox.botapi import BotApiServer
from bot.services.schools import list_invitations, revoke_invitation
from bot.services.schools.directors import directed_schools, director_telegram_ids
from handlers import menus, start
from models import BotState, Director, utcnow
from tests.handlers.conftest import BotHarness

pytestmark = pytest.mark.timeout(60)

DIRECTOR_MENU = [
    "classes",
    "responsables",
    "envoyer",
    "pdf",
    "relancer",
    "etat",
    "demandes",
    "lsu",
    "digest",
    "export",
    "ecole",
    "aide",
    "annuler",
]
FAMILY_MENU = [
    "start",
    "etat",
    "identifiant",
    "motdepasse",
    "activation",
    "question",
    "demande",
    "langue",
    "aide",
    "annuler",
]


def chat_scope(chat_id: int) -> dict[str, object]:
    return {"type": "chat", "chat_id": chat_id}


def tiny_png() -> bytes:
    """A valid 1×1 white PNG."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0)
    pixels = zlib.compress(b"\x00\xff")
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


def names(commands: list[tuple[str, str]]) -> list[str]:
    return [command for command, _description in commands]


# --- invitations ------------------------------------------------------------------------------


async def test_invitation_makes_the_user_director_and_welcomes_them_with_the_school(
    bot_harness: BotHarness,
) -> None:
    director = await bot_harness.new_director("0751234X", school_name="École <Jules> Ferry")

    assert "0751234X" in director.welcome.content
    assert "École <Jules> Ferry" in director.welcome.content  # escaped, shown as typed
    # The next step names both ONDE extractions.
    assert "Élèves" in director.welcome.content
    assert "Responsables" in director.welcome.content
    assert bot_harness.call(director_telegram_ids) == [director.user.id]


async def test_director_gets_the_director_menu_and_everyone_else_the_family_menu(
    bot_harness: BotHarness,
) -> None:
    server = bot_harness.server
    assert names(server.commands()) == FAMILY_MENU
    assert names(server.commands(language_code="en")) == FAMILY_MENU
    # The family menu speaks every family language.
    for language_code, description in (("ar", "اختيار لغتي"), ("tr", "Dilimi seç")):
        menu = server.commands(language_code=language_code)
        assert names(menu) == FAMILY_MENU
        assert (("langue", description)) in menu

    director = await bot_harness.new_director()
    assert names(server.commands(chat_scope(director.user.id))) == DIRECTOR_MENU
    english = server.commands(chat_scope(director.user.id), language_code="en")
    assert names(english) == DIRECTOR_MENU
    assert all(description.strip() for _command, description in english)


async def test_used_invitation_is_refused(bot_harness: BotHarness) -> None:
    school_id = bot_harness.add_school()
    code = bot_harness.invite(school_id)
    first, second = bot_harness.new_family("Alice"), bot_harness.new_family("Bob")

    await first.send_text(f"/start {code}")
    await first.next_message()
    await second.send_text(f"/start {code}")
    refusal = await second.next_message()

    assert "déjà été utilisée" in refusal.content
    assert bot_harness.call(directed_schools, telegram_user_id=second.id) == []
    assert bot_harness.server.commands(chat_scope(second.id)) == []


async def test_expired_invitation_is_refused(bot_harness: BotHarness) -> None:
    school_id = bot_harness.add_school()
    code = bot_harness.invite(school_id, ttl=timedelta(days=1), now=utcnow() - timedelta(days=2))
    user = bot_harness.new_family()

    await user.send_text(f"/start {code}")
    refusal = await user.next_message()

    assert "expiré" in refusal.content
    assert bot_harness.call(directed_schools, telegram_user_id=user.id) == []


async def test_revoked_invitation_is_refused_with_its_own_message(
    bot_harness: BotHarness,
) -> None:
    school_id = bot_harness.add_school()
    code = bot_harness.invite(school_id)
    (pending,) = bot_harness.call(list_invitations)
    assert bot_harness.call(revoke_invitation, invitation_id=pending.id, actor="cli:test")
    user = bot_harness.new_family()

    await user.send_text(f"/start {code}")
    refusal = await user.next_message()

    assert re.search("cancelled|annulée", refusal.content)
    assert "expiré" not in refusal.content
    assert bot_harness.call(directed_schools, telegram_user_id=user.id) == []


async def test_unknown_code_is_refused(bot_harness: BotHarness) -> None:
    bot_harness.invite(bot_harness.add_school())
    user = bot_harness.new_family()

    await user.send_text("/start abcdefghijklmnopqrstuv")
    refusal = await user.next_message()

    assert "ne reconnais pas ce code" in refusal.content
    assert bot_harness.call(director_telegram_ids) == []


async def test_wrong_codes_are_throttled_then_allowed_again(
    bot_harness: BotHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    school_id = bot_harness.add_school()
    good_code = bot_harness.invite(school_id)
    user = bot_harness.new_family()
    moment = 1_800_000_000.0
    monkeypatch.setattr(start, "clock", lambda: moment)

    for attempt in range(start.MAX_FAILED_CODES):
        await user.send_text(f"/start wrong-code-number-{attempt:04d}")
        assert "ne reconnais pas ce code" in (await user.next_message()).content

    # The sixth attempt is refused before looking at the code, even a good one.
    await user.send_text(f"/start {good_code}")
    throttled = await user.next_message()
    assert "15" in throttled.content
    assert bot_harness.call(directed_schools, telegram_user_id=user.id) == []

    moment += start.FAILED_CODES_WINDOW - 120
    await user.send_text(f"/start {good_code}")
    assert "2" in (await user.next_message()).content

    moment += 121
    await user.send_text(f"/start {good_code}")
    await user.next_message()
    assert [s.id for s in bot_harness.call(directed_schools, telegram_user_id=user.id)] == [
        school_id
    ]


async def test_second_invitation_adds_a_school_and_makes_it_current(
    bot_harness: BotHarness,
) -> None:
    first = await bot_harness.new_director(school_name="École A")
    second = await bot_harness.new_director(school_name="École B", user=first.user)

    assert len(bot_harness.call(directed_schools, telegram_user_id=first.user.id)) == 2
    assert "/ecole" in second.welcome.content
    await first.user.send_text("/ecole")
    choice = await first.user.next_message()
    assert [label for label in choice.button_labels if label.startswith("✅")] == [
        f"✅ École B ({second.uai})"
    ]


# --- /start without a code, /aide, /annuler, stray messages -----------------------------------


async def test_start_welcomes_a_family_and_a_returning_director_differently(
    bot_harness: BotHarness,
) -> None:
    director = await bot_harness.new_director()
    family = bot_harness.new_family("Zoé <3")

    await family.send_text("/start")
    welcome = await family.next_message()
    await director.user.send_text("/start")
    welcome_back = await director.user.next_message()

    assert "Zoé <3" in welcome.content
    assert "/aide" in welcome.content
    assert director.uai not in welcome.content
    assert director.uai in welcome_back.content


async def test_help_differs_for_directors_and_families(bot_harness: BotHarness) -> None:
    director = await bot_harness.new_director()
    family = bot_harness.new_family()

    await director.user.send_text("/aide")
    director_help = await director.user.next_message()
    await family.send_text("/aide")
    family_help = await family.next_message()

    for command in ("/classes", "/responsables", "/etat", "/export", "/ecole", "/annuler"):
        assert command in director_help.content
    assert director.uai in director_help.content
    # No pupils yet: the first step is the import of both ONDE files.
    assert "Élèves" in director_help.content
    assert "/classes" not in family_help.content
    assert bot_harness.settings.portal_url in family_help.content


async def test_cancel_with_nothing_in_progress_and_stray_messages_point_to_help(
    bot_harness: BotHarness,
) -> None:
    family = bot_harness.new_family()

    await family.send_text("/annuler")
    nothing = await family.next_message()
    await family.send_text("bonjour, j'ai perdu mon identifiant")
    hint = await family.next_message()
    await family.send_text("/nimportequoi")
    unknown = await family.next_message()
    await family.send_photo(tiny_png())
    photo_hint = await family.next_message()

    assert "rien à annuler" in nothing.content
    assert "/aide" in hint.content
    assert "/aide" in unknown.content
    assert "/aide" in photo_hint.content
    await family.expect_no_message(0.2)


# --- menus at start-up --------------------------------------------------------------------------


async def test_menus_install_sets_every_directors_menu_and_skips_vanished_chats(
    bot_harness: BotHarness,
) -> None:
    school_id = bot_harness.add_school()
    present = bot_harness.new_family("Présente")
    with Session(bot_harness.engine) as session:
        session.add(Director(telegram_user_id=present.id, school_id=school_id))
        session.add(Director(telegram_user_id=123_456_789_012, school_id=school_id))  # no chat
        session.commit()

    await menus.install(bot_harness.app)

    assert names(bot_harness.server.commands(chat_scope(present.id))) == DIRECTOR_MENU
    assert names(bot_harness.server.commands()) == FAMILY_MENU


# --- errors ---------------------------------------------------------------------------------------


async def test_failure_in_a_handler_apologises_and_logs_no_personal_data(
    bot_harness: BotHarness, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    director = await bot_harness.new_director()

    personal_data = "Camille Dupont <camille@example.org>"

    def exploding_count(session: Session, *, school_id: int) -> int:
        raise RuntimeError(f"could not count the pupils of {personal_data}")

    monkeypatch.setattr(handlers.help, "enrolled_pupil_count", exploding_count)
    caplog.set_level(logging.INFO)
    await director.user.send_text("/aide Camille-Secret-Dupont")
    apology = await director.user.next_message()
    await bot_harness.settle()

    assert "Désolé" in apology.content
    logged = caplog.text
    assert "RuntimeError" in logged
    assert "exploding_count" in logged  # where it failed
    for personal in ("Camille", "camille@example.org", "Secret"):
        assert personal not in logged


# --- restarts -------------------------------------------------------------------------------------


async def test_chosen_school_survives_a_restart(bot_harness: BotHarness) -> None:
    first = await bot_harness.new_director(school_name="École A")
    second = await bot_harness.new_director(school_name="École B", user=first.user)
    user = first.user
    await user.send_text("/ecole")
    choice = await user.next_message()
    await user.press(choice, f"École A ({first.uai})")
    await user.next_edit()

    await bot_harness.restart()

    await user.send_text("/ecole")
    after = await user.next_message()
    assert f"✅ École A ({first.uai})" in after.button_labels
    assert f"École B ({second.uai})" in after.button_labels


async def test_run_bot_stops_cleanly_on_sigterm_and_writes_user_data(
    sqlite_engine: Engine, tmp_path: Path
) -> None:
    async with BotApiServer() as server:
        env = {
            **os.environ,
            **server.env(),
            "DATABASE_URL": sqlite_engine.url.render_as_string(hide_password=False),
            "DATA_DIR": str(tmp_path / "data"),
        }
        output = tmp_path / "bot-output.txt"
        with output.open("wb") as sink:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-c",
                "from bot.app import run_bot; from bot.config import Settings; run_bot(Settings())",
                env=env,
                cwd=Path(__file__).resolve().parents[2],
                stdout=sink,
                stderr=sink,
            )
        try:
            family = server.new_user("Parent")
            await family.send_text("/start wrong-code-for-the-record")
            await family.next_message(timeout=30)
            process.send_signal(signal.SIGTERM)
            exit_code = await asyncio.wait_for(process.wait(), 30)
            assert exit_code == 0, output.read_text(errors="replace")[-3000:]
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()

    with Session(sqlite_engine) as session:
        stored = session.execute(
            select(col(BotState.data)).where(
                col(BotState.kind) == "user", col(BotState.key) == str(family.id)
            )
        ).scalar_one()
        assert len(stored[start.FAILED_CODES_KEY]) == 1
    # post_init installed the menus.
    assert names(server.commands()) == FAMILY_MENU
