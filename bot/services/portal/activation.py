"""Activating an account on the portal: the form (a new password, an e-mail address, one child's
birth date), the confirmation link it sends, and sending that link again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlmodel import Session, col, select

from bot.services.accounts import (
    RefusalReason,
    TransitionRefused,
    begin_activation,
    normalise_email,
)
from bot.services.audit import record_event
from bot.services.portal.activation_locks import cap_activation
from bot.services.portal.common import PORTAL_ACTOR, audit, aware, children_rows, guardian_of
from bot.services.portal.forms import (
    FormResult,
    Problem,
    RequestResult,
    RequestStatus,
    new_password_problems,
    parse_birth_date,
)
from bot.services.portal.links import CONFIRM_PATH, mail_link, revoke_links
from bot.services.portal.mail import compose_activation_link
from bot.services.portal.sessions import portal_account, session_account, state_refusal
from bot.services.portal.throttling import (
    BIRTH_DATE_PER_ACCOUNT,
    MAILS_PER_CLIENT,
    MAILS_PER_TARGET,
    clear_throttle,
    count_event,
    locked_until,
)
from models import Account, AccountState, Guardian, PortalToken, PortalTokenPurpose


@dataclass(frozen=True, slots=True)
class ActivationForm:
    """What the activation form is prefilled with."""

    identifier: str
    # The address on file (from ONDE), to confirm or correct.
    email: str | None
    # The children's first names: « the birth date of one of your children (Léa, Hugo) ».
    children: tuple[str, ...]
    # Too many wrong birth dates: the activation waits for the school.
    awaiting_school: bool = False


def activation_form(session: Session, *, account_id: int) -> ActivationForm:
    """The prefilled values of the activation form of this account."""
    account = session.get(Account, account_id)
    assert account is not None
    guardian = guardian_of(session, account)
    assert guardian.id is not None
    return ActivationForm(
        identifier=account.identifier,
        email=guardian.email,
        children=tuple(pupil.first_name for pupil, _ in children_rows(session, guardian.id)),
        awaiting_school=account.activation_locked_at is not None,
    )


def _birth_dates(session: Session, guardian_id: int) -> set[date]:
    """The birth dates on file of the guardian's children."""
    return {
        pupil.birth_date
        for pupil, _ in children_rows(session, guardian_id)
        if pupil.birth_date is not None
    }


def pending_address(session: Session, account: Account, guardian: Guardian) -> str | None:
    """Where an `activating` account's confirmation link goes: the address its latest link
    was sent to (typed at activation, or corrected by the director), which is not on file
    until a link is followed; the address on file when no link was ever sent."""
    latest = session.exec(
        select(PortalToken.email)
        .where(
            col(PortalToken.account_id) == account.id,
            col(PortalToken.purpose) == PortalTokenPurpose.ACTIVATION,
        )
        .order_by(col(PortalToken.id).desc())
    ).first()
    return latest or guardian.email


def _send_activation_link(
    session: Session,
    account: Account,
    guardian: Guardian,
    *,
    to: str,
    portal_url: str,
    mail_from: str,
    language: str,
    now: datetime,
    actor: str | None = None,
) -> None:
    """E-mail a new confirmation link to `to`, the pending address (older links stop working);
    `actor` is who asked when it is not the family on the portal (a director)."""
    mail_link(
        session,
        account,
        guardian,
        purpose=PortalTokenPurpose.ACTIVATION,
        to=to,
        path=CONFIRM_PATH,
        compose=compose_activation_link,
        kind="activation_confirmation",
        portal_url=portal_url,
        mail_from=mail_from,
        language=language,
        now=now,
    )
    count_event(session=session, checks=[(MAILS_PER_TARGET, f"account:{account.id}")], now=now)
    if actor is None:
        audit(session, "portal.activation_link_sent", account=account, guardian=guardian)
    else:
        record_event(
            session,
            actor=actor,
            action="portal.activation_link_sent",
            school_id=guardian.school_id,
            account_id=account.id,
        )


def _form_problems(
    account: Account, new_password: str, confirmation: str, *, email: str, birth_date: str
) -> tuple[dict[str, Problem], str | None, date | None]:
    """What is wrong with the fields of the activation form, the address normalised and the
    birth date parsed; nothing is compared with the database yet."""
    problems = new_password_problems(
        new_password,
        confirmation,
        identifier=account.identifier,
        # Only a provisional password must not be chosen again (an `activating` account that
        # comes back through a phone link holds a chosen one).
        provisional_hash=account.password_hash if account.provisional_expires_at else None,
    )
    address = normalise_email(email)
    if not email.strip():
        problems["email"] = Problem.REQUIRED
    elif address is None:
        problems["email"] = Problem.EMAIL_INVALID
    born = parse_birth_date(birth_date)
    if not birth_date.strip():
        problems["birth_date"] = Problem.REQUIRED
    elif born is None:
        problems["birth_date"] = Problem.BIRTH_DATE_INVALID
    return problems, address, born


