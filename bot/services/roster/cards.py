"""One guardian as a director acts on them (the guardian card of /responsables and of the help
desk): who they are, their light, whether they have an address, their children; and correcting
the address on file.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session

from bot.i18n import _
from bot.services.accounts import normalise_email
from bot.services.audit import record_event
from bot.services.errors import ServiceError
from bot.services.portal import (
    RequestResult,
    RequestStatus,
    send_confirmation_link_again,
)
from bot.services.roster.guardians import ChildLine
from bot.services.roster.states import STATE_LIGHTS
from models import Account, AccountState, Guardian, utcnow
from models.queries import children_of

# The address stays ONDE's for these states: a re-import brings ONDE's back (roster.onde
# keeps the family's own only once they typed it on the portal, from `activating` on).
_ONDE_EMAIL_STATES = frozenset({AccountState.NOT_NOTIFIED, AccountState.NOTIFIED})
_MAX_TYPED = 320


class GuardianNotFoundError(ServiceError):
    """No such guardian in this school (never says whether the account exists elsewhere)."""


class EmailCorrectionError(ServiceError):
    """The address cannot be corrected (invalid, or the account is not the school's to change);
    the message says why and what to do."""


@dataclass(frozen=True)
class GuardianCard:
    """One guardian as their card shows them (the address masked: « l•••@example.fr »)."""

    account_id: int
    guardian_id: int
    civility: str | None
    first_name: str
    last_name: str
    identifier: str
    state: AccountState
    masked_email: str | None
    deactivated: bool
    children: tuple[ChildLine, ...]
    # The family's language when the school or the family set one (None: French only).
    language: str | None = None

    @property
    def has_email(self) -> bool:
        return self.masked_email is not None

    @property
    def light(self) -> str:
        return STATE_LIGHTS[self.state]

    @property
    def name(self) -> str:
        """« Mme Céline DUPONT »."""
        parts = (self.civility, self.first_name, self.last_name.upper())
        return " ".join(part for part in parts if part)


def mask_email(address: str) -> str:
    """« l•••@example.fr »: enough for a director to recognise an address, not to copy it."""
    local, at, domain = address.rpartition("@")
    if not at:
        return "•••"
    return f"{local[:1]}•••@{domain}"


def _school_account(
    session: Session, school_id: int, account_id: int, *, lock: bool = False
) -> tuple[Account, Guardian]:
    account = session.get(Account, account_id, with_for_update=lock)
    guardian = session.get(Guardian, account.guardian_id) if account is not None else None
    if account is None or guardian is None or guardian.school_id != school_id:
        raise GuardianNotFoundError(
            _("This guardian is not in your school's list (or no longer): open /responsables.")
        )
    return account, guardian


def guardian_card(session: Session, *, school_id: int, account_id: int) -> GuardianCard:
    """The card of the guardian of this account, if they belong to the school (else
    `GuardianNotFoundError`)."""
    account, guardian = _school_account(session, school_id, account_id)
    assert account.id is not None and guardian.id is not None
    children = children_of(session, [guardian.id]).get(guardian.id, [])
    return GuardianCard(
        account_id=account.id,
        guardian_id=guardian.id,
        civility=guardian.civility,
        first_name=guardian.first_name,
        last_name=guardian.usage_name or guardian.last_name,
        identifier=account.identifier,
        state=AccountState(account.state),
        masked_email=mask_email(guardian.email) if guardian.email else None,
        deactivated=account.deactivated_at is not None,
        children=tuple(
            ChildLine(child.first_name, child.last_name, child.class_label) for child in children
        ),
        language=guardian.preferred_language,
    )


def _invalid_address(typed: str) -> EmailCorrectionError:
    """Why `typed` is not an address, in words a director can act on."""
    text = typed.strip()
    local, at, domain = text.rpartition("@")
    if not text:
        reason = _("Type an e-mail address, for example prenom.nom@example.fr.")
    elif len(text) > _MAX_TYPED:
        reason = _("This is too long for an e-mail address: type only the address.")
    elif not at or not local:
        reason = _(
            "An e-mail address has a name, « @ » and a domain, for example "
            "prenom.nom@example.fr: the « @ » or what precedes it is missing."
        )
    elif any(character.isspace() for character in text):
        reason = _("An e-mail address has no spaces: check what you typed.")
    elif "." not in domain or normalise_email(f"a@{domain}") is None:
        reason = _(
            "« {domain} » is not a valid domain after the « @ »: check its spelling (for "
            "example orange.fr or gmail.com)."
        ).format(domain=domain[:80])
    else:
        reason = _(
            "This is not a valid e-mail address: check the part before the « @ » (no accents, "
            "no commas, no two dots in a row)."
        )
    return EmailCorrectionError(reason)


@dataclass(frozen=True)
class EmailCorrection:
    """What correcting an address did."""

    account_id: int
    identifier: str
    state: AccountState
    masked_email: str
    changed: bool  # False: it was already the address on file
    # For an `activating` account: the confirmation link sent to the corrected address (or why
    # not); None for the other states.
    link: RequestResult | None
    # ONDE still holds the old address and a re-import would bring it back: correct it there.
    correct_in_onde: bool

    @property
    def link_sent(self) -> bool:
        return self.link is not None and self.link.status is RequestStatus.ACCEPTED


def correct_guardian_email(
    session: Session,
    *,
    school_id: int,
    account_id: int,
    email: str,
    actor: str,
    portal_url: str,
    mail_from: str,
    language: str = "fr",
    now: datetime | None = None,
) -> EmailCorrection:
    """Correct the e-mail address on file of a guardian of the school, audited without the
    address; an `activating` account gets its confirmation link again at the new address.
    Raises `EmailCorrectionError` (invalid address; activated or deactivated account, whose
    address is the family's) or `GuardianNotFoundError`."""
    now = now or utcnow()
    account, guardian = _school_account(session, school_id, account_id, lock=True)
    assert account.id is not None
    if account.deactivated_at is not None:
        raise EmailCorrectionError(
            _("This account is deactivated (no child enrolled any more): nothing to correct.")
        )
    if account.state == AccountState.ACTIVATED:
        raise EmailCorrectionError(
            _(
                "This family activated its account: its address is the one they chose, and "
                "they change it themselves in « Mon compte » on the portal."
            )
        )
    address = normalise_email(email)
    if address is None:
        raise _invalid_address(email)
    state = AccountState(account.state)
    changed = address != guardian.email
    if changed:
        had_email = guardian.email is not None
        guardian.email = address
        guardian.updated_at = now
        session.add(guardian)
        session.flush()
        record_event(
            session,
            actor=actor,
            action="roster.email_corrected",
            school_id=school_id,
            account_id=account.id,
            had_email=had_email,
        )
    link = None
    if state == AccountState.ACTIVATING:
        link = send_confirmation_link_again(
            session,
            school_id=school_id,
            account_id=account.id,
            actor=actor,
            email=address,
            portal_url=portal_url,
            mail_from=mail_from,
            language=language,
            now=now,
        )
    return EmailCorrection(
        account_id=account.id,
        identifier=account.identifier,
        state=state,
        masked_email=mask_email(address),
        changed=changed,
        link=link,
        correct_in_onde=state in _ONDE_EMAIL_STATES,
    )
