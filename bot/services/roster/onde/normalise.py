"""Cleaning and comparing ONDE cell values: names, dates, addresses, e-mails, civility, sex."""

from __future__ import annotations

import re
from datetime import date
from functools import lru_cache

from anyascii import anyascii

# Re-exported for the reader: the accounts package owns the one way addresses and telephone
# numbers are normalised.
from bot.services.accounts import normalise_email as normalise_email
from bot.services.accounts import normalise_phone as normalise_phone

_SPACES = re.compile(r"\s+")
_NOT_ALNUM = re.compile(r"[^a-z0-9]+")
_FRENCH_DATE = re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{4})$")
# ISO, sometimes with a midnight time when a tool exported a datetime.
_ISO_DATE = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})(?:[ T]00:00(?::00)?)?$")

_CIVILITIES = {
    "m": "M.",
    "mr": "M.",
    "monsieur": "M.",
    "mme": "Mme",
    "madame": "Mme",
    "mlle": "Mme",
    "mademoiselle": "Mme",
}
_SEXES = {"m": "M", "h": "M", "masculin": "M", "f": "F", "feminin": "F"}


def clean(value: str | None) -> str | None:
    """The cell's text with spaces collapsed, or None when it is empty."""
    if not value:
        return None
    text = value.strip()
    # Most cells have single spaces only: skip the regular expression for them.
    if "  " in text or not text.isprintable():
        text = _SPACES.sub(" ", text)
    return text or None


@lru_cache(maxsize=65536)
def name_key(value: str | None) -> str:
    """A name as compared: case, accents, spaces, hyphens and apostrophes ignored.

    « Saint-Exupéry », « SAINT EXUPERY » and « saintexupery » are the same name.
    """
    if not value:
        return ""
    text = value if value.isascii() else anyascii(value)
    return _NOT_ALNUM.sub("", text.lower())


def address_key(address: str | None, postcode: str | None) -> str | None:
    """An address as compared between a guardian and a pupil, or None when unknown."""
    street = name_key(address)
    if not street:
        return None
    return f"{street}|{name_key(postcode)}"


def parse_date(value: str | None) -> date | None:
    """A date written « 17/09/2021 » or « 2021-09-17 »; None when it is not a real date."""
    if not value:
        return None
    text = value.strip()
    match = _FRENCH_DATE.match(text)
    if match:
        day, month, year = (int(part) for part in match.groups())
    else:
        match = _ISO_DATE.match(text)
        if not match:
            return None
        year, month, day = (int(part) for part in match.groups())
    try:
        return date(year, month, day)
    except ValueError:
        return None


def parse_civility(value: str | None) -> str | None:
    """« M. » or « Mme » whatever the spelling (« MME », « Madame »); other values kept."""
    text = clean(value)
    if text is None:
        return None
    return _CIVILITIES.get(name_key(text), text)


def parse_sex(value: str | None) -> str | None:
    """« M » or « F » (ONDE writes M/F, other tools H/F); None when unknown."""
    return _SEXES.get(name_key(value))


def parse_ine(value: str | None) -> str | None:
    """The pupil's national identifier (INE), upper-case without spaces, or None."""
    if not value:
        return None
    text = _SPACES.sub("", value).upper()
    return text or None