def _check_birth_date(
    session: Session, account: Account, guardian: Guardian, born: date, *, key: str, now: datetime
) -> FormResult | None:
    """None when `born` is the birth date of one of the guardian's children; else the refusal,
    a wrong date counting towards the lockout of the account's activation, and towards the
    overall cap after which it waits for the school."""
    assert guardian.id is not None
    known = _birth_dates(session, guardian.id)
    if born in known:
        return None
    locked = None
    if known:
        locked = count_event(session=session, checks=[(BIRTH_DATE_PER_ACCOUNT, key)], now=now)
    audit(
        session,
        "portal.birth_date_refused",
        account=account,
        guardian=guardian,
        reason="wrong" if known else "none_on_file",
        locked=locked is not None,
    )
    problem = Problem.BIRTH_DATE_WRONG if known else Problem.BIRTH_DATE_UNKNOWN
    if known and cap_activation(session, account, now=now):
        return FormResult(problems={"birth_date": problem}, awaiting_school=True)
    return FormResult(problems={"birth_date": problem}, locked_until=locked)


def finish_activation(
    session: Session,
    *,
    account_id: int,
    fingerprint: str,
    new_password: str,
    confirmation: str,
    email: str,
    birth_date: str,
    portal_url: str,
    mail_from: str,
    language: str = "fr",
    now: datetime | None = None,
) -> FormResult:
    """The activation form: a new password (twice), an e-mail address, one child's birth
    date → the account is `activating` and the confirmation link is in the outbox.

    Wrong birth dates count towards a lockout of the account's activation; the password and
    the address are checked first, and nothing changes until everything is right.
    """
    now = aware(now)
    account = session_account(session, account_id, fingerprint, lock=True)
    if account is None:
        return FormResult(refusal=RefusalReason.UNKNOWN_ACCOUNT)
    if (refusal := state_refusal(account, AccountState.NOTIFIED)) is not None:
        return FormResult(refusal=refusal)
    return complete_activation(
        session,
        account,
        fields=ActivationFields(new_password, confirmation, email, birth_date),
        portal_url=portal_url,
        mail_from=mail_from,
        language=language,
        now=now,
    )


@dataclass(frozen=True, slots=True)
class ActivationFields:
    """What the family typed in the activation form."""

    new_password: str
    confirmation: str
    email: str
    birth_date: str


def complete_activation(
    session: Session,
    account: Account,
    *,
    fields: ActivationFields,
    verified_by_phone: bool = False,
    portal_url: str,
    mail_from: str,
    language: str,
    now: datetime,
) -> FormResult:
    """Check the activation form of `account` (locked, in a state the form is for), then
    `begin_activation` makes it `activating` (`verified_by_phone`: the family proved who it is
    with its mobile number, not the letter) and the confirmation link goes to the outbox."""
    assert account.id is not None
    guardian = guardian_of(session, account)
    assert guardian.id is not None
    key = f"account:{account.id}"
    if account.activation_locked_at is not None:
        audit(session, "portal.activation_refused", account=account, reason="awaiting_school")
        return FormResult(awaiting_school=True)
    retry_at = locked_until(session=session, checks=[(BIRTH_DATE_PER_ACCOUNT, key)], now=now)
    if retry_at is not None:
        audit(session, "portal.activation_refused", account=account, reason="locked")
        return FormResult(locked_until=retry_at)
    problems, address, born = _form_problems(
        account,
        fields.new_password,
        fields.confirmation,
        email=fields.email,
        birth_date=fields.birth_date,
    )
    if problems:
        return FormResult(problems=problems)
    assert address is not None and born is not None
    wrong = _check_birth_date(session, account, guardian, born, key=key, now=now)
    if wrong is not None:
        return wrong
    try:
        account = begin_activation(
            session,
            account_id=account.id,
            new_password=fields.new_password,
            email=address,
            actor=PORTAL_ACTOR,
            now=now,
            verified_by_phone=verified_by_phone,
        )
    except TransitionRefused as refused:
        if refused.reason == RefusalReason.WEAK_PASSWORD:
            return FormResult(problems={"new_password": Problem.PASSWORD_WEAK})
        if refused.reason == RefusalReason.INVALID_EMAIL:
            return FormResult(problems={"email": Problem.EMAIL_INVALID})
        audit(session, "portal.activation_refused", account=account, reason=refused.reason.value)
        return FormResult(refusal=refused.reason)
    clear_throttle(session=session, rule=BIRTH_DATE_PER_ACCOUNT, value=key)
    _send_activation_link(
        session,
        account,
        guardian,
        to=address,
        portal_url=portal_url,
        mail_from=mail_from,
        language=language,
        now=now,
    )
    return FormResult(account=portal_account(account, now))


@dataclass(frozen=True, slots=True)
class AwaitingConfirmation:
    """An `activating` account: where its confirmation link went (the pending address), and
    when."""

    identifier: str
    email: str | None
    sent_at: datetime | None
    expires_at: datetime | None


