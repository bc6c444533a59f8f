"""Activating with a verified mobile number: when the number a family shared with the bot is the
« Téléphone portable » of one guardian, the bot gives a single-use link, valid 30 minutes, to an
activation form without the provisional password (the shared number proved who they are). The
form is the usual one: a new password twice, an e-mail address, one child's birth date; the
account becomes `activating` and the confirmation link is e-mailed as after the letter.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, col, select

from bot.services.portal.activation import (
    ActivationFields,
    ActivationForm,
    activation_form,
    complete_activation,
)
from bot.services.portal.common import audit, aware
from bot.services.portal.forms import FormResult
from bot.services.portal.links import (
    LINK_VALIDITY,
    LinkStatus,
    LinkView,
    check_link,
    issue_link,
    revoke_links,
)
from bot.services.portal.recovery import forgotten_password_url
from bot.services.portal.throttling import LINKS_PER_CLIENT, retry_time
from models import Account, AccountState, PortalToken, PortalTokenPurpose

PHONE_ACTIVATION_VALIDITY = LINK_VALIDITY[PortalTokenPurpose.PHONE_ACTIVATION]
# The portal's path of the phone activation form.
PHONE_ACTIVATION_PATH = "/telephone/"
_PURPOSES = (PortalTokenPurpose.PHONE_ACTIVATION,)


@dataclass(frozen=True, slots=True)
class PhoneActivationLink:
    """What the bot gives a family whose shared mobile number matched one guardian."""

    # None when the account is activated or deactivated (or the guardian has no account).
    url: str | None
    expires_at: datetime | None
    # Then point the family to `forgotten_password_url`.
    already_activated: bool
    forgotten_password_url: str


def issue_phone_activation_link(
    session: Session, *, guardian_id: int, portal_url: str, now: datetime | None = None
) -> PhoneActivationLink:
    """A new phone activation link for the guardian's account (older ones stop working), or
    none when the account is activated (« mot de passe oublié » then) or deactivated."""
    now = aware(now)
    base = portal_url.rstrip("/")
    forgotten = forgotten_password_url(portal_url)
    account = session.exec(select(Account).where(col(Account.guardian_id) == guardian_id)).first()
    if account is None or account.deactivated_at is not None:
        reason = "no_account" if account is None else "deactivated"
        audit(session, "portal.phone_link_refused", account=account, reason=reason)
        return PhoneActivationLink(None, None, False, forgotten)
    if account.state == AccountState.ACTIVATED:
        audit(session, "portal.phone_link_refused", account=account, reason="already_activated")
        return PhoneActivationLink(None, None, True, forgotten)
    token, expires_at = issue_link(
        session, account, PortalTokenPurpose.PHONE_ACTIVATION, email=None, now=now
    )
    audit(
        session,
        "portal.phone_link_issued",
        account=account,
        state=AccountState(account.state).value,
    )
    return PhoneActivationLink(
        url=f"{base}{PHONE_ACTIVATION_PATH}{token}",
        expires_at=expires_at,
        already_activated=False,
        forgotten_password_url=forgotten,
    )


@dataclass(frozen=True, slots=True)
class PhoneActivationPage:
    """A phone activation link opened or its form sent: the link's status, the form's prefill
    while the link is valid, and, after sending the form, what it became."""

    view: LinkView
    form: ActivationForm | None = None
    result: FormResult | None = None


def _checked(
    session: Session, token: str, *, client: str, now: datetime, lock: bool
) -> tuple[LinkView, PortalToken | None, Account | None]:
    status, row, account = check_link(
        session, token, purposes=_PURPOSES, client=client, now=now, lock=lock
    )
    if status == LinkStatus.RATE_LIMITED:
        view = LinkView(status=status, retry_at=retry_time(session, LINKS_PER_CLIENT, client, now))
        return view, None, None
    state = AccountState(account.state) if account is not None else None
    if status == LinkStatus.VALID and state == AccountState.ACTIVATED:
        # Activated since the link was given (with the letter): nothing left to do with it.
        status = LinkStatus.USED
    view = LinkView(
        status=status,
        purpose=PortalTokenPurpose.PHONE_ACTIVATION,
        identifier=account.identifier if account is not None else None,
        state=state,
    )
    if status != LinkStatus.VALID:
        return view, None, None
    return view, row, account


def phone_activation_page(
    session: Session, *, token: str, client: str, now: datetime | None = None
) -> PhoneActivationPage:
    """What opening a phone activation link shows, without using it (Telegram fetches links
    for their previews: only sending the form uses it)."""
    now = aware(now)
    view, _row, account = _checked(session, token, client=client, now=now, lock=False)
    if account is None or account.id is None:
        return PhoneActivationPage(view=view)
    return PhoneActivationPage(view=view, form=activation_form(session, account_id=account.id))


def finish_phone_activation(
    session: Session,
    *,
    token: str,
    client: str,
    new_password: str,
    confirmation: str,
    email: str,
    birth_date: str,
    portal_url: str,
    mail_from: str,
    language: str = "fr",
    now: datetime | None = None,
) -> PhoneActivationPage:
    """The activation form of a phone link: the same checks as after the letter, then the
    account is `activating`, the confirmation link is in the outbox and the phone link is
    used. While something is wrong the link keeps working (until it expires)."""
    now = aware(now)
    view, row, account = _checked(session, token, client=client, now=now, lock=True)
    if row is None or account is None or account.id is None:
        return PhoneActivationPage(view=view)
    result = complete_activation(
        session,
        account,
        fields=ActivationFields(new_password, confirmation, email, birth_date),
        verified_by_phone=True,
        portal_url=portal_url,
        mail_from=mail_from,
        language=language,
        now=now,
    )
    if result.ok:
        row.used_at = now
        session.add(row)
        session.flush()
        revoke_links(session, account.id, PortalTokenPurpose.PHONE_ACTIVATION, now)
        audit(session, "portal.phone_link_used", account=account)
        return PhoneActivationPage(view=view, result=result)
    return PhoneActivationPage(
        view=view, form=activation_form(session, account_id=account.id), result=result
    )
