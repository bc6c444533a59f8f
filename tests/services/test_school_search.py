"""A family finds its school by UAI (exact, any case) or by words of its name or town, whatever
the accents or the case, best match first."""

from __future__ import annotations

import pytest
from sqlmodel import Session

from bot.services.schools import SchoolMatch, find_schools, school_by_uai
from models import School


@pytest.fixture
def schools(session: Session) -> dict[str, int]:
    rows = [
        School(uai="0751234X", name="École élémentaire Jules Ferry", city="Paris"),
        School(uai="0691234A", name="École maternelle Jules Ferry", city="Lyon"),
        School(uai="0131234B", name="École primaire Les Églantiers", city="Marseille"),
        School(uai="0751111C", name="Groupe scolaire Victor Hugo", city="Paris"),
    ]
    session.add_all(rows)
    session.commit()
    return {row.uai: row.id or 0 for row in rows}


def names(matches: list[SchoolMatch]) -> list[str]:
    return [match.name for match in matches]


@pytest.mark.parametrize("typed", ["0751234X", "0751234x", " 0751234 x "])
def test_a_uai_finds_exactly_its_school_in_any_case(
    session: Session, schools: dict[str, int], typed: str
) -> None:
    assert find_schools(session, text=typed) == [
        SchoolMatch(
            id=schools["0751234X"],
            uai="0751234X",
            name="École élémentaire Jules Ferry",
            city="Paris",
        )
    ]
    match = school_by_uai(session, uai=typed)
    assert match is not None and match.id == schools["0751234X"]


def test_an_unknown_or_malformed_uai_finds_nothing(
    session: Session, schools: dict[str, int]
) -> None:
    assert school_by_uai(session, uai="0759999Z") is None
    assert school_by_uai(session, uai="jules") is None
    assert find_schools(session, text="0759999Z") == []


def test_name_words_match_without_accents_or_case(
    session: Session, schools: dict[str, int]
) -> None:
    assert names(find_schools(session, text="eglantiers")) == ["École primaire Les Églantiers"]
    assert names(find_schools(session, text="VICTOR hugo")) == ["Groupe scolaire Victor Hugo"]


def test_the_school_matching_most_words_comes_first(
    session: Session, schools: dict[str, int]
) -> None:
    found = find_schools(session, text="Jules Ferry Lyon")
    assert [match.uai for match in found] == ["0691234A", "0751234X"]


def test_a_town_finds_its_schools(session: Session, schools: dict[str, int]) -> None:
    assert {match.uai for match in find_schools(session, text="paris")} == {"0751234X", "0751111C"}


def test_common_words_alone_still_find_something_but_never_decide(
    session: Session, schools: dict[str, int]
) -> None:
    assert len(find_schools(session, text="école maternelle")) >= 1
    # « école » is in every name: only « Hugo » tells them apart.
    assert names(find_schools(session, text="école hugo")) == ["Groupe scolaire Victor Hugo"]


def test_nothing_or_gibberish_finds_nothing(session: Session, schools: dict[str, int]) -> None:
    assert find_schools(session, text="") == []
    assert find_schools(session, text="zzzz") == []
    assert find_schools(session, text="?!") == []


def test_the_list_is_limited(session: Session, schools: dict[str, int]) -> None:
    assert len(find_schools(session, text="ecole", limit=2)) == 2
