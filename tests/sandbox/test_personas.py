"""The sandbox's inspector persona, in process: the first `:inspecteur` registers the demo
school's district and has her redeem the operator's invitation through the chat; her `/etat`
then shows the four schools, furthest behind first, and the chart arrives as a photo; she is
invited once only, however often the person switches to her or starts the sandbox again."""

from __future__ import annotations

import io
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.config import Settings
from bot.sandbox.demo import welcome_inspector
from bot.sandbox.district import NEIGHBOURS, ensure_district, inspected_uais
from bot.sandbox.onde_generator import DEMO_SCHOOL_NAME, DEMO_UAI
from bot.sandbox.session import INSPECTOR_USER_ID, Sandbox, open_sandbox
from bot.sandbox.terminal import ChatView, chat, make_console
from bot.services.schools import list_schools

pytestmark = pytest.mark.timeout(60)

PNG = b"\x89PNG\r\n\x1a\n"


def _settings(tmp_path: Path) -> Settings:
    return Settings(
        _env_file=None,
        data_dir=tmp_path / "data",
        portal_bind="127.0.0.1:0",
        smtp_host=None,
    )


@pytest.fixture
async def sandbox(tmp_path: Path) -> AsyncIterator[Sandbox]:
    async with open_sandbox(_settings(tmp_path), tmp_path / "sandbox.db") as running:
        yield running


def _view(sandbox: Sandbox, tmp_path: Path) -> tuple[ChatView, io.StringIO]:
    screen = io.StringIO()
    return ChatView(sandbox, make_console(screen), tmp_path / "downloads"), screen


async def _type(view: ChatView, monkeypatch: pytest.MonkeyPatch, *lines: str) -> None:
    """The person types `lines` at the prompt, then Ctrl-D; the inspector is welcomed as
    `make run` welcomes her."""
    monkeypatch.setattr(sys, "stdin", io.StringIO("".join(f"{line}\n" for line in lines)))
    welcomes = {view.sandbox.inspector.key: welcome_inspector}
    assert await chat(view, samples=None, echo_input=True, welcomes=welcomes) == 0


async def test_switching_to_the_inspector_invites_her_and_her_etat_shows_the_district(
    sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    view, screen = _view(sandbox, tmp_path)
    inspector = sandbox.inspector
    assert inspector.key == "inspecteur" and inspector.user.id == INSPECTOR_USER_ID

    await _type(view, monkeypatch, ":inspecteur", "/etat", ":directeur", ":inspecteur")

    out = screen.getvalue().replace("\n", "")  # unwrapped
    district = await sandbox.run_service(ensure_district)
    assert district[0] == DEMO_UAI and len(district) == 1 + len(NEIGHBOURS)
    assert await sandbox.run_service(inspected_uais, telegram_user_id=inspector.user.id) == set(
        district
    )
    # Invited once, through the chat, with the operator's command spelled out.
    assert out.count(f"inspector invite {' '.join(district)}") == 1
    assert out.count(f"{inspector.label} : /start ") == 1, out[-3000:]
    # The district, furthest behind first: the demo school (nothing imported yet), then the
    # neighbours from the least to the most advanced campaign.
    overview, chart = inspector.user.bot_messages[-2:]
    names = [DEMO_SCHOOL_NAME, *(n.name for n in sorted(NEIGHBOURS, key=lambda n: n.activated))]
    positions = [overview.content.index(name) for name in names]
    assert positions == sorted(positions), overview.content
    assert "4 écoles" in overview.content
    assert chart.photo is not None and chart.photo.data.startswith(PNG)
    saved = tmp_path / "downloads" / "district.png"
    assert saved.read_bytes() == chart.photo.data
    assert str(saved) in out


async def test_the_inspector_reads_one_school_and_is_refused_another(
    sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    view, _screen = _view(sandbox, tmp_path)
    await sandbox.run_service(ensure_district)
    outside = "0599999Z"

    await _type(view, monkeypatch, ":inspecteur", "/etat 0590003c", f"/etat {outside}")

    school, refusal = sandbox.inspector.user.bot_messages[-2:]
    assert "École Louise Michel" in school.content and "lecture seule" in school.content
    assert "/envoyer" not in school.content
    assert outside in refusal.content and "Louise" not in refusal.content


async def test_the_inspector_is_invited_once_across_runs(tmp_path: Path) -> None:
    settings, database = _settings(tmp_path), tmp_path / "sandbox.db"
    async with open_sandbox(settings, database) as first:
        assert await welcome_inspector(_view(first, tmp_path)[0])
        schools = len(await first.run_service(list_schools))
    async with open_sandbox(settings, database) as again:
        view, screen = _view(again, tmp_path)
        assert await welcome_inspector(view)
        assert "/start" not in screen.getvalue()
        assert again.inspector.user.bot_messages == []
        assert len(await again.run_service(list_schools)) == schools == 1 + len(NEIGHBOURS)
