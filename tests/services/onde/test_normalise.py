"""Cell values as the import compares and stores them: names, dates, e-mail addresses."""

from __future__ import annotations

from datetime import date

import pytest
from email_validator import EmailNotValidError, validate_email

from bot.services.roster.onde.normalise import (
    address_key,
    clean,
    name_key,
    normalise_email,
    parse_date,
    parse_sex,
)

ADDRESSES = [
    "Jean.Dupont@FREE.fr",
    "jean@ORANGE.FR",
    "a+b@gmail.com",
    "a_b-c@sub.domain.co.uk",
    "a@BÜCHER.ch",
    "a@xn--bcher-kva.ch",
    "élodie@orange.fr",
    "x@y",
    "a@fr",
    "a..b@free.fr",
    ".a@free.fr",
    "a.@free.fr",
    "a@@free.fr",
    "@free.fr",
    "a@",
    "pas d'adresse",
    "a b@free.fr",
    "a@-free.fr",
    "a@free-.fr",
    "a@free.fr.",
    "a@free.123",
    "a@[1.2.3.4]",
    "a@localhost",
    "a@x.test",
    "a@x.invalid",
    "user@mail.onion",
    "a" * 64 + "@free.fr",
    "a" * 65 + "@free.fr",
    "a@" + "b" * 240 + ".fr",
    "a@sub." + "c" * 64 + ".fr",
]


def _library(address: str) -> str | None:
    try:
        return validate_email(address, check_deliverability=False).normalized
    except EmailNotValidError:
        return None


@pytest.mark.parametrize("address", ADDRESSES)
def test_email_normalisation_is_exactly_email_validators(address: str) -> None:
    # The importer checks each domain once and common local parts itself: same verdicts.
    assert normalise_email(address) == _library(address)


def test_email_domains_are_lower_cased_not_local_parts() -> None:
    assert normalise_email("Jean.Dupont@FREE.FR") == "Jean.Dupont@free.fr"


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("Saint-Exupéry", "SAINT EXUPERY"),
        ("N'Diaye", "ndiaye"),
        ("Jean-Pierre", "Jean Pierre"),
        ("Œuvray", "OEUVRAY"),
        ("Anaïs", "ANAIS"),
    ],
)
def test_names_compare_without_case_accents_spaces_or_hyphens(first: str, second: str) -> None:
    assert name_key(first) == name_key(second) != ""


def test_dates_in_both_onde_formats() -> None:
    assert parse_date("17/09/2021") == parse_date("2021-09-17") == date(2021, 9, 17)
    assert parse_date("7/9/2021") == date(2021, 9, 7)
    assert parse_date("2021-09-17 00:00:00") == date(2021, 9, 17)
    assert parse_date("31/02/2021") is None
    assert parse_date("2021/09/17") is None


def test_cells_are_trimmed_and_spaces_collapsed() -> None:
    assert clean("  CLASSE  CE2 ") == "CLASSE CE2"
    assert clean("Léa\u00a0DUBOIS") == "Léa DUBOIS"
    assert clean("   ") is None and clean("") is None


def test_sex_letters() -> None:
    assert [parse_sex(v) for v in ("M", "H", "F", "f", "", "X")] == ["M", "M", "F", "F", None, None]


def test_addresses_compare_loosely() -> None:
    assert address_key("12, Rue de l'Église", "75011") == address_key("12 rue de l Eglise", "75011")
    assert address_key("12 rue Haute", "75011") != address_key("12 rue Haute", "69003")
    assert address_key("", "75011") is None
