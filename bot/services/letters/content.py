"""What one credential letter or e-mail says, independent of how it is drawn or sent.

`Letter` is the contract between the distribution service (which builds letters from the
accounts it has just issued credentials for), the PDF renderer and the e-mail composer.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from urllib.parse import quote, urlencode

from bot.services.accounts import CredentialKind

# Where the portal's activation page lives, under PORTAL_URL (the portal issue serves it).
ACTIVATION_PATH = "/activation"


@dataclass(frozen=True, slots=True)
class ChildLine:
    """One child covered by the account, as the letter lists them."""

    first_name: str
    last_name: str
    class_label: str | None


@dataclass(frozen=True, slots=True)
class Letter:
    """Everything one letter or e-mail to one guardian shows (docs/PRODUCT.md).

    `password` is the clear provisional password for FIRST and RESET letters, None for a
    reminder; it lives only in memory, inside the letter or e-mail that carries it.
    """

    account_id: int
    kind: CredentialKind
    civility: str | None
    first_name: str
    last_name: str
    email: str | None
    # The family's language when known (BCP 47, e.g. « ar »): the letter is then bilingual,
    # French first (docs/PRODUCT.md). None: French only.
    language: str | None
    school_name: str
    school_uai: str
    school_city: str | None
    children: tuple[ChildLine, ...]
    identifier: str
    password: str | None
    expires_at: datetime | None
    portal_url: str
    activation_url: str
    # The bot deep link carrying the single-use family-link code; None when the bot's
    # username is not known yet (the letter then prints the code and the command to type).
    bot_link_url: str | None
    family_link_code: str | None
    letter_date: date

    def __repr__(self) -> str:
        # Keeps the password out of logs, tracebacks and debugger views.
        return (
            f"Letter(account_id={self.account_id}, kind={self.kind.value}, "
            f"identifier={self.identifier!r}, password="
            f"{'<hidden>' if self.password is not None else 'None'})"
        )

    __str__ = __repr__

    @property
    def carries_password(self) -> bool:
        return self.password is not None

    @property
    def addressee(self) -> str:
        """« Prénom NOM », as « À l'attention de Prénom NOM » shows it."""
        return f"{self.first_name} {self.last_name.upper()}".strip()


def activation_url(portal_url: str, identifier: str) -> str:
    """The portal's activation page with the identifier prefilled (never the password)."""
    return f"{portal_url.rstrip('/')}{ACTIVATION_PATH}?{urlencode({'identifiant': identifier})}"


def bot_link_url(bot_username: str, code: str) -> str:
    """The Telegram deep link that sends `/start <code>` to the bot."""
    return f"https://t.me/{quote(bot_username.lstrip('@'))}?start={quote(code)}"
