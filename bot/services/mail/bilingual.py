"""What makes an e-mail bilingual (docs/PRODUCT.md): for a family whose language is not French,
the French text first (the ministry's wording stays the authoritative one), then the same
content in the family's language, introduced by its name in its own words; the subject stays
French and names the language, and `Content-Language` lists both.
"""

from __future__ import annotations

import html
import textwrap
from dataclasses import dataclass

from bot.i18n import (
    DEFAULT_LANGUAGE,
    LANGUAGE_NAMES,
    RTL_LANGUAGES,
    _,
    negotiate_language,
    use_language,
)

# The plain-text rule between the French text and its translation.
RULE = "=" * 60
# Plain-text lines stay under the 78 characters mail readers expect (RFC 5322 §2.1.1).
TEXT_WIDTH = 76


def second_language(language: str | None) -> str | None:
    """The language an e-mail adds to French (« pt-BR » → « pt »), or None for French only
    (no language, French, or one the product does not speak)."""
    if not language:
        return None
    code = negotiate_language(language)
    return None if code == DEFAULT_LANGUAGE else code


def content_language(second: str | None) -> str:
    """The `Content-Language` header: « fr », or « fr, ar » (RFC 3282: both are meant)."""
    return DEFAULT_LANGUAGE if second is None else f"{DEFAULT_LANGUAGE}, {second}"


def bilingual_subject(french_subject: str, second: str | None) -> str:
    """The subject, French, naming the translation inside when there is one."""
    if second is None:
        return french_subject
    with use_language(DEFAULT_LANGUAGE):
        return _("{subject} (translation: {language})").format(
            subject=french_subject, language=LANGUAGE_NAMES[second]
        )


@dataclass(frozen=True, slots=True)
class TranslationHeading:
    """What opens the translated half: the language's own name and, in that language, a
    sentence saying the French text above is the reference."""

    language: str
    name: str
    note: str

    @property
    def html_attributes(self) -> str:
        """`lang` (and `dir` for a right-to-left language) of the block holding the
        translation: mail readers then lay Arabic out from the right."""
        direction = ' dir="rtl"' if self.language in RTL_LANGUAGES else ' dir="ltr"'
        return f'lang="{html.escape(self.language)}"{direction}'

    @property
    def start_side(self) -> str:
        """« left », or « right » in a right-to-left language: where lists are indented
        (inline styles, since most mail readers ignore logical CSS properties)."""
        return "right" if self.language in RTL_LANGUAGES else "left"


def translation_heading(second: str) -> TranslationHeading:
    """The heading of the translated half, in `second`."""
    with use_language(second):
        note = _("The same message in your language. The French text above is the one that counts.")
    return TranslationHeading(language=second, name=LANGUAGE_NAMES[second], note=note)


def plain_heading(heading: TranslationHeading) -> list[str]:
    """The plain-text lines between the French text and its translation."""
    note = textwrap.wrap(heading.note, TEXT_WIDTH, break_on_hyphens=False)
    return ["", RULE, heading.name, *note, RULE, ""]


def html_heading(heading: TranslationHeading) -> str:
    """The HTML rule and heading that open the translated block (inside its `<div>`)."""
    e = html.escape
    return (
        f'<p style="margin:0 0 16px 0;padding:8px 0;border-top:2px solid #c9d3e0;'
        f'border-bottom:1px solid #c9d3e0"><strong>{e(heading.name)}</strong><br>'
        f"{e(heading.note)}</p>"
    )
