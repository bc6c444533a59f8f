"""`educonnect-bot inspector invite|list|remove`, run as the operator runs them (a separate
process): an invitation for a list of schools that the inspector redeems once, the listing,
the removal, and one clear line for a school that does not exist."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlmodel import Session

from bot import cli
from bot.config import get_settings
from bot.db import make_engine
from bot.i18n import use_language
from bot.services.schools import (
    InvitationAlreadyUsedError,
    inspected_schools,
    redeem_inspector_invitation,
)
from tests.test_cli import UAI, Cli

OTHER_UAI = "0751235Y"
INSPECTOR = 7_123_456_789


class Operator:
    """Runs the command line in this process (a few milliseconds instead of seconds), with
    the same entry point, error handling and French text as the console script."""

    def __init__(self, workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
        self.workdir = workdir
        self.capsys = capsys

    def run(self, *args: str) -> tuple[int, str, str]:
        self.capsys.readouterr()
        with use_language("fr"):  # `run` sets French: let it not outlast the command
            code = cli.run(list(args))
        out, err = self.capsys.readouterr()
        return code, out, err

    def ok(self, *args: str) -> str:
        code, out, err = self.run(*args)
        assert code == 0 and err == "", err
        return out

    def json(self, *args: str) -> Any:
        return json.loads(self.ok(*args, "--json"))


@pytest.fixture
def district(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    database_url: str,
) -> Iterator[Operator]:
    """A data folder with two registered schools, on the test's database (SQLite, then
    PostgreSQL)."""
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.chdir(tmp_path)  # no .env here
    get_settings.cache_clear()
    operator = Operator(tmp_path, capsys)
    try:
        operator.ok("school", "add", UAI, "École Jules Ferry")
        operator.ok("school", "add", OTHER_UAI, "École Condorcet")
        yield operator
    finally:
        get_settings.cache_clear()


@pytest.fixture
def database(district: Operator, database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    try:
        yield engine
    finally:
        engine.dispose()


def redeem(engine: Engine, code: str, user: int = INSPECTOR) -> list[str]:
    with Session(engine, expire_on_commit=False) as session:
        schools = redeem_inspector_invitation(
            session, code=code, telegram_user_id=user, display_name="M. Durand"
        )
        session.commit()
    return [school.uai for school in schools]


def test_an_invitation_for_two_schools_is_redeemed_listed_and_removed(
    district: Operator, database: Engine
) -> None:
    assert district.json("inspector", "list") == []

    invitation = district.json("inspector", "invite", UAI, OTHER_UAI.lower(), "--days", "3")

    assert invitation["schools"] == [
        {"uai": OTHER_UAI, "name": "École Condorcet"},
        {"uai": UAI, "name": "École Jules Ferry"},
    ]
    assert invitation["start_command"] == f"/start {invitation['code']}"
    expires_at = datetime.fromisoformat(invitation["expires_at"])
    assert expires_at - datetime.now(UTC) == pytest.approx(
        timedelta(days=3), abs=timedelta(minutes=5)
    )
    assert redeem(database, invitation["code"]) == [OTHER_UAI, UAI]
    with pytest.raises(InvitationAlreadyUsedError):
        redeem(database, invitation["code"], user=INSPECTOR + 1)

    (listed,) = district.json("inspector", "list")
    assert listed["telegram_user_id"] == INSPECTOR and listed["name"] == "M. Durand"
    assert [school["uai"] for school in listed["schools"]] == [OTHER_UAI, UAI]
    assert datetime.fromisoformat(listed["since"]) <= datetime.now(UTC)
    table = district.ok("inspector", "list")
    assert str(INSPECTOR) in table and "École Condorcet" in table

    removed = district.json("inspector", "remove", str(INSPECTOR), UAI)
    assert removed == {"telegram_user_id": INSPECTOR, "removed": 1}
    with Session(database) as session:
        assert [s.uai for s in inspected_schools(session, telegram_user_id=INSPECTOR)] == [
            OTHER_UAI
        ]

    every = district.ok("inspector", "remove", str(INSPECTOR))  # every school left: one
    assert f"L'inspecteur {INSPECTOR} ne suit plus 1 école." in every
    assert district.json("inspector", "list") == []
    assert "Aucun inspecteur pour l'instant." in district.ok("inspector", "list")
    nothing = district.ok("inspector", "remove", str(INSPECTOR))
    assert f"Aucun inspecteur d'identifiant Telegram {INSPECTOR} ne suit ces écoles." in nothing


def test_an_invitation_in_words_gives_the_start_command(
    district: Operator, database: Engine
) -> None:
    text = district.ok("inspector", "invite", UAI)

    assert "Invitation pour l'inspecteur de 1 école :" in text
    assert f"{UAI} — École Jules Ferry" in text
    assert "Valable une seule fois, jusqu'au" in text
    start = next(line for line in text.splitlines() if line.startswith("/start "))
    assert redeem(database, start.split()[1]) == [UAI]


def test_an_unknown_school_is_one_clear_line_and_no_invitation(district: Operator) -> None:
    code, out, err = district.run("inspector", "invite", UAI, "0691234a")

    assert code != 0
    assert "Traceback" not in err + out
    assert err.splitlines() == [
        "Erreur : Aucune école n'est enregistrée avec l'UAI 0691234A (« school list » les "
        "affiche, « school add » en ajoute une)."
    ]
    assert "/start" not in out

    code, out, err = district.run("inspector", "invite", "0691234A", "--json")
    assert code == 1 and len(err.splitlines()) == 1
    assert "0691234A" in json.loads(out)["error"]

    code, out, err = district.run("inspector", "invite", "75-1234")
    assert code != 0 and len(err.splitlines()) == 1 and err.startswith("Erreur : ")
    code, out, err = district.run("inspector", "invite")  # no school at all
    assert code != 0 and len(err.splitlines()) == 1
    code, out, err = district.run("inspector", "remove", str(INSPECTOR), "0691234A")
    assert code != 0 and "0691234A" in err
    assert district.json("inspector", "list") == []


def test_the_console_script_invites_as_a_separate_process(
    district: Operator, database: Engine, database_url: str
) -> None:
    # Once as the operator really runs it (a few seconds: a fresh interpreter).
    result = Cli(district.workdir, separate=True, DATABASE_URL=database_url).run(
        "inspector", "invite", UAI, OTHER_UAI, "--json"
    )

    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    code = json.loads(result.stdout)["code"]
    assert redeem(database, code) == [OTHER_UAI, UAI]
