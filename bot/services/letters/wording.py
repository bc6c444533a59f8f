"""What a letter says, sentence by sentence, in the current language (`bot.i18n`).

`letter_text` is called once per language a letter is printed in: French always, then the
family's language for a bilingual letter (docs/PRODUCT.md), inside `use_language`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from bot.i18n import RTL_LANGUAGES, _, current_language, format_date, ngettext
from bot.services.accounts import CredentialKind
from bot.services.letters.content import Letter

__all__ = ["LetterText", "display_url", "letter_text"]


@dataclass(frozen=True, slots=True)
class LetterText:
    """Every sentence one letter shows, in one language (a bilingual letter draws two)."""

    addressee: str
    dated: str
    title: str
    intro: str
    children_heading: str  # in capitals, like the two labels below
    class_lines: tuple[str, ...]
    identifier_label: str
    password_label: str
    password_note: str
    expiry: str | None
    steps_heading: str
    steps: tuple[str, str]
    portal_caption: str
    portal_hint: str
    bot_caption: str
    bot_hint: str
    signature: str
    confidentiality: str


def _embedded(value: str) -> str:
    """A name, a place or an address set inside a sentence. In a right-to-left language it is
    isolated (FSI … PDI, Unicode's bidi algorithm): « Villeurbanne، 30 نوفمبر » would otherwise
    pull the day into the Latin run and print it before the city."""
    return f"\u2068{value}\u2069" if current_language() in RTL_LANGUAGES else value


def _capitals(text: str) -> str:
    """`text` in capitals, the Turkish way in Turkish (« şifre » → « ŞİFRE », not « ŞIFRE »)."""
    if current_language() == "tr":
        text = text.replace("i", "İ")
    return text.upper()


def display_url(url: str) -> str:
    """The address as a parent types it: no « https:// », no trailing slash."""
    return re.sub(r"^https://", "", url).rstrip("/")


def _dated(letter: Letter) -> str:
    """The dateline: the school's city and the letter's date (the date alone without a city)."""
    day = format_date(letter.letter_date)
    if letter.school_city:
        return _("{city}, {date}").format(city=_embedded(letter.school_city), date=day)
    return _("On {date}").format(date=day)


@dataclass(frozen=True, slots=True)
class _KindText:
    """The sentences that depend on the letter's kind (first, reminder, reset)."""

    intro: str
    password_label: str
    password_note: str
    first_step: str


def _kind_text(letter: Letter, *, portal: str) -> _KindText:
    if letter.kind is CredentialKind.REMINDER:
        return _KindText(
            intro=_(
                "Your account is not activated yet. Here is your identifier again; "
                "your password is unchanged."
            ),
            password_label=_("Password"),
            password_note=_(
                "Your password is unchanged: use the provisional password of the letter you "
                "received first. Lost it? Ask the school for a new one."
            ),
            first_step=_(
                "Go to {portal} (or scan the QR code below) and log in with your identifier and "
                "the provisional password you received earlier."
            ).format(portal=portal),
        )
    if letter.kind is CredentialKind.RESET:
        intro = _(
            "A new provisional password has been created for your account. "
            "The previous one no longer works."
        )
    else:
        intro = ngettext(
            "This account lets you follow your child's schooling online, including the "
            "school report booklet (LSU).",
            "This account lets you follow your children's schooling online, including "
            "their school report booklets (LSU).",
            len(letter.children),
        )
    return _KindText(
        intro=intro,
        password_label=_("Provisional password"),
        password_note=_("provisional password, to be changed at first login"),
        first_step=_(
            "Go to {portal} (or scan the QR code below) and log in with your identifier and "
            "your provisional password."
        ).format(portal=portal),
    )


def _title(kind: CredentialKind) -> str:
    titles = {
        CredentialKind.FIRST: _("Your EduConnect account"),
        CredentialKind.REMINDER: _("Reminder: your EduConnect account"),
        CredentialKind.RESET: _("Your new EduConnect password"),
    }
    return titles[kind]


def _expiry(letter: Letter, *, tz: ZoneInfo) -> str | None:
    if letter.expires_at is None:
        return None
    expiry_date = format_date(letter.expires_at, tz=tz)
    if letter.kind is CredentialKind.REMINDER:
        return _("Your provisional password is valid until {date}.").format(date=expiry_date)
    return _("Valid until {date}").format(date=expiry_date)


def _bot_hint(letter: Letter) -> str:
    if letter.bot_link_url is not None:
        return _(
            "Scan it to link your Telegram to the school: account status and help. Single-use code."
        )
    if letter.family_link_code is not None:
        return _(
            "In Telegram, send this message to the school's bot to link your chat to this "
            "account (single-use code):"
        )
    return ""


def letter_text(letter: Letter, *, tz: ZoneInfo) -> LetterText:
    """The sentences of `letter` in the current language."""
    by_kind = _kind_text(letter, portal=_embedded(display_url(letter.portal_url)))
    return LetterText(
        addressee=_("For the attention of {name}").format(name=_embedded(letter.addressee)),
        dated=_dated(letter),
        title=_title(letter.kind),
        intro=by_kind.intro,
        children_heading=_capitals(
            ngettext(
                "Child covered by this account",
                "Children covered by this account",
                len(letter.children),
            )
        ),
        class_lines=tuple(
            _("class {label}").format(label=_embedded(label)) if label else ""
            for label in (child.class_label for child in letter.children)
        ),
        identifier_label=_capitals(_("Identifier")),
        password_label=_capitals(by_kind.password_label),
        password_note=by_kind.password_note,
        expiry=_expiry(letter, tz=tz),
        steps_heading=_("Activate your account in 2 steps"),
        steps=(
            by_kind.first_step,
            _(
                "Choose your own password, give your e-mail address and confirm one child's "
                "date of birth, then click the link you receive by e-mail."
            ),
        ),
        portal_caption=_("Activate my account"),
        portal_hint=_("Scan it with your phone's camera: your identifier is filled in."),
        bot_caption=_("Follow my account on Telegram"),
        bot_hint=_bot_hint(letter),
        signature=_("The school director"),
        confidentiality=_(
            "This letter is personal: keep it safe and never give your password to anyone."
        ),
    )
