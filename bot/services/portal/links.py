"""The links the portal e-mails — activation, new address, forgotten password — and following
them: single-use, expiring, stored only as SHA-256 hashes; a newer link of the same kind
revokes the older ones.
"""

from __future__ import annotations

import enum
import hashlib
import re
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from typing import cast

from sqlalchemy import Table, update
from sqlmodel import Session, col, select

from bot.db import lock_for_writing
from bot.services.accounts import TransitionRefused, confirm_activation
from bot.services.mail import enqueue
from bot.services.portal.common import (
    PORTAL_ACTOR,
    addressee_of,
    audit,
    aware,
    guardian_of,
    same_address,
    school_name_of,
)
from bot.services.portal.language import family_language
from bot.services.portal.mail import compose_email_changed_notice
from bot.services.portal.throttling import LINKS_PER_CLIENT, count_event, locked_until, retry_time
from models import Account, AccountState, Guardian, PortalToken, PortalTokenPurpose

# How long each e-mailed link works.
LINK_VALIDITY: dict[PortalTokenPurpose, timedelta] = {
    PortalTokenPurpose.ACTIVATION: timedelta(days=7),
    PortalTokenPurpose.EMAIL_CHANGE: timedelta(hours=24),
    PortalTokenPurpose.PASSWORD_RESET: timedelta(minutes=30),
    # Not e-mailed: the bot gives it to a family whose shared mobile number matched.
    PortalTokenPurpose.PHONE_ACTIVATION: timedelta(minutes=30),
}
# 32 random bytes: 256 bits, 43 URL-safe characters.
_TOKEN_BYTES = 32
_TOKEN_SHAPE = re.compile(r"^[A-Za-z0-9_-]{43}$")

# Paths of the portal that the e-mails link to.
CONFIRM_PATH = "/confirmer/"
RESET_PATH = "/reinitialiser/"

TOKEN: Table = cast(Table, PortalToken.__table__)  # type: ignore[attr-defined]


class LinkStatus(enum.StrEnum):
    """What following an e-mailed link finds."""

    VALID = "valid"
    UNKNOWN = "unknown"  # no such link (mistyped, cut, or purged long after it expired)
    USED = "used"  # links work once
    EXPIRED = "expired"
    REVOKED = "revoked"  # a newer link of the same kind was sent since
    RATE_LIMITED = "rate_limited"  # too many bad links from this client: try later


@dataclass(frozen=True, slots=True)
class LinkView:
    """An e-mailed link, as the page it opens shows it."""

    status: LinkStatus
    purpose: PortalTokenPurpose | None = None
    identifier: str | None = None
    # The address the link confirms (address change), shown so the family recognises it.
    email: str | None = None
    retry_at: datetime | None = None
    # After following an activation link: the account's state now (activated, normally).
    state: AccountState | None = None


def hash_link_token(token: str) -> str:
    """The stored form of an e-mailed link's secret (SHA-256 suffices for 256 random bits)."""
    return hashlib.sha256(token.encode("ascii", errors="replace")).hexdigest()


def revoke_links(
    session: Session, account_id: int, purpose: PortalTokenPurpose, now: datetime
) -> None:
    """The account's links of `purpose` not used yet stop working."""
    session.execute(
        update(TOKEN)
        .where(
            TOKEN.c.account_id == account_id,
            TOKEN.c.purpose == purpose,
            TOKEN.c.used_at.is_(None),
            TOKEN.c.revoked_at.is_(None),
        )
        .values(revoked_at=now)
    )


def issue_link(
    session: Session,
    account: Account,
    purpose: PortalTokenPurpose,
    *,
    email: str | None,
    now: datetime,
) -> tuple[str, datetime]:
    """A new link secret for `account` (in clear, for the e-mail only) and its expiry; older
    unused links of the same purpose stop working."""
    assert account.id is not None
    revoke_links(session, account.id, purpose, now)
    token = secrets.token_urlsafe(_TOKEN_BYTES)
    expires_at = now + LINK_VALIDITY[purpose]
    session.add(
        PortalToken(
            account_id=account.id,
            purpose=purpose,
            token_hash=hash_link_token(token),
            email=email,
            created_at=now,
            expires_at=expires_at,
        )
    )
    session.flush()
    return token, expires_at


def mail_link(
    session: Session,
    account: Account,
    guardian: Guardian,
    *,
    purpose: PortalTokenPurpose,
    to: str,
    path: str,
    compose: Callable[..., EmailMessage],
    kind: str,
    portal_url: str,
    mail_from: str,
    language: str,
    now: datetime,
) -> None:
    """Issue a link of `purpose` for `account` and put its e-mail, addressed to `to`, in the
    outbox (the caller's transaction): the secret exists in clear only inside that e-mail,
    bilingual when the family's language (`language` on the portal, else the guardian's) is
    not French."""
    token, expires_at = issue_link(session, account, purpose, email=to, now=now)
    message = compose(
        to=to,
        addressee=addressee_of(guardian),
        identifier=account.identifier,
        school_name=school_name_of(session, guardian),
        link=f"{portal_url.rstrip('/')}{path}{token}",
        expires_at=expires_at,
        mail_from=mail_from,
        language=family_language(language, guardian),
        now=now,
    )
    enqueue(
        session=session,
        message=message,
        kind=kind,
        school_id=guardian.school_id,
        account_id=account.id,
        batch_id=None,
        now=now,
    )


def _link_status(row: PortalToken | None, now: datetime) -> LinkStatus:
    if row is None:
        return LinkStatus.UNKNOWN
    if row.used_at is not None:
        return LinkStatus.USED
    if row.revoked_at is not None:
        return LinkStatus.REVOKED
    if now >= aware(row.expires_at):
        return LinkStatus.EXPIRED
    return LinkStatus.VALID


