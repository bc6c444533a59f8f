"""Who is who between a new extraction and the registry: pupils, guardians' children, guardians.

Pure functions on in-memory records: the importer loads the school once and writes once.
Pupil and guardian keys are database ids, or negative numbers for records this import creates.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date

from bot.services.roster.classes import class_label_key, levels_in_label
from bot.services.roster.onde.normalise import name_key
from bot.services.roster.onde.reader import ChildRef, PupilRow

# --- Pupils: the new extraction against the registry -----------------------------------------


@dataclass(frozen=True, slots=True)
class KnownPupil:
    """A pupil already in the registry, as far as recognising them goes."""

    id: int
    ine: str | None
    identity: tuple[str, str, date | None]  # family name key, first name key, birth date
    address_key: str | None
    archived: bool


def match_pupils(rows: Sequence[PupilRow], known: Iterable[KnownPupil]) -> dict[int, int]:
    """Row index → id of the registry pupil it describes (rows left out are new pupils).

    By INE first; then, where either side has no INE, by names and birth date, homonyms
    told apart by address. One-to-one.
    """
    by_ine: dict[str, KnownPupil] = {}
    by_identity: dict[tuple[str, str, date | None], list[KnownPupil]] = defaultdict(list)
    for pupil in sorted(known, key=lambda p: p.id):
        if pupil.ine:
            by_ine.setdefault(pupil.ine, pupil)
        by_identity[pupil.identity].append(pupil)
    matches: dict[int, int] = {}
    taken: set[int] = set()
    for index, row in enumerate(rows):
        if row.ine and row.ine in by_ine:
            pupil = by_ine[row.ine]
            matches[index] = pupil.id
            taken.add(pupil.id)
    for index, row in enumerate(rows):
        if index in matches:
            continue
        candidates = [
            pupil
            for pupil in by_identity.get(row.identity, ())
            if pupil.id not in taken and (row.ine is None or pupil.ine is None)
        ]
        if not candidates:
            continue
        row_address = row.address_key
        # Same address first, then pupils still enrolled, then the oldest record.
        best = min(
            candidates,
            key=lambda p: (p.address_key != row_address, p.archived, p.id),
        )
        matches[index] = best.id
        taken.add(best.id)
    return matches


# --- Guardians' children: a child named on a guardian row → a pupil ---------------------------


@dataclass(frozen=True, slots=True)
class PupilCandidate:
    """A pupil a guardian's child may be, with what tells homonyms apart."""

    key: int
    first_name: str  # name keys
    names: tuple[str, ...]  # family name and usage name
    class_key: str | None
    class_levels: tuple[str, ...]
    level: str | None
    address_key: str | None


@dataclass(frozen=True, slots=True)
class ChildMatch:
    """The pupil a child is, or why there is none: no pupil of that name, or several."""

    child: ChildRef
    pupil_key: int | None
    candidates: int  # how many pupils remained possible (0: unknown; 2+: ambiguous)


class PupilDirectory:
    """The pupils a guardians file is linked against, indexed by first name and name."""

    def __init__(self, candidates: Iterable[PupilCandidate]) -> None:
        self._index: dict[tuple[str, str], list[PupilCandidate]] = defaultdict(list)
        self.size = 0
        for candidate in candidates:
            self.size += 1
            for name in set(candidate.names):
                if name:
                    self._index[(candidate.first_name, name)].append(candidate)

    def resolve(self, child: ChildRef, guardian_address: str | None) -> ChildMatch:
        """The pupil `child` is: by names, then class label, then level, then address."""
        first = name_key(child.first_name)
        candidates: list[PupilCandidate] = []
        seen: set[int] = set()
        for raw in (child.usage_name, child.last_name):
            for candidate in self._index.get((first, name_key(raw)), ()) if raw else ():
                if candidate.key not in seen:
                    seen.add(candidate.key)
                    candidates.append(candidate)
        if len(candidates) > 1 and child.class_label:
            # The guardians file's « Classes enfants » may differ from « Libellé classe »
            # (« CLASSE  CE2 » for « Classe de M Machin »): label first, then its levels.
            label_key = class_label_key(child.class_label)
            candidates = _narrow(candidates, lambda c: c.class_key == label_key)
            if len(candidates) > 1:
                levels = set(levels_in_label(child.class_label))
                candidates = _narrow(
                    candidates,
                    lambda c: (
                        (c.level in levels) if c.level else bool(levels & set(c.class_levels))
                    ),
                )
        if len(candidates) > 1 and guardian_address:
            candidates = _narrow(candidates, lambda c: c.address_key == guardian_address)
        if len(candidates) == 1:
            return ChildMatch(child, candidates[0].key, 1)
        return ChildMatch(child, None, len(candidates))


