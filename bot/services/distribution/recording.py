"""Recording a draft in one short transaction: every account checked again under lock, then
the credentials and family-link codes stored, the e-mails written to the outbox, the printed
letters marked delivered on paper, and the audit events.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlmodel import Session

from bot.services.accounts import (
    CredentialKind,
    TransitionRefused,
    mark_distributed,
    record_credentials,
    record_link_codes,
)
from bot.services.audit import record_event
from bot.services.distribution.drafting import DistributionDraft, PaperLetters, kind_counts
from bot.services.distribution.errors import stale_plan_error
from bot.services.distribution.planning import Purpose
from bot.services.letters import Letter
from bot.services.mail import enqueue_many
from models import DistributionChannel


@dataclass(frozen=True)
class ReminderResult:
    """What /relancer started: the e-mails' batch (None if no e-mail) and the paper letters
    for those without an address (None if none)."""

    batch_id: str | None
    emails: int
    email_counts: dict[CredentialKind, int] = field(default_factory=dict)
    paper: PaperLetters | None = None


def record_draft(session: Session, draft: DistributionDraft) -> None:
    """Write a draft: the credentials (checked again under lock: `StalePlanError` if an account
    changed since the draft, and then nothing is written), the link codes, the e-mails into
    the outbox, the printed letters as delivered on paper."""
    assert draft.credentials is not None
    try:
        record_credentials(session=session, draft=draft.credentials, actor=draft.actor)
    except TransitionRefused as error:
        # Another letter or e-mail, an activation, a reset since the draft.
        raise stale_plan_error() from error
    record_link_codes(
        session=session, codes=draft.link_codes, expiries=draft.link_expiries, now=draft.now
    )
    if draft.emails:
        enqueue_many(
            session=session,
            emails=draft.emails,
            school_id=draft.school_id,
            batch_id=draft.batch_id,
            now=draft.now,
        )
    if draft.paper is not None and draft.paper.letters:
        mark_distributed(
            session=session,
            account_ids=[letter.account_id for letter in draft.paper.letters],
            channel=DistributionChannel.PAPER,
            actor=draft.actor,
            at=draft.now,
        )


def audit_batch(
    session: Session,
    *,
    actor: str,
    action: str,
    school_id: int,
    letters: Sequence[Letter],
    **details: Any,
) -> None:
    """One audit event for a whole batch: how many accounts, of which kinds (no names)."""
    record_event(
        session,
        actor=actor,
        action=action,
        school_id=school_id,
        accounts=len(letters),
        kinds={kind.value: count for kind, count in kind_counts(letters).items()},
        **details,
    )


def record_paper_letters(session: Session, *, draft: DistributionDraft) -> PaperLetters:
    """/pdf, last step, in the caller's (short) transaction: check every account again under
    lock and write what `draft_paper_letters` made — the new password hashes and expiries, the
    family-link codes, the accounts delivered on paper, the audit events. Raises
    `StalePlanError` if an account changed since the draft (another director printed, a family
    activated): then nothing is written, and the letters must not be used. Returns the
    letters printed."""
    if draft.purpose is not Purpose.PAPER:
        raise ValueError("this draft belongs to another kind of distribution")
    assert draft.paper is not None
    if draft.is_empty:
        return draft.paper
    record_draft(session, draft)
    audit_batch(
        session,
        actor=draft.actor,
        action="distribution.letters_printed",
        school_id=draft.school_id,
        letters=draft.paper.letters,
        reset=draft.reset,
    )
    session.flush()
    return draft.paper


def record_reminders(session: Session, *, draft: DistributionDraft) -> ReminderResult:
    """/relancer, last step, in the caller's (short) transaction: check every account again
    under lock, then write the credentials, the family-link codes, the e-mails into the outbox
    and the printed letters as delivered on paper. Raises `StalePlanError` if an account
    changed since the draft (nothing is written then). Wake the sender after the commit."""
    if draft.purpose is not Purpose.REMINDER:
        raise ValueError("this draft belongs to another kind of distribution")
    record_draft(session, draft)
    printed = draft.paper.letters if draft.paper is not None else ()
    audit_batch(
        session,
        actor=draft.actor,
        action="distribution.reminders_started",
        school_id=draft.school_id,
        letters=draft.letters,
        batch_id=draft.batch_id,
        reset=draft.reset,
        emails=len(draft.emails),
        letters_printed=len(printed),
    )
    session.flush()
    return ReminderResult(
        batch_id=draft.batch_id,
        emails=len(draft.emails),
        email_counts=kind_counts(draft.email_letters),
        paper=draft.paper,
    )
