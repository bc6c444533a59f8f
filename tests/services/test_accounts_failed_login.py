"""A failed login costs the same whatever the identifier (issue 5): checked on the argon2
verifications it makes — their parameters are in each hash — not with a stopwatch."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import Session

from bot.services.accounts import login
from bot.services.accounts.credentials import IssuedCredential, notify_accounts
from bot.services.accounts.lifecycle import begin_activation, confirm_activation
from bot.services.accounts.login import verify_login
from bot.services.accounts.passwords import CHOSEN_HASHER, PROVISIONAL_HASHER, hash_parameters
from tests.factories import make_school_with_guardians

LETTER_DAY = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
LATER = LETTER_DAY + timedelta(days=10)
CHOSEN = "Vacances-2026!"
PROVISIONAL = (
    PROVISIONAL_HASHER.memory_cost,
    PROVISIONAL_HASHER.time_cost,
    PROVISIONAL_HASHER.parallelism,
)
CHOSEN_PARAMETERS = (CHOSEN_HASHER.memory_cost, CHOSEN_HASHER.time_cost, CHOSEN_HASHER.parallelism)
# What every failure must cost: one verification of each kind.
ONE_OF_EACH = sorted([PROVISIONAL, CHOSEN_PARAMETERS])

pytestmark = pytest.mark.production_argon2


@pytest.fixture
def verified(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int, int]]:
    """The (memory, time, parallelism) of every hash `verify_login` verifies, in order."""
    seen: list[tuple[int, int, int]] = []
    real = login.verify_password

    def spy(password_hash: str | None, password: str) -> bool:
        assert password_hash is not None
        seen.append(hash_parameters(password_hash))
        return real(password_hash, password)

    monkeypatch.setattr(login, "verify_password", spy)
    return seen


def _school(session: Session, guardians: int) -> list[IssuedCredential]:
    school = make_school_with_guardians(session, guardians)
    batch = notify_accounts(
        session=session, account_ids=school.account_ids, actor="director:42", now=LETTER_DAY
    )
    session.commit()
    return batch.issued


def _activate(session: Session, issued: IssuedCredential) -> None:
    begin_activation(
        session=session,
        account_id=issued.account_id,
        new_password=CHOSEN,
        email="famille@example.org",
        actor="portal",
        now=LATER,
    )
    confirm_activation(session=session, account_id=issued.account_id, actor="portal", now=LATER)
    session.commit()


def _fails(session: Session, identifier: str, password: str) -> None:
    opened = verify_login(session=session, identifier=identifier, password=password, now=LATER)
    assert opened is None


def test_every_failed_login_verifies_one_hash_at_each_parameter_set(
    session: Session, verified: list[tuple[int, int, int]]
) -> None:
    waiting, activated = _school(session, 2)
    _activate(session, activated)
    cases = {
        "unknown identifier": ("nobody.here", "Vacances-2026!"),
        "wrong password, provisional one outstanding": (waiting.identifier, "ABCDEFGH"),
        "wrong password, activated account": (activated.identifier, "Vacances-2027!"),
    }

    costs = {}
    for case, (identifier, password) in cases.items():
        verified.clear()
        _fails(session, identifier, password)
        costs[case] = sorted(verified)

    assert costs == dict.fromkeys(cases, ONE_OF_EACH)


def test_an_account_without_credentials_costs_what_an_unknown_identifier_costs(
    session: Session, verified: list[tuple[int, int, int]]
) -> None:
    school = make_school_with_guardians(session, 1)  # an account, never issued a password
    session.commit()
    [never_issued] = school.accounts

    _fails(session, never_issued.identifier, "ABCDEFGH")

    assert sorted(verified) == ONE_OF_EACH


def test_a_successful_login_pays_only_its_own_verification(
    session: Session, verified: list[tuple[int, int, int]]
) -> None:
    waiting, activated = _school(session, 2)
    _activate(session, activated)
    assert waiting.password is not None

    verified.clear()
    assert verify_login(
        session=session, identifier=waiting.identifier, password=waiting.password, now=LATER
    )
    assert verified == [PROVISIONAL]

    verified.clear()
    assert verify_login(
        session=session, identifier=activated.identifier, password=CHOSEN, now=LATER
    )
    assert verified == [CHOSEN_PARAMETERS]
