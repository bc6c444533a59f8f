"""Telephone numbers in one comparable form, E.164 (« +33612345678 »), with `phonenumbers`.

The same number reaches us written many ways: ONDE's « 06 12 34 56 78 » or « 06.12.34.56.78 »,
« +33 6 12 34 56 78 », « 0033612345678 », and Telegram's shared contacts, which carry the
international form without its « + » (« 33612345678 »). Numbers without a country code are
read as French, then as numbers of the overseas departments, which dial the same way.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import cache

import phonenumbers

DEFAULT_REGION = "FR"
# Regions numbered like metropolitan France (ten digits, a leading 0) with their own country
# code: Guadeloupe, Saint-Barthélemy, Saint-Martin, Martinique, Guyane, La Réunion, Mayotte,
# Saint-Pierre-et-Miquelon. A number valid in none of them is refused.
_NATIONAL_REGIONS = (DEFAULT_REGION, "GP", "BL", "MF", "MQ", "GF", "RE", "YT", "PM")
_SEPARATORS = re.compile(r"[\s.\-/()\u00a0\u202f]")
_DIGITS = re.compile(r"\d{6,17}")
_LONGEST_E164 = 16  # « + » and at most 15 digits
# ONDE's usual form, « 0 » and nine digits: checked against the regions' own patterns directly,
# ten times faster than parsing (the import reads tens of thousands of them). ASCII digits only:
# `\d` would keep a « ٠ » in the number; `phonenumbers` reads other scripts' digits.
_NATIONAL = re.compile(r"0([1-9][0-9]{8})")
# The kinds of number `phonenumbers.is_valid_number` accepts.
_NUMBER_TYPES = (
    "premium_rate",
    "toll_free",
    "shared_cost",
    "voip",
    "personal_number",
    "pager",
    "uan",
    "voicemail",
    "fixed_line",
    "mobile",
)


def normalise_phone(value: str | None, *, region: str = DEFAULT_REGION) -> str | None:
    """`value` in E.164 (« +33612345678 »), or None when empty or not a valid number.

    Mobile and fixed-line numbers alike; `region` is where a number without country code is
    read first.
    """
    if not value:
        return None
    compact = _SEPARATORS.sub("", value.strip())
    national = _NATIONAL.fullmatch(compact)
    if national is not None:
        return _national_e164(national.group(1), region)
    if compact.startswith("00"):
        compact = "+" + compact[2:]
    candidates: list[tuple[str, str | None]] = []
    if compact.startswith("+"):
        candidates.append((compact, None))
    elif _DIGITS.fullmatch(compact):
        if not compact.startswith("0"):
            # Telegram's form: the country code without its « + ».
            candidates.append(("+" + compact, None))
        regions = (region, *(r for r in _NATIONAL_REGIONS if r != region))
        candidates += [(compact, r) for r in regions]
    else:
        return None
    for text, text_region in candidates:
        try:
            number = phonenumbers.parse(text, text_region)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_valid_number(number):
            formatted = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
            return formatted if len(formatted) <= _LONGEST_E164 else None
    return None


def _national_e164(digits: str, region: str) -> str | None:
    """A number dialled « 0 » + `digits`, in E.164: the first region (`region`, then those
    numbered the same way) where it is valid, exactly as `phonenumbers` would decide."""
    for candidate in (region, *(r for r in _NATIONAL_REGIONS if r != region)):
        validator = _validator(candidate)
        if validator is not None and validator[1](digits):
            return f"+{validator[0]}{digits}"
    return None


@cache
def _validator(region: str) -> tuple[int, Callable[[str], bool]] | None:
    """The country code of `region` and a test of a national number's validity there, built
    once from `phonenumbers`' metadata (its `is_valid_number`, without parsing)."""
    metadata = phonenumbers.PhoneMetadata.metadata_for_region(region)
    if metadata is None or metadata.country_code is None or metadata.general_desc is None:
        return None
    general = metadata.general_desc
    descriptions = [getattr(metadata, name) for name in _NUMBER_TYPES]
    tests = [
        (frozenset(d.possible_length or ()), re.compile(d.national_number_pattern))
        for d in descriptions
        if d is not None and d.national_number_pattern
    ]
    general_lengths = frozenset(general.possible_length or ())
    general_pattern = re.compile(general.national_number_pattern or "$^")

    def valid(digits: str) -> bool:
        if general_lengths and len(digits) not in general_lengths:
            return False
        if not general_pattern.fullmatch(digits):
            return False
        return any(
            (not lengths or len(digits) in lengths) and pattern.fullmatch(digits)
            for lengths, pattern in tests
        )

    return metadata.country_code, valid


def phone_suffix(e164: str | None) -> str | None:
    """The last two digits of a number: all an audit event may say of it."""
    return e164[-2:] if e164 else None
