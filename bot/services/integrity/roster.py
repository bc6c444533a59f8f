"""The roster's invariants: every ONDE import whole or absent — each guardian has an account,
accounts are live exactly while their guardian has an enrolled child, links stay within one
school, and the latest import's recorded counts match the rows."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, and_, exists, func, or_, select

from bot.i18n import N_
from bot.services.integrity.invariant import Context, Invariant, table
from models import Account, AuditEvent, Guardian, Pupil, PupilGuardian, SchoolClass

ACCOUNT = table(Account)
AUDIT = table(AuditEvent)
GUARDIAN = table(Guardian)
LINK = table(PupilGuardian)
PUPIL = table(Pupil)
CLASS = table(SchoolClass)
IMPORTED = "roster.imported"


def _guardians_without_account(_context: Context) -> Select[Any]:
    return select(GUARDIAN.c.id).where(~exists().where(ACCOUNT.c.guardian_id == GUARDIAN.c.id))


def _enrolled_child(guardian_id: Any) -> Any:
    return (
        exists()
        .where(LINK.c.guardian_id == guardian_id, PUPIL.c.id == LINK.c.pupil_id)
        .where(PUPIL.c.archived_at.is_(None))
    )


def _live_accounts_without_child(_context: Context) -> Select[Any]:
    return select(ACCOUNT.c.id).where(
        ACCOUNT.c.deactivated_at.is_(None), ~_enrolled_child(ACCOUNT.c.guardian_id)
    )


def _deactivated_accounts_with_child(_context: Context) -> Select[Any]:
    return select(ACCOUNT.c.id).where(
        ACCOUNT.c.deactivated_at.is_not(None), _enrolled_child(ACCOUNT.c.guardian_id)
    )


def _links_to_archived_pupils(_context: Context) -> Select[Any]:
    return (
        select(LINK.c.guardian_id)
        .join(PUPIL, PUPIL.c.id == LINK.c.pupil_id)
        .where(PUPIL.c.archived_at.is_not(None))
    )


def _links_across_schools(_context: Context) -> Select[Any]:
    return (
        select(LINK.c.guardian_id)
        .join(PUPIL, PUPIL.c.id == LINK.c.pupil_id)
        .join(GUARDIAN, GUARDIAN.c.id == LINK.c.guardian_id)
        .where(PUPIL.c.school_id != GUARDIAN.c.school_id)
    )


def _pupils_in_wrong_class(_context: Context) -> Select[Any]:
    # Another school's class, or an archived class while the pupil is enrolled.
    return (
        select(PUPIL.c.id)
        .join(CLASS, CLASS.c.id == PUPIL.c.class_id)
        .where(
            or_(
                CLASS.c.school_id != PUPIL.c.school_id,
                and_(PUPIL.c.archived_at.is_(None), CLASS.c.archived_at.is_not(None)),
            )
        )
    )


def _count(group: str) -> Any:
    """added + updated + unchanged of one group of the latest import's counts: the rows its
    file listed (0 when the import had no file of that category)."""
    added, updated, unchanged = (
        func.coalesce(AUDIT.c.details[(group, name)].as_integer(), 0)
        for name in ("added", "updated", "unchanged")
    )
    return added + updated + unchanged


def _latest_imports(*, with_pupils: bool) -> Any:
    """Per school, the id of its latest import (with a pupils file, if `with_pupils`)."""
    latest = select(AUDIT.c.school_id, func.max(AUDIT.c.id).label("event_id")).where(
        AUDIT.c.action == IMPORTED, AUDIT.c.school_id.is_not(None)
    )
    if with_pupils:
        latest = latest.where(_count("pupils") > 0)
    return latest.group_by(AUDIT.c.school_id).subquery()


def _pupil_counts_differ(_context: Context) -> Select[Any]:
    # Only imports with a pupils file change pupils: the latest one's counts describe them.
    # Pupils whose new line was rejected stay enrolled as they were (at most that many more).
    # Counted per school once (grouped), not once per school in a correlated subquery.
    latest = _latest_imports(with_pupils=True)
    per_school = (
        select(PUPIL.c.school_id, func.count().label("enrolled"))
        .where(PUPIL.c.archived_at.is_(None))
        .group_by(PUPIL.c.school_id)
        .subquery()
    )
    enrolled = func.coalesce(per_school.c.enrolled, 0)
    listed = _count("pupils")
    rejected = func.coalesce(AUDIT.c.details["rejected_lines"].as_integer(), 0)
    return (
        select(latest.c.school_id)
        .join(AUDIT, AUDIT.c.id == latest.c.event_id)
        .outerjoin(per_school, per_school.c.school_id == latest.c.school_id)
        .where(or_(enrolled < listed, enrolled > listed + rejected))
    )


def _guardian_counts_differ(_context: Context) -> Select[Any]:
    # After an import with a guardians file, the live accounts are exactly the guardians it
    # listed; any later import is the latest event, so only the latest one is compared.
    latest = _latest_imports(with_pupils=False)
    per_school = (
        select(GUARDIAN.c.school_id, func.count().label("live"))
        .select_from(ACCOUNT.join(GUARDIAN, GUARDIAN.c.id == ACCOUNT.c.guardian_id))
        .where(ACCOUNT.c.deactivated_at.is_(None))
        .group_by(GUARDIAN.c.school_id)
        .subquery()
    )
    live = func.coalesce(per_school.c.live, 0)
    listed = _count("guardians")
    return (
        select(latest.c.school_id)
        .join(AUDIT, AUDIT.c.id == latest.c.event_id)
        .outerjoin(per_school, per_school.c.school_id == latest.c.school_id)
        .where(listed > 0, live != listed)
    )


_REIMPORT = N_(
    "Import the school's latest ONDE extractions again (« educonnect-bot import UAI "
    "FILES »): an import is written whole, and it puts these rows right."
)

INVARIANTS = (
    Invariant(
        code="roster.guardian_without_account",
        subject="guardian",
        description=N_("Guardians without an EduConnect account: an import stopped half-way."),
        advice=_REIMPORT,
        query=_guardians_without_account,
    ),
    Invariant(
        code="roster.live_account_without_child",
        subject="account",
        description=N_(
            "Accounts still in use whose guardian has no enrolled child: the import that "
            "removed the child did not deactivate the account."
        ),
        advice=_REIMPORT,
        query=_live_accounts_without_child,
    ),
    Invariant(
        code="roster.deactivated_account_with_child",
        subject="account",
        description=N_(
            "Deactivated accounts whose guardian still has an enrolled child: the family "
            "is locked out of the portal."
        ),
        advice=_REIMPORT,
        query=_deactivated_accounts_with_child,
    ),
    Invariant(
        code="roster.link_to_archived_pupil",
        subject="guardian",
        description=N_("Guardians still linked to a pupil who left the school."),
        advice=_REIMPORT,
        query=_links_to_archived_pupils,
    ),
    Invariant(
        code="roster.link_across_schools",
        subject="guardian",
        description=N_("Guardians linked to a pupil of another school."),
        advice=N_(
            "Tell the developers: no import writes this. Then import the schools concerned again."
        ),
        query=_links_across_schools,
    ),
    Invariant(
        code="roster.pupil_in_wrong_class",
        subject="pupil",
        description=N_(
            "Pupils in a class of another school, or enrolled in a class that was archived."
        ),
        advice=_REIMPORT,
        query=_pupils_in_wrong_class,
    ),
    Invariant(
        code="roster.import_pupil_counts_differ",
        subject="school",
        description=N_(
            "Schools whose enrolled pupils do not match the counts their latest import "
            "recorded: pupils were written outside an import, or an import only in part."
        ),
        advice=_REIMPORT,
        query=_pupil_counts_differ,
    ),
    Invariant(
        code="roster.import_guardian_counts_differ",
        subject="school",
        description=N_(
            "Schools whose accounts in use do not match the guardians their latest import "
            "listed: accounts were changed outside an import, or an import only in part."
        ),
        advice=_REIMPORT,
        query=_guardian_counts_differ,
    ),
)
