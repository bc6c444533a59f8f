"""The activation portal's work (SPEC §6): logging in with throttling and lockout, activating
(new password, e-mail address, one child's birth date, confirmation link), « mon compte »,
« mot de passe oublié » and « identifiant oublié ».

State changes go through the account service (`bot.services.accounts`), which audits them;
this module adds the portal's own refusals to the audit log (never a password, a link or an
address typed by a visitor). The links it e-mails are single-use, expiring, and stored only as
SHA-256 hashes; throttling counters live in the database, so they hold across restarts and
processes. Every function takes `session=` and leaves committing to the caller.
"""

from __future__ import annotations

import enum
import hashlib
import re
import secrets
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from email.message import EmailMessage
from typing import Any, cast

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import Table, delete, func, or_, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col, select

from bot.db import lock_for_writing
from bot.services.accounts import (
    RefusalReason,
    TransitionRefused,
    begin_activation,
    change_password,
    confirm_activation,
    verify_login,
)
from bot.services.audit import record_event
from bot.services.outbox import enqueue
from bot.services.passwords import (
    PROVISIONAL_LENGTH,
    canonical_provisional_input,
    chosen_password_is_strong,
    verify_password,
)
from bot.services.portal_mail import (
    IdentifierLine,
    compose_activation_link,
    compose_email_change_link,
    compose_identifier_reminder,
    compose_password_reset_link,
)
from models import (
    Account,
    AccountState,
    Guardian,
    PortalThrottle,
    PortalToken,
    PortalTokenPurpose,
    Pupil,
    PupilGuardian,
    School,
    SchoolClass,
    utcnow,
)

# Who the audit log says acted: the family, through the portal.
PORTAL_ACTOR = "portal"
# Longer than anyone types; beyond it a « password » is a probe and is not even hashed.
MAX_PASSWORD_LENGTH = 256
MAX_FIELD_LENGTH = 320  # the longest e-mail address RFC 5321 allows, give or take

# How long each e-mailed link works.
LINK_VALIDITY: dict[PortalTokenPurpose, timedelta] = {
    PortalTokenPurpose.ACTIVATION: timedelta(days=7),
    PortalTokenPurpose.EMAIL_CHANGE: timedelta(hours=24),
    PortalTokenPurpose.PASSWORD_RESET: timedelta(minutes=30),
}
# 32 random bytes: 256 bits, 43 URL-safe characters.
_TOKEN_BYTES = 32
_TOKEN_SHAPE = re.compile(r"^[A-Za-z0-9_-]{43}$")

# Paths of the portal that the e-mails link to.
CONFIRM_PATH = "/confirmer/"
RESET_PATH = "/reinitialiser/"
LOGIN_PATH = "/connexion"
FORGOT_PASSWORD_PATH = "/mot-de-passe-oublie"

THROTTLE: Table = cast(Table, PortalThrottle.__table__)  # type: ignore[attr-defined]
TOKEN: Table = cast(Table, PortalToken.__table__)  # type: ignore[attr-defined]


# --- Throttling -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ThrottleRule:
    """`limit` counted events within `window` lock the key for `lockout`."""

    name: str
    limit: int
    window: timedelta
    lockout: timedelta


_QUARTER = timedelta(minutes=15)
_HOUR = timedelta(hours=1)
# Wrong passwords for one identifier, wherever they come from: 5 in 15 minutes lock it for 15.
LOGIN_PER_IDENTIFIER = ThrottleRule("login-id", 5, _QUARTER, _QUARTER)
# Wrong passwords from one client address, whatever the identifier (guessing across accounts).
LOGIN_PER_CLIENT = ThrottleRule("login-ip", 20, _QUARTER, _QUARTER)
# Wrong birth dates for one account during activation.
BIRTH_DATE_PER_ACCOUNT = ThrottleRule("birth", 5, _QUARTER, _QUARTER)
# Unknown, used or expired links followed from one client address.
LINKS_PER_CLIENT = ThrottleRule("link-ip", 20, _QUARTER, _QUARTER)
# Requests that send an e-mail (forgotten password or identifier, resending a link), from one
# client address: refused with a « try later » page beyond it.
MAILS_PER_CLIENT = ThrottleRule("mail-ip", 10, _HOUR, _HOUR)
# E-mails to one account or address: beyond it nothing is sent, and the page says the same
# words as ever (it must not tell whether an account exists).
MAILS_PER_TARGET = ThrottleRule("mail-to", 3, _HOUR, _HOUR)


def _throttle_key(rule: ThrottleRule, value: str) -> str:
    # Hashed: the table never holds an identifier, an address or an IP in clear.
    digest = hashlib.sha256(value.strip().lower().encode("utf-8")).hexdigest()
    return f"{rule.name}:{digest}"


