"""`educonnect-bot director list|remove` and `invitation list|revoke`, run as the operator
runs them: a director is listed then removed from one school, a pending invitation is listed
by id (never by code) and revoked, and the bot then refuses it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine
from sqlmodel import Session

from bot.services.schools import (
    InvitationRevokedError,
    directed_schools,
    redeem_director_invitation,
)
from tests.test_cli import UAI
from tests.test_cli_inspectors import OTHER_UAI, Operator, database, district

__all__ = ["database", "district"]  # the fixtures, imported for pytest

DIRECTOR = 7_123_456_789


@pytest.fixture
def directed(district: Operator, database: Engine) -> Iterator[Operator]:
    """The two schools, both directed by DIRECTOR."""
    for uai in (UAI, OTHER_UAI):
        code = district.json("director", "invite", uai)["code"]
        redeem(database, code)
    yield district


def redeem(engine: Engine, code: str) -> list[str]:
    with Session(engine, expire_on_commit=False) as session:
        school = redeem_director_invitation(
            session, code=code, telegram_user_id=DIRECTOR, display_name="Mme Martin"
        )
        session.commit()
    return [school.uai]


def test_a_director_is_listed_then_removed_from_one_school(
    directed: Operator, database: Engine
) -> None:
    (listed,) = directed.json("director", "list", UAI.lower())
    assert listed["telegram_user_id"] == DIRECTOR and listed["name"] == "Mme Martin"
    table = directed.ok("director", "list", UAI)
    assert str(DIRECTOR) in table and "Mme Martin" in table

    removed = directed.json("director", "remove", UAI, str(DIRECTOR))
    assert removed == {"uai": UAI, "telegram_user_id": DIRECTOR, "removed": True}
    assert directed.json("director", "list", UAI) == []
    with Session(database) as session:
        assert [s.uai for s in directed_schools(session, telegram_user_id=DIRECTOR)] == [OTHER_UAI]
    # In words, and a second time: nothing left to remove, said on one line, exit code 0.
    again = directed.ok("director", "remove", UAI, str(DIRECTOR))
    assert str(DIRECTOR) in again and UAI in again
    code, _out, err = directed.run("director", "remove", "0691234A", str(DIRECTOR))
    assert code != 0 and "0691234A" in err and "Traceback" not in err


def test_a_pending_invitation_is_listed_by_id_and_revoked(
    district: Operator, database: Engine
) -> None:
    assert district.json("invitation", "list") == []
    first = district.json("director", "invite", UAI)
    district.json("director", "invite", OTHER_UAI)

    every = district.json("invitation", "list")
    assert [entry["uai"] for entry in every] == [UAI, OTHER_UAI]
    assert first["code"] not in district.ok("invitation", "list")
    (mine,) = district.json("invitation", "list", UAI)
    assert set(mine) == {"id", "uai", "school", "created_at", "expires_at"}
    assert mine["expires_at"] == first["expires_at"]

    assert district.json("invitation", "revoke", str(mine["id"])) == {
        "id": mine["id"],
        "revoked": True,
    }
    assert [entry["uai"] for entry in district.json("invitation", "list")] == [OTHER_UAI]
    with pytest.raises(InvitationRevokedError):
        redeem(database, first["code"])
    assert str(mine["id"]) in district.ok("invitation", "revoke", str(mine["id"]))
    code, _out, err = district.run("invitation", "revoke", "999999")
    assert code != 0 and "999999" in err and len(err.splitlines()) == 1
