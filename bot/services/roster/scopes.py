"""What a class argument names: a class, a level or the whole school.

Class arguments match a class label first (case-, accent- and space-insensitive), then a
level, then `ecole`; an unknown one raises `UnknownClassError` carrying the known classes.
"""

from __future__ import annotations

import enum
import re
import unicodedata
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlmodel import Session, col

from bot.i18n import _
from bot.services.errors import ServiceError, quoted_input
from bot.services.roster.classes import class_label_key, normalise_level, sort_levels
from bot.services.roster.statistics import (
    SchoolStatistics,
    level_sort_key,
    parse_levels,
    school_statistics,
)
from models import SchoolClass
from models.queries import (
    ClassRow,
    active_classes,
    enrolled_levels,
    in_chunks,
)


class ScopeKind(enum.StrEnum):
    SCHOOL = "school"
    CLASS = "class"
    LEVEL = "level"


@dataclass(frozen=True)
class ClassInfo:
    """An active class of the school."""

    id: int
    label: str
    levels: tuple[str, ...] = ()


@dataclass(frozen=True)
class Scope:
    """What a class argument named: one class, one level, or the whole school."""

    kind: ScopeKind
    class_id: int | None = None
    level: str | None = None
    label: str = ""  # the class label or the level; empty for the school

    @property
    def token(self) -> str:
        """A short form for callback data: « e », « c12 », « lCM1 »."""
        if self.kind is ScopeKind.CLASS:
            return f"c{self.class_id}"
        if self.kind is ScopeKind.LEVEL:
            return f"l{self.level}"
        return "e"

    @property
    def argument(self) -> str:
        """How to type this scope after a command: « CE2-CM1 », « niveau CM1 » (a class may be
        labelled « CM1 » too), « ecole »."""
        if self.kind is ScopeKind.LEVEL:
            return f"niveau {self.level}"
        return self.label if self.kind is ScopeKind.CLASS else "ecole"


SCHOOL_SCOPE = Scope(ScopeKind.SCHOOL)


@dataclass(frozen=True)
class ResolvedScope:
    """A scope with what the bot says before acting: « Classe CE2-CM1 — 23 élèves, 38
    responsables ». `statistics` covers the scope (its total, classes and levels)."""

    scope: Scope
    pupils: int
    guardians: int
    classes: tuple[str, ...]  # for a level: the classes that have pupils of that level
    statistics: SchoolStatistics


class UnknownClassError(ServiceError):
    """A class argument that names no class or level of the school."""

    def __init__(self, text: str, classes: Sequence[ClassInfo], levels: Sequence[str]) -> None:
        super().__init__(_("Unknown class: « {text} »").format(text=quoted_input(text)))
        self.text = text
        self.classes = list(classes)
        self.levels = list(levels)


# Words that name the whole school, compared once folded (see `fold_words`).
_SCHOOL_WORDS = frozenset(
    {
        "ecole",
        "l_ecole",
        "toute_l_ecole",
        "tous",
        "toutes",
        "tout",
        "all",
        "school",
        "etablissement",
    }
)
_NON_ALNUM = re.compile(r"[^0-9a-z]+")
_LEVEL_PREFIX = re.compile(r"^(?:niveau|level|niv\.?)\s*", re.IGNORECASE)


def fold_words(text: str) -> str:
    """Lower-case ASCII words joined by « _ »: « Non notifié » → « non_notifie »."""
    decomposed = unicodedata.normalize("NFKD", text.replace("\ufe0f", ""))
    plain = "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()
    return re.sub(r"[\s'’\-_.]+", "_", plain).strip("_")


def _class_infos(rows: Sequence[ClassRow]) -> list[ClassInfo]:
    infos = [ClassInfo(row.id, row.label, parse_levels(row.levels)) for row in rows]
    infos.sort(
        key=lambda c: (level_sort_key(c.levels[0] if c.levels else None), c.label.casefold())
    )
    return infos


def known_classes(session: Session, *, school_id: int) -> list[ClassInfo]:
    """The school's active classes, in level order."""
    return _class_infos(active_classes(session, school_id))