def locked_until(
    *, session: Session, checks: Iterable[tuple[ThrottleRule, str]], now: datetime
) -> datetime | None:
    """The latest time until which any of these (rule, value) keys is locked, or None."""
    keys = [_throttle_key(rule, value) for rule, value in checks]
    latest = session.exec(
        select(func.max(PortalThrottle.locked_until)).where(
            col(PortalThrottle.key).in_(keys), col(PortalThrottle.locked_until) > now
        )
    ).one()
    return _aware(latest) if latest is not None else None


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
    *, session: Session, checks: Sequence[tuple[ThrottleRule, str]], now: datetime
) -> datetime | None:
    """Count one event (a failure, a mail) against each (rule, value); returns until when one
    of them is now locked, if this event reached a limit."""
    locked: datetime | None = None
    # One lock order for every transaction: no deadlock between two requests on PostgreSQL.
    for key, rule in sorted((_throttle_key(rule, value), rule) for rule, value in checks):
        row = _locked_row(session, key, now)
        if _aware(row.window_started_at) + rule.window <= now:
            row.count, row.window_started_at = 0, now
        row.count += 1
        if row.count >= rule.limit:
            row.locked_until = now + rule.lockout
            row.count, row.window_started_at = 0, now
            locked = max(locked or row.locked_until, row.locked_until)
        session.add(row)
    session.flush()
    return locked


def clear_throttle(*, session: Session, rule: ThrottleRule, value: str) -> None:
    """Forget the count of one key (after a success); a running lockout ends too."""
    session.execute(delete(THROTTLE).where(THROTTLE.c.key == _throttle_key(rule, value)))


def purge_stale(*, session: Session, now: datetime | None = None) -> int:
    """Delete the throttle rows whose window and lockout are over, and the links that expired
    more than 30 days ago; returns how many rows went."""
    now = _aware(now)
    oldest_window = max(
        rule.window
        for rule in (
            LOGIN_PER_IDENTIFIER,
            LOGIN_PER_CLIENT,
            BIRTH_DATE_PER_ACCOUNT,
            LINKS_PER_CLIENT,
            MAILS_PER_CLIENT,
            MAILS_PER_TARGET,
        )
    )
    throttles = session.execute(
        delete(THROTTLE).where(
            THROTTLE.c.window_started_at < now - oldest_window,
            or_(THROTTLE.c.locked_until.is_(None), THROTTLE.c.locked_until < now),
        )
    )
    tokens = session.execute(delete(TOKEN).where(TOKEN.c.expires_at < now - timedelta(days=30)))
    return int(getattr(throttles, "rowcount", 0) or 0) + int(getattr(tokens, "rowcount", 0) or 0)


# --- Small helpers --------------------------------------------------------------------------


def _aware(moment: datetime | None) -> datetime:
    if moment is None:
        return utcnow()
    if moment.tzinfo is None:
        # SQLite hands back what it was given; every datetime written here is UTC.
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def password_fingerprint(password_hash: str | None) -> str:
    """A short digest of the stored hash, kept in the session cookie: once the password
    changes (chosen, reset, changed), every session opened with the old one ends."""
    return hashlib.sha256(f"session:{password_hash or ''}".encode()).hexdigest()[:32]


def hash_link_token(token: str) -> str:
    """The stored form of an e-mailed link's secret (SHA-256 suffices for 256 random bits)."""
    return hashlib.sha256(token.encode("ascii", errors="replace")).hexdigest()


def normalized_email(address: str) -> str | None:
    """`address` validated offline and normalised, or None when it is not an address."""
    if not address.strip() or len(address) > MAX_FIELD_LENGTH:
        return None
    try:
        return validate_email(address.strip(), check_deliverability=False).normalized
    except EmailNotValidError:
        return None


def _same_address(a: str | None, b: str | None) -> bool:
    return a is not None and b is not None and a.strip().lower() == b.strip().lower()


_DATE_FORMATS = (
    re.compile(r"^(?P<y>\d{4})-(?P<m>\d{1,2})-(?P<d>\d{1,2})$"),
    re.compile(r"^(?P<d>\d{1,2})[/.\- ](?P<m>\d{1,2})[/.\- ](?P<y>\d{4})$"),
    # The field opens a phone's number pad, which has no « / » on an iPhone: « 14032018 ».
    re.compile(r"^(?P<d>\d{2})(?P<m>\d{2})(?P<y>\d{4})$"),
)


def parse_birth_date(text: str) -> date | None:
    """A date typed or picked in the form: « 2018-03-14 » (a date field), « 14/03/2018 » or
    « 14032018 »."""
    cleaned = text.strip()
    for pattern in _DATE_FORMATS:
        match = pattern.fullmatch(cleaned)
        if match:
            try:
                return date(int(match["y"]), int(match["m"]), int(match["d"]))
            except ValueError:
                return None
    return None


# --- What the portal shows ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PortalAccount:
    """The account a portal session holds, as plain values."""

    account_id: int
    identifier: str
    state: AccountState
    fingerprint: str
    provisional_expired: bool = False


