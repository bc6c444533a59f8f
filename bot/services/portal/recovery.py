"""« Mot de passe oublié » and « identifiant oublié »: the same answer whether or not an account
matched (only a client sending too many requests is told to wait), and choosing a new password
through the link.
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session, col, func, select

from bot.services.accounts import RefusalReason, TransitionRefused, change_password, normalise_email
from bot.services.mail import enqueue
from bot.services.portal.common import (
    MAX_FIELD_LENGTH,
    PORTAL_ACTOR,
    account_by_identifier,
    addressee_of,
    audit,
    aware,
    guardian_of,
    same_address,
    school_name_of,
)
from bot.services.portal.forms import (
    FormResult,
    Problem,
    RequestResult,
    RequestStatus,
    new_password_problems,
)
from bot.services.portal.language import family_language
from bot.services.portal.links import (
    RESET_PATH,
    LinkStatus,
    LinkView,
    check_link,
    mail_link,
    revoke_links,
)
from bot.services.portal.mail import (
    IdentifierLine,
    compose_identifier_reminder,
    compose_password_reset_link,
)
from bot.services.portal.sessions import portal_account
from bot.services.portal.throttling import (
    LINKS_PER_CLIENT,
    LOGIN_PER_IDENTIFIER,
    MAILS_PER_CLIENT,
    MAILS_PER_TARGET,
    clear_throttle,
    count_event,
    locked_until,
    retry_time,
)
from models import Account, AccountState, Guardian, PortalTokenPurpose

LOGIN_PATH = "/connexion"
FORGOT_PASSWORD_PATH = "/mot-de-passe-oublie"


def forgotten_password_url(portal_url: str) -> str:
    """The portal's « mot de passe oublié » page, where an activated family gets a new one."""
    return f"{portal_url.rstrip('/')}{FORGOT_PASSWORD_PATH}"


def request_password_reset(
    session: Session,
    *,
    identifier: str,
    email: str,
    client: str,
    portal_url: str,
    mail_from: str,
    language: str = "fr",
    now: datetime | None = None,
) -> RequestResult:
    """« Mot de passe oublié »: when the identifier belongs to an activated account whose
    address on file is `email`, a link valid 30 minutes is sent there. The answer is the same
    whether or not it was: only a client sending too many requests is told to wait."""
    now = aware(now)
    retry_at = locked_until(session=session, checks=[(MAILS_PER_CLIENT, client)], now=now)
    if retry_at is not None:
        audit(session, "portal.password_reset_refused", reason="rate_limited")
        return RequestResult(RequestStatus.RATE_LIMITED, retry_at=retry_at)
    count_event(session=session, checks=[(MAILS_PER_CLIENT, client)], now=now)
    wanted = identifier.strip().lower()[:MAX_FIELD_LENGTH]
    account = account_by_identifier(session, wanted) if wanted else None
    guardian = guardian_of(session, account) if account is not None else None
    address = normalise_email(email)
    reason: str | None = None
    if account is None or guardian is None:
        reason = "unknown_identifier"
    elif not same_address(address, guardian.email):
        reason = "other_address"
    elif account.deactivated_at is not None:
        reason = "deactivated"
    elif account.state != AccountState.ACTIVATED:
        reason = "not_activated"
    elif locked_until(
        session=session, checks=[(MAILS_PER_TARGET, f"account:{account.id}")], now=now
    ):
        reason = "too_many_mails"
    if reason is not None:
        audit(session, "portal.password_reset_refused", account=account, reason=reason)
        return RequestResult(RequestStatus.ACCEPTED)
    assert account is not None and guardian is not None and guardian.email is not None
    count_event(session=session, checks=[(MAILS_PER_TARGET, f"account:{account.id}")], now=now)
    mail_link(
        session,
        account,
        guardian,
        purpose=PortalTokenPurpose.PASSWORD_RESET,
        to=guardian.email,
        path=RESET_PATH,
        compose=compose_password_reset_link,
        kind="password_reset_link",
        portal_url=portal_url,
        mail_from=mail_from,
        language=language,
        now=now,
    )
    audit(session, "portal.password_reset_sent", account=account, guardian=guardian)
    return RequestResult(RequestStatus.ACCEPTED)


