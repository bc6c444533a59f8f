"""Linking a family's Telegram chat to its guardian, through the single-use code printed on the
letter (the bot QR code, `/start <code>`), and the bot's username those links need.

A code is 192 random bits behind a `f_` prefix (so it never looks like a director invitation),
stored only as its SHA-256, valid once, until the provisional password printed beside it
expires. A newer letter for the same account supersedes the codes of the older ones.
"""

from __future__ import annotations

import enum
import hashlib
import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import CursorResult, Table, func, insert, update
from sqlmodel import Session, col, select

from bot.i18n import _
from bot.services.audit import record_event
from bot.services.errors import ServiceError
from models import (
    Account,
    AccountState,
    AppSetting,
    FamilyChat,
    FamilyLinkCode,
    Guardian,
    Pupil,
    PupilGuardian,
    School,
    SchoolClass,
    utcnow,
)
from models.queries import in_chunks

FAMILY_CODE_PREFIX = "f_"
# 24 random bytes: 192 bits, 32 URL-safe characters; with the prefix, 34 of the 64 characters
# Telegram allows in a /start payload, and longer than an invitation code (22).
_CODE_BYTES = 24
_CODE = re.compile(r"^f_[A-Za-z0-9_-]{32}$")
BOT_USERNAME_SETTING = "bot_username"
_LINK_CODES: Table = FamilyLinkCode.__table__  # type: ignore[attr-defined]


class LinkRefusal(enum.StrEnum):
    """Why a family-link code did not link the chat."""

    UNKNOWN = "unknown"  # no such code (mistyped, or not a family code at all)
    USED = "used"  # linked another chat already: each code works once
    EXPIRED = "expired"  # the provisional password printed beside it has expired
    SUPERSEDED = "superseded"  # a newer letter was sent for the same account
    DEACTIVATED = "deactivated"  # the guardian has no child in the school any more
    # The family activated its account: the letter did its job, and a letter found later (in a
    # bin, a shared printer) must not link a stranger's chat to the family's children.
    ACTIVATED = "activated"


