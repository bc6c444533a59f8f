"""The audit log: every state-changing action, who did it, when, on which accounts."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from models import AuditEvent

# Keys that must never reach the audit log, whatever a caller passes.
_SECRET_KEYS = frozenset({"password", "provisional_password", "code", "token", "secret"})


def record_event(
    session: Session,
    *,
    actor: str,
    action: str,
    school_id: int | None = None,
    account_id: int | None = None,
    **details: Any,
) -> AuditEvent:
    """Add one audit event to the session's transaction (committed with the change itself)."""
    leaked = _SECRET_KEYS.intersection(details)
    if leaked:
        raise ValueError(f"audit details must not carry secrets: {sorted(leaked)}")
    event = AuditEvent(
        actor=actor, action=action, school_id=school_id, account_id=account_id, details=details
    )
    session.add(event)
    return event
