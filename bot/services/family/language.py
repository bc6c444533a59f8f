"""A family's language: chosen by the family (`/langue` in the bot, the portal's switch) or set
by the school for a guardian; stored on the guardian (`Guardian.preferred_language`), which
letters, e-mails, reminders and the bot's answers then use. None is French only.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import update
from sqlmodel import Session, col, select

from bot.i18n import SUPPORTED_LANGUAGES, _
from bot.services.audit import record_event
from bot.services.errors import ServiceError
from models import FamilyChat, Guardian, utcnow


class UnsupportedLanguageError(ServiceError):
    """A language the product does not speak."""


class UnknownGuardianError(ServiceError):
    """No guardian of this school has this id."""


@dataclass(frozen=True)
class GuardianLanguage:
    """A guardian's language as the school set it, and the chats linked to the guardian (whose
    answers follow it unless the family chose another)."""

    guardian_id: int
    language: str | None
    chat_ids: tuple[int, ...]


def _checked(language: str | None) -> str | None:
    if language is None or language == "fr":
        return None  # French is the default: nothing to store
    if language not in SUPPORTED_LANGUAGES:
        raise UnsupportedLanguageError(
            _("« {language} » is not a language I speak.").format(language=language)
        )
    return language


def set_family_language(session: Session, *, telegram_user_id: int, language: str) -> int:
    """The family chose `language` in its chat: store it on every guardian the chat is linked
    to (their letters and e-mails follow it); how many guardians."""
    stored = _checked(language)
    guardian_ids = list(
        session.exec(
            select(FamilyChat.guardian_id).where(
                col(FamilyChat.telegram_user_id) == telegram_user_id
            )
        ).all()
    )
    if not guardian_ids:
        return 0
    session.execute(
        update(Guardian)
        .where(col(Guardian.id).in_(guardian_ids))
        .values(preferred_language=stored, updated_at=utcnow())
    )
    record_event(
        session,
        actor=f"family:{telegram_user_id}",
        action="guardian.language_chosen",
        guardian_ids=sorted(guardian_ids),
        language=language,
    )
    return len(guardian_ids)


def linked_language(session: Session, *, telegram_user_id: int) -> str | None:
    """The language stored on the guardians the chat is linked to (the most recent link's
    first), None when none is stored or the chat is not linked."""
    languages = session.exec(
        select(Guardian.preferred_language)
        .join(FamilyChat, col(FamilyChat.guardian_id) == col(Guardian.id))
        .where(col(FamilyChat.telegram_user_id) == telegram_user_id)
        .order_by(col(FamilyChat.linked_at).desc(), col(FamilyChat.id).desc())
    ).all()
    return next((language for language in languages if language), None)


def set_guardian_language(
    session: Session, *, school_id: int, guardian_id: int, language: str, actor: str
) -> GuardianLanguage:
    """The school sets a guardian's language (its letters and e-mails become bilingual, French
    first); returns it with the guardian's linked chats."""
    guardian = session.get(Guardian, guardian_id)
    if guardian is None or guardian.school_id != school_id:
        raise UnknownGuardianError(_("This guardian is not in your school."))
    guardian.preferred_language = _checked(language)
    guardian.updated_at = utcnow()
    session.add(guardian)
    record_event(
        session,
        actor=actor,
        action="guardian.language_set",
        school_id=school_id,
        guardian_id=guardian_id,
        language=language,
    )
    chats = session.exec(
        select(FamilyChat.telegram_user_id).where(col(FamilyChat.guardian_id) == guardian_id)
    ).all()
    return GuardianLanguage(guardian_id, guardian.preferred_language, tuple(chats))