class Problem(enum.StrEnum):
    """What is wrong with one field of a form; the portal words it next to the field."""

    REQUIRED = "required"
    PASSWORD_WEAK = "password_weak"
    PASSWORD_MISMATCH = "password_mismatch"
    PASSWORD_HAS_IDENTIFIER = "password_has_identifier"
    PASSWORD_IS_PROVISIONAL = "password_is_provisional"
    PASSWORD_WRONG = "password_wrong"
    PASSWORD_UNCHANGED = "password_unchanged"
    EMAIL_INVALID = "email_invalid"
    EMAIL_UNCHANGED = "email_unchanged"
    BIRTH_DATE_INVALID = "birth_date_invalid"
    BIRTH_DATE_WRONG = "birth_date_wrong"
    BIRTH_DATE_UNKNOWN = "birth_date_unknown"


@dataclass(frozen=True, slots=True)
class FormResult:
    """The outcome of a form: problems per field, a lockout, a refusal, or success."""

    problems: dict[str, Problem] = field(default_factory=dict)
    # Too many failures: nothing was checked; try again after this time.
    locked_until: datetime | None = None
    # The session no longer opens the account (password changed, deactivated…) or the account
    # is not in the state the form is for; UNKNOWN_ACCOUNT for a session that is no more.
    refusal: RefusalReason | None = None
    # On success: the account, with the fingerprint of its new password if it changed.
    account: PortalAccount | None = None

    @property
    def ok(self) -> bool:
        return self.account is not None and not self.problems and self.refusal is None


def _portal_account(account: Account, now: datetime) -> PortalAccount:
    assert account.id is not None
    expires = account.provisional_expires_at
    return PortalAccount(
        account_id=account.id,
        identifier=account.identifier,
        state=AccountState(account.state),
        fingerprint=password_fingerprint(account.password_hash),
        provisional_expired=(
            account.password_hash is not None and expires is not None and now > _aware(expires)
        ),
    )


def _session_account(
    session: Session, account_id: int, fingerprint: str, *, lock: bool = False
) -> Account | None:
    """The account a portal session opens, or None if it no longer does."""
    statement = select(Account).where(col(Account.id) == account_id)
    if lock:
        lock_for_writing(session)
        statement = statement.with_for_update().execution_options(populate_existing=True)
    account = session.exec(statement).first()
    if account is None or account.deactivated_at is not None:
        return None
    if not secrets.compare_digest(password_fingerprint(account.password_hash), fingerprint):
        return None
    return account


def current_account(
    *, session: Session, account_id: int, fingerprint: str, now: datetime | None = None
) -> PortalAccount | None:
    """The account of a portal session, or None once the session no longer opens it (its
    password changed since, or it was deactivated)."""
    account = _session_account(session, account_id, fingerprint)
    return _portal_account(account, _aware(now)) if account is not None else None


def _guardian(session: Session, account: Account) -> Guardian:
    guardian = session.get(Guardian, account.guardian_id)
    assert guardian is not None
    return guardian


def _school_name(session: Session, guardian: Guardian) -> str:
    school = session.get(School, guardian.school_id)
    return school.name if school is not None else ""


def _addressee(guardian: Guardian) -> str:
    return f"{guardian.first_name} {(guardian.usage_name or guardian.last_name).upper()}"


def _audit(
    session: Session,
    action: str,
    *,
    account: Account | None = None,
    guardian: Guardian | None = None,
    **details: Any,
) -> None:
    school_id = guardian.school_id if guardian is not None else None
    if account is not None and guardian is None:
        found = session.get(Guardian, account.guardian_id)
        school_id = found.school_id if found is not None else None
    record_event(
        session,
        actor=PORTAL_ACTOR,
        action=action,
        school_id=school_id,
        account_id=account.id if account is not None else None,
        **details,
    )


# --- Links ----------------------------------------------------------------------------------


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


def _issue_link(
    session: Session,
    account: Account,
    purpose: PortalTokenPurpose,
    *,
    email: str | None,
    now: datetime,
) -> tuple[str, datetime]:
    """A new link secret for `account` (in clear, for the e-mail only) and its expiry; older
    unused links of the same purpose stop working."""
    session.execute(
        update(TOKEN)
        .where(
            TOKEN.c.account_id == account.id,
            TOKEN.c.purpose == purpose,
            TOKEN.c.used_at.is_(None),
            TOKEN.c.revoked_at.is_(None),
        )
        .values(revoked_at=now)
    )
    token = secrets.token_urlsafe(_TOKEN_BYTES)
    expires_at = now + LINK_VALIDITY[purpose]
    assert account.id is not None
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


