"""Recognise an ONDE extraction by its header, whatever the variant, and locate its columns.

Column names are compared once folded (case, accents, spaces and punctuation ignored), so
« Nom élève », « Nom Elève », « NOM_ELEVE » and «  Cycle » all match.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.services.roster.onde.normalise import name_key

# Canonical field -> folded column names seen in ONDE files (current and older) and in the
# fixtures of other school software.
PUPIL_COLUMNS: dict[str, tuple[str, ...]] = {
    "last_name": ("nomeleve", "nomdefamilleeleve", "nomdenaissanceeleve"),
    "usage_name": ("nomdusageeleve", "nomusageeleve"),
    "first_name": ("prenomeleve", "prenomdeleleve"),
    "birth_date": ("datenaissance", "datedenaissance", "nele", "neele"),
    "sex": ("sexe", "genre"),
    "ine": ("ine", "ineeleve", "identifiantnationaleleve"),
    "address": ("adresse1", "adresseeleve"),
    "postcode": ("cp1", "codepostal1"),
    "city": ("commune1", "ville1"),
    "level": ("niveau", "niveaueleve"),
    "class_label": ("libelleclasse", "classe", "libelledelaclasse", "classeeleve"),
    "class_onde_id": ("identifiantclasse", "idclasse"),
}
GUARDIAN_COLUMNS: dict[str, tuple[str, ...]] = {
    "civility": ("civiliteresponsable", "civilite"),
    "usage_name": ("nomusageresponsable", "nomdusageresponsable"),
    "last_name": ("nomresponsable", "nomdefamilleresponsable", "nomdenaissanceresponsable"),
    "first_name": ("prenomresponsable",),
    "address": ("adresseresponsable",),
    "postcode": ("cpresponsable", "codepostalresponsable"),
    "city": ("communeresponsable", "villeresponsable"),
    "country": ("pays", "paysresponsable"),
    "email": ("courriel", "courrielresponsable", "email", "mel", "adressemail", "adressecourriel"),
    "phone_home": ("telephonedomicile", "teldomicile"),
    "phone_work": ("telephonetravail", "teltravail", "telephoneprofessionnel"),
    "phone_mobile": ("telephoneportable", "telportable", "telephonemobile"),
}
# One group of these per child, repeated along the row.
CHILD_COLUMNS: dict[str, tuple[str, ...]] = {
    "child_usage_name": ("nomdusageenfant", "nomusageenfant"),
    "child_last_name": ("nomdefamilleenfant", "nomenfant"),
    "child_first_name": ("prenomenfant",),
    "child_class": ("classesenfants", "classeenfant", "classesenfant", "classeenfants"),
}

# How the columns are named to the user when one is missing (ONDE's current spelling).
COLUMN_TITLES: dict[str, str] = {
    "last_name": "Nom",
    "first_name": "Prénom",
    "birth_date": "Date naissance",
    "class_label": "Libellé classe",
    "child_first_name": "Prénom enfant",
    "child_last_name": "Nom de famille enfant",
}


def _reverse(columns: dict[str, tuple[str, ...]]) -> dict[str, str]:
    return {alias: field for field, aliases in columns.items() for alias in aliases}


_PUPIL_ALIASES = _reverse(PUPIL_COLUMNS)
_GUARDIAN_ALIASES = _reverse(GUARDIAN_COLUMNS)
_CHILD_ALIASES = _reverse(CHILD_COLUMNS)

# Columns that only one category has: two of them are enough to recognise the category.
_PUPIL_MARKERS = frozenset({"last_name", "usage_name", "first_name", "birth_date", "class_label"})
_GUARDIAN_MARKERS = frozenset(
    {"last_name", "usage_name", "first_name", "civility", "child_first_name", "child_last_name"}
)


def column_key(title: str) -> str:
    """A column title as compared: folded, without spaces or punctuation."""
    return name_key(title.replace("\ufeff", ""))


@dataclass(frozen=True)
class PupilLayout:
    """Where each field of the Élèves extraction is, by column index."""

    columns: dict[str, int]
    width: int  # number of columns in the header

    @property
    def missing(self) -> list[str]:
        """Required fields the header lacks."""
        required = ("first_name", "birth_date", "class_label")
        missing = [field for field in required if field not in self.columns]
        if "last_name" not in self.columns and "usage_name" not in self.columns:
            missing.insert(0, "last_name")
        return missing


@dataclass(frozen=True)
class GuardianLayout:
    """Where each field of the Responsables extraction is, child groups included."""

    columns: dict[str, int]
    width: int
    group_starts: tuple[int, ...]  # column of each child group the header lists
    group_fields: dict[str, int]  # child field -> offset within a group
    group_size: int
    # True when the child groups end the row: rows may then carry more groups than the header.
    open_ended: bool

    @property
    def missing(self) -> list[str]:
        missing = []
        if "last_name" not in self.columns and "usage_name" not in self.columns:
            missing.append("last_name")
        if "first_name" not in self.columns:
            missing.append("first_name")
        if "child_first_name" not in self.group_fields:
            missing.append("child_first_name")
        if not {"child_last_name", "child_usage_name"} & self.group_fields.keys():
            missing.append("child_last_name")
        return missing

    def groups(self, row_length: int) -> list[int]:
        """Start column of every child group a row of `row_length` fields may hold."""
        starts = list(self.group_starts)
        if self.open_ended and starts:
            start = starts[-1] + self.group_size
            while start < row_length:
                starts.append(start)
                start += self.group_size
        return starts


def recognise(header: list[str]) -> PupilLayout | GuardianLayout | None:
    """The layout of an Élèves or Responsables header, or None when it is neither."""
    keys = [column_key(title) for title in header]
    pupil: dict[str, int] = {}
    guardian: dict[str, int] = {}
    child_positions: list[tuple[int, str]] = []
    for index, key in enumerate(keys):
        if key in _PUPIL_ALIASES:
            pupil.setdefault(_PUPIL_ALIASES[key], index)
        if key in _GUARDIAN_ALIASES:
            guardian.setdefault(_GUARDIAN_ALIASES[key], index)
        if key in _CHILD_ALIASES:
            child_positions.append((index, _CHILD_ALIASES[key]))
    child_fields = {field for _, field in child_positions}
    pupil_score = len(_PUPIL_MARKERS & pupil.keys())
    guardian_score = len(_GUARDIAN_MARKERS & (guardian.keys() | child_fields))
    if max(pupil_score, guardian_score) < 2:
        return None
    if pupil_score >= guardian_score:
        return PupilLayout(columns=pupil, width=len(header))
    return _guardian_layout(guardian, child_positions, len(header))


def _guardian_layout(
    columns: dict[str, int], child_positions: list[tuple[int, str]], width: int
) -> GuardianLayout:
    if not child_positions:
        return GuardianLayout(columns, width, (), {}, 0, open_ended=False)
    # The first group runs from the first child column until a child field repeats.
    first = child_positions[0][0]
    group_fields: dict[str, int] = {}
    size = 0
    for index, field in child_positions:
        if field in group_fields:
            break
        group_fields[field] = index - first
        size = index - first + 1
    starts = [first]
    # Further groups the header lists, where the same fields sit at the same offsets.
    position = {index: field for index, field in child_positions}
    start = first + size
    while all(position.get(start + offset) == field for field, offset in group_fields.items()):
        starts.append(start)
        start += size
    open_ended = start >= width
    return GuardianLayout(columns, width, tuple(starts), group_fields, size, open_ended)
