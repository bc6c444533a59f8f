"""Translations: gettext catalogs under `locales/`, the language of the current update or
request held in a ContextVar (never global state), and Babel's dates and numbers.

Message ids are English; French is the reference catalog and is complete (a test gates it).
Other languages fall back to French, then to the English id, entry by entry.
"""

from __future__ import annotations

import gettext as _gettext
import itertools
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import date, datetime
from functools import cache
from io import BytesIO
from pathlib import Path
from zoneinfo import ZoneInfo

from babel import Locale
from babel.dates import format_date as _babel_format_date
from babel.dates import format_datetime as _babel_format_datetime
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal, format_percent

LOCALES_DIR = Path(__file__).resolve().parent.parent / "locales"
DOMAIN = "messages"
DEFAULT_LANGUAGE = "fr"
# French first: the reference. Families may also use the others (SPEC §8).
SUPPORTED_LANGUAGES = ("fr", "en", "ar", "pt", "es", "tr")
RTL_LANGUAGES = frozenset({"ar"})

_current_language: ContextVar[str] = ContextVar("language", default=DEFAULT_LANGUAGE)


def _load_catalog(language: str) -> _gettext.GNUTranslations | None:
    po_path = LOCALES_DIR / language / "LC_MESSAGES" / f"{DOMAIN}.po"
    if not po_path.exists():
        return None
    with po_path.open("rb") as po_file:
        catalog = read_po(po_file, locale=language)
    buffer = BytesIO()
    # Compiling in memory keeps the .po the only source: no build step, no stale .mo.
    write_mo(buffer, catalog, use_fuzzy=False)
    buffer.seek(0)
    return _gettext.GNUTranslations(buffer)


@cache
def translations(language: str) -> _gettext.NullTranslations:
    """The catalog of `language`, falling back to French, then to the English ids."""
    chain: list[_gettext.NullTranslations] = []
    for code in dict.fromkeys((language, DEFAULT_LANGUAGE)):
        loaded = _load_catalog(code)
        if loaded is not None:
            chain.append(loaded)
    if not chain:
        return _gettext.NullTranslations()
    for outer, inner in itertools.pairwise(chain):
        outer.add_fallback(inner)
    return chain[0]


def negotiate_language(code: str | None) -> str:
    """The supported language closest to a Telegram or browser code (« pt-BR » → « pt »)."""
    if not code:
        return DEFAULT_LANGUAGE
    base = code.replace("_", "-").split("-")[0].lower()
    return base if base in SUPPORTED_LANGUAGES else DEFAULT_LANGUAGE


def current_language() -> str:
    """The language of the update or request being handled."""
    return _current_language.get()


def set_language(language: str) -> None:
    """Use `language` for the rest of the current task (an update, a request)."""
    _current_language.set(negotiate_language(language))


@contextmanager
def use_language(language: str) -> Iterator[None]:
    """Use `language` inside the block, then go back to the previous one."""
    token = _current_language.set(negotiate_language(language))
    try:
        yield
    finally:
        _current_language.reset(token)


def _(message: str) -> str:
    """Translate `message` into the current language."""
    return translations(current_language()).gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    """Translate a message whose form depends on the number `n`."""
    return translations(current_language()).ngettext(singular, plural, n)


def N_(message: str) -> str:
    """Mark a message for extraction without translating it yet (translated when shown)."""
    return message


def babel_locale() -> Locale:
    return Locale.parse(current_language())


def format_date(value: date | datetime, *, tz: ZoneInfo | None = None, fmt: str = "long") -> str:
    """A date in the current language (« 28 novembre 2026 »), in `tz` for datetimes."""
    if isinstance(value, datetime) and tz is not None:
        value = value.astimezone(tz)
    day = value.date() if isinstance(value, datetime) else value
    return _babel_format_date(day, format=fmt, locale=babel_locale())


def format_datetime(value: datetime, *, tz: ZoneInfo, fmt: str = "short") -> str:
    """A date and time in the current language, shown in `tz`."""
    return _babel_format_datetime(value.astimezone(tz), format=fmt, locale=babel_locale())


def format_number(value: int | float) -> str:
    """A number in the current language (« 1 234 » in French)."""
    return format_decimal(value, locale=babel_locale())


def format_percentage(ratio: float) -> str:
    """A ratio in [0, 1] as a percentage in the current language (« 42 % »)."""
    return format_percent(ratio, format="#,##0 %", locale=babel_locale())