def awaiting_confirmation(session: Session, *, account_id: int) -> AwaitingConfirmation:
    """The address (pending, not yet on file) and time of the latest confirmation link of
    this account."""
    account = session.get(Account, account_id)
    assert account is not None
    guardian = guardian_of(session, account)
    latest = session.exec(
        select(PortalToken)
        .where(
            col(PortalToken.account_id) == account_id,
            col(PortalToken.purpose) == PortalTokenPurpose.ACTIVATION,
        )
        .order_by(col(PortalToken.id).desc())
    ).first()
    return AwaitingConfirmation(
        identifier=account.identifier,
        email=(latest.email if latest is not None else None) or guardian.email,
        sent_at=aware(latest.created_at) if latest is not None else None,
        expires_at=aware(latest.expires_at) if latest is not None else None,
    )


def resend_activation_link(
    session: Session,
    *,
    account_id: int,
    fingerprint: str,
    client: str,
    portal_url: str,
    mail_from: str,
    language: str = "fr",
    now: datetime | None = None,
) -> RequestResult:
    """Send an `activating` account a new confirmation link (the older ones stop working)."""
    now = aware(now)
    account = session_account(session, account_id, fingerprint, lock=True)
    if account is None:
        return RequestResult(RequestStatus.REFUSED, refusal=RefusalReason.UNKNOWN_ACCOUNT)
    if (refusal := state_refusal(account, AccountState.ACTIVATING)) is not None:
        return RequestResult(RequestStatus.REFUSED, refusal=refusal)
    guardian = guardian_of(session, account)
    checks = [(MAILS_PER_CLIENT, client), (MAILS_PER_TARGET, f"account:{account_id}")]
    retry_at = locked_until(session=session, checks=checks, now=now)
    if retry_at is not None:
        audit(session, "portal.activation_link_refused", account=account, reason="rate_limited")
        return RequestResult(RequestStatus.RATE_LIMITED, retry_at=retry_at)
    address = pending_address(session, account, guardian)
    if address is None:  # never sent, and cleared by hand since: nowhere to send it
        return RequestResult(RequestStatus.REFUSED, refusal=RefusalReason.INVALID_EMAIL)
    count_event(session=session, checks=[(MAILS_PER_CLIENT, client)], now=now)
    _send_activation_link(
        session,
        account,
        guardian,
        to=address,
        portal_url=portal_url,
        mail_from=mail_from,
        language=language,
        now=now,
    )
    return RequestResult(RequestStatus.ACCEPTED)


def send_confirmation_link_again(
    session: Session,
    *,
    account_id: int,
    actor: str,
    portal_url: str,
    mail_from: str,
    school_id: int | None = None,
    email: str | None = None,
    language: str = "fr",
    now: datetime | None = None,
) -> RequestResult:
    """Send an `activating` account a new confirmation link from outside the portal: a director
    (`school_id`: their school; another school's account is refused as unknown) or the family
    in the bot (`actor` « family:<telegram id> »). The link goes to the pending address, or to
    `email` when the director has just corrected it (the links to the old pending address then
    stop working even if the mail limit holds the new one back). The older links stop working;
    within the account's mail limit; refused with a reason in another state or without an
    address."""
    now = aware(now)
    account = session.get(Account, account_id, with_for_update=True)
    guardian = session.get(Guardian, account.guardian_id) if account is not None else None
    if account is None or guardian is None:
        return RequestResult(RequestStatus.REFUSED, refusal=RefusalReason.UNKNOWN_ACCOUNT)
    if school_id is not None and guardian.school_id != school_id:
        return RequestResult(RequestStatus.REFUSED, refusal=RefusalReason.UNKNOWN_ACCOUNT)
    if account.deactivated_at is not None:
        return RequestResult(RequestStatus.REFUSED, refusal=RefusalReason.DEACTIVATED)
    if (refusal := state_refusal(account, AccountState.ACTIVATING)) is not None:
        return RequestResult(RequestStatus.REFUSED, refusal=refusal)
    address = email or pending_address(session, account, guardian)
    if address is None:
        return RequestResult(RequestStatus.REFUSED, refusal=RefusalReason.INVALID_EMAIL)
    if email is not None:
        revoke_links(session, account_id, PortalTokenPurpose.ACTIVATION, now)
    retry_at = locked_until(
        session=session, checks=[(MAILS_PER_TARGET, f"account:{account_id}")], now=now
    )
    if retry_at is not None:
        record_event(
            session,
            actor=actor,
            action="portal.activation_link_refused",
            school_id=guardian.school_id,
            account_id=account_id,
            reason="rate_limited",
        )
        return RequestResult(RequestStatus.RATE_LIMITED, retry_at=retry_at)
    _send_activation_link(
        session,
        account,
        guardian,
        to=address,
        portal_url=portal_url,
        mail_from=mail_from,
        language=language,
        now=now,
        actor=actor,
    )
    return RequestResult(RequestStatus.ACCEPTED)
