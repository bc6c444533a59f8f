"""Telephone numbers in E.164: every way ONDE, families and Telegram write them."""

from __future__ import annotations

import random

import phonenumbers
import pytest

from bot.services.accounts import normalise_phone


@pytest.mark.parametrize(
    "value",
    [
        "+33 6 12 34 56 78",
        "+33612345678",
        "0033612345678",
        "00 33 6 12 34 56 78",
        "33612345678",  # Telegram's shared contact: the country code, no « + »
        "06 12 34 56 78",  # ONDE
        "0612345678",
        "06.12.34.56.78",
        "06-12-34-56-78",
        " 06 12 34 56 78 ",
        "06\u00a012\u00a034\u00a056\u00a078",  # non-breaking spaces from a spreadsheet
        "+33 (0)6 12 34 56 78",
        "612345678",  # the leading 0 lost by a spreadsheet
    ],
)
def test_every_way_of_writing_a_french_mobile_gives_the_same_number(value: str) -> None:
    assert normalise_phone(value) == "+33612345678"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("01 42 34 56 78", "+33142345678"),  # fixed lines normalise too
        ("04.72.12.34.56", "+33472123456"),
        ("09 51 23 45 67", "+33951234567"),
        ("07 81 23 45 67", "+33781234567"),
        ("0690 12 34 56", "+590690123456"),  # Guadeloupe, dialled as in France
        ("0692 12 34 56", "+262692123456"),  # La Réunion
        ("+44 7911 123456", "+447911123456"),
        ("447911123456", "+447911123456"),  # a foreign Telegram number
        ("+32 470 12 34 56", "+32470123456"),
    ],
)
def test_other_numbers_keep_their_country(value: str, expected: str) -> None:
    assert normalise_phone(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        "   ",
        "12",
        "06 12 34 56",  # too short
        "06 12 34 56 78 90",  # too long
        "07 00 26 16 77",  # 070… is not allocated
        "00 00 00 00 00",
        "+33 0 00 00 00 00",
        "abc",
        "06 12 AB 56 78",
        "parent@example.org",
        "+",
    ],
)
def test_invalid_or_empty_values_give_none(value: str | None) -> None:
    assert normalise_phone(value) is None


def test_the_fast_path_for_onde_numbers_decides_as_phonenumbers_does() -> None:
    # « 0 » and nine digits skip parsing (the import reads tens of thousands): same answers.
    regions = ("FR", "GP", "BL", "MF", "MQ", "GF", "RE", "YT", "PM")

    def reference(value: str) -> str | None:
        for region in regions:
            number = phonenumbers.parse(value, region)
            if phonenumbers.is_valid_number(number):
                return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
        return None

    rng = random.Random(10)
    samples = [f"0{rng.choice('1234567989')}{rng.randrange(10**8):08d}" for _ in range(3000)]
    samples += ["0690010860", "0692698343", "0639713159", "0594123456", "0508412345"]
    assert [normalise_phone(value) for value in samples] == [reference(v) for v in samples]
