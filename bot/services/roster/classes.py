"""Class labels and school levels: the normalised key of a label and the levels it names.

Used by the ONDE import (to key classes and to tell homonym pupils apart) and to resolve the
class arguments directors type (« /responsables cm1 », « ce2-cm1 »).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from functools import lru_cache

# School order, from the youngest pupils; statistics and class levels are listed in this order.
LEVELS: tuple[str, ...] = ("TPS", "PS", "MS", "GS", "CP", "CE1", "CE2", "CM1", "CM2")
_LEVEL_RANK = {level: rank for rank, level in enumerate(LEVELS)}

_SPACES = re.compile(r"\s+")
# « CE2 - CM1 » and « CE2-CM1 » name the same class.
_SPACED_SEPARATORS = re.compile(r"\s*([-/])\s*")
_APOSTROPHES = str.maketrans({"’": "'", "‘": "'", "`": "'", "´": "'"})

# Spelled-out levels, as some schools write them in class labels; longest phrases first so
# « toute petite section » is not read as « petite section ».
_LONG_FORMS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(rf"\b{pattern}\b"), f" {level} ")
    for pattern, level in (
        (r"TOUTE\s+PETITE\s+SECTION", "TPS"),
        (r"PETITE\s+SECTION", "PS"),
        (r"MOYENNE\s+SECTION", "MS"),
        (r"GRANDE\s+SECTION", "GS"),
        (r"COURS\s+PREPARATOIRE", "CP"),
        (r"COURS\s+ELEMENTAIRE\s+(?:1|PREMIERE\s+ANNEE)", "CE1"),
        (r"COURS\s+ELEMENTAIRE\s+(?:2|DEUXIEME\s+ANNEE)", "CE2"),
        (r"COURS\s+MOYEN\s+(?:1|PREMIERE\s+ANNEE)", "CM1"),
        (r"COURS\s+MOYEN\s+(?:2|DEUXIEME\s+ANNEE)", "CM2"),
    )
)
_TOKENS = re.compile(r"[A-Z]+[0-9]*|[0-9]+")
_SINGLE_LEVELS = frozenset({"TPS", "PS", "MS", "GS", "CP"})
_NUMBERED = re.compile(r"^(CE|CM)([12]{1,2})$")
# Only these separators continue a level (« CM1/2 », « CE1-2 »): « CE1 2 » is class n° 2.
_CONTINUATION = re.compile(r"^\s*[-/&]\s*$")


def _strip_accents(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


@lru_cache(maxsize=4096)
def class_label_key(label: str) -> str:
    """The key that identifies a class label: case-, accent- and space-insensitive.

    « CLASSE  CE2 » → « classe ce2 »; « CE2 - CM1 » → « ce2-cm1 »; « Mme N’Diaye » →
    « mme n'diaye ».
    """
    text = _strip_accents(label.translate(_APOSTROPHES)).casefold()
    text = _SPACES.sub(" ", text).strip()
    return _SPACED_SEPARATORS.sub(r"\1", text)


def sort_levels(levels: Iterable[str]) -> list[str]:
    """Known levels in school order, without duplicates; unknown values are dropped."""
    return sorted({level for level in levels if level in _LEVEL_RANK}, key=_LEVEL_RANK.__getitem__)


def levels_in_label(label: str | None) -> list[str]:
    """The levels a class label names, in school order.

    « PS-MS Mme Roux » → [PS, MS]; « CM1/2 » → [CM1, CM2]; « CE1/2 D » → [CE1, CE2];
    « CLASSE  CE2 » → [CE2]; « Grande section » → [GS]; « Classe de M Machin » → [].
    """
    return list(_levels_in_label(label)) if label else []


@lru_cache(maxsize=4096)
def _levels_in_label(label: str) -> tuple[str, ...]:
    # Cached: an import asks about the same few dozen labels tens of thousands of times.
    text = _strip_accents(label).upper()
    for pattern, replacement in _LONG_FORMS:
        text = pattern.sub(replacement, text)
    found: list[str] = []
    # The prefix (CE or CM) of the level just read, while a bare digit may still extend it.
    prefix: str | None = None
    previous_end = 0
    tokens = list(_TOKENS.finditer(text))
    index = 0
    while index < len(tokens):
        match = tokens[index]
        token = match.group()
        between = text[previous_end : match.start()]
        previous_end = match.end()
        index += 1
        numbered = _NUMBERED.match(token)
        if token in _SINGLE_LEVELS:
            found.append(token)
            prefix = None
        elif numbered:
            prefix = numbered.group(1)
            found.extend(prefix + digit for digit in numbered.group(2))
        elif token in ("CE", "CM") and index < len(tokens) and tokens[index].group() in ("1", "2"):
            # « CE 1 »: the level is written in two tokens.
            found.append(token + tokens[index].group())
            previous_end = tokens[index].end()
            index += 1
            prefix = token
        elif token in ("1", "2") and prefix and _CONTINUATION.match(between):
            found.append(prefix + token)
        else:
            prefix = None
    return tuple(sort_levels(found))


def normalise_level(value: str | None) -> str | None:
    """The level a « Niveau » cell names (« CE1 », « ce 1 », « Cours moyen 2 »), or None."""
    levels = levels_in_label(value)
    return levels[0] if len(levels) == 1 else None


def levels_text(levels: Iterable[str]) -> str:
    """Levels as stored in `SchoolClass.levels`: school order, comma-separated (« CE2,CM1 »)."""
    return ",".join(sort_levels(levels))
