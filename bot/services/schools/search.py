"""Finding a registered school the way a parent names it: its UAI (« 0751234x »), or words of its
name or town, whatever the accents or the case (« jules ferry », « ecole de Lyon »)."""

from __future__ import annotations

import re
from dataclasses import dataclass

import anyascii
from sqlalchemy import select
from sqlmodel import Session, col

from models import School

_UAI = re.compile(r"^[0-9]{7}[A-Z]$")
# Words in most school names: they tell little apart, so they only count when nothing else does.
_COMMON_WORDS = frozenset(
    {"ecole", "groupe", "scolaire", "primaire", "elementaire", "maternelle", "publique", "privee"}
    | {"de", "du", "des", "la", "le", "les", "l", "d", "a", "au", "aux", "et", "en", "st", "saint"}
)
_MIN_PREFIX = 3


@dataclass(frozen=True, slots=True)
class SchoolMatch:
    """A registered school, as a family picks it from a list."""

    id: int
    uai: str
    name: str
    city: str | None


def _match(school: School) -> SchoolMatch:
    assert school.id is not None
    return SchoolMatch(id=school.id, uai=school.uai, name=school.name, city=school.city)


def _words(text: str) -> list[str]:
    return re.sub(r"[^a-z0-9]+", " ", anyascii.anyascii(text).casefold()).split()


def _matches(word: str, targets: list[str]) -> bool:
    if len(word) < _MIN_PREFIX:
        return word in targets
    return any(target.startswith(word) for target in targets)


def school_by_uai(session: Session, *, uai: str) -> SchoolMatch | None:
    """The school of this UAI (any case, spaces ignored), or None."""
    canonical = "".join(uai.split()).upper()
    if not _UAI.fullmatch(canonical):
        return None
    school = session.execute(
        select(School).where(col(School.uai) == canonical)
    ).scalar_one_or_none()
    return _match(school) if school is not None else None


def find_schools(session: Session, *, text: str, limit: int = 8) -> list[SchoolMatch]:
    """The registered schools `text` may name, best first: the one of that UAI, else those whose
    name or town has the most of its words (a word matches the start of one)."""
    if (exact := school_by_uai(session, uai=text)) is not None:
        return [exact]
    words = list(dict.fromkeys(_words(text)))
    telling = [word for word in words if word not in _COMMON_WORDS] or words
    if not telling or limit <= 0:
        return []
    scored: list[tuple[int, int, str, SchoolMatch]] = []
    for school in session.execute(select(School)).scalars():
        name_words = _words(school.name)
        city_words = _words(school.city or "")
        uai = school.uai.casefold()
        found = sum(
            1
            for word in telling
            if _matches(word, name_words + city_words) or (len(word) >= 4 and uai.startswith(word))
        )
        if found:
            in_name = sum(1 for word in telling if _matches(word, name_words))
            scored.append(
                (-found, -in_name, anyascii.anyascii(school.name).casefold(), _match(school))
            )
    scored.sort(key=lambda item: item[:3])
    return [match for *_, match in scored[:limit]]