def known_classes_by_school(
    session: Session, *, school_ids: Sequence[int]
) -> dict[int, list[ClassInfo]]:
    """The active classes of each school, in level order (as `known_classes`), in one query
    per 500 schools; a school without classes is absent."""
    rows: dict[int, list[ClassRow]] = defaultdict(list)
    for chunk in in_chunks(sorted(set(school_ids))):
        statement = select(
            col(SchoolClass.school_id),
            col(SchoolClass.id),
            col(SchoolClass.label),
            col(SchoolClass.label_key),
            col(SchoolClass.levels),
        ).where(col(SchoolClass.school_id).in_(chunk), col(SchoolClass.archived_at).is_(None))
        for school_id, id_, label, key, levels in session.execute(statement):
            rows[school_id].append(
                ClassRow(id=id_, label=label, label_key=key, levels=levels or "")
            )
    return {school_id: _class_infos(found) for school_id, found in rows.items()}


def known_levels(session: Session, *, school_id: int) -> list[str]:
    """The levels taught in the school (its classes' and its pupils'), in school order."""
    levels = set(enrolled_levels(session, school_id))
    for row in active_classes(session, school_id):
        levels.update(parse_levels(row.levels))
    return sort_levels(levels)


def _match_class(rows: Sequence[ClassRow], text: str) -> ClassRow | None:
    key = class_label_key(text)
    exact = [row for row in rows if row.label_key == key or class_label_key(row.label) == key]
    if len(exact) == 1:
        return exact[0]
    # « ce2 cm1 » or « GS M Petit »: compare letters and digits only, if that is unambiguous.
    loose_key = _NON_ALNUM.sub("", key)
    loose = [row for row in rows if _NON_ALNUM.sub("", class_label_key(row.label)) == loose_key]
    return loose[0] if loose_key and len(loose) == 1 else None


def _resolved(session: Session, school_id: int, scope: Scope) -> ResolvedScope:
    statistics = school_statistics(
        session=session, school_id=school_id, class_id=scope.class_id, level=scope.level
    )
    classes = (
        tuple(group.label for group in statistics.classes) if scope.kind is ScopeKind.LEVEL else ()
    )
    return ResolvedScope(
        scope=scope,
        pupils=statistics.total.pupils,
        guardians=statistics.total.accounts,
        classes=classes,
        statistics=statistics,
    )


def resolve_scope(session: Session, *, school_id: int, text: str) -> ResolvedScope:
    """The class, level or whole school that `text` names, with its counts.

    A class label wins over a level (« CM1 » is the class CM1 when there is one, else the
    level); `ecole` names the whole school. Raises `UnknownClassError` otherwise.
    """
    rows = active_classes(session, school_id)
    text = " ".join(text.split())
    row = _match_class(rows, text) if text else None
    if row is not None:
        return _resolved(
            session, school_id, Scope(ScopeKind.CLASS, class_id=row.id, label=row.label)
        )
    if not text or fold_words(text) in _SCHOOL_WORDS:
        return _resolved(session, school_id, SCHOOL_SCOPE)
    # « niveau CM1 » names the level even when a class is labelled « CM1 ».
    level = normalise_level(_LEVEL_PREFIX.sub("", text))
    levels = known_levels(session=session, school_id=school_id)
    if level is not None and level in levels:
        return _resolved(session, school_id, Scope(ScopeKind.LEVEL, level=level, label=level))
    raise UnknownClassError(text, _class_infos(rows), levels)


def scope_from_token(session: Session, *, school_id: int, token: str) -> ResolvedScope:
    """The scope a button carries (`Scope.token`), checked against this school.

    A class of another school, or one archived since the button was sent, raises
    `UnknownClassError` like a mistyped class.
    """
    if token == "e":
        return _resolved(session, school_id, SCHOOL_SCOPE)
    rows = active_classes(session, school_id)
    # ASCII digits only: forged data may carry « ² » or « ٣ », which `int` refuses or reads.
    if token.startswith("c") and token[1:].isascii() and token[1:].isdigit():
        class_id = int(token[1:])
        for row in rows:
            if row.id == class_id:
                scope = Scope(ScopeKind.CLASS, class_id=row.id, label=row.label)
                return _resolved(session, school_id, scope)
    elif token.startswith("l"):
        level = token[1:]
        if level in known_levels(session=session, school_id=school_id):
            return _resolved(session, school_id, Scope(ScopeKind.LEVEL, level=level, label=level))
    raise UnknownClassError(
        token, _class_infos(rows), known_levels(session=session, school_id=school_id)
    )
