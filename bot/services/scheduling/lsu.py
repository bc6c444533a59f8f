"""The LSU date a director gives (« 15/01/2027 », « 15 janvier 2027 »): read with Babel's French
patterns, refused with the reason when it is in the past or more than a year ahead."""

from __future__ import annotations

import html
import re
import unicodedata
from datetime import date
from functools import cache

from babel.dates import get_month_names, parse_date

from bot.i18n import _, format_date
from bot.services.errors import ServiceError, quoted_input

# Directors write French dates whatever their language; English month names are read too.
_MONTH_LOCALES = ("fr", "en")
_NAMED = re.compile(r"^(\d{1,2})(?:er)? ([a-z]+)\.?(?: (\d{2}|\d{4}))?$")
_NUMERIC_NO_YEAR = re.compile(r"^(\d{1,2})[/.\-](\d{1,2})$")


class LsuDateError(ServiceError):
    """A date that could not be read, or that cannot be the LSU date."""


def _plain(text: str) -> str:
    """Lower case, no accents, no dots or commas, single spaces (« 1er Févr. » → « 1er fevr »)."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    bare = "".join(c for c in decomposed if not unicodedata.combining(c))
    bare = re.sub(r"[,.](?=\s|$)", " ", bare)
    words = [w for w in bare.split() if w not in ("le", "the")]
    return " ".join(words)


@cache
def _months() -> dict[str, int]:
    """Month names and abbreviations → numbers, read from Babel's data at the first date typed
    (loading two locales costs ≈ 0.1 s, which every process start would pay otherwise)."""
    names: dict[str, int] = {}
    for locale in _MONTH_LOCALES:
        for width in ("wide", "abbreviated"):
            for number, name in get_month_names(width, locale=locale).items():
                names[_plain(name).rstrip(".")] = number
    return names


def _with_year(day: int, month: int, year: int | None, today: date) -> date:
    """The date, in the next year it comes when the year was left out."""
    if year is not None:
        return date(year + 2000 if year < 100 else year, month, day)
    candidate = date(today.year, month, day)
    return candidate if candidate >= today else date(today.year + 1, month, day)


def _read(text: str, today: date) -> date:
    plain = _plain(text)
    named = _NAMED.match(plain)
    if named:
        month = _months().get(named[2])
        if month is None:
            raise ValueError(plain)
        year = int(named[3]) if named[3] else None
        return _with_year(int(named[1]), month, year, today)
    no_year = _NUMERIC_NO_YEAR.match(plain)
    if no_year:
        return _with_year(int(no_year[1]), int(no_year[2]), None, today)
    return parse_date(plain, locale="fr_FR", format="short")


def _unreadable(text: str) -> LsuDateError:
    return LsuDateError(
        _(
            "I could not read « {text} » as a date. Write it like <code>/lsu 15/01/2027</code> "
            "or <code>/lsu 15 janvier 2027</code>."
        ).format(text=html.escape(quoted_input(text)))
    )


def latest_lsu_date(today: date) -> date:
    """The furthest LSU date accepted: one year after `today`."""
    try:
        return today.replace(year=today.year + 1)
    except ValueError:  # 29 February
        return today.replace(year=today.year + 1, day=28)


def check_lsu_date(value: date, *, today: date) -> date:
    """`value` if it can be the LSU date: today or later, within a year."""
    if value < today:
        raise LsuDateError(
            _(
                "{date} is in the past. Give the day the school reports (LSU) go online: "
                "today or later."
            ).format(date=format_date(value))
        )
    if value > latest_lsu_date(today):
        raise LsuDateError(
            _(
                "{date} is more than a year away. Give the day this school year's reports "
                "(LSU) go online, within a year."
            ).format(date=format_date(value))
        )
    return value


def parse_lsu_date(text: str, *, today: date) -> date:
    """The LSU date written in `text` (« 15/01/2027 », « 15 janvier 2027 », « 15/01 »), checked
    against `today`; `LsuDateError` says what was wrong."""
    if not text.strip():
        raise _unreadable(text)
    try:
        value = _read(text, today)
    # Babel's ParseError is a ValueError; a number too big for a date (« 99999999999/1/1 »)
    # raises OverflowError.
    except (ValueError, IndexError, OverflowError) as error:
        raise _unreadable(text) from error
    return check_lsu_date(value, today=today)