def _find_link(session: Session, token: str, *, lock: bool) -> PortalToken | None:
    if not _TOKEN_SHAPE.fullmatch(token):
        return None
    statement = select(PortalToken).where(col(PortalToken.token_hash) == hash_link_token(token))
    if lock:
        lock_for_writing(session)
        statement = statement.with_for_update().execution_options(populate_existing=True)
    return session.exec(statement).first()


def check_link(
    session: Session,
    token: str,
    *,
    purposes: Sequence[PortalTokenPurpose],
    client: str,
    now: datetime,
    lock: bool,
) -> tuple[LinkStatus, PortalToken | None, Account | None]:
    """The link's status (audited and counted when it is bad), its row and account."""
    retry_at = locked_until(session=session, checks=[(LINKS_PER_CLIENT, client)], now=now)
    if retry_at is not None:
        return LinkStatus.RATE_LIMITED, None, None
    row = _find_link(session, token, lock=lock)
    if row is not None and row.purpose not in purposes:
        row = None  # a reset link pasted on the confirmation page, say: not this page's
    status = _link_status(row, now)
    account = session.get(Account, row.account_id) if row is not None else None
    if status == LinkStatus.VALID and (account is None or account.deactivated_at is not None):
        status = LinkStatus.REVOKED
    if status != LinkStatus.VALID:
        count_event(session=session, checks=[(LINKS_PER_CLIENT, client)], now=now)
        audit(
            session,
            "portal.link_refused",
            account=account,
            reason=status.value,
            purpose=row.purpose.value if row is not None else None,
        )
    return status, row, account


def inspect_link(
    session: Session,
    *,
    token: str,
    purposes: Sequence[PortalTokenPurpose],
    client: str,
    now: datetime | None = None,
) -> LinkView:
    """What a link opened in a browser is for, without using it (mail scanners open links:
    only the button on the page it opens uses it)."""
    now = aware(now)
    status, row, account = check_link(
        session, token, purposes=purposes, client=client, now=now, lock=False
    )
    if status == LinkStatus.RATE_LIMITED:
        return LinkView(status=status, retry_at=retry_time(session, LINKS_PER_CLIENT, client, now))
    return LinkView(
        status=status,
        purpose=row.purpose if row is not None else None,
        identifier=account.identifier if account is not None else None,
        email=row.email if row is not None and status == LinkStatus.VALID else None,
        state=AccountState(account.state) if account is not None else None,
    )


def _tell_old_address(
    session: Session,
    account: Account,
    guardian: Guardian,
    previous: str,
    *,
    mail_from: str,
    language: str,
    now: datetime,
) -> None:
    """E-mail the address just replaced that the account's address changed (through the
    outbox, in the caller's transaction)."""
    message = compose_email_changed_notice(
        to=previous,
        addressee=addressee_of(guardian),
        identifier=account.identifier,
        school_name=school_name_of(session, guardian),
        changed_at=now,
        mail_from=mail_from,
        language=family_language(language, guardian),
        now=now,
    )
    enqueue(
        session=session,
        message=message,
        kind="email_changed_notice",
        school_id=guardian.school_id,
        account_id=account.id,
        batch_id=None,
        now=now,
    )


def follow_confirmation_link(
    session: Session,
    *,
    token: str,
    client: str,
    mail_from: str,
    language: str = "fr",
    now: datetime | None = None,
) -> LinkView:
    """Use an activation or address-change link: the account becomes `activated` (the address
    the link went to goes on file), or the new address replaces the old one, which is told.
    Single use."""
    now = aware(now)
    purposes = (PortalTokenPurpose.ACTIVATION, PortalTokenPurpose.EMAIL_CHANGE)
    status, row, account = check_link(
        session, token, purposes=purposes, client=client, now=now, lock=True
    )
    if status == LinkStatus.RATE_LIMITED:
        return LinkView(status=status, retry_at=retry_time(session, LINKS_PER_CLIENT, client, now))
    if status != LinkStatus.VALID or row is None or account is None:
        return LinkView(
            status=status,
            purpose=row.purpose if row is not None else None,
            identifier=account.identifier if account is not None else None,
            state=AccountState(account.state) if account is not None else None,
        )
    assert account.id is not None
    guardian = guardian_of(session, account)
    row.used_at = now
    session.add(row)
    if row.purpose == PortalTokenPurpose.ACTIVATION:
        try:
            # The address the link went to is proven now: it goes on file.
            account = confirm_activation(
                session=session, account_id=account.id, actor=PORTAL_ACTOR, email=row.email, now=now
            )
        except TransitionRefused as refused:
            # Activated already (through an older link?) or reset to another state since.
            audit(session, "portal.link_refused", account=account, reason=refused.reason.value)
            return LinkView(
                status=LinkStatus.USED,
                purpose=row.purpose,
                identifier=account.identifier,
                state=AccountState(account.state),
            )
    else:
        previous = guardian.email
        guardian.email = row.email
        guardian.updated_at = now
        session.add(guardian)
        # Reset links went to the old address: they stop working with it.
        revoke_links(session, row.account_id, PortalTokenPurpose.PASSWORD_RESET, now)
        if previous is not None and not same_address(previous, row.email):
            _tell_old_address(
                session,
                account,
                guardian,
                previous,
                mail_from=mail_from,
                language=language,
                now=now,
            )
        audit(
            session,
            "account.email_changed",
            account=account,
            guardian=guardian,
            had_email=previous is not None,
        )
    session.flush()
    return LinkView(
        status=LinkStatus.VALID,
        purpose=row.purpose,
        identifier=account.identifier,
        email=row.email,
        state=AccountState(account.state),
    )
