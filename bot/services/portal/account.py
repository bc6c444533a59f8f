"""« Mon compte »: what the page shows, changing one's password, and changing one's e-mail
address (through a confirmation link sent to the new one).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, col, select

from bot.services.accounts import RefusalReason, change_password, normalise_email, verify_password
from bot.services.portal.common import (
    MAX_PASSWORD_LENGTH,
    PORTAL_ACTOR,
    audit,
    aware,
    children_rows,
    guardian_of,
    same_address,
    school_name_of,
)
from bot.services.portal.forms import FormResult, Problem, new_password_problems
from bot.services.portal.links import CONFIRM_PATH, mail_link, revoke_links
from bot.services.portal.mail import compose_email_change_link
from bot.services.portal.sessions import portal_account, session_account, state_refusal
from bot.services.portal.throttling import (
    ACCOUNT_PASSWORD_CHECK,
    MAILS_PER_CLIENT,
    MAILS_PER_TARGET,
    count_event,
    locked_until,
)
from models import Account, AccountState, PortalToken, PortalTokenPurpose


@dataclass(frozen=True, slots=True)
class ChildView:
    first_name: str
    last_name: str
    class_label: str | None


@dataclass(frozen=True, slots=True)
class AccountOverview:
    """« Mon compte »: who, which children, which address."""

    identifier: str
    state: AccountState
    first_name: str
    last_name: str
    school_name: str
    email: str | None
    children: tuple[ChildView, ...]
    activated_at: datetime | None
    # A new address waiting for its confirmation link to be followed.
    pending_email: str | None


def account_overview(
    session: Session, *, account_id: int, now: datetime | None = None
) -> AccountOverview:
    """What « mon compte » shows about this account."""
    now = aware(now)
    account = session.get(Account, account_id)
    assert account is not None
    guardian = guardian_of(session, account)
    assert guardian.id is not None
    pending = session.exec(
        select(PortalToken.email).where(
            col(PortalToken.account_id) == account_id,
            col(PortalToken.purpose) == PortalTokenPurpose.EMAIL_CHANGE,
            col(PortalToken.used_at).is_(None),
            col(PortalToken.revoked_at).is_(None),
            col(PortalToken.expires_at) > now,
        )
    ).first()
    return AccountOverview(
        identifier=account.identifier,
        state=AccountState(account.state),
        first_name=guardian.first_name,
        last_name=guardian.usage_name or guardian.last_name,
        school_name=school_name_of(session, guardian),
        email=guardian.email,
        children=tuple(
            ChildView(
                first_name=pupil.first_name,
                last_name=pupil.usage_name or pupil.last_name,
                class_label=label,
            )
            for pupil, label in children_rows(session, guardian.id)
        ),
        activated_at=aware(account.activated_at) if account.activated_at else None,
        pending_email=pending,
    )


def _check_current_password(
    session: Session,
    account: Account,
    current_password: str,
    *,
    field_name: str,
    now: datetime,
) -> FormResult | None:
    """None when `current_password` is right; else the refusal, counted for this account only
    (strangers' failed logins on the identifier never block its signed-in owner here)."""
    checks = [(ACCOUNT_PASSWORD_CHECK, str(account.id))]
    retry_at = locked_until(session=session, checks=checks, now=now)
    if retry_at is not None:
        audit(session, "portal.password_check_failed", account=account, reason="locked")
        return FormResult(locked_until=retry_at)
    if not current_password:
        return FormResult(problems={field_name: Problem.REQUIRED})
    if len(current_password) <= MAX_PASSWORD_LENGTH and verify_password(
        account.password_hash, current_password
    ):
        return None
    locked = count_event(session=session, checks=checks, now=now)
    audit(
        session,
        "portal.password_check_failed",
        account=account,
        reason="wrong_password",
        locked=locked is not None,
    )
    return FormResult(problems={field_name: Problem.PASSWORD_WRONG}, locked_until=locked)


def change_own_password(
    session: Session,
    *,
    account_id: int,
    fingerprint: str,
    current_password: str,
    new_password: str,
    confirmation: str,
    now: datetime | None = None,
) -> FormResult:
    """« Mon compte »: the current password, then a new one twice. Other sessions end, and so
    do pending links (reset, and address change: someone who learnt the old password must
    not keep an address change waiting to redirect the account's mail)."""
    now = aware(now)
    account = session_account(session, account_id, fingerprint, lock=True)
    if account is None:
        return FormResult(refusal=RefusalReason.UNKNOWN_ACCOUNT)
    if (refusal := state_refusal(account, AccountState.ACTIVATED)) is not None:
        return FormResult(refusal=refusal)
    wrong = _check_current_password(
        session, account, current_password, field_name="current_password", now=now
    )
    if wrong is not None:
        return wrong
    problems = new_password_problems(new_password, confirmation, identifier=account.identifier)
    if not problems and secrets.compare_digest(new_password.encode(), current_password.encode()):
        problems["new_password"] = Problem.PASSWORD_UNCHANGED
    if problems:
        return FormResult(problems=problems)
    account = change_password(
        session=session,
        account_id=account_id,
        new_password=new_password,
        actor=PORTAL_ACTOR,
        now=now,
    )
    revoke_links(session, account_id, PortalTokenPurpose.PASSWORD_RESET, now)
    revoke_links(session, account_id, PortalTokenPurpose.EMAIL_CHANGE, now)
    return FormResult(account=portal_account(account, now))


def request_email_change(
    session: Session,
    *,
    account_id: int,
    fingerprint: str,
    current_password: str,
    new_email: str,
    client: str,
    portal_url: str,
    mail_from: str,
    language: str = "fr",
    now: datetime | None = None,
) -> FormResult:
    """« Mon compte »: the current password and a new address → a confirmation link is sent
    to the new address; the address on file changes only when it is followed."""
    now = aware(now)
    account = session_account(session, account_id, fingerprint, lock=True)
    if account is None:
        return FormResult(refusal=RefusalReason.UNKNOWN_ACCOUNT)
    if (refusal := state_refusal(account, AccountState.ACTIVATED)) is not None:
        return FormResult(refusal=refusal)
    wrong = _check_current_password(
        session, account, current_password, field_name="email_password", now=now
    )
    if wrong is not None:
        return wrong
    guardian = guardian_of(session, account)
    address = normalise_email(new_email)
    if not new_email.strip():
        return FormResult(problems={"new_email": Problem.REQUIRED})
    if address is None:
        return FormResult(problems={"new_email": Problem.EMAIL_INVALID})
    if same_address(address, guardian.email):
        return FormResult(problems={"new_email": Problem.EMAIL_UNCHANGED})
    checks = [(MAILS_PER_CLIENT, client), (MAILS_PER_TARGET, f"account:{account_id}")]
    retry_at = locked_until(session=session, checks=checks, now=now)
    if retry_at is not None:
        audit(session, "portal.email_change_refused", account=account, reason="rate_limited")
        return FormResult(locked_until=retry_at)
    count_event(session=session, checks=checks, now=now)
    mail_link(
        session,
        account,
        guardian,
        purpose=PortalTokenPurpose.EMAIL_CHANGE,
        to=address,
        path=CONFIRM_PATH,
        compose=compose_email_change_link,
        kind="email_change_confirmation",
        portal_url=portal_url,
        mail_from=mail_from,
        language=language,
        now=now,
    )
    audit(session, "portal.email_change_requested", account=account, guardian=guardian)
    return FormResult(account=portal_account(account, now))
