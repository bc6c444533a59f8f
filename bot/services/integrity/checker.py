"""Running every invariant on a database, each as one read-only query."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Engine
from sqlmodel import Session

from bot.services.integrity.accounts import INVARIANTS as ACCOUNT_INVARIANTS
from bot.services.integrity.invariant import Context, Invariant, Violation, violation_of
from bot.services.integrity.mail import INVARIANTS as MAIL_INVARIANTS
from bot.services.integrity.references import INVARIANTS as REFERENCE_INVARIANTS
from bot.services.integrity.roster import INVARIANTS as ROSTER_INVARIANTS
from bot.services.integrity.secrets import INVARIANTS as SECRET_INVARIANTS
from models import utcnow

INVARIANTS: tuple[Invariant, ...] = (
    *ROSTER_INVARIANTS,
    *ACCOUNT_INVARIANTS,
    *MAIL_INVARIANTS,
    *SECRET_INVARIANTS,
    *REFERENCE_INVARIANTS,
)


def _check(session: Session, invariants: Sequence[Invariant], now: datetime) -> list[Violation]:
    context = Context(now=now, dialect=session.get_bind().dialect.name)
    connection = session.connection()
    violations = []
    for invariant in invariants:
        ids = [int(id_) for id_ in connection.execute(invariant.query(context)).scalars()]
        if ids:
            violations.append(violation_of(invariant, ids))
    return violations


def check_invariants(
    session_or_engine: Session | Engine,
    *,
    now: datetime | None = None,
    invariants: Sequence[Invariant] = INVARIANTS,
) -> list[Violation]:
    """The invariants the data breaks, in a stable order (none: an empty list). Reads only:
    on an engine, in a transaction of its own that is rolled back; on a session, in its
    transaction. `now` is the moment leases and expiries are compared with."""
    moment = now or utcnow()
    if isinstance(session_or_engine, Session):
        return _check(session_or_engine, invariants, moment)
    with Session(session_or_engine) as session:
        try:
            return _check(session, invariants, moment)
        finally:
            session.rollback()
