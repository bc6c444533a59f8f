"""Filing a help request: the limit per chat, the reference (« D-2026-0042 », numbered per school
and school year), the guardian record it is about, and its first event."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlmodel import Session, col

from bot.db import lock_for_writing
from bot.i18n import _
from bot.services.audit import record_event
from bot.services.helpdesk.actions import (
    MAX_NAME_LENGTH,
    MAX_REQUESTS_PER_DAY,
    MAX_TEXT_LENGTH,
    HelpAction,
    HelpDeskError,
    TooManyRequestsError,
)
from bot.services.helpdesk.matching import match_guardian
from models import Director, HelpRequest, HelpRequestEvent, HelpTopic, School, utcnow

_PARIS = ZoneInfo("Europe/Paris")
# The school year starts in September; requests of late August are about the coming year
# already (credentials go out before the start of term).
_FIRST_MONTH = 8


@dataclass(frozen=True, slots=True)
class HelpDeclaration:
    """What the family told: who they are (when the chat is not linked) and what happened."""

    topic: HelpTopic
    school_id: int
    message: str | None = None
    guardian_name: str | None = None
    child_name: str | None = None
    class_label: str | None = None


@dataclass(frozen=True, slots=True)
class FiledRequest:
    """A request just filed: its reference, and who to notify."""

    id: int
    reference: str
    school_id: int
    director_ids: tuple[int, ...]


def school_year(moment: datetime) -> int:
    """The school year a moment belongs to, by its first calendar year (2026 for 2026-2027)."""
    local = moment.astimezone(_PARIS)
    return local.year if local.month >= _FIRST_MONTH else local.year - 1


def format_reference(year: int, number: int) -> str:
    """« D-2026-0042 »."""
    return f"D-{year}-{number:04d}"


def clean_text(text: str | None, limit: int = MAX_TEXT_LENGTH) -> str | None:
    """Free text as kept: no NUL (PostgreSQL refuses it), trimmed, at most `limit` characters;
    a name also loses its inner runs of spaces."""
    if text is None:
        return None
    kept = text.replace("\x00", "").strip()
    if limit <= MAX_NAME_LENGTH:
        kept = " ".join(kept.split())
    return kept[:limit] or None


def requests_today(session: Session, *, telegram_user_id: int, now: datetime) -> list[datetime]:
    """When this chat filed its requests of the last 24 hours, oldest first."""
    return list(
        session.execute(
            select(col(HelpRequest.created_at))
            .where(
                col(HelpRequest.telegram_user_id) == telegram_user_id,
                col(HelpRequest.created_at) > now - timedelta(days=1),
            )
            .order_by(col(HelpRequest.created_at))
        ).scalars()
    )


def check_request_limit(
    session: Session, *, telegram_user_id: int, now: datetime | None = None
) -> None:
    """Raise `TooManyRequestsError` if this chat filed its share of requests for today."""
    now = now or utcnow()
    recent = requests_today(session, telegram_user_id=telegram_user_id, now=now)
    if len(recent) >= MAX_REQUESTS_PER_DAY:
        oldest = recent[-MAX_REQUESTS_PER_DAY]
        if oldest.tzinfo is None:
            oldest = oldest.replace(tzinfo=now.tzinfo)
        raise TooManyRequestsError(
            _(
                "You have sent {count} requests to the school today: that is the most I can "
                "pass on in a day. The school will answer them; you can follow them with /demande."
            ).format(count=MAX_REQUESTS_PER_DAY),
            retry_at=oldest + timedelta(days=1),
        )


def school_director_ids(session: Session, *, school_id: int) -> tuple[int, ...]:
    """The Telegram ids of every director of the school."""
    from_directors = session.execute(
        select(col(Director.telegram_user_id))
        .where(col(Director.school_id) == school_id)
        .order_by(col(Director.id))
    ).scalars()
    return tuple(dict.fromkeys(from_directors))


def _next_number(session: Session, school_id: int, year: int) -> int:
    # The school's row is locked (PostgreSQL) or the database's write lock held (SQLite), so
    # two requests filed at once never get the same number.
    lock_for_writing(session)
    school = session.execute(
        select(School).where(col(School.id) == school_id).with_for_update()
    ).scalar_one_or_none()
    if school is None:
        raise HelpDeskError(_("I do not know this school. Please choose it again."))
    last = session.execute(
        select(func.max(col(HelpRequest.number))).where(
            col(HelpRequest.school_id) == school_id, col(HelpRequest.school_year) == year
        )
    ).scalar_one()
    return int(last or 0) + 1


def file_help_request(
    session: Session,
    *,
    telegram_user_id: int,
    declaration: HelpDeclaration,
    language: str,
    now: datetime | None = None,
) -> FiledRequest:
    """File the family's request, matched to a guardian record when possible.

    Raises `TooManyRequestsError` past the daily limit, `HelpDeskError` for an unknown school.
    """
    now = now or utcnow()
    check_request_limit(session, telegram_user_id=telegram_user_id, now=now)
    year = school_year(now)
    number = _next_number(session, declaration.school_id, year)
    guardian = clean_text(declaration.guardian_name, MAX_NAME_LENGTH)
    child = clean_text(declaration.child_name, MAX_NAME_LENGTH)
    klass = clean_text(declaration.class_label, MAX_NAME_LENGTH)
    match = match_guardian(
        session,
        school_id=declaration.school_id,
        telegram_user_id=telegram_user_id,
        guardian_name=guardian,
        child_name=child,
        class_label=klass,
    )
    request = HelpRequest(
        school_id=declaration.school_id,
        school_year=year,
        number=number,
        reference=format_reference(year, number),
        telegram_user_id=telegram_user_id,
        language=language,
        topic=declaration.topic,
        guardian_id=match.guardian_id,
        matched_by=match.matched_by,
        candidate_guardian_ids=list(match.candidates),
        declared_guardian=guardian,
        declared_child=child,
        declared_class=klass,
        message=clean_text(declaration.message),
        created_at=now,
        updated_at=now,
    )
    session.add(request)
    session.flush()
    assert request.id is not None
    actor = f"family:{telegram_user_id}"
    session.add(
        HelpRequestEvent(request_id=request.id, at=now, actor=actor, action=HelpAction.FILED)
    )
    record_event(
        session,
        actor=actor,
        action="helpdesk.request_filed",
        school_id=declaration.school_id,
        reference=request.reference,
        topic=declaration.topic.value,
        matched_by=match.matched_by,
        candidates=len(match.candidates),
    )
    return FiledRequest(
        id=request.id,
        reference=request.reference,
        school_id=declaration.school_id,
        director_ids=school_director_ids(session, school_id=declaration.school_id),
    )
