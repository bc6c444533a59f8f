"""Reading help requests: one request with the record it is about (for the director of its
school only), a school's requests page by page (open ones first), and a family's own requests."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlmodel import Session, col

from bot.i18n import _
from bot.services.helpdesk.actions import HelpAction, RequestNotFoundError
from models import (
    Account,
    AccountState,
    Guardian,
    HelpRequest,
    HelpRequestEvent,
    HelpStatus,
    HelpTopic,
    Pupil,
    PupilGuardian,
    School,
    SchoolClass,
)

# Open requests first, then those in progress, answered, closed.
_STATUS_ORDER = {
    HelpStatus.OPEN: 0,
    HelpStatus.IN_PROGRESS: 1,
    HelpStatus.ANSWERED: 2,
    HelpStatus.CLOSED: 3,
}


@dataclass(frozen=True, slots=True)
class RecordSummary:
    """A guardian record as the director sees it beside a request: never a password."""

    guardian_id: int
    account_id: int | None
    name: str
    identifier: str | None
    state: AccountState | None
    has_email: bool
    deactivated: bool
    children: tuple[str, ...]  # « Inès (CP A) »


@dataclass(frozen=True, slots=True)
class EventLine:
    """One event of a request's history."""

    action: HelpAction
    by_family: bool
    at: datetime
    text: str | None


@dataclass(frozen=True, slots=True)
class RequestView:
    """A help request, with the record it is about or the candidates, and its history."""

    id: int
    reference: str
    school_id: int
    school_name: str
    telegram_user_id: int
    language: str
    topic: HelpTopic
    status: HelpStatus
    created_at: datetime
    declared_guardian: str | None
    declared_child: str | None
    declared_class: str | None
    message: str | None
    matched_by: str | None
    record: RecordSummary | None
    candidates: tuple[RecordSummary, ...]
    history: tuple[EventLine, ...]

    @property
    def family_messages(self) -> int:
        return sum(1 for event in self.history if event.action is HelpAction.FAMILY_MESSAGE)


@dataclass(frozen=True, slots=True)
class RequestPage:
    """One page of a school's requests."""

    requests: tuple[RequestView, ...]
    page: int
    pages: int
    total: int
    unsettled: int  # open or in progress


