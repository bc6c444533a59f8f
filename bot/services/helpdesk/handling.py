"""What a director does with a help request (takes it, answers it with a standard action or a
message, says which record it is, closes it) and what a family adds to its own request. Each
change is a history event and an audit event; the family's notice says what to tell them."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlmodel import Session, col

from bot.i18n import _
from bot.services.audit import record_event
from bot.services.helpdesk.actions import (
    ANSWERS,
    MAX_FAMILY_MESSAGES,
    HelpAction,
    HelpDeskError,
    RequestClosedError,
    RequestNotFoundError,
)
from bot.services.helpdesk.filing import clean_text, school_director_ids
from bot.services.helpdesk.views import RequestView, load_request, request_view
from models import Account, Guardian, HelpRequest, HelpRequestEvent, HelpStatus, utcnow


@dataclass(frozen=True, slots=True)
class FamilyNotice:
    """What to tell the family after a director's action, in the family's language."""

    telegram_user_id: int
    language: str
    reference: str
    action: HelpAction
    status: HelpStatus
    text: str | None = None  # a director's message, as typed
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class FamilyMessage:
    """A family's message added to its request: the directors to tell."""

    request_id: int
    reference: str
    school_id: int
    director_ids: tuple[int, ...]
    messages_left: int


def _event(
    session: Session,
    request: HelpRequest,
    *,
    actor: str,
    action: HelpAction,
    now: datetime,
    text: str | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    assert request.id is not None
    session.add(
        HelpRequestEvent(
            request_id=request.id,
            at=now,
            actor=actor,
            action=action,
            text=text,
            details=details or {},
        )
    )
    request.updated_at = now
    session.add(request)
    audit_details = {k: v for k, v in (details or {}).items() if isinstance(v, bool | int | str)}
    record_event(
        session,
        actor=actor,
        action=f"helpdesk.{action.value}",
        school_id=request.school_id,
        account_id=_account_id(session, request.guardian_id),
        reference=request.reference,
        **audit_details,
    )


def _account_id(session: Session, guardian_id: int | None) -> int | None:
    if guardian_id is None:
        return None
    return session.execute(
        select(col(Account.id)).where(col(Account.guardian_id) == guardian_id)
    ).scalar_one_or_none()


def take_request(
    session: Session, *, request_id: int, school_id: int, actor: str, now: datetime | None = None
) -> RequestView:
    """A director opens the request: an open one is now « in progress » (recorded once)."""
    now = now or utcnow()
    request = load_request(session, request_id=request_id, school_id=school_id, lock=True)
    if request.status == HelpStatus.OPEN:
        request.status = HelpStatus.IN_PROGRESS
        _event(session, request, actor=actor, action=HelpAction.TAKEN, now=now)
        session.flush()
    return request_view(session, request_id=request_id, school_id=school_id)


def record_answer(
    session: Session,
    *,
    request_id: int,
    school_id: int,
    actor: str,
    action: HelpAction,
    text: str | None = None,
    details: dict[str, Any] | None = None,
    now: datetime | None = None,
) -> FamilyNotice:
    """Record what a director did for the request (one of `ANSWERS`, or `CLOSED`) and say what
    to tell the family. A closed request takes no more answers."""
    if action not in ANSWERS and action is not HelpAction.CLOSED:
        raise ValueError(f"{action} is not an answer")
    now = now or utcnow()
    request = load_request(session, request_id=request_id, school_id=school_id, lock=True)
    if request.status == HelpStatus.CLOSED:
        raise RequestClosedError(_("This request is closed: nothing more is done on it."))
    kept = clean_text(text)
    if action is HelpAction.REPLIED and kept is None:
        raise HelpDeskError(_("The message is empty: type the answer to send to the family."))
    if action is HelpAction.CLOSED:
        request.status = HelpStatus.CLOSED
        request.closed_at = now
    else:
        request.status = HelpStatus.ANSWERED
    _event(session, request, actor=actor, action=action, now=now, text=kept, details=details)
    return FamilyNotice(
        telegram_user_id=request.telegram_user_id,
        language=request.language,
        reference=request.reference,
        action=action,
        status=HelpStatus(request.status),
        text=kept,
        details=dict(details or {}),
    )


def choose_record(
    session: Session,
    *,
    request_id: int,
    school_id: int,
    guardian_id: int,
    actor: str,
    now: datetime | None = None,
) -> RequestView:
    """The director says which guardian of the school the request is about."""
    now = now or utcnow()
    request = load_request(session, request_id=request_id, school_id=school_id, lock=True)
    guardian = session.get(Guardian, guardian_id)
    if guardian is None or guardian.school_id != school_id:
        raise RequestNotFoundError(_("This guardian is not one of your school's."))
    request.guardian_id = guardian_id
    request.matched_by = "director"
    request.candidate_guardian_ids = []
    _event(session, request, actor=actor, action=HelpAction.MATCHED, now=now)
    session.flush()
    return request_view(session, request_id=request_id, school_id=school_id)


def add_family_message(
    session: Session,
    *,
    telegram_user_id: int,
    request_id: int,
    text: str,
    now: datetime | None = None,
) -> FamilyMessage:
    """The family adds a message to its own request (a few per request). An answered request
    opens again: the school has something new to look at."""
    now = now or utcnow()
    request = session.execute(
        select(HelpRequest)
        .where(
            col(HelpRequest.id) == request_id,
            col(HelpRequest.telegram_user_id) == telegram_user_id,
        )
        .with_for_update()
    ).scalar_one_or_none()
    if request is None:
        raise RequestNotFoundError(_("I cannot find this request among yours. Type /demande."))
    if request.status == HelpStatus.CLOSED:
        raise RequestClosedError(
            _("This request is closed. If you still need help, start a new one with /question.")
        )
    kept = clean_text(text)
    if kept is None:
        raise HelpDeskError(_("The message is empty: type what you want to add."))
    sent = int(
        session.execute(
            select(func.count()).where(
                col(HelpRequestEvent.request_id) == request_id,
                col(HelpRequestEvent.action) == HelpAction.FAMILY_MESSAGE,
            )
        ).scalar_one()
    )
    if sent >= MAX_FAMILY_MESSAGES:
        raise HelpDeskError(
            _(
                "You have already added {count} messages to this request: the school has them "
                "and will answer. Please wait for its answer."
            ).format(count=MAX_FAMILY_MESSAGES)
        )
    if request.status == HelpStatus.ANSWERED:
        request.status = HelpStatus.OPEN
    _event(
        session,
        request,
        actor=f"family:{telegram_user_id}",
        action=HelpAction.FAMILY_MESSAGE,
        now=now,
        text=kept,
    )
    assert request.id is not None
    return FamilyMessage(
        request_id=request.id,
        reference=request.reference,
        school_id=request.school_id,
        director_ids=school_director_ids(session, school_id=request.school_id),
        messages_left=MAX_FAMILY_MESSAGES - sent - 1,
    )
