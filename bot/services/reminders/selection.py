"""Who is due an automatic reminder: guardians notified or activating for more than the
school's N days, with an e-mail address, not reminded in the last week — paper is never
automatic, and an activated or deactivated account is left alone."""

from __future__ import annotations

from datetime import datetime, timedelta

import anyascii
from sqlalchemy import select
from sqlmodel import Session, col

from bot.services.accounts import CredentialKind
from bot.services.distribution import Purpose, plan_for_accounts
from models import (
    Account,
    AccountState,
    DistributionChannel,
    FamilyReminder,
    Guardian,
    School,
)

# At most one automatic reminder a week per guardian.
REMINDER_INTERVAL = timedelta(days=7)
_WAITING = (AccountState.NOTIFIED, AccountState.ACTIVATING)


def schools_with_reminders(session: Session) -> list[int]:
    """The schools that turned automatic reminders on (/digest)."""
    return list(
        session.execute(
            select(col(School.id)).where(col(School.reminders_enabled)).order_by(col(School.id))
        ).scalars()
    )


def _candidates(session: Session, school: School, now: datetime) -> list[int]:
    """The accounts the database says are waiting, before /relancer's rules are applied."""
    assert school.id is not None
    cutoff = now - timedelta(days=school.reminder_after_days)
    recently_reminded = select(col(FamilyReminder.account_id)).where(
        col(FamilyReminder.school_id) == school.id,
        col(FamilyReminder.sent_at) > now - REMINDER_INTERVAL,
    )
    return list(
        session.execute(
            select(col(Account.id))
            .join(Guardian, col(Guardian.id) == col(Account.guardian_id))
            .where(
                col(Guardian.school_id) == school.id,
                col(Account.state).in_(_WAITING),
                col(Account.activated_at).is_(None),
                col(Account.deactivated_at).is_(None),
                col(Account.distributed_at) <= cutoff,
                col(Guardian.email).is_not(None),
                col(Guardian.email) != "",
                col(Account.id).not_in(recently_reminded),
            )
            .order_by(col(Account.id))
        ).scalars()
    )


def due_reminders(session: Session, *, school_id: int, now: datetime) -> list[int]:
    """The accounts of the school due an automatic reminder at `now`, in name order: notified
    or activating for more than the school's `reminder_after_days` (since their last letter or
    e-mail), none in the last 7 days, and planned by /relancer's rules as a reminder by e-mail
    (a guardian without a usable address, whose child left, or whose provisional password
    expired — that needs a new password, the director's call — is left to the director)."""
    school = session.get(School, school_id)
    if school is None:
        return []
    candidates = _candidates(session, school, now)
    if not candidates:
        return []
    preview = plan_for_accounts(
        session, school_id=school_id, account_ids=candidates, purpose=Purpose.REMINDER, now=now
    )
    return [
        entry.account_id
        for entry in preview.planned
        if entry.kind is CredentialKind.REMINDER and entry.channel == DistributionChannel.EMAIL
    ]


def reminded_since(session: Session, *, school_id: int, since: datetime | None) -> list[str]:
    """The guardians automatically reminded since `since` (ever when None), as « Prénom NOM »
    in name order: what a digest lists."""
    statement = (
        select(
            col(Guardian.id),
            col(Guardian.first_name),
            col(Guardian.last_name),
            col(Guardian.usage_name),
        )
        .join(Account, col(Account.guardian_id) == col(Guardian.id))
        .join(FamilyReminder, col(FamilyReminder.account_id) == col(Account.id))
        .where(col(FamilyReminder.school_id) == school_id)
        .distinct()
    )
    if since is not None:
        statement = statement.where(col(FamilyReminder.sent_at) > since)
    people = sorted(
        (
            (usage_name or last_name, first_name)
            for _id, first_name, last_name, usage_name in session.execute(statement)
        ),
        key=lambda person: (
            anyascii.anyascii(person[0]).casefold(),
            anyascii.anyascii(person[1]).casefold(),
        ),
    )
    return [f"{first} {last.upper()}".strip() for last, first in people]