def reset_password_with_link(
    session: Session,
    *,
    token: str,
    new_password: str,
    confirmation: str,
    client: str,
    now: datetime | None = None,
) -> tuple[LinkView, FormResult]:
    """Choose a new password through a « mot de passe oublié » link. The link is used only
    when the password is accepted; every session of the account ends, and so does any
    pending address change (asked, perhaps, by whoever knew the old password)."""
    now = aware(now)
    status, row, account = check_link(
        session,
        token,
        purposes=(PortalTokenPurpose.PASSWORD_RESET,),
        client=client,
        now=now,
        lock=True,
    )
    if status == LinkStatus.RATE_LIMITED:
        view = LinkView(status=status, retry_at=retry_time(session, LINKS_PER_CLIENT, client, now))
        return view, FormResult()
    if status != LinkStatus.VALID or row is None or account is None:
        return LinkView(status=status, purpose=PortalTokenPurpose.PASSWORD_RESET), FormResult()
    assert account.id is not None
    view = LinkView(status=status, purpose=row.purpose, identifier=account.identifier)
    problems = new_password_problems(new_password, confirmation, identifier=account.identifier)
    if problems:
        return view, FormResult(problems=problems)
    try:
        account = change_password(
            session=session,
            account_id=account.id,
            new_password=new_password,
            actor=PORTAL_ACTOR,
            now=now,
        )
    except TransitionRefused as refused:
        if refused.reason == RefusalReason.WEAK_PASSWORD:
            return view, FormResult(problems={"new_password": Problem.PASSWORD_WEAK})
        audit(session, "portal.link_refused", account=account, reason=refused.reason.value)
        return LinkView(status=LinkStatus.REVOKED, purpose=row.purpose), FormResult(
            refusal=refused.reason
        )
    assert account.id is not None
    row.used_at = now
    session.add(row)
    revoke_links(session, account.id, PortalTokenPurpose.PASSWORD_RESET, now)
    revoke_links(session, account.id, PortalTokenPurpose.EMAIL_CHANGE, now)
    # The lockout of the identifier ends: its owner just proved who they are.
    clear_throttle(session=session, rule=LOGIN_PER_IDENTIFIER, value=account.identifier)
    session.flush()
    return view, FormResult(account=portal_account(account, now))


def _accounts_at(session: Session, address: str) -> list[tuple[Account, Guardian]]:
    """The accounts, notified and not deactivated, whose address on file is `address` (in any
    case), with their guardians, by identifier."""
    return [
        (account, guardian)
        for account, guardian in session.exec(
            select(Account, Guardian)
            .join(Guardian, col(Guardian.id) == col(Account.guardian_id))
            .where(
                func.lower(col(Guardian.email)) == address.lower(),
                col(Account.deactivated_at).is_(None),
                col(Account.state) != AccountState.NOT_NOTIFIED,
            )
            .order_by(col(Account.identifier))
        ).all()
    ]


def send_identifier_reminder(
    session: Session,
    *,
    email: str,
    client: str,
    portal_url: str,
    mail_from: str,
    language: str = "fr",
    now: datetime | None = None,
) -> RequestResult:
    """« Identifiant oublié »: the identifiers of the accounts whose address on file is
    `email` are e-mailed there (one message). The same answer whether or not there are any."""
    now = aware(now)
    retry_at = locked_until(session=session, checks=[(MAILS_PER_CLIENT, client)], now=now)
    if retry_at is not None:
        audit(session, "portal.identifier_reminder_refused", reason="rate_limited")
        return RequestResult(RequestStatus.RATE_LIMITED, retry_at=retry_at)
    count_event(session=session, checks=[(MAILS_PER_CLIENT, client)], now=now)
    address = normalise_email(email)
    found = _accounts_at(session, address) if address is not None else []
    target = f"address:{address}" if address is not None else ""
    if not found or locked_until(session=session, checks=[(MAILS_PER_TARGET, target)], now=now):
        audit(
            session,
            "portal.identifier_reminder_refused",
            reason="unknown_address" if not found else "too_many_mails",
        )
        return RequestResult(RequestStatus.ACCEPTED)
    assert address is not None
    count_event(session=session, checks=[(MAILS_PER_TARGET, target)], now=now)
    first_guardian = found[0][1]
    message = compose_identifier_reminder(
        to=found[0][1].email or address,
        addressee=addressee_of(first_guardian),
        lines=[
            IdentifierLine(
                identifier=account.identifier,
                addressee=addressee_of(guardian),
                school_name=school_name_of(session, guardian),
            )
            for account, guardian in found
        ],
        login_url=f"{portal_url.rstrip('/')}{LOGIN_PATH}",
        forgot_password_url=forgotten_password_url(portal_url),
        mail_from=mail_from,
        language=family_language(language, first_guardian),
        now=now,
    )
    enqueue(
        session=session,
        message=message,
        kind="identifier_reminder",
        school_id=first_guardian.school_id,
        account_id=found[0][0].id,
        batch_id=None,
        now=now,
    )
    for account, guardian in found:
        audit(session, "portal.identifier_reminder_sent", account=account, guardian=guardian)
    return RequestResult(RequestStatus.ACCEPTED)