def _mail_link(
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
    outbox (the caller's transaction): the secret exists in clear only inside that e-mail."""
    token, expires_at = _issue_link(session, account, purpose, email=to, now=now)
    message = compose(
        to=to,
        addressee=_addressee(guardian),
        identifier=account.identifier,
        school_name=_school_name(session, guardian),
        link=f"{portal_url.rstrip('/')}{path}{token}",
        expires_at=expires_at,
        mail_from=mail_from,
        language=language,
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
    if now >= _aware(row.expires_at):
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


def _check_link(
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
    elif (
        status == LinkStatus.VALID
        and row is not None
        and account is not None
        and row.purpose == PortalTokenPurpose.ACTIVATION
        and not _same_address(row.email, _guardian(session, account).email)
    ):
        # The address was corrected since this link was sent: it confirms nothing now.
        status = LinkStatus.REVOKED
    if status != LinkStatus.VALID:
        count_event(session=session, checks=[(LINKS_PER_CLIENT, client)], now=now)
        _audit(
            session,
            "portal.link_refused",
            account=account,
            reason=status.value,
            purpose=row.purpose.value if row is not None else None,
        )
    return status, row, account


def inspect_link(
    *,
    session: Session,
    token: str,
    purposes: Sequence[PortalTokenPurpose],
    client: str,
    now: datetime | None = None,
) -> LinkView:
    """What a link opened in a browser is for, without using it (mail scanners open links:
    only the button on the page it opens uses it)."""
    now = _aware(now)
    status, row, account = _check_link(
        session, token, purposes=purposes, client=client, now=now, lock=False
    )
    if status == LinkStatus.RATE_LIMITED:
        return LinkView(status=status, retry_at=_retry(session, LINKS_PER_CLIENT, client, now))
    return LinkView(
        status=status,
        purpose=row.purpose if row is not None else None,
        identifier=account.identifier if account is not None else None,
        email=row.email if row is not None and status == LinkStatus.VALID else None,
        state=AccountState(account.state) if account is not None else None,
    )


def _retry(session: Session, rule: ThrottleRule, value: str, now: datetime) -> datetime | None:
    return locked_until(session=session, checks=[(rule, value)], now=now)


def follow_confirmation_link(
    *, session: Session, token: str, client: str, now: datetime | None = None
) -> LinkView:
    """Use an activation or address-change link: the account becomes `activated`, or the new
    address replaces the old one. Single use."""
    now = _aware(now)
    purposes = (PortalTokenPurpose.ACTIVATION, PortalTokenPurpose.EMAIL_CHANGE)
    status, row, account = _check_link(
        session, token, purposes=purposes, client=client, now=now, lock=True
    )
    if status == LinkStatus.RATE_LIMITED:
        return LinkView(status=status, retry_at=_retry(session, LINKS_PER_CLIENT, client, now))
    if status != LinkStatus.VALID or row is None or account is None:
        return LinkView(
            status=status,
            purpose=row.purpose if row is not None else None,
            identifier=account.identifier if account is not None else None,
            state=AccountState(account.state) if account is not None else None,
        )
    assert account.id is not None
    guardian = _guardian(session, account)
    row.used_at = now
    session.add(row)
    if row.purpose == PortalTokenPurpose.ACTIVATION:
        try:
            account = confirm_activation(
                session=session, account_id=account.id, actor=PORTAL_ACTOR, now=now
            )
        except TransitionRefused as refused:
            # Activated already (through an older link?) or reset to another state since.
            _audit(session, "portal.link_refused", account=account, reason=refused.reason.value)
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
        _revoke_links(session, row.account_id, PortalTokenPurpose.PASSWORD_RESET, now)
        _audit(
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


# --- Logging in -----------------------------------------------------------------------------


class LoginStatus(enum.StrEnum):
    """What a login attempt found."""

    OK = "ok"
    WRONG_CREDENTIALS = "wrong_credentials"  # unknown identifier or wrong password: one answer
    LOCKED = "locked"  # too many failures for this identifier or from this client
    PROVISIONAL_EXPIRED = "provisional_expired"  # right password, 3 months are over
    DEACTIVATED = "deactivated"  # right password, no child in the school any more
    NOT_READY = "not_ready"  # right password, credentials not distributed yet


@dataclass(frozen=True, slots=True)
class LoginResult:
    status: LoginStatus
    account: PortalAccount | None = None
    locked_until: datetime | None = None


_REFUSAL_STATUS = {
    RefusalReason.PROVISIONAL_PASSWORD_EXPIRED: LoginStatus.PROVISIONAL_EXPIRED,
    RefusalReason.DEACTIVATED: LoginStatus.DEACTIVATED,
    RefusalReason.NOT_YET_NOTIFIED: LoginStatus.NOT_READY,
}


def _account_by_identifier(session: Session, identifier: str) -> Account | None:
    return session.exec(
        select(Account).where(col(Account.identifier) == identifier.strip().lower())
    ).first()


def log_in(
    *,
    session: Session,
    identifier: str,
    password: str,
    client: str,
    now: datetime | None = None,
) -> LoginResult:
    """Check an identifier and a password (provisional or chosen) typed on the portal.

    Refused without checking anything while the identifier or the client is locked; a
    failure counts against both and is audited. Says which refusal applies (expired,
    deactivated…) only once the password is proven right.
    """
    now = _aware(now)
    wanted = identifier.strip().lower()[:MAX_FIELD_LENGTH]
    checks = [(LOGIN_PER_IDENTIFIER, wanted), (LOGIN_PER_CLIENT, client)]
    retry_at = locked_until(session=session, checks=checks, now=now)
    if retry_at is not None:
        _audit(
            session,
            "portal.login_refused",
            account=_account_by_identifier(session, wanted),
            reason="locked",
        )
        return LoginResult(LoginStatus.LOCKED, locked_until=retry_at)
    account: Account | None = None
    refusal: RefusalReason | None = None
    if wanted and 0 < len(password) <= MAX_PASSWORD_LENGTH:
        try:
            account = verify_login(session=session, identifier=wanted, password=password, now=now)
        except TransitionRefused as refused:
            refusal = refused.reason
    if refusal is not None:
        _audit(
            session,
            "portal.login_refused",
            account=_account_by_identifier(session, wanted),
            reason=refusal.value,
        )
        return LoginResult(_REFUSAL_STATUS.get(refusal, LoginStatus.NOT_READY))
    if account is None:
        known = _account_by_identifier(session, wanted) if wanted else None
        locked = count_event(session=session, checks=checks, now=now)
        _audit(
            session,
            "portal.login_failed",
            account=known,
            reason="wrong_password" if known is not None else "unknown_identifier",
            locked=locked is not None,
        )
        if locked is not None:
            return LoginResult(LoginStatus.LOCKED, locked_until=locked)
        return LoginResult(LoginStatus.WRONG_CREDENTIALS)
    clear_throttle(session=session, rule=LOGIN_PER_IDENTIFIER, value=wanted)
    return LoginResult(LoginStatus.OK, account=_portal_account(account, now))


# --- Activating -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ActivationForm:
    """What the activation form is prefilled with."""

    identifier: str
    # The address on file (from ONDE), to confirm or correct.
    email: str | None
    # The children's first names: « the birth date of one of your children (Léa, Hugo) ».
    children: tuple[str, ...]


def _children_rows(session: Session, guardian_id: int) -> list[tuple[Pupil, str | None]]:
    return list(
        session.exec(
            select(Pupil, SchoolClass.label)
            .join(PupilGuardian, col(PupilGuardian.pupil_id) == col(Pupil.id))
            .outerjoin(SchoolClass, col(SchoolClass.id) == col(Pupil.class_id))
            .where(col(PupilGuardian.guardian_id) == guardian_id, col(Pupil.archived_at).is_(None))
            .order_by(col(SchoolClass.label), col(Pupil.first_name), col(Pupil.id))
        ).all()
    )


def activation_form(*, session: Session, account_id: int) -> ActivationForm:
    """The prefilled values of the activation form of this account."""
    account = session.get(Account, account_id)
    assert account is not None
    guardian = _guardian(session, account)
    assert guardian.id is not None
    return ActivationForm(
        identifier=account.identifier,
        email=guardian.email,
        children=tuple(pupil.first_name for pupil, _ in _children_rows(session, guardian.id)),
    )


def _identifier_stem(identifier: str) -> str:
    # « celine.dupont114 » → « celine.dupont »: the number alone does not make it personal.
    return re.sub(r"\d+$", "", identifier.lower())


def new_password_problems(
    password: str,
    confirmation: str,
    *,
    identifier: str,
    provisional_hash: str | None = None,
    field_name: str = "new_password",
    confirmation_name: str = "confirm_password",
) -> dict[str, Problem]:
    """What is wrong with a new password and its confirmation (CNIL 2022 and SPEC §6): at
    least 12 characters of mixed kinds, never the identifier, never the provisional password."""
    problems: dict[str, Problem] = {}
    stem = _identifier_stem(identifier)
    if not password:
        problems[field_name] = Problem.REQUIRED
    elif identifier and (
        identifier.lower() in password.lower() or (len(stem) >= 4 and stem in password.lower())
    ):
        problems[field_name] = Problem.PASSWORD_HAS_IDENTIFIER
    elif (
        provisional_hash is not None
        and len(canonical_provisional_input(password)) == PROVISIONAL_LENGTH
        and verify_password(provisional_hash, canonical_provisional_input(password))
    ):
        problems[field_name] = Problem.PASSWORD_IS_PROVISIONAL
    elif not chosen_password_is_strong(password):
        problems[field_name] = Problem.PASSWORD_WEAK
    if field_name not in problems:
        if not confirmation:
            problems[confirmation_name] = Problem.REQUIRED
        elif not secrets.compare_digest(password.encode(), confirmation.encode()):
            problems[confirmation_name] = Problem.PASSWORD_MISMATCH
    return problems


def _birth_dates(session: Session, guardian_id: int) -> set[date]:
    return {
        pupil.birth_date
        for pupil, _ in _children_rows(session, guardian_id)
        if pupil.birth_date is not None
    }


def _state_refusal(account: Account, wanted: AccountState) -> RefusalReason | None:
    if account.state == wanted:
        return None
    if account.state == AccountState.ACTIVATED:
        return RefusalReason.ALREADY_ACTIVATED
    if account.state == AccountState.ACTIVATING:
        return RefusalReason.NOT_ACTIVATED
    return RefusalReason.NOT_ACTIVATING


def _send_activation_link(
    session: Session,
    account: Account,
    guardian: Guardian,
    *,
    portal_url: str,
    mail_from: str,
    language: str,
    now: datetime,
) -> None:
    assert guardian.email is not None
    _mail_link(
        session,
        account,
        guardian,
        purpose=PortalTokenPurpose.ACTIVATION,
        to=guardian.email,
        path=CONFIRM_PATH,
        compose=compose_activation_link,
        kind="activation_confirmation",
        portal_url=portal_url,
        mail_from=mail_from,
        language=language,
        now=now,
    )
    count_event(session=session, checks=[(MAILS_PER_TARGET, f"account:{account.id}")], now=now)
    _audit(session, "portal.activation_link_sent", account=account, guardian=guardian)


def finish_activation(
    *,
    session: Session,
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
    now = _aware(now)
    account = _session_account(session, account_id, fingerprint, lock=True)
    if account is None:
        return FormResult(refusal=RefusalReason.UNKNOWN_ACCOUNT)
    if (refusal := _state_refusal(account, AccountState.NOTIFIED)) is not None:
        return FormResult(refusal=refusal)
    guardian = _guardian(session, account)
    assert guardian.id is not None
    key = f"account:{account_id}"
    retry_at = locked_until(session=session, checks=[(BIRTH_DATE_PER_ACCOUNT, key)], now=now)
    if retry_at is not None:
        _audit(session, "portal.activation_refused", account=account, reason="locked")
        return FormResult(locked_until=retry_at)
    problems = new_password_problems(
        new_password,
        confirmation,
        identifier=account.identifier,
        provisional_hash=account.password_hash,
    )
    address = normalized_email(email)
    if not email.strip():
        problems["email"] = Problem.REQUIRED
    elif address is None:
        problems["email"] = Problem.EMAIL_INVALID
    born = parse_birth_date(birth_date)
    if not birth_date.strip():
        problems["birth_date"] = Problem.REQUIRED
    elif born is None:
        problems["birth_date"] = Problem.BIRTH_DATE_INVALID
    if problems:
        return FormResult(problems=problems)
    assert address is not None and born is not None
    known = _birth_dates(session, guardian.id)
    if born not in known:
        locked = None
        if known:
            locked = count_event(session=session, checks=[(BIRTH_DATE_PER_ACCOUNT, key)], now=now)
        _audit(
            session,
            "portal.birth_date_refused",
            account=account,
            guardian=guardian,
            reason="wrong" if known else "none_on_file",
            locked=locked is not None,
        )
        problem = Problem.BIRTH_DATE_WRONG if known else Problem.BIRTH_DATE_UNKNOWN
        return FormResult(problems={"birth_date": problem}, locked_until=locked)
    try:
        account = begin_activation(
            session=session,
            account_id=account_id,
            new_password=new_password,
            email=address,
            actor=PORTAL_ACTOR,
            now=now,
        )
    except TransitionRefused as refused:
        if refused.reason == RefusalReason.WEAK_PASSWORD:
            return FormResult(problems={"new_password": Problem.PASSWORD_WEAK})
        if refused.reason == RefusalReason.INVALID_EMAIL:
            return FormResult(problems={"email": Problem.EMAIL_INVALID})
        _audit(session, "portal.activation_refused", account=account, reason=refused.reason.value)
        return FormResult(refusal=refused.reason)
    clear_throttle(session=session, rule=BIRTH_DATE_PER_ACCOUNT, value=key)
    _send_activation_link(
        session,
        account,
        guardian,
        portal_url=portal_url,
        mail_from=mail_from,
        language=language,
        now=now,
    )
    return FormResult(account=_portal_account(account, now))


@dataclass(frozen=True, slots=True)
class AwaitingConfirmation:
    """An `activating` account: where its confirmation link went, and when."""

    identifier: str
    email: str | None
    sent_at: datetime | None
    expires_at: datetime | None


def awaiting_confirmation(*, session: Session, account_id: int) -> AwaitingConfirmation:
    """The address and time of the latest confirmation link of this account."""
    account = session.get(Account, account_id)
    assert account is not None
    guardian = _guardian(session, account)
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
        email=guardian.email,
        sent_at=_aware(latest.created_at) if latest is not None else None,
        expires_at=_aware(latest.expires_at) if latest is not None else None,
    )


class RequestStatus(enum.StrEnum):
    """What a request that sends an e-mail became."""

    ACCEPTED = "accepted"  # sent (or, for the forgotten ones, maybe not: the page says the same)
    RATE_LIMITED = "rate_limited"  # too many from this client or for this account: try later
    REFUSED = "refused"  # the session no longer opens an account in the right state


@dataclass(frozen=True, slots=True)
class RequestResult:
    status: RequestStatus
    retry_at: datetime | None = None
    refusal: RefusalReason | None = None


def resend_activation_link(
    *,
    session: Session,
    account_id: int,
    fingerprint: str,
    client: str,
    portal_url: str,
    mail_from: str,
    language: str = "fr",
    now: datetime | None = None,
) -> RequestResult:
    """Send an `activating` account a new confirmation link (the older ones stop working)."""
    now = _aware(now)
    account = _session_account(session, account_id, fingerprint, lock=True)
    if account is None:
        return RequestResult(RequestStatus.REFUSED, refusal=RefusalReason.UNKNOWN_ACCOUNT)
    if (refusal := _state_refusal(account, AccountState.ACTIVATING)) is not None:
        return RequestResult(RequestStatus.REFUSED, refusal=refusal)
    guardian = _guardian(session, account)
    checks = [(MAILS_PER_CLIENT, client), (MAILS_PER_TARGET, f"account:{account_id}")]
    retry_at = locked_until(session=session, checks=checks, now=now)
    if retry_at is not None:
        _audit(session, "portal.activation_link_refused", account=account, reason="rate_limited")
        return RequestResult(RequestStatus.RATE_LIMITED, retry_at=retry_at)
    if guardian.email is None:  # cleared by hand since: nowhere to send it
        return RequestResult(RequestStatus.REFUSED, refusal=RefusalReason.INVALID_EMAIL)
    count_event(session=session, checks=[(MAILS_PER_CLIENT, client)], now=now)
    _send_activation_link(
        session,
        account,
        guardian,
        portal_url=portal_url,
        mail_from=mail_from,
        language=language,
        now=now,
    )
    return RequestResult(RequestStatus.ACCEPTED)


# --- Mon compte -----------------------------------------------------------------------------


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
    *, session: Session, account_id: int, now: datetime | None = None
) -> AccountOverview:
    """What « mon compte » shows about this account."""
    now = _aware(now)
    account = session.get(Account, account_id)
    assert account is not None
    guardian = _guardian(session, account)
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
        school_name=_school_name(session, guardian),
        email=guardian.email,
        children=tuple(
            ChildView(
                first_name=pupil.first_name,
                last_name=pupil.usage_name or pupil.last_name,
                class_label=label,
            )
            for pupil, label in _children_rows(session, guardian.id)
        ),
        activated_at=_aware(account.activated_at) if account.activated_at else None,
        pending_email=pending,
    )


def _check_current_password(
    session: Session,
    account: Account,
    current_password: str,
    *,
    client: str,
    field_name: str,
    now: datetime,
) -> FormResult | None:
    """None when `current_password` is right; else the refusal (counted like a login)."""
    checks = [(LOGIN_PER_IDENTIFIER, account.identifier), (LOGIN_PER_CLIENT, client)]
    retry_at = locked_until(session=session, checks=checks, now=now)
    if retry_at is not None:
        _audit(session, "portal.password_check_failed", account=account, reason="locked")
        return FormResult(locked_until=retry_at)
    if not current_password:
        return FormResult(problems={field_name: Problem.REQUIRED})
    if len(current_password) <= MAX_PASSWORD_LENGTH and verify_password(
        account.password_hash, current_password
    ):
        return None
    locked = count_event(session=session, checks=checks, now=now)
    _audit(
        session,
        "portal.password_check_failed",
        account=account,
        reason="wrong_password",
        locked=locked is not None,
    )
    return FormResult(problems={field_name: Problem.PASSWORD_WRONG}, locked_until=locked)


def change_own_password(
    *,
    session: Session,
    account_id: int,
    fingerprint: str,
    current_password: str,
    new_password: str,
    confirmation: str,
    client: str,
    now: datetime | None = None,
) -> FormResult:
    """« Mon compte »: the current password, then a new one twice. Other sessions end."""
    now = _aware(now)
    account = _session_account(session, account_id, fingerprint, lock=True)
    if account is None:
        return FormResult(refusal=RefusalReason.UNKNOWN_ACCOUNT)
    if (refusal := _state_refusal(account, AccountState.ACTIVATED)) is not None:
        return FormResult(refusal=refusal)
    wrong = _check_current_password(
        session, account, current_password, client=client, field_name="current_password", now=now
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
    _revoke_links(session, account_id, PortalTokenPurpose.PASSWORD_RESET, now)
    return FormResult(account=_portal_account(account, now))


def _revoke_links(
    session: Session, account_id: int, purpose: PortalTokenPurpose, now: datetime
) -> None:
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


def request_email_change(
    *,
    session: Session,
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
    now = _aware(now)
    account = _session_account(session, account_id, fingerprint, lock=True)
    if account is None:
        return FormResult(refusal=RefusalReason.UNKNOWN_ACCOUNT)
    if (refusal := _state_refusal(account, AccountState.ACTIVATED)) is not None:
        return FormResult(refusal=refusal)
    wrong = _check_current_password(
        session, account, current_password, client=client, field_name="email_password", now=now
    )
    if wrong is not None:
        return wrong
    guardian = _guardian(session, account)
    address = normalized_email(new_email)
    if not new_email.strip():
        return FormResult(problems={"new_email": Problem.REQUIRED})
    if address is None:
        return FormResult(problems={"new_email": Problem.EMAIL_INVALID})
    if _same_address(address, guardian.email):
        return FormResult(problems={"new_email": Problem.EMAIL_UNCHANGED})
    checks = [(MAILS_PER_CLIENT, client), (MAILS_PER_TARGET, f"account:{account_id}")]
    retry_at = locked_until(session=session, checks=checks, now=now)
    if retry_at is not None:
        _audit(session, "portal.email_change_refused", account=account, reason="rate_limited")
        return FormResult(locked_until=retry_at)
    count_event(session=session, checks=checks, now=now)
    _mail_link(
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
    _audit(session, "portal.email_change_requested", account=account, guardian=guardian)
    return FormResult(account=_portal_account(account, now))


# --- Forgotten password and identifier ------------------------------------------------------


def request_password_reset(
    *,
    session: Session,
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
    now = _aware(now)
    retry_at = locked_until(session=session, checks=[(MAILS_PER_CLIENT, client)], now=now)
    if retry_at is not None:
        _audit(session, "portal.password_reset_refused", reason="rate_limited")
        return RequestResult(RequestStatus.RATE_LIMITED, retry_at=retry_at)
    count_event(session=session, checks=[(MAILS_PER_CLIENT, client)], now=now)
    wanted = identifier.strip().lower()[:MAX_FIELD_LENGTH]
    account = _account_by_identifier(session, wanted) if wanted else None
    guardian = _guardian(session, account) if account is not None else None
    address = normalized_email(email)
    reason: str | None = None
    if account is None or guardian is None:
        reason = "unknown_identifier"
    elif not _same_address(address, guardian.email):
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
        _audit(session, "portal.password_reset_refused", account=account, reason=reason)
        return RequestResult(RequestStatus.ACCEPTED)
    assert account is not None and guardian is not None and guardian.email is not None
    count_event(session=session, checks=[(MAILS_PER_TARGET, f"account:{account.id}")], now=now)
    _mail_link(
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
    _audit(session, "portal.password_reset_sent", account=account, guardian=guardian)
    return RequestResult(RequestStatus.ACCEPTED)


def reset_password_with_link(
    *,
    session: Session,
    token: str,
    new_password: str,
    confirmation: str,
    client: str,
    now: datetime | None = None,
) -> tuple[LinkView, FormResult]:
    """Choose a new password through a « mot de passe oublié » link. The link is used only
    when the password is accepted; every session of the account ends."""
    now = _aware(now)
    status, row, account = _check_link(
        session,
        token,
        purposes=(PortalTokenPurpose.PASSWORD_RESET,),
        client=client,
        now=now,
        lock=True,
    )
    if status == LinkStatus.RATE_LIMITED:
        view = LinkView(status=status, retry_at=_retry(session, LINKS_PER_CLIENT, client, now))
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
        _audit(session, "portal.link_refused", account=account, reason=refused.reason.value)
        return LinkView(status=LinkStatus.REVOKED, purpose=row.purpose), FormResult(
            refusal=refused.reason
        )
    assert account.id is not None
    row.used_at = now
    session.add(row)
    _revoke_links(session, account.id, PortalTokenPurpose.PASSWORD_RESET, now)
    # The lockout of the identifier ends: its owner just proved who they are.
    clear_throttle(session=session, rule=LOGIN_PER_IDENTIFIER, value=account.identifier)
    session.flush()
    return view, FormResult(account=_portal_account(account, now))


def send_identifier_reminder(
    *,
    session: Session,
    email: str,
    client: str,
    portal_url: str,
    mail_from: str,
    language: str = "fr",
    now: datetime | None = None,
) -> RequestResult:
    """« Identifiant oublié »: the identifiers of the accounts whose address on file is
    `email` are e-mailed there (one message). The same answer whether or not there are any."""
    now = _aware(now)
    retry_at = locked_until(session=session, checks=[(MAILS_PER_CLIENT, client)], now=now)
    if retry_at is not None:
        _audit(session, "portal.identifier_reminder_refused", reason="rate_limited")
        return RequestResult(RequestStatus.RATE_LIMITED, retry_at=retry_at)
    count_event(session=session, checks=[(MAILS_PER_CLIENT, client)], now=now)
    address = normalized_email(email)
    found: list[tuple[Account, Guardian]] = []
    if address is not None:
        found = [
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
    target = f"address:{address}" if address is not None else ""
    if not found or locked_until(session=session, checks=[(MAILS_PER_TARGET, target)], now=now):
        _audit(
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
        addressee=_addressee(first_guardian),
        lines=[
            IdentifierLine(
                identifier=account.identifier,
                addressee=_addressee(guardian),
                school_name=_school_name(session, guardian),
            )
            for account, guardian in found
        ],
        login_url=f"{portal_url.rstrip('/')}{LOGIN_PATH}",
        forgot_password_url=f"{portal_url.rstrip('/')}{FORGOT_PASSWORD_PATH}",
        mail_from=mail_from,
        language=language,
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
        _audit(session, "portal.identifier_reminder_sent", account=account, guardian=guardian)
    return RequestResult(RequestStatus.ACCEPTED)


# --- Operations -----------------------------------------------------------------------------


def database_is_reachable(*, session: Session) -> bool:
    """Whether a trivial query answers (the health endpoint)."""
    return session.execute(text("SELECT 1")).scalar_one() == 1


def record_csrf_refusal(*, session: Session, page: str, account_id: int | None = None) -> None:
    """Audit a form posted without its CSRF token (`page`: the first segment of its path)."""
    account = session.get(Account, account_id) if account_id is not None else None
    _audit(session, "portal.csrf_refused", account=account, page=page)