class FamilyLinkError(ServiceError):
    """A family-link code that cannot link this chat; `reason` says why."""

    def __init__(self, reason: LinkRefusal, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class LinkedGuardian:
    """What a linked chat may know of its guardian's account: never a password."""

    guardian_id: int
    account_id: int
    first_name: str
    last_name: str
    # The guardian's language when the school knows it (BCP 47), else None.
    language: str | None
    school_name: str
    children: tuple[str, ...]  # first names, in class order
    identifier: str
    state: AccountState
    has_email: bool
    provisional_expires_at: datetime | None
    # True when this chat was linked to this guardian before (the code scanned again).
    already_linked: bool = False


# --- Codes ----------------------------------------------------------------------------------


def hash_link_code(code: str) -> str:
    """The stored form of a family-link code (SHA-256 is enough for 192 random bits)."""
    return hashlib.sha256(code.encode("ascii")).hexdigest()


def looks_like_link_code(text: str) -> bool:
    """Whether `text` has the shape of a family-link code (cheap; says nothing of validity)."""
    return bool(_CODE.fullmatch(text.strip()))


def new_link_code() -> str:
    """A fresh family-link code, in clear (for the letter only)."""
    return FAMILY_CODE_PREFIX + secrets.token_urlsafe(_CODE_BYTES)


def draw_link_codes(account_ids: Iterable[int]) -> dict[int, str]:
    """One new code per account, in clear and in memory only: nothing is stored until
    `record_link_codes`."""
    return {account_id: new_link_code() for account_id in dict.fromkeys(account_ids)}


def record_link_codes(
    session: Session,
    *,
    codes: Mapping[int, str],
    expiries: Mapping[int, datetime],
    now: datetime | None = None,
) -> None:
    """Store the hashes of codes drawn by `draw_link_codes` (account id → code), each expiring
    at `expiries[account id]`; the accounts' unused older codes stop working at once."""
    moment = now or utcnow()
    ids = list(codes)
    for chunk in in_chunks(ids):
        # Superseded, not deleted: a family scanning an old letter is told a newer one exists.
        session.execute(
            update(FamilyLinkCode)
            .where(
                col(FamilyLinkCode.account_id).in_(chunk),
                col(FamilyLinkCode.used_at).is_(None),
                col(FamilyLinkCode.expires_at) > moment,
            )
            .values(expires_at=moment)
        )
    if ids:
        # One multi-row INSERT: a thousand letters are a thousand codes.
        session.execute(
            insert(_LINK_CODES),
            [
                {
                    "account_id": account_id,
                    "code_hash": hash_link_code(code),
                    "created_at": moment,
                    "expires_at": expiries[account_id],
                }
                for account_id, code in codes.items()
            ],
        )


def create_link_codes(
    session: Session,
    *,
    expiries: Mapping[int, datetime],
    now: datetime | None = None,
) -> dict[int, str]:
    """One new code per account of `expiries` (account id → when the code expires), in clear,
    for the letters being prepared; the accounts' unused older codes stop working at once.

    Only hashes are stored; the caller prints or mails the codes and forgets them.
    """
    codes = draw_link_codes(expiries)
    record_link_codes(session=session, codes=codes, expiries=expiries, now=now)
    return codes


def _refusal(reason: LinkRefusal) -> FamilyLinkError:
    messages = {
        LinkRefusal.UNKNOWN: _("This link code is unknown."),
        LinkRefusal.USED: _("This link code has already been used."),
        LinkRefusal.EXPIRED: _("This link code has expired."),
        LinkRefusal.SUPERSEDED: _("This link code was replaced by a newer letter."),
        LinkRefusal.DEACTIVATED: _("This account is no longer active at the school."),
        LinkRefusal.ACTIVATED: _(
            "This account is activated: the link code of its letter no longer works."
        ),
    }
    return FamilyLinkError(reason, messages[reason])


def redeem_link_code(
    session: Session,
    *,
    code: str,
    telegram_user_id: int,
    now: datetime | None = None,
) -> LinkedGuardian:
    """Link the Telegram user's chat to the guardian whose letter carries `code`; the code then
    stops working. The same user sending their code again gets the link back (already_linked).
    Raises `FamilyLinkError` (unknown, used, expired, superseded, deactivated, or activated:
    once the family activated its account, the letter's code links no new chat)."""
    moment = now or utcnow()
    candidate = code.strip()
    found = None
    if looks_like_link_code(candidate):
        found = session.exec(
            select(FamilyLinkCode).where(col(FamilyLinkCode.code_hash) == hash_link_code(candidate))
        ).first()
    if found is None:
        raise _refusal(LinkRefusal.UNKNOWN)
    account = session.get(Account, found.account_id)
    assert account is not None and account.id is not None  # a foreign key
    if found.used_at is not None:
        if found.used_by_telegram_id == telegram_user_id:
            return linked_guardian(session, account, already_linked=True)
        raise _refusal(LinkRefusal.USED)
    if moment >= found.expires_at:
        newer = session.exec(
            select(func.count())
            .select_from(FamilyLinkCode)
            .where(
                col(FamilyLinkCode.account_id) == found.account_id,
                col(FamilyLinkCode.created_at) > found.created_at,
            )
        ).one()
        raise _refusal(LinkRefusal.SUPERSEDED if newer else LinkRefusal.EXPIRED)
    if account.deactivated_at is not None:
        raise _refusal(LinkRefusal.DEACTIVATED)
    if account.state == AccountState.ACTIVATED:
        raise _refusal(LinkRefusal.ACTIVATED)

    # Claim the code in one statement, so two chats sending it at once cannot both win.
    claimed = cast(
        CursorResult[Any],
        session.execute(
            update(FamilyLinkCode)
            .where(col(FamilyLinkCode.id) == found.id, col(FamilyLinkCode.used_at).is_(None))
            .values(used_at=moment, used_by_telegram_id=telegram_user_id)
        ),
    )
    if claimed.rowcount != 1:
        raise _refusal(LinkRefusal.USED)
    already_linked = attach_chat(
        session, telegram_user_id=telegram_user_id, guardian_id=account.guardian_id, now=moment
    )
    guardian = session.get(Guardian, account.guardian_id)
    assert guardian is not None
    record_event(
        session,
        actor=f"telegram:{telegram_user_id}",
        action="family.chat_linked",
        school_id=guardian.school_id,
        account_id=account.id,
        link_code_id=found.id,
        telegram_user_id=telegram_user_id,
        already_linked=already_linked,
    )
    session.flush()
    return linked_guardian(session, account, already_linked=already_linked)


def attach_chat(
    session: Session, *, telegram_user_id: int, guardian_id: int, now: datetime
) -> bool:
    """Link the Telegram user's chat to the guardian (however the family proved who it is);
    returns whether it was linked already, in which case nothing is written."""
    existing = session.exec(
        select(FamilyChat.id).where(
            col(FamilyChat.telegram_user_id) == telegram_user_id,
            col(FamilyChat.guardian_id) == guardian_id,
        )
    ).first()
    if existing is None:
        session.add(
            FamilyChat(telegram_user_id=telegram_user_id, guardian_id=guardian_id, linked_at=now)
        )
    return existing is not None


def linked_guardian(session: Session, account: Account, *, already_linked: bool) -> LinkedGuardian:
    """What the chat linked to `account`'s guardian may know of them."""
    guardian = session.get(Guardian, account.guardian_id)
    assert guardian is not None and account.id is not None and guardian.id is not None
    school = session.get(School, guardian.school_id)
    assert school is not None
    children = session.exec(
        select(Pupil.first_name)
        .join(PupilGuardian, col(PupilGuardian.pupil_id) == col(Pupil.id))
        .outerjoin(SchoolClass, col(SchoolClass.id) == col(Pupil.class_id))
        .where(col(PupilGuardian.guardian_id) == guardian.id, col(Pupil.archived_at).is_(None))
        .order_by(col(SchoolClass.label), col(Pupil.first_name))
    ).all()
    return LinkedGuardian(
        guardian_id=guardian.id,
        account_id=account.id,
        first_name=guardian.first_name,
        last_name=guardian.usage_name or guardian.last_name,
        language=guardian.preferred_language,
        school_name=school.name,
        children=tuple(children),
        identifier=account.identifier,
        state=AccountState(account.state),
        has_email=bool(guardian.email),
        provisional_expires_at=account.provisional_expires_at,
        already_linked=already_linked,
    )


def linked_guardians(session: Session, *, telegram_user_id: int) -> list[LinkedGuardian]:
    """The guardians this Telegram user's chat is linked to, most recent link first."""
    accounts = session.exec(
        select(Account)
        .join(FamilyChat, col(FamilyChat.guardian_id) == col(Account.guardian_id))
        .where(col(FamilyChat.telegram_user_id) == telegram_user_id)
        .order_by(col(FamilyChat.linked_at).desc(), col(FamilyChat.id).desc())
    ).all()
    return [linked_guardian(session, account, already_linked=True) for account in accounts]


def linked_chat_ids(session: Session, *, guardian_ids: Iterable[int]) -> dict[int, list[int]]:
    """The Telegram users linked to each of these guardians (guardian id → user ids)."""
    ids = sorted(set(guardian_ids))
    chats: dict[int, list[int]] = {}
    for chunk in in_chunks(ids):
        for guardian_id, user_id in session.exec(
            select(FamilyChat.guardian_id, FamilyChat.telegram_user_id)
            .where(col(FamilyChat.guardian_id).in_(chunk))
            .order_by(col(FamilyChat.id))
        ):
            chats.setdefault(guardian_id, []).append(user_id)
    return chats


# --- The bot's username ---------------------------------------------------------------------


def remember_bot_username(session: Session, *, username: str | None) -> None:
    """Keep the bot's username (learnt from Telegram at start) for the letters' deep links,
    which the CLI and workers print too."""
    if not username:
        return
    clean = username.lstrip("@")
    setting = session.get(AppSetting, BOT_USERNAME_SETTING)
    if setting is None:
        session.add(AppSetting(key=BOT_USERNAME_SETTING, value=clean, updated_at=utcnow()))
    elif setting.value != clean:
        setting.value = clean
        setting.updated_at = utcnow()
        session.add(setting)
    session.flush()


def known_bot_username(session: Session) -> str | None:
    """The bot's username as the bot last reported it, or None if it never started."""
    setting = session.get(AppSetting, BOT_USERNAME_SETTING)
    return setting.value if setting is not None else None
