"""Class labels: their key and the levels they name (docs/PRODUCT.md: labels are free text)."""

from __future__ import annotations

import pytest

from bot.services.roster.classes import (
    LEVELS,
    class_label_key,
    levels_in_label,
    levels_text,
    normalise_level,
)


@pytest.mark.parametrize(
    ("label", "levels"),
    [
        ("PS-MS Mme Roux", ["PS", "MS"]),
        ("CE2-CM1", ["CE2", "CM1"]),
        ("CM1/2", ["CM1", "CM2"]),
        ("CE1/2 D", ["CE1", "CE2"]),
        ("CLASSE  CE2", ["CE2"]),
        ("GS M. Petit", ["GS"]),
        ("CM2 Mme N'Diaye", ["CM2"]),
        ("CP A", ["CP"]),
        ("TPS/PS", ["TPS", "PS"]),
        ("ce 1", ["CE1"]),
        ("Grande section", ["GS"]),
        ("Cours moyen 2", ["CM2"]),
        ("Toute petite section", ["TPS"]),
        ("CM1-CM2", ["CM1", "CM2"]),
        ("Classe de M Machin", []),
        ("", []),
    ],
)
def test_levels_in_label(label: str, levels: list[str]) -> None:
    assert levels_in_label(label) == levels


def test_a_class_number_after_a_level_is_not_a_level() -> None:
    # « CE1 2 » is the second CE1 class, not a CE1-CE2 class.
    assert levels_in_label("CE1 2") == ["CE1"]


def test_levels_are_listed_in_school_order() -> None:
    assert levels_in_label("CM1 / CE2") == ["CE2", "CM1"]
    assert levels_text(["CM2", "CP", "CP", "PS"]) == "PS,CP,CM2"
    assert LEVELS == ("TPS", "PS", "MS", "GS", "CP", "CE1", "CE2", "CM1", "CM2")


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("CLASSE  CE2", "classe ce2"),
        ("Classe de Mme Léa", "CLASSE DE MME LEA"),
        ("CE2 - CM1", "ce2-cm1"),
        ("CM2 Mme N’Diaye", "CM2 Mme N'Diaye"),
        (" PS-MS  Mme Roux ", "ps-ms mme roux"),
    ],
)
def test_class_label_key_ignores_case_accents_and_spaces(first: str, second: str) -> None:
    assert class_label_key(first) == class_label_key(second)


def test_class_label_key_keeps_distinct_classes_apart() -> None:
    assert class_label_key("CP A") != class_label_key("CP B")
    assert class_label_key("CE1/2") != class_label_key("CE1 2")


@pytest.mark.parametrize(
    ("value", "level"),
    [("CE1", "CE1"), ("ce1", "CE1"), (" CM 2 ", "CM2"), ("GS", "GS"), ("CE1/2", None), ("X", None)],
)
def test_normalise_level(value: str, level: str | None) -> None:
    assert normalise_level(value) == level
