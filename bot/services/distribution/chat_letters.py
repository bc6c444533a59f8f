"""Recording letters once their PDF was sent in a chat: the draft written and the message's
deletion scheduled in the caller's one short transaction, so that neither happens alone.
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session

from bot.services.distribution.drafting import DistributionDraft
from bot.services.distribution.recording import (
    ReminderResult,
    record_paper_letters,
    record_reminders,
)
from bot.services.letters import schedule_letter_deletion


def record_letters_sent_in_chat(
    session: Session, *, draft: DistributionDraft, chat_id: int, message_id: int, sent_at: datetime
) -> datetime:
    """/pdf, once its PDF is in the chat: record the letters (`record_paper_letters`, which
    raises `StalePlanError` and writes nothing if an account changed) and schedule the PDF's
    deletion after the school's retention, counted from `sent_at`. Returns when it goes."""
    record_paper_letters(session, draft=draft)
    return schedule_letter_deletion(
        session, school_id=draft.school_id, chat_id=chat_id, message_id=message_id, now=sent_at
    )


def record_reminders_sent_in_chat(
    session: Session, *, draft: DistributionDraft, chat_id: int, message_id: int, sent_at: datetime
) -> tuple[ReminderResult, datetime]:
    """/relancer, once the PDF of its paper reminders is in the chat: record the reminders
    (`record_reminders`: the e-mails queued, the letters delivered; `StalePlanError` and
    nothing written if an account changed) and schedule the PDF's deletion, as above."""
    result = record_reminders(session, draft=draft)
    delete_at = schedule_letter_deletion(
        session, school_id=draft.school_id, chat_id=chat_id, message_id=message_id, now=sent_at
    )
    return result, delete_at
