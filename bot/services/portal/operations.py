"""The portal's upkeep: the health check, auditing refused forms, and purging what expired."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, or_, text
from sqlmodel import Session

from bot.services.portal.common import audit, aware
from bot.services.portal.links import TOKEN
from bot.services.portal.throttling import RULES, THROTTLE
from models import Account


def database_is_reachable(session: Session) -> bool:
    """Whether a trivial query answers (the health endpoint)."""
    return session.execute(text("SELECT 1")).scalar_one() == 1


def record_csrf_refusal(session: Session, *, page: str, account_id: int | None = None) -> None:
    """Audit a form posted without its CSRF token (`page`: the first segment of its path)."""
    account = session.get(Account, account_id) if account_id is not None else None
    audit(session, "portal.csrf_refused", account=account, page=page)


def purge_stale(session: Session, *, now: datetime | None = None) -> int:
    """Delete the throttle rows whose window and lockout are over, and the links that expired
    more than 30 days ago; returns how many rows went."""
    now = aware(now)
    oldest_window = max(rule.window for rule in RULES)
    throttles = session.execute(
        delete(THROTTLE).where(
            THROTTLE.c.window_started_at < now - oldest_window,
            or_(THROTTLE.c.locked_until.is_(None), THROTTLE.c.locked_until < now),
        )
    )
    tokens = session.execute(delete(TOKEN).where(TOKEN.c.expires_at < now - timedelta(days=30)))
    return int(getattr(throttles, "rowcount", 0) or 0) + int(getattr(tokens, "rowcount", 0) or 0)
