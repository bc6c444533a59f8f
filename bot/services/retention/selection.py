"""Which rows a purge takes: pupils archived and guardians deactivated before the cutoff, and
every row that hangs on them, marked once and counted per kind and per school.

The retention is one school year, taken as 365 days: a pupil who leaves in July is archived by
the September import, and goes with the purge run at the next September's import. An archived
pupil comes back, with their guardians' accounts, when a later import lists them again (a
partial ONDE file corrected): the retention is the time the school has to notice.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    MetaData,
    Table,
    and_,
    delete,
    exists,
    func,
    insert,
    or_,
    select,
    text,
)
from sqlmodel import Session, col

from bot.i18n import _, ngettext
from bot.services.errors import ServiceError
from models import (
    Account,
    AuditEvent,
    FamilyChat,
    FamilyLinkCode,
    FamilyReminder,
    Guardian,
    HelpRequest,
    OutboxMessage,
    PhoneCheck,
    PortalToken,
    Pupil,
    PupilGuardian,
    School,
)
from models.queries import in_chunks

DEFAULT_RETENTION = timedelta(days=365)
# Shorter would purge a pupil archived by a partial ONDE file before the school corrects it.
MINIMUM_RETENTION = timedelta(days=30)
# Placed in `help_request.telegram_user_id` (not nullable) once a request is anonymised.
ANONYMOUS_TELEGRAM_ID = 0


class RetentionTooShortError(ServiceError):
    """The retention asked for is under `MINIMUM_RETENTION`."""


@dataclass
class PurgeCounts:
    """How many rows of each kind a purge deletes (or, for the last two, strips of personal
    data and keeps)."""

    pupils: int = 0
    guardians: int = 0
    accounts: int = 0
    links: int = 0  # pupil ↔ guardian
    family_chats: int = 0
    link_codes: int = 0
    portal_links: int = 0
    outbox_messages: int = 0
    reminders: int = 0
    phone_checks: int = 0
    help_requests: int = 0  # anonymised, kept (their numbers stay taken)
    audit_events: int = 0  # personal data removed, kept

    def as_dict(self) -> dict[str, int]:
        """Kind → count, in the order above."""
        return {item.name: getattr(self, item.name) for item in fields(self)}

    @property
    def total(self) -> int:
        """Every row the purge touches."""
        return sum(self.as_dict().values())


@dataclass(frozen=True)
class SchoolPurge:
    """What a purge takes from one school."""

    school_id: int
    uai: str
    name: str
    pupils: int
    guardians: int
    help_requests: int


@dataclass
class PurgePlan:
    """What a purge would delete (or did), and the ids it works on."""

    now: datetime
    cutoff: datetime
    retention_days: int
    counts: PurgeCounts
    schools: list[SchoolPurge]
    pupil_ids: list[int] = field(repr=False)
    guardian_ids: list[int] = field(repr=False)
    account_ids: list[int] = field(repr=False)
    help_request_ids: list[int] = field(repr=False)
    # Audit events without an account that name a purged person (see `_named_events`).
    named_event_ids: list[int] = field(repr=False)

    @property
    def empty(self) -> bool:
        """Nothing to purge."""
        return self.counts.total == 0

    def same_rows(self, other: PurgePlan) -> bool:
        """Whether `other` takes exactly the same people and rows."""
        return (
            self.cutoff == other.cutoff
            and self.counts == other.counts
            and self.pupil_ids == other.pupil_ids
            and self.guardian_ids == other.guardian_ids
            and self.help_request_ids == other.help_request_ids
        )


def check_retention(retention: timedelta) -> None:
    """Refuse a retention under `MINIMUM_RETENTION`."""
    if retention < MINIMUM_RETENTION:
        minimum = MINIMUM_RETENTION.days
        raise RetentionTooShortError(
            ngettext(
                "the retention must be at least {minimum} day: an archived pupil may come back "
                "with the next ONDE import.",
                "the retention must be at least {minimum} days: an archived pupil may come "
                "back with the next ONDE import.",
                minimum,
            ).format(minimum=minimum)
            + " "
            + _("You asked for {days}.").format(days=retention.days)
        )


# The ids a purge takes, kept in temporary tables of the transaction's connection: every count
# and every write is then one statement joined on them, whatever their number.
_MARKS = MetaData()
PUPILS_GOING = Table(
    "retention_pupil",
    _MARKS,
    Column("id", BigInteger, primary_key=True, autoincrement=False),
    Column("school_id", BigInteger, nullable=False),
    prefixes=["TEMPORARY"],
)
GUARDIANS_GOING = Table(
    "retention_guardian",
    _MARKS,
    Column("id", BigInteger, primary_key=True, autoincrement=False),
    Column("school_id", BigInteger, nullable=False),
    Column("account_id", BigInteger, nullable=False),
    prefixes=["TEMPORARY"],
)
_MARK_TABLES = (PUPILS_GOING, GUARDIANS_GOING)


def plan_purge(
    session: Session, *, now: datetime, retention: timedelta = DEFAULT_RETENTION
) -> PurgePlan:
    """What a purge at `now` would take: pupils archived, and guardians whose account was
    deactivated, more than `retention` ago, and everything of theirs. Changes nothing.

    A guardian is taken only if no pupil who stays (enrolled, or archived more recently) is
    still linked to them; a guardian without an account is never taken (nothing dates them).
    """
    try:
        return mark_rows(session, now=now, retention=retention, lock=False)
    finally:
        drop_marks(session)


def mark_rows(
    session: Session, *, now: datetime, retention: timedelta, lock: bool = True
) -> PurgePlan:
    """`plan_purge`, leaving the ids it found in `PUPILS_GOING` and `GUARDIANS_GOING` for the
    purge's statements (`drop_marks` ends them). With `lock`, their pupil and account rows are
    locked on PostgreSQL until the transaction ends, so an import cannot bring one back
    meanwhile (SQLite: the caller holds the write lock)."""
    check_retention(retention)
    cutoff = now - retention
    connection = session.connection()
    for table in _MARK_TABLES:
        columns = ", ".join(f"{column.name} BIGINT NOT NULL" for column in table.columns)
        connection.execute(
            text(f"CREATE TEMPORARY TABLE IF NOT EXISTS {table.name} ({columns}, PRIMARY KEY (id))")
        )
        connection.execute(delete(table))
    pupils = select(col(Pupil.id), col(Pupil.school_id)).where(col(Pupil.archived_at) < cutoff)
    guardians = _guardians_query(cutoff)
    if lock:
        pupils, guardians = pupils.with_for_update(), guardians.with_for_update(of=Account)
    connection.execute(insert(PUPILS_GOING).from_select(["id", "school_id"], pupils))
    connection.execute(
        insert(GUARDIANS_GOING).from_select(["id", "school_id", "account_id"], guardians)
    )
    if connection.dialect.name == "postgresql":
        # Temporary tables are never analysed on their own: without it the planner guesses.
        for table in _MARK_TABLES:
            connection.execute(text(f"ANALYZE {table.name}"))
    pupil_ids = _ids_of(session, PUPILS_GOING.c.id)
    guardian_ids = _ids_of(session, GUARDIANS_GOING.c.id)
    account_ids = _ids_of(session, GUARDIANS_GOING.c.account_id)
    requests = _help_requests(session, cutoff)
    named = _named_events(session, guardian_ids, account_ids, cutoff)
    going_accounts = select(GUARDIANS_GOING.c.account_id)
    going_guardians = select(GUARDIANS_GOING.c.id)
    counts = PurgeCounts(
        pupils=len(pupil_ids),
        guardians=len(guardian_ids),
        accounts=len(account_ids),
        links=_count(
            session,
            PupilGuardian,
            or_(
                col(PupilGuardian.pupil_id).in_(select(PUPILS_GOING.c.id)),
                col(PupilGuardian.guardian_id).in_(going_guardians),
            ),
        ),
        family_chats=_count(session, FamilyChat, col(FamilyChat.guardian_id).in_(going_guardians)),
        link_codes=_count(
            session, FamilyLinkCode, col(FamilyLinkCode.account_id).in_(going_accounts)
        ),
        portal_links=_count(session, PortalToken, col(PortalToken.account_id).in_(going_accounts)),
        outbox_messages=_count(
            session, OutboxMessage, col(OutboxMessage.account_id).in_(going_accounts)
        ),
        reminders=_count(
            session, FamilyReminder, col(FamilyReminder.account_id).in_(going_accounts)
        ),
        phone_checks=_count(session, PhoneCheck, phone_checks_condition(cutoff)),
        help_requests=len(requests),
        audit_events=_count(session, AuditEvent, col(AuditEvent.account_id).in_(going_accounts))
        + len(named),
    )
    return PurgePlan(
        now=now,
        cutoff=cutoff,
        retention_days=retention.days,
        counts=counts,
        schools=_per_school(session, requests),
        pupil_ids=pupil_ids,
        guardian_ids=guardian_ids,
        account_ids=account_ids,
        help_request_ids=[row[0] for row in requests],
        named_event_ids=named,
    )


def drop_marks(session: Session) -> None:
    """End the temporary tables of `mark_rows` (they would outlive the transaction on SQLite's
    pooled connection)."""
    for table in _MARK_TABLES:
        session.connection().execute(text(f"DROP TABLE IF EXISTS {table.name}"))


def _ids_of(session: Session, column: Any) -> list[int]:
    return [int(value) for value in session.execute(select(column).order_by(column)).scalars()]


def _guardians_query(cutoff: datetime) -> Any:
    """(guardian id, school id, account id) of the guardians to purge."""
    staying_child = exists().where(
        col(PupilGuardian.guardian_id) == col(Guardian.id),
        col(PupilGuardian.pupil_id) == col(Pupil.id),
        or_(col(Pupil.archived_at).is_(None), col(Pupil.archived_at) >= cutoff),
    )
    return (
        select(col(Guardian.id), col(Guardian.school_id), col(Account.id))
        .join(Account, col(Account.guardian_id) == col(Guardian.id))
        .where(col(Account.deactivated_at) < cutoff, ~staying_child)
    )


def _help_requests(session: Session, cutoff: datetime) -> list[tuple[Any, ...]]:
    """(id, school id) of the help requests to anonymise: those of purged guardians, and
    those closed before the cutoff that no guardian's record was matched to (a family the
    school never found: nothing else will ever date them), unless already anonymised. The
    requests of a guardian who stays are theirs, kept as long as they are."""
    query = (
        select(col(HelpRequest.id), col(HelpRequest.school_id))
        .where(
            or_(
                col(HelpRequest.guardian_id).in_(select(GUARDIANS_GOING.c.id)),
                and_(
                    col(HelpRequest.closed_at) < cutoff,
                    col(HelpRequest.guardian_id).is_(None),
                    col(HelpRequest.telegram_user_id) != ANONYMOUS_TELEGRAM_ID,
                ),
            )
        )
        .order_by(col(HelpRequest.id))
    )
    return _rows(session, query)


# Audit events written without an account id that may name a guardian (`guardian_id`,
# `guardian_ids`) or accounts (`account_ids`) in their details.
_NAMING_ACTIONS = ("guardian.language_chosen", "guardian.language_set", "family.phone_choice")
# Refused phone numbers never matched a guardian: their traces go once older than the cutoff.
_PHONE_REFUSED = "family.phone_refused"


def _named_events(
    session: Session, guardian_ids: Sequence[int], account_ids: Sequence[int], cutoff: datetime
) -> list[int]:
    """Ids of the audit events with no account id that name a purged guardian or account
    (language chosen, phone choices and refusals), or that record a phone number refused
    before the cutoff; their personal data goes with the purge."""
    guardians, accounts = set(guardian_ids), set(account_ids)
    query = select(
        col(AuditEvent.id), col(AuditEvent.action), col(AuditEvent.at), col(AuditEvent.details)
    )
    query = query.where(
        col(AuditEvent.account_id).is_(None),
        col(AuditEvent.action).in_([*_NAMING_ACTIONS, _PHONE_REFUSED]),
    )
    named: list[int] = []
    for event_id, action, at, details in session.execute(query):
        if _already_redacted(details):
            continue
        refused_long_ago = action == _PHONE_REFUSED and _aware(at) < cutoff
        if refused_long_ago or _names(details, guardians, accounts):
            named.append(event_id)
    return sorted(named)


def _already_redacted(details: Any) -> bool:
    return isinstance(details, dict) and bool(details.get("personal_data_removed"))


def _names(details: Any, guardians: set[int], accounts: set[int]) -> bool:
    if not isinstance(details, dict):
        return False
    named_guardians = _ids(details.get("guardian_ids")) | _ids([details.get("guardian_id")])
    named_accounts = _ids(details.get("account_ids"))
    return bool(named_guardians & guardians or named_accounts & accounts)


def _ids(values: Any) -> set[int]:
    if not isinstance(values, list):
        return set()
    return {value for value in values if isinstance(value, int)}


def _aware(moment: datetime) -> datetime:
    # SQLite gives back naive datetimes: they are UTC.
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _rows(session: Session, query: Any) -> list[tuple[Any, ...]]:
    return [tuple(row) for row in session.execute(query)]


def _count(session: Session, model: Any, condition: Any) -> int:
    query = select(func.count()).select_from(model).where(condition)
    return int(session.execute(query).scalar_one())


def phone_checks_condition(cutoff: datetime) -> Any:
    """The phone checks a purge deletes: the choice of a purged guardian, and any check older
    than the cutoff (they only count the day's attempts, and hold the number shared)."""
    return or_(
        col(PhoneCheck.created_at) < cutoff,
        col(PhoneCheck.chosen_guardian_id).in_(select(GUARDIANS_GOING.c.id)),
    )


def _per_school(session: Session, requests: Iterable[tuple[Any, ...]]) -> list[SchoolPurge]:
    by_pupils = _by_school(session, PUPILS_GOING)
    by_guardians = _by_school(session, GUARDIANS_GOING)
    by_requests = Counter(row[1] for row in requests)
    ids = sorted(set(by_pupils) | set(by_guardians) | set(by_requests))
    schools = {
        school.id: school
        for chunk in in_chunks(ids)
        for school in session.execute(select(School).where(col(School.id).in_(chunk))).scalars()
    }
    return [
        SchoolPurge(
            school_id=school_id,
            uai=schools[school_id].uai,
            name=schools[school_id].name,
            pupils=by_pupils.get(school_id, 0),
            guardians=by_guardians.get(school_id, 0),
            help_requests=by_requests[school_id],
        )
        for school_id in sorted(ids, key=lambda key: (schools[key].uai, key))
    ]


def _by_school(session: Session, table: Table) -> dict[int, int]:
    query = select(table.c.school_id, func.count()).group_by(table.c.school_id)
    return {int(school_id): int(count) for school_id, count in session.execute(query)}


__all__ = [
    "ANONYMOUS_TELEGRAM_ID",
    "DEFAULT_RETENTION",
    "GUARDIANS_GOING",
    "MINIMUM_RETENTION",
    "PUPILS_GOING",
    "PurgeCounts",
    "PurgePlan",
    "RetentionTooShortError",
    "SchoolPurge",
    "check_retention",
    "drop_marks",
    "mark_rows",
    "phone_checks_condition",
    "plan_purge",
]
