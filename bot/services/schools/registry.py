"""Schools and their directors: registering a school, single-use expiring director
invitations (stored hashed), redeeming them from Telegram with `/start <code>`, and the
operator listing and revoking the pending ones.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar, cast

from sqlalchemy import CursorResult, select, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col

from bot.i18n import _
from bot.services.audit import record_event
from bot.services.errors import ServiceError, quoted_input
from models import Director, InspectorInvitation, Invitation, School, utcnow

# A UAI is seven digits and a letter (0751234X). The letter is a checksum in the ministry's
# registry, but test and sample data rarely honour it, so only the shape is checked.
_UAI = re.compile(r"^[0-9]{7}[A-Z]$")
# Telegram's /start payload allows [A-Za-z0-9_-], at most 64 characters.
CODE_SHAPE = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
# 16 random bytes: 128 bits, 22 URL-safe characters.
CODE_BYTES = 16
DEFAULT_INVITATION_TTL = timedelta(days=7)


class InvalidUAIError(ServiceError):
    """The text given as a UAI does not have the shape of one."""


class InvalidSchoolNameError(ServiceError):
    """A school needs a name."""


class DuplicateSchoolError(ServiceError):
    """A school with this UAI is already registered."""


class UnknownSchoolError(ServiceError):
    """No school is registered with this UAI or id."""


class InvitationError(ServiceError):
    """An invitation code that cannot be redeemed (the subclasses say why)."""


class UnknownInvitationError(InvitationError):
    """No invitation has this code."""


class InvitationAlreadyUsedError(InvitationError):
    """The invitation was redeemed already: each one works once."""


class InvitationExpiredError(InvitationError):
    """The invitation's validity is over."""


class InvitationRevokedError(InvitationExpiredError):
    """The operator revoked the invitation before it was used: refused like an expired one,
    with its own message."""


@dataclass(frozen=True)
class PendingInvitation:
    """A director invitation that still works, as the operator lists it (never its code: only
    its hash is stored)."""

    id: int
    uai: str
    school_name: str
    created_at: datetime
    expires_at: datetime


def normalize_uai(uai: str) -> str:
    """The UAI in its canonical form (upper-case, no spaces), or InvalidUAIError."""
    candidate = "".join(uai.split()).upper()
    if not _UAI.fullmatch(candidate):
        raise InvalidUAIError(
            _(
                "« {uai} » is not a valid UAI: it must be 7 digits followed by a letter, for "
                "example 0751234X."
            ).format(uai=quoted_input(uai))
        )
    return candidate


def hash_invitation_code(code: str) -> str:
    """The stored form of an invitation code (SHA-256 is enough for 128 random bits)."""
    return hashlib.sha256(code.encode("ascii")).hexdigest()


def add_school(
    session: Session, *, uai: str, name: str, city: str | None = None, actor: str
) -> School:
    """Register a school; its UAI must be well formed and not registered yet."""
    canonical = normalize_uai(uai)
    clean_name = " ".join(name.split())
    if not clean_name:
        raise InvalidSchoolNameError(_("The name of the school cannot be empty."))
    clean_city = " ".join((city or "").split()) or None
    duplicate = DuplicateSchoolError(
        _("A school with the UAI {uai} is already registered.").format(uai=canonical)
    )
    if session.execute(select(col(School.id)).where(col(School.uai) == canonical)).first():
        raise duplicate
    school = School(uai=canonical, name=clean_name, city=clean_city)
    session.add(school)
    try:
        session.flush()
    except IntegrityError as error:  # registered concurrently by another process
        raise duplicate from error
    record_event(
        session,
        actor=actor,
        action="school.added",
        school_id=school.id,
        uai=canonical,
        name=clean_name,
        city=clean_city,
    )
    return school


def list_schools(session: Session) -> list[School]:
    """Every registered school, by UAI."""
    return list(session.execute(select(School).order_by(col(School.uai))).scalars())


def get_school_by_uai(session: Session, uai: str) -> School:
    """The school with this UAI, or InvalidUAIError / UnknownSchoolError."""
    canonical = normalize_uai(uai)
    school = session.execute(
        select(School).where(col(School.uai) == canonical)
    ).scalar_one_or_none()
    if school is None:
        raise UnknownSchoolError(
            _(
                "No school is registered with the UAI {uai} (« school list » shows them, "
                "« school add » adds one)."
            ).format(uai=canonical)
        )
    return school


def create_invitation(
    session: Session,
    *,
    school_id: int,
    actor: str,
    ttl: timedelta = DEFAULT_INVITATION_TTL,
    now: datetime | None = None,
) -> tuple[str, datetime]:
    """A new single-use director invitation: returns the clear code and its expiry (UTC).

    Only the code's hash is stored; the caller shows the code once and forgets it.
    """
    if ttl <= timedelta(0):
        raise ValueError("an invitation must be valid for a positive duration")
    school = session.get(School, school_id)
    if school is None:
        raise UnknownSchoolError(_("This school does not exist."))
    created_at = now or utcnow()
    expires_at = created_at + ttl
    code = secrets.token_urlsafe(CODE_BYTES)
    invitation = Invitation(
        school_id=school_id,
        code_hash=hash_invitation_code(code),
        created_at=created_at,
        expires_at=expires_at,
    )
    session.add(invitation)
    session.flush()
    record_event(
        session,
        actor=actor,
        action="invitation.created",
        school_id=school_id,
        invitation_id=invitation.id,
        expires_at=expires_at.isoformat(),
    )
    return code, expires_at


_Claimable = TypeVar("_Claimable", Invitation, InspectorInvitation)


