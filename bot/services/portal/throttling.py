"""Counting the portal's failures and e-mails, and locking a key out once it reaches a limit: per
identifier, per account, per address and per client address; or, for a rule with a first
delay, making each further failure wait longer (1, 2, 4 … seconds).

A client is its IPv4 address, or its IPv6 /64 (one subscriber's network: a host choosing new
addresses in it is still one client). The counters live in the database, so they hold across
restarts and processes; their keys are hashed, so the table never holds an identifier, an
address or an IP in clear.
"""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import cast

from sqlalchemy import Table, delete, func
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col, select

from bot.services.portal.common import aware
from models import PortalThrottle

THROTTLE: Table = cast(Table, PortalThrottle.__table__)  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class ThrottleRule:
    """`limit` counted events within `window` lock the key for `lockout`; with `first_delay`,
    the `limit`-th event locks it for that delay and each further one for twice the last,
    `lockout` at most (growing delays rather than one long lockout)."""

    name: str
    limit: int
    window: timedelta
    lockout: timedelta
    first_delay: timedelta | None = None
    # The value is a client's address, counted per `client_group`.
    per_client: bool = False


_QUARTER = timedelta(minutes=15)
_HOUR = timedelta(hours=1)
# Wrong passwords for one identifier from browsers it never logged in from, wherever they come
# from: 5 in 15 minutes lock it for 15 for those browsers only (never for a trusted device).
LOGIN_PER_IDENTIFIER = ThrottleRule("login-id", 5, _QUARTER, _QUARTER)
# Wrong passwords for one identifier from one untrusted client: it waits 1, 2, 4 … seconds
# (5 minutes at most) before its next try; the count is forgotten after an hour.
LOGIN_PER_IDENTIFIER_CLIENT = ThrottleRule(
    "login-id-ip", 1, _HOUR, timedelta(minutes=5), first_delay=timedelta(seconds=1)
)
# Wrong passwords from one client address, whatever the identifier (guessing across accounts),
# for browsers without a device cookie.
LOGIN_PER_CLIENT = ThrottleRule("login-ip", 20, _QUARTER, _QUARTER, per_client=True)
# Wrong passwords from a trusted device (one holding the device cookie of that identifier):
# counted under that device's own key, so that only that device can lock itself out.
LOGIN_PER_DEVICE = ThrottleRule("login-device", 10, _QUARTER, _QUARTER)
# Wrong current passwords typed in « Mon compte » (a signed-in session of that account): counted
# per account, so that strangers' failed logins on the identifier never block its owner here.
ACCOUNT_PASSWORD_CHECK = ThrottleRule("account-check", 5, _QUARTER, _QUARTER)
# Wrong birth dates for one account during activation.
BIRTH_DATE_PER_ACCOUNT = ThrottleRule("birth", 5, _QUARTER, _QUARTER)
# Unknown, used or expired links followed from one client address.
LINKS_PER_CLIENT = ThrottleRule("link-ip", 20, _QUARTER, _QUARTER, per_client=True)
# Requests that send an e-mail (forgotten password or identifier, resending a link), from one
# client address: refused with a « try later » page beyond it.
MAILS_PER_CLIENT = ThrottleRule("mail-ip", 10, _HOUR, _HOUR, per_client=True)
# E-mails to one account or address: beyond it nothing is sent, and the page says the same
# words as ever (it must not tell whether an account exists).
MAILS_PER_TARGET = ThrottleRule("mail-to", 3, _HOUR, _HOUR)
# Every rule: the purge keeps a row while the longest window may still count it.
RULES = (
    LOGIN_PER_IDENTIFIER,
    LOGIN_PER_IDENTIFIER_CLIENT,
    LOGIN_PER_CLIENT,
    LOGIN_PER_DEVICE,
    ACCOUNT_PASSWORD_CHECK,
    BIRTH_DATE_PER_ACCOUNT,
    LINKS_PER_CLIENT,
    MAILS_PER_CLIENT,
    MAILS_PER_TARGET,
)


# Doubling a delay more often than this would overflow `timedelta` long before any cap.
_MAX_DOUBLINGS = 30


def client_group(address: str) -> str:
    """The client an address counts as: an IPv4 address itself (also written IPv4-mapped),
    an IPv6 address's /64 network; anything else (« unknown ») as it is."""
    text = address.strip().lower()
    try:
        parsed = ipaddress.ip_address(text)
    except ValueError:
        return text
    if isinstance(parsed, ipaddress.IPv6Address):
        if parsed.ipv4_mapped is not None:
            return str(parsed.ipv4_mapped)
        return str(ipaddress.IPv6Network((parsed, 64), strict=False))
    return str(parsed)


def _throttle_key(rule: ThrottleRule, value: str) -> str:
    # Hashed: the table never holds an identifier, an address or an IP in clear.
    if rule.per_client:
        value = client_group(value)
    digest = hashlib.sha256(value.strip().lower().encode("utf-8")).hexdigest()
    return f"{rule.name}:{digest}"


def locked_until(
    session: Session, *, checks: Iterable[tuple[ThrottleRule, str]], now: datetime
) -> datetime | None:
    """The latest time until which any of these (rule, value) keys is locked, or None."""
    keys = [_throttle_key(rule, value) for rule, value in checks]
    latest = session.exec(
        select(func.max(PortalThrottle.locked_until)).where(
            col(PortalThrottle.key).in_(keys), col(PortalThrottle.locked_until) > now
        )
    ).one()
    return aware(latest) if latest is not None else None


def retry_time(session: Session, rule: ThrottleRule, value: str, now: datetime) -> datetime | None:
    """Until when the one key (rule, value) is locked, or None."""
    return locked_until(session=session, checks=[(rule, value)], now=now)


def _locked_row(session: Session, key: str, now: datetime) -> PortalThrottle:
    """The throttle row of `key`, created if needed, locked until the transaction ends."""
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    session.execute(
        insert(THROTTLE)
        .values(key=key, count=0, window_started_at=now, locked_until=None)
        .on_conflict_do_nothing(index_elements=["key"])
    )
    return session.exec(
        select(PortalThrottle)
        .where(col(PortalThrottle.key) == key)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one()


def count_event(
    session: Session, *, checks: Sequence[tuple[ThrottleRule, str]], now: datetime
) -> datetime | None:
    """Count one event (a failure, a mail) against each (rule, value); returns until when one
    of them is now locked, if this event reached a limit."""
    locked: datetime | None = None
    # One lock order for every transaction: no deadlock between two requests on PostgreSQL.
    for key, rule in sorted((_throttle_key(rule, value), rule) for rule, value in checks):
        row = _locked_row(session, key, now)
        if aware(row.window_started_at) + rule.window <= now:
            row.count, row.window_started_at = 0, now
        row.count += 1
        if row.count >= rule.limit:
            if rule.first_delay is None:
                row.locked_until = now + rule.lockout
                row.count, row.window_started_at = 0, now
            else:
                doublings = min(row.count - rule.limit, _MAX_DOUBLINGS)
                row.locked_until = now + min(rule.first_delay * 2**doublings, rule.lockout)
            locked = max(locked or row.locked_until, row.locked_until)
        session.add(row)
    session.flush()
    return locked


def clear_throttle(session: Session, *, rule: ThrottleRule, value: str) -> None:
    """Forget the count of one key (after a success); a running lockout ends too."""
    session.execute(delete(THROTTLE).where(THROTTLE.c.key == _throttle_key(rule, value)))