def _narrow(
    candidates: list[PupilCandidate], keep: Callable[[PupilCandidate], bool]
) -> list[PupilCandidate]:
    """The candidates that pass `keep`, unless none does (the clue then tells nothing)."""
    kept = [candidate for candidate in candidates if keep(candidate)]
    return kept or candidates


# --- Guardians: each row of the new extraction against the registry's guardians --------------


@dataclass(frozen=True, slots=True)
class GuardianIdentity:
    """A guardian as far as recognising them across extractions goes."""

    key: int  # registry id, or the row's index for an incoming row
    name_key: tuple[str, str]  # family name, first name
    email: str | None
    children: frozenset[int]  # pupil keys


def match_guardians(
    incoming: Sequence[GuardianIdentity], known: Sequence[GuardianIdentity]
) -> dict[int, int]:
    """Incoming key → registry id, one-to-one and greedy, most certain pairs first.

    1. same names and at least one common child (the most common children win);
    2. same e-mail address and a common child (the guardian's name changed);
    3. same names, when exactly one such guardian is left on each side (children changed).
    Two rows with the same name are two guardians: each registry guardian matches once.
    """
    matches: dict[int, int] = {}
    taken: set[int] = set()

    def assign(pairs: list[tuple[tuple[int, int, int], int, int]]) -> None:
        for _, incoming_key, known_key in sorted(pairs):
            if incoming_key not in matches and known_key not in taken:
                matches[incoming_key] = known_key
                taken.add(known_key)

    known_by_name: dict[tuple[str, str], list[GuardianIdentity]] = defaultdict(list)
    known_by_email: dict[str, list[GuardianIdentity]] = defaultdict(list)
    for guardian in known:
        known_by_name[guardian.name_key].append(guardian)
        if guardian.email:
            known_by_email[guardian.email.casefold()].append(guardian)

    # Sorting by (-common children, registry id, row order) makes the outcome repeatable.
    pairs: list[tuple[tuple[int, int, int], int, int]] = []
    for row in incoming:
        for guardian in known_by_name.get(row.name_key, ()):
            common = len(row.children & guardian.children)
            if common:
                pairs.append(((-common, guardian.key, row.key), row.key, guardian.key))
    assign(pairs)

    pairs = []
    for row in incoming:
        if row.key in matches or not row.email:
            continue
        for guardian in known_by_email.get(row.email.casefold(), ()):
            common = len(row.children & guardian.children)
            if common and guardian.key not in taken:
                pairs.append(((-common, guardian.key, row.key), row.key, guardian.key))
    assign(pairs)

    rows_by_name: dict[tuple[str, str], list[GuardianIdentity]] = defaultdict(list)
    for row in incoming:
        if row.key not in matches:
            rows_by_name[row.name_key].append(row)
    for name, rows in rows_by_name.items():
        left = [guardian for guardian in known_by_name.get(name, ()) if guardian.key not in taken]
        if len(rows) == 1 and len(left) == 1:
            matches[rows[0].key] = left[0].key
            taken.add(left[0].key)
    return matches


__all__ = [
    "ChildMatch",
    "GuardianIdentity",
    "KnownPupil",
    "PupilCandidate",
    "PupilDirectory",
    "match_guardians",
    "match_pupils",
]