def claim_invitation(
    session: Session,
    table: type[_Claimable],
    code: str,
    telegram_user_id: int,
    moment: datetime,
) -> _Claimable:
    """The invitation of `table` (a director's or an inspector's) whose code is `code`, marked
    used by this user. Raises UnknownInvitationError, InvitationAlreadyUsedError,
    InvitationExpiredError, or InvitationRevokedError for one the operator revoked."""
    candidate = code.strip()
    invitation = None
    if CODE_SHAPE.fullmatch(candidate):
        invitation = session.execute(
            select(table).where(col(table.code_hash) == hash_invitation_code(candidate))
        ).scalar_one_or_none()
    if invitation is None:
        raise UnknownInvitationError(_("This invitation code is unknown."))
    if invitation.used_at is not None:
        raise InvitationAlreadyUsedError(_("This invitation code has already been used."))
    if isinstance(invitation, Invitation) and invitation.revoked_at is not None:
        raise InvitationRevokedError(_("This invitation code has been revoked."))
    if moment >= invitation.expires_at:
        raise InvitationExpiredError(_("This invitation code has expired."))
    # Claimed in one statement, so two simultaneous redemptions cannot both win and a
    # revocation at the same moment wins over the redemption.
    unclaimed = [col(table.id) == invitation.id, col(table.used_at).is_(None)]
    if table is Invitation:
        unclaimed.append(col(Invitation.revoked_at).is_(None))
    claimed = cast(
        CursorResult[Any],
        session.execute(
            update(table)
            .where(*unclaimed)
            .values(used_at=moment, used_by_telegram_id=telegram_user_id)
        ),
    )
    if claimed.rowcount != 1:
        raise InvitationAlreadyUsedError(_("This invitation code has already been used."))
    return invitation


def redeem_invitation(
    session: Session,
    *,
    code: str,
    telegram_user_id: int,
    display_name: str | None = None,
    now: datetime | None = None,
) -> Director:
    """Make the Telegram user a director of the invitation's school; the code then stops
    working. Raises UnknownInvitationError, InvitationAlreadyUsedError or
    InvitationExpiredError (InvitationRevokedError for one the operator revoked)."""
    moment = now or utcnow()
    invitation = claim_invitation(session, Invitation, code, telegram_user_id, moment)

    actor = f"telegram:{telegram_user_id}"
    director = session.execute(
        select(Director).where(
            col(Director.telegram_user_id) == telegram_user_id,
            col(Director.school_id) == invitation.school_id,
        )
    ).scalar_one_or_none()
    if director is None:
        director = Director(
            telegram_user_id=telegram_user_id,
            school_id=invitation.school_id,
            display_name=display_name,
            created_at=moment,
        )
        session.add(director)
        session.flush()
        action = "director.added"
    else:
        # A second invitation for someone who already directs the school: nothing to add.
        if display_name:
            director.display_name = display_name
        action = "director.confirmed"
    record_event(
        session,
        actor=actor,
        action=action,
        school_id=invitation.school_id,
        invitation_id=invitation.id,
        director_id=director.id,
        telegram_user_id=telegram_user_id,
    )
    return director


def schools_of_director(session: Session, telegram_user_id: int) -> list[School]:
    """The schools this Telegram user directs, by name (empty for anyone else)."""
    return list(
        session.execute(
            select(School)
            .join(Director, col(Director.school_id) == col(School.id))
            .where(col(Director.telegram_user_id) == telegram_user_id)
            .order_by(col(School.name), col(School.uai))
        ).scalars()
    )


def list_invitations(
    session: Session, *, uai: str | None = None, now: datetime | None = None
) -> list[PendingInvitation]:
    """The director invitations that still work (unused, unexpired, unrevoked), of one school
    or of every school, by school then creation; InvalidUAIError / UnknownSchoolError for a
    bad `uai`."""
    statement = (
        select(Invitation, School)
        .join(School, col(School.id) == col(Invitation.school_id))
        .where(
            col(Invitation.used_at).is_(None),
            col(Invitation.revoked_at).is_(None),
            col(Invitation.expires_at) > (now or utcnow()),
        )
        .order_by(col(School.uai), col(Invitation.created_at), col(Invitation.id))
    )
    if uai is not None:
        statement = statement.where(col(School.id) == get_school_by_uai(session, uai).id)
    return [
        PendingInvitation(
            id=cast(int, invitation.id),
            uai=school.uai,
            school_name=school.name,
            created_at=invitation.created_at,
            expires_at=invitation.expires_at,
        )
        for invitation, school in session.execute(statement).all()
    ]


def revoke_invitation(
    session: Session, *, invitation_id: int, actor: str, now: datetime | None = None
) -> bool:
    """Make an unused director invitation stop working; False if it was used or revoked
    already (nothing changes), UnknownInvitationError if no invitation has this id."""
    invitation = session.get(Invitation, invitation_id)
    if invitation is None:
        raise UnknownInvitationError(
            _("No invitation has the id {id} (« invitation list » shows them).").format(
                id=invitation_id
            )
        )
    moment = now or utcnow()
    # One statement, so a redemption at the same moment and this revocation cannot both win.
    revoked = cast(
        CursorResult[Any],
        session.execute(
            update(Invitation)
            .where(
                col(Invitation.id) == invitation_id,
                col(Invitation.used_at).is_(None),
                col(Invitation.revoked_at).is_(None),
            )
            .values(revoked_at=moment)
        ),
    )
    if revoked.rowcount != 1:
        return False
    record_event(
        session,
        actor=actor,
        action="invitation.revoked",
        school_id=invitation.school_id,
        invitation_id=invitation_id,
    )
    return True
