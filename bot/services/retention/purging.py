"""The purge itself: one transaction that deletes what `plan_purge` found, in the order the
foreign keys need, and strips personal data from the audit log and help requests it keeps.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, bindparam, case, delete, literal, or_, select, text, update
from sqlmodel import Session

from bot.db import lock_for_writing
from bot.i18n import _
from bot.services.audit import record_event
from bot.services.errors import ServiceError
from bot.services.retention.selection import (
    ANONYMOUS_TELEGRAM_ID,
    DEFAULT_RETENTION,
    GUARDIANS_GOING,
    PUPILS_GOING,
    PurgePlan,
    drop_marks,
    mark_rows,
    phone_checks_condition,
)
from models import (
    Account,
    AuditEvent,
    FamilyChat,
    FamilyLinkCode,
    FamilyReminder,
    Guardian,
    HelpRequest,
    HelpRequestEvent,
    OutboxMessage,
    PhoneCheck,
    PortalToken,
    Pupil,
    PupilGuardian,
)
from models.queries import in_chunks

PURGED = "retention.purged"
# Who an audit event or a help request's history names once the family's data is gone.
REMOVED_FAMILY = "family:removed"
# Details keys that name or reach a person; ids, actions, dates and counts stay.
PERSONAL_KEYS = (
    "identifier",
    "telegram_user_id",
    "phone_suffix",
    "email",
    "name",
    "first_name",
    "last_name",
)
# Rows per DELETE/UPDATE … IN (…): big enough for few round trips, under both databases'
# limits on bound parameters.
_CHUNK = 2000


class PurgeChangedError(ServiceError):
    """The database changed between the plan shown and the purge: nothing was done."""


def purge(
    session: Session,
    *,
    now: datetime,
    actor: str,
    retention: timedelta = DEFAULT_RETENTION,
    expected: PurgePlan | None = None,
) -> PurgePlan:
    """Delete what `plan_purge` finds, in the session's transaction (all or nothing), and
    record one audit event per school touched plus one for the whole purge; returns the plan
    carried out. With `expected` (the plan the operator confirmed), refuses if the rows to
    purge are no longer the same."""
    lock_for_writing(session)
    plan = mark_rows(session, now=now, retention=retention)
    if expected is not None and not plan.same_rows(expected):
        drop_marks(session)
        raise PurgeChangedError(
            _(
                "the database changed since the plan was shown (an import or a family "
                "meanwhile): nothing was deleted. Run the command again to see the new plan."
            )
        )
    if not plan.empty:
        _write(session, plan, actor)
    drop_marks(session)
    session.flush()
    return plan


def _write(session: Session, plan: PurgePlan, actor: str) -> None:
    """Every statement of the purge, each one set-based on the marked ids, children first."""
    going_pupils = select(PUPILS_GOING.c.id)
    going_guardians = select(GUARDIANS_GOING.c.id)
    going_accounts = select(GUARDIANS_GOING.c.account_id)
    marked = f"account_id IN (SELECT account_id FROM {GUARDIANS_GOING.name})"
    _redact(session, marked, keep_account=True)
    for chunk in in_chunks(plan.named_event_ids, _CHUNK):
        _redact(session, "id IN :ids", keep_account=False, ids=chunk)
    _anonymise_help_requests(session, plan.help_request_ids)
    session.execute(delete(_table(PhoneCheck)).where(phone_checks_condition(plan.cutoff)))
    session.execute(
        delete(_table(FamilyChat)).where(_table(FamilyChat).c.guardian_id.in_(going_guardians))
    )
    for table in map(_table, (FamilyLinkCode, PortalToken, OutboxMessage, FamilyReminder)):
        session.execute(delete(table).where(table.c.account_id.in_(going_accounts)))
    links = _table(PupilGuardian)
    session.execute(
        delete(links).where(
            or_(links.c.pupil_id.in_(going_pupils), links.c.guardian_id.in_(going_guardians))
        )
    )
    for table, going in (
        (_table(Account), going_accounts),
        (_table(Guardian), going_guardians),
        (_table(Pupil), going_pupils),
    ):
        session.execute(delete(table).where(table.c.id.in_(going)))
    _record(session, plan, actor)


def _table(model: Any) -> Table:
    return cast(Table, model.__table__)


def _redaction_sql(dialect: str, where: str, *, keep_account: bool) -> str:
    """An UPDATE of the audit events `where` says: personal keys removed from the details,
    the family's own actor replaced, and (for events of a purged account) the account id
    moved into the details, since the account row goes."""
    if dialect == "postgresql":
        removed = ", ".join(f"'{key}'" for key in PERSONAL_KEYS)
        extra = "'purged_account_id', account_id, " if keep_account else ""
        details = (
            f"((details::jsonb - ARRAY[{removed}]::text[]) || "
            f"jsonb_build_object({extra}'personal_data_removed', true))::json"
        )
        telegram = "(details->>'telegram_user_id')"
    else:
        removed = ", ".join(f"'$.{key}'" for key in PERSONAL_KEYS)
        extra = "'$.purged_account_id', account_id, " if keep_account else ""
        details = (
            f"json_set(json_remove(details, {removed}), {extra}"
            "'$.personal_data_removed', json('true'))"
        )
        telegram = "json_extract(details, '$.telegram_user_id')"
    account = ", account_id = NULL" if keep_account else ""
    actor = f"CASE WHEN actor LIKE 'family:%' OR actor = 'telegram:' || {telegram} "
    return (
        f"UPDATE {_table(AuditEvent).name} SET details = {details}, "
        f"actor = {actor}THEN :removed ELSE actor END{account} WHERE {where}"
    )


def _redact(session: Session, where: str, *, keep_account: bool, **params: Any) -> None:
    statement = text(
        _redaction_sql(session.get_bind().dialect.name, where, keep_account=keep_account)
    )
    if "ids" in params:
        statement = statement.bindparams(bindparam("ids", expanding=True))
    session.execute(statement, {"removed": REMOVED_FAMILY, **params})


def _anonymise_help_requests(session: Session, request_ids: Sequence[int]) -> None:
    """Keep each request's reference, topic, status and dates; drop what the family wrote
    and who they were."""
    requests, events = _table(HelpRequest), _table(HelpRequestEvent)
    for chunk in in_chunks(request_ids, _CHUNK):
        session.execute(
            update(requests)
            .where(requests.c.id.in_(chunk))
            .values(
                guardian_id=None,
                telegram_user_id=ANONYMOUS_TELEGRAM_ID,
                candidate_guardian_ids=[],
                declared_guardian=None,
                declared_child=None,
                declared_class=None,
                message=None,
            )
        )
        session.execute(
            update(events)
            .where(events.c.request_id.in_(chunk))
            .values(
                text=None,
                actor=case(
                    (events.c.actor.like("family:%"), literal(REMOVED_FAMILY)),
                    else_=events.c.actor,
                ),
            )
        )


def _record(session: Session, plan: PurgePlan, actor: str) -> None:
    """One event per school (its counts), one for the purge (every count): aggregates only."""
    for school in plan.schools:
        record_event(
            session,
            actor=actor,
            action=PURGED,
            school_id=school.school_id,
            pupils=school.pupils,
            guardians=school.guardians,
            help_requests=school.help_requests,
            retention_days=plan.retention_days,
        )
    record_event(
        session,
        actor=actor,
        action=PURGED,
        cutoff=plan.cutoff.isoformat(),
        retention_days=plan.retention_days,
        counts=plan.counts.as_dict(),
    )


__all__ = ["PERSONAL_KEYS", "PURGED", "REMOVED_FAMILY", "PurgeChangedError", "purge"]
