"""The flows in one go, in the caller's transaction: draft then record at once (/envoyer, and
/pdf or /relancer where nothing is handed over in between, as the CLI and the tests do).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

from sqlmodel import Session

from bot.services.distribution.confirming import Confirmation
from bot.services.distribution.drafting import (
    PaperLetters,
    draft_distribution,
    draft_paper_letters,
    draft_reminders,
)
from bot.services.distribution.planning import Purpose
from bot.services.distribution.recording import (
    ReminderResult,
    audit_batch,
    record_draft,
    record_paper_letters,
    record_reminders,
)
from bot.services.distribution.scopes import ScopeArgument
from models import utcnow


def start_email_distribution(
    session: Session,
    *,
    school_id: int,
    preview_or_account_ids: Confirmation,
    reset: bool,
    actor: str,
    bot_username: str | None,
    portal_url: str,
    mail_from: str,
    now: datetime | None = None,
) -> str:
    """/envoyer, confirmed: in the caller's transaction, issue the credentials, create the
    family-link codes, compose each e-mail and write it to the outbox; returns the batch id
    (for `mail.batch_progress`). Wake the sender after the commit. Everything slow — hashing,
    composing — happens before the first write.

    `preview_or_account_ids` is the preview shown (or its `confirmation()`), or account ids
    picked by hand. Raises `StalePlanError` if an account changed since the preview (plan
    again), `NothingToDistributeError` if nobody is left.
    """
    draft = draft_distribution(
        session,
        school_id=school_id,
        purpose=Purpose.EMAIL,
        confirmation=preview_or_account_ids,
        reset=reset,
        actor=actor,
        bot_username=bot_username,
        portal_url=portal_url,
        mail_from=mail_from,
        now=now or utcnow(),
    )
    record_draft(session, draft)
    assert draft.batch_id is not None
    audit_batch(
        session,
        actor=actor,
        action="distribution.emails_queued",
        school_id=school_id,
        letters=draft.letters,
        batch_id=draft.batch_id,
        reset=reset,
    )
    session.flush()
    return draft.batch_id


def prepare_paper_letters(
    session: Session,
    *,
    school_id: int,
    scope_tokens: Sequence[ScopeArgument] = (),
    preview_or_account_ids: Confirmation | None = None,
    include_all: bool = False,
    reset: bool = False,
    actor: str,
    bot_username: str | None,
    portal_url: str,
    now: datetime | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> PaperLetters:
    """/pdf in one go: `draft_paper_letters` then `record_paper_letters`, in the caller's
    transaction (the rendering comes before the first write, so a failed rendering records
    nothing). For callers that hand the PDF over before recording (the chat, the CLI), the two
    steps are separate. Arguments and errors as `draft_paper_letters`."""
    draft = draft_paper_letters(
        session=session,
        school_id=school_id,
        scope_tokens=scope_tokens,
        preview_or_account_ids=preview_or_account_ids,
        include_all=include_all,
        reset=reset,
        actor=actor,
        bot_username=bot_username,
        portal_url=portal_url,
        now=now,
        progress=progress,
    )
    return record_paper_letters(session=session, draft=draft)


def start_reminders(
    session: Session,
    *,
    school_id: int,
    preview_or_account_ids: Confirmation,
    reset: bool,
    actor: str,
    bot_username: str | None,
    portal_url: str,
    mail_from: str,
    now: datetime | None = None,
) -> ReminderResult:
    """/relancer in one go: `draft_reminders` then `record_reminders`, in the caller's
    transaction (e-mails to the outbox for those with an address, one combined PDF for the
    others, marked delivered on paper). CPU-bound when there are letters: run it off the event
    loop. Raises like `start_email_distribution`."""
    draft = draft_reminders(
        session=session,
        school_id=school_id,
        preview_or_account_ids=preview_or_account_ids,
        reset=reset,
        actor=actor,
        bot_username=bot_username,
        portal_url=portal_url,
        mail_from=mail_from,
        now=now,
    )
    return record_reminders(session=session, draft=draft)
