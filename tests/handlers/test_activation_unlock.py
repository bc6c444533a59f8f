"""A family's activation waiting for its school after too many wrong birth dates (issue 13): the
bot tells every director of that school once, with a button that allows activation again; a
director of another school pressing a forged button changes nothing."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sqlmodel import Session, col, select

from handlers.activation_unlock import send_activation_lock_notices
from models import Account, AccountState, AuditEvent, utcnow
from tests.handlers.conftest import BotHarness
from tests.handlers.test_guardian_card import (
    button_data,
    director_with_roster,
    forge_press,
    guardian_with_email,
    press,
)

pytestmark = [
    pytest.mark.timeout(90),
    pytest.mark.filterwarnings("ignore::telegram.warnings.PTBUserWarning"),
]


def lock(harness: BotHarness, account_id: int) -> None:
    """What the portal does at the tenth wrong birth date."""
    with Session(harness.engine) as session, session.begin():
        account = session.get(Account, account_id)
        assert account is not None
        account.activation_locked_at = utcnow()
        session.add(account)
        session.add(
            AuditEvent(actor="portal", action="portal.activation_capped", account_id=account_id)
        )


def locked_at(harness: BotHarness, account_id: int) -> object:
    with Session(harness.engine) as session:
        account = session.get(Account, account_id)
        assert account is not None
        return account.activation_locked_at


async def test_directors_are_told_once_and_the_button_allows_activation_again(
    bot_harness: BotHarness, samples_dir: Path
) -> None:
    director = await director_with_roster(bot_harness, samples_dir)
    other = await director_with_roster(bot_harness, samples_dir)
    account = guardian_with_email(bot_harness, director.school_id, AccountState.NOTIFIED)
    assert account.id is not None
    lock(bot_harness, account.id)
    director.user.drain()
    other.user.drain()

    assert await send_activation_lock_notices(bot_harness.app) == 1
    notice = await director.user.wait_for(lambda m: account.identifier in m.content, timeout=20)
    assert f"ga:unlock:{account.id}" in button_data(notice)
    assert await send_activation_lock_notices(bot_harness.app) == 0  # told once
    await bot_harness.settle()
    assert not [m for m in other.user.bot_messages if account.identifier in m.content]

    # A director of another school, with a button the bot never sent them.
    alert = await forge_press(other.user, bot_harness, other.welcome, f"ga:unlock:{account.id}")
    assert re.search(r"not in your school|ne figure pas|pas dans", alert), alert
    assert locked_at(bot_harness, account.id) is not None

    await press(director.user, notice, f"ga:unlock:{account.id}")
    await director.user.wait_for(lambda m: m.content.startswith("🔓"), timeout=20)
    assert locked_at(bot_harness, account.id) is None
    with Session(bot_harness.engine) as session:
        [event] = session.exec(
            select(AuditEvent).where(col(AuditEvent.action) == "portal.activation_unlocked")
        ).all()
        assert event.actor == f"telegram:{director.user.id}"
        assert event.account_id == account.id
