"""Translations: gettext catalogs under `locales/`, the language of the current update or
request held in a ContextVar (never global state), and Babel's dates and numbers.

Message ids are English; French is the reference catalog and is complete (tests/test_i18n.py
gates it). Other languages fall back to French, then to the English id, entry by entry; English
uses its catalog where it has an entry, else the id itself (never French).

Catalogs are `locales/<lang>/LC_MESSAGES/messages.po`, compiled in memory at first use: no .mo
file to build or commit. `make i18n` extracts the ids and updates the catalogs.
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
from babel.dates import format_time as _babel_format_time
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal, format_percent

LOCALES_DIR = Path(__file__).resolve().parent.parent / "locales"
DOMAIN = "messages"
DEFAULT_LANGUAGE = "fr"
# The language the message ids are written in.
SOURCE_LANGUAGE = "en"
# French first: the reference. Families may also use the others (docs/PRODUCT.md).
SUPPORTED_LANGUAGES = ("fr", "en", "ar", "pt", "es", "tr")
RTL_LANGUAGES = frozenset({"ar"})
# Each language named in its own words, whatever the language around it (a family looks for
# its own language's name in a switch or a list).
LANGUAGE_NAMES = {
    "fr": "Français",
    "en": "English",
    "ar": "العربية",
    "pt": "Português",
    "es": "Español",
    "tr": "Türkçe",
}

_current_language: ContextVar[str] = ContextVar("language", default=DEFAULT_LANGUAGE)


def catalog_path(language: str) -> Path:
    """Where the catalog of `language` is (it may not exist)."""
    return LOCALES_DIR / language / "LC_MESSAGES" / f"{DOMAIN}.po"


def _is_translated(string: str | tuple[str, ...] | list[str] | None, fuzzy: bool) -> bool:
    forms = (string,) if isinstance(string, str) or string is None else tuple(string)
    return not fuzzy and bool(forms) and all(forms)


@cache
def _compiled_catalog(po_path: Path, language: str) -> bytes:
    """The catalog at `po_path` compiled to .mo bytes, once per process and file: French, the
    fallback of every other language, is parsed once instead of once per language (≈ 50 ms
    each at every start)."""
    with po_path.open("rb") as po_file:
        catalog = read_po(po_file, locale=language)
    # An entry not translated yet (or fuzzy) must fall through to the next catalog, not
    # translate to an empty string: write_mo keeps plural entries whose forms are all empty.
    for message in list(catalog):
        if message.id and not _is_translated(message.string, message.fuzzy):
            catalog.delete(message.id, context=message.context)
    buffer = BytesIO()
    # Compiling in memory keeps the .po the only source: no build step, no stale .mo.
    write_mo(buffer, catalog, use_fuzzy=False)
    return buffer.getvalue()


def _load_catalog(language: str) -> _gettext.GNUTranslations | None:
    po_path = catalog_path(language)
    if not po_path.exists():
        return None
    return _gettext.GNUTranslations(BytesIO(_compiled_catalog(po_path, language)))


@cache
def translations(language: str) -> _gettext.NullTranslations:
    """The catalog of `language`, falling back to French, then to the English ids.

    English ends at its own catalog: an entry it lacks is the English id, not French."""
    chain: list[_gettext.NullTranslations] = []
    fallbacks = (language,) if language == SOURCE_LANGUAGE else (language, DEFAULT_LANGUAGE)
    for code in dict.fromkeys(fallbacks):
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


def language_name(language: str) -> str:
    """The language's name in itself (« Français », « العربية », « Türkçe »): what a family
    looks for in a list of languages."""
    return LANGUAGE_NAMES.get(language, language)


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


def format_time(value: datetime, *, tz: ZoneInfo, fmt: str = "short") -> str:
    """A time of day in the current language (« 14:30 » in French), shown in `tz`."""
    return _babel_format_time(value.astimezone(tz), format=fmt, locale=babel_locale())


def format_number(value: int | float) -> str:
    """A number in the current language (« 1 234 » in French)."""
    return format_decimal(value, locale=babel_locale())


def format_percentage(ratio: float, *, decimals: int = 0) -> str:
    """A ratio in [0, 1] as a percentage in the current language (« 42 % », « 42% », « %42 »),
    with `decimals` digits after the decimal separator."""
    locale = babel_locale()
    pattern = locale.percent_formats[None].pattern
    if decimals > 0:  # the locale's own pattern has one « 0 »: the units digit
        pattern = pattern.replace("0", "0." + "0" * decimals, 1)
    return format_percent(ratio, format=pattern, locale=locale)
