"""A family's language as the portal knows it: the switch's choice of a signed-in family is
stored on its guardian (`Guardian.preferred_language`, which the bot, the letters and the
e-mails then follow), and the language the portal's e-mails add to French.
"""

from __future__ import annotations

from sqlmodel import Session

from bot.i18n import DEFAULT_LANGUAGE, SUPPORTED_LANGUAGES, negotiate_language
from bot.services.portal.common import audit, guardian_of
from bot.services.portal.sessions import session_account
from models import Guardian, utcnow


def remember_language(
    session: Session, *, account_id: int, fingerprint: str, language: str
) -> bool:
    """The signed-in family chose `language` in the portal's switch: store it on the guardian
    of the session's account (French is stored as None, the default). Whether anything
    changed; nothing does when the session no longer opens its account or the language is not
    one the product speaks."""
    if language not in SUPPORTED_LANGUAGES:
        return False
    account = session_account(session, account_id, fingerprint)
    if account is None:
        return False
    guardian = guardian_of(session, account)
    stored = None if language == DEFAULT_LANGUAGE else language
    if guardian.preferred_language == stored:
        return False
    guardian.preferred_language = stored
    guardian.updated_at = utcnow()
    session.add(guardian)
    audit(session, "portal.language_chosen", account=account, guardian=guardian, language=language)
    return True


def family_language(asked: str, guardian: Guardian) -> str:
    """The language a portal e-mail to `guardian` adds to French: the one the family uses on
    the portal, else the one stored for the guardian (by the family or the school)."""
    language = negotiate_language(asked)
    if language != DEFAULT_LANGUAGE:
        return language
    return negotiate_language(guardian.preferred_language)
