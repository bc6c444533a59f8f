"""Sending the due reminders through /relancer's services (a reminder, never a new password)
and keeping a `FamilyReminder` per guardian reminded, which the weekly limit and the digest
read. Nothing here speaks Telegram: the job writes to the linked chats and records it."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlmodel import Session, col

from bot.db import lock_for_writing
from bot.services.accounts import CredentialKind, linked_chat_ids
from bot.services.distribution import (
    NothingToDistributeError,
    Purpose,
    StalePlanError,
    plan_for_accounts,
    start_reminders,
)
from bot.services.reminders.selection import due_reminders
from models import AccountState, DistributionChannel, FamilyReminder, Guardian, School
from models.queries import in_chunks

log = logging.getLogger(__name__)

EMAIL_CHANNEL = "email"
CHAT_CHANNEL = "chat"


@dataclass(frozen=True, slots=True)
class RemindedGuardian:
    """A guardian just reminded by e-mail, and the Telegram chats linked to them."""

    reminder_id: int
    account_id: int
    guardian_id: int
    name: str  # « Prénom NOM »
    identifier: str
    activating: bool  # chose a password, still to confirm the address
    language: str | None  # the guardian's language when the school knows it
    chat_ids: tuple[int, ...]


@dataclass(frozen=True)
class ReminderBatch:
    """What one school's automatic reminders did: the e-mails' outbox batch (None when nobody
    was reminded) and each guardian reminded."""

    school_id: int
    school_name: str
    batch_id: str | None
    reminded: tuple[RemindedGuardian, ...] = ()

    @property
    def count(self) -> int:
        return len(self.reminded)


def _lock_school(session: Session, school_id: int) -> School | None:
    """The school, locked until the commit: two processes never remind the same families."""
    lock_for_writing(session)
    return session.execute(
        select(School).where(col(School.id) == school_id).with_for_update()
    ).scalar_one_or_none()


def send_reminders(
    session: Session,
    *,
    school_id: int,
    account_ids: Sequence[int],
    now: datetime,
    actor: str,
    bot_username: str | None,
    portal_url: str,
    mail_from: str,
) -> ReminderBatch:
    """Remind these accounts by e-mail, in the caller's transaction, as /relancer's « reminder »
    does (the password is unchanged: an account that would need a new one, or a paper letter,
    is left out), and record a `FamilyReminder` for each. Wake the sender after the commit.
    An account that changed meanwhile (an activation) makes the whole batch wait for the next
    run: nothing is written then."""
    school = session.get(School, school_id)
    if school is None or not account_ids:
        return ReminderBatch(school_id, school.name if school else "", None)
    preview = plan_for_accounts(
        session, school_id=school_id, account_ids=account_ids, purpose=Purpose.REMINDER, now=now
    )
    # Paper is never automatic, and neither is a new password (an expired provisional one).
    planned = [
        entry
        for entry in preview.planned
        if entry.kind is CredentialKind.REMINDER and entry.channel == DistributionChannel.EMAIL
    ]
    if not planned:
        return ReminderBatch(school_id, school.name, None)
    # The confirmation /relancer's preview would give: the states seen now are checked again
    # under lock when recording, and `reset=False` keeps every password.
    confirmation = {
        "purpose": Purpose.REMINDER.value,
        "include_all": True,
        "accounts": {str(entry.account_id): entry.state.value for entry in planned},
    }
    try:
        result = start_reminders(
            session,
            school_id=school_id,
            preview_or_account_ids=confirmation,
            reset=False,
            actor=actor,
            bot_username=bot_username,
            portal_url=portal_url,
            mail_from=mail_from,
            now=now,
        )
    except (StalePlanError, NothingToDistributeError) as error:
        log.info("automatic reminders of school %s postponed (%s)", school_id, error)
        return ReminderBatch(school_id, school.name, None)
    rows = [
        FamilyReminder(
            school_id=school_id, account_id=entry.account_id, sent_at=now, channels=[EMAIL_CHANNEL]
        )
        for entry in planned
    ]
    session.add_all(rows)
    session.flush()
    chats = linked_chat_ids(session, guardian_ids=[entry.guardian_id for entry in planned])
    languages = _languages(session, [entry.guardian_id for entry in planned])
    reminded = tuple(
        RemindedGuardian(
            reminder_id=row.id or 0,
            account_id=entry.account_id,
            guardian_id=entry.guardian_id,
            name=entry.name,
            identifier=entry.identifier,
            activating=entry.state == AccountState.ACTIVATING,
            language=languages.get(entry.guardian_id),
            chat_ids=tuple(chats.get(entry.guardian_id, ())),
        )
        for entry, row in zip(planned, rows, strict=True)
    )
    return ReminderBatch(school_id, school.name, result.batch_id, reminded)


def _languages(session: Session, guardian_ids: Sequence[int]) -> dict[int, str | None]:
    languages: dict[int, str | None] = {}
    for chunk in in_chunks(sorted(set(guardian_ids))):
        for guardian_id, language in session.execute(
            select(col(Guardian.id), col(Guardian.preferred_language)).where(
                col(Guardian.id).in_(chunk)
            )
        ):
            languages[guardian_id] = language or None
    return languages


def send_due_reminders(
    session: Session,
    *,
    school_id: int,
    now: datetime,
    actor: str,
    bot_username: str | None,
    portal_url: str,
    mail_from: str,
) -> ReminderBatch:
    """The hourly job's work for one school, in one transaction: lock the school, find who is
    due (`due_reminders`) and remind them (`send_reminders`). Nothing when reminders are off."""
    school = _lock_school(session, school_id)
    if school is None or not school.reminders_enabled:
        return ReminderBatch(school_id, school.name if school else "", None)
    due = due_reminders(session, school_id=school_id, now=now)
    return send_reminders(
        session,
        school_id=school_id,
        account_ids=due,
        now=now,
        actor=actor,
        bot_username=bot_username,
        portal_url=portal_url,
        mail_from=mail_from,
    )


def record_chat_reminders(session: Session, *, reminder_ids: Sequence[int]) -> None:
    """Note that these reminders reached the guardian's linked chat too."""
    for chunk in in_chunks(sorted(set(reminder_ids))):
        for reminder in session.execute(
            select(FamilyReminder).where(col(FamilyReminder.id).in_(chunk))
        ).scalars():
            if CHAT_CHANNEL not in reminder.channels:
                reminder.channels = [*reminder.channels, CHAT_CHANNEL]
                session.add(reminder)
    session.flush()