def aware(moment: datetime) -> datetime:
    """SQLite gives back naive datetimes: they are UTC."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def record_summaries(
    session: Session, *, school_id: int, guardian_ids: Sequence[int]
) -> dict[int, RecordSummary]:
    """The records of these guardians of the school (others are left out)."""
    ids = sorted(set(guardian_ids))
    if not ids:
        return {}
    rows = session.execute(
        select(Guardian, Account)
        .outerjoin(Account, col(Account.guardian_id) == col(Guardian.id))
        .where(col(Guardian.id).in_(ids), col(Guardian.school_id) == school_id)
    ).all()
    children: dict[int, list[str]] = {}
    for guardian_id, first, label in session.execute(
        select(col(PupilGuardian.guardian_id), col(Pupil.first_name), col(SchoolClass.label))
        .join(Pupil, col(Pupil.id) == col(PupilGuardian.pupil_id))
        .outerjoin(SchoolClass, col(SchoolClass.id) == col(Pupil.class_id))
        .where(col(PupilGuardian.guardian_id).in_(ids), col(Pupil.archived_at).is_(None))
        .order_by(col(SchoolClass.label), col(Pupil.first_name))
    ):
        children.setdefault(guardian_id, []).append(f"{first} ({label})" if label else first)
    summaries: dict[int, RecordSummary] = {}
    for guardian, account in rows:
        assert guardian.id is not None
        last = guardian.usage_name or guardian.last_name
        summaries[guardian.id] = RecordSummary(
            guardian_id=guardian.id,
            account_id=account.id if account is not None else None,
            name=f"{guardian.first_name} {last.upper()}".strip(),
            identifier=account.identifier if account is not None else None,
            state=AccountState(account.state) if account is not None else None,
            has_email=bool(guardian.email),
            deactivated=account is None or account.deactivated_at is not None,
            children=tuple(children.get(guardian.id, ())),
        )
    return summaries


def _views(session: Session, requests: Sequence[HelpRequest]) -> list[RequestView]:
    if not requests:
        return []
    ids = [request.id for request in requests]
    history: dict[int, list[EventLine]] = {}
    for event in session.execute(
        select(HelpRequestEvent)
        .where(col(HelpRequestEvent.request_id).in_(ids))
        .order_by(col(HelpRequestEvent.id))
    ).scalars():
        history.setdefault(event.request_id, []).append(
            EventLine(
                action=HelpAction(event.action),
                by_family=event.actor.startswith("family:"),
                at=aware(event.at),
                text=event.text,
            )
        )
    schools = {
        school.id: school.name
        for school in session.execute(
            select(School).where(col(School.id).in_({r.school_id for r in requests}))
        ).scalars()
    }
    views: list[RequestView] = []
    # One read of the records per school, not per request.
    wanted: dict[int, set[int]] = {}
    for request in requests:
        guardians = wanted.setdefault(request.school_id, set())
        guardians.update(request.candidate_guardian_ids)
        if request.guardian_id:
            guardians.add(request.guardian_id)
    by_school = {
        school_id: record_summaries(session, school_id=school_id, guardian_ids=sorted(guardians))
        for school_id, guardians in wanted.items()
    }
    for request in requests:
        records = by_school[request.school_id]
        assert request.id is not None
        views.append(
            RequestView(
                id=request.id,
                reference=request.reference,
                school_id=request.school_id,
                school_name=schools.get(request.school_id, ""),
                telegram_user_id=request.telegram_user_id,
                language=request.language,
                topic=HelpTopic(request.topic),
                status=HelpStatus(request.status),
                created_at=aware(request.created_at),
                declared_guardian=request.declared_guardian,
                declared_child=request.declared_child,
                declared_class=request.declared_class,
                message=request.message,
                matched_by=request.matched_by,
                record=records.get(request.guardian_id) if request.guardian_id else None,
                candidates=tuple(
                    records[g] for g in request.candidate_guardian_ids if g in records
                ),
                history=tuple(history.get(request.id, ())),
            )
        )
    return views


def load_request(
    session: Session, *, request_id: int, school_id: int, lock: bool = False
) -> HelpRequest:
    """The request of this school (locked for update when asked); a request of another school
    is refused exactly like one that does not exist."""
    statement = select(HelpRequest).where(
        col(HelpRequest.id) == request_id, col(HelpRequest.school_id) == school_id
    )
    if lock:
        statement = statement.with_for_update()
    request = session.execute(statement).scalar_one_or_none()
    if request is None:
        raise RequestNotFoundError(_("This request does not exist, or not in your school."))
    return request


def request_view(session: Session, *, request_id: int, school_id: int) -> RequestView:
    """One request of the school, with its record, candidates and history."""
    return _views(session, [load_request(session, request_id=request_id, school_id=school_id)])[0]


def _queue_key(row: tuple[int, str, datetime, datetime]) -> tuple[int, float, int]:
    request_id, status, created_at, updated_at = row
    order = _STATUS_ORDER[HelpStatus(status)]
    if order < _STATUS_ORDER[HelpStatus.ANSWERED]:
        return (0, aware(created_at).timestamp(), request_id)  # a queue: oldest first
    return (1, -aware(updated_at).timestamp(), -request_id)  # history: newest first


def school_requests(
    session: Session, *, school_id: int, page: int = 0, page_size: int = 5
) -> RequestPage:
    """The school's requests, open and in progress first (oldest first: a queue), then the
    answered and closed ones (most recent first)."""
    # A school files a few hundred requests a year at most: sorting their ids here is cheap.
    rows = [
        (int(r[0]), str(r[1]), r[2], r[3])
        for r in session.execute(
            select(
                col(HelpRequest.id),
                col(HelpRequest.status),
                col(HelpRequest.created_at),
                col(HelpRequest.updated_at),
            ).where(col(HelpRequest.school_id) == school_id)
        )
    ]
    rows.sort(key=_queue_key)
    pages = max(1, math.ceil(len(rows) / page_size))
    page = min(max(page, 0), pages - 1)
    chosen = [row[0] for row in rows[page * page_size : (page + 1) * page_size]]
    loaded = (
        {
            request.id: request
            for request in session.execute(
                select(HelpRequest).where(col(HelpRequest.id).in_(chosen))
            ).scalars()
        }
        if chosen
        else {}
    )
    unsettled = sum(1 for row in rows if _queue_key(row)[0] == 0)
    return RequestPage(
        requests=tuple(_views(session, [loaded[i] for i in chosen])),
        page=page,
        pages=pages,
        total=len(rows),
        unsettled=unsettled,
    )


def unsettled_request_count(session: Session, *, school_id: int) -> int:
    """How many of the school's requests are open or in progress."""
    return int(
        session.execute(
            select(func.count()).where(
                col(HelpRequest.school_id) == school_id,
                col(HelpRequest.status).in_([HelpStatus.OPEN, HelpStatus.IN_PROGRESS]),
            )
        ).scalar_one()
    )


def family_requests(
    session: Session, *, telegram_user_id: int, limit: int = 10
) -> list[RequestView]:
    """This chat's requests, most recent first (a family sees its own only)."""
    requests = list(
        session.execute(
            select(HelpRequest)
            .where(col(HelpRequest.telegram_user_id) == telegram_user_id)
            .order_by(col(HelpRequest.created_at).desc(), col(HelpRequest.id).desc())
            .limit(limit)
        ).scalars()
    )
    return _views(session, requests)
