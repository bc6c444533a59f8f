"""The most common passwords, refused when a family chooses its own on the portal (activation,
reset, « Mon compte »): those are what anyone guessing tries first, whatever the length rules.

The list (`common_passwords.txt`, a few hundred entries, French ones included) is compared
after the disguises people use to pass the length and mixing rules: case and accents are
ignored, separators (« Mot-de-passe ») dropped, the digits and symbols added at either end
(« Soleil2024! ») stripped, and the usual letter swaps (« P@ssw0rd ») undone.
"""

from __future__ import annotations

import re
import unicodedata
from functools import cache
from pathlib import Path

COMMON_PASSWORDS_FILE = Path(__file__).with_name("common_passwords.txt")

_SEPARATORS = re.compile(r"[\s\-_.,;:'’/\\|+*#~^`\"]+")
# What people add at either end of a word: digits, symbols (« 2024! »).
_ADDED = re.compile(r"^[^a-z]+|[^a-z]+$")
_ADDED_AROUND_SWAPS = re.compile(r"^[\d\W_]+|[\d\W_]+$")
# The swaps that turn a word into « P@ssw0rd » or « S0le1l », undone on the word part.
_UNSWAP = str.maketrans({"@": "a", "4": "a", "0": "o", "3": "e", "1": "i", "!": "i", "$": "s"})


def normalised(text: str) -> str:
    """`text` without case, accents or separators: « Mot-de-Passé » → « motdepasse »."""
    decomposed = unicodedata.normalize("NFKD", text)
    bare = "".join(char for char in decomposed if not unicodedata.combining(char))
    return _SEPARATORS.sub("", bare.casefold())


@cache
def common_passwords() -> frozenset[str]:
    """The list, normalised (one entry a line; lines starting with « # » are comments)."""
    entries = COMMON_PASSWORDS_FILE.read_text(encoding="utf-8").splitlines()
    return frozenset(
        normalised(entry) for entry in entries if entry.strip() and not entry.startswith("#")
    )


def _candidates(password: str) -> set[str]:
    """The forms of `password` compared with the list: as typed (normalised), its word part
    without the digits and symbols added at the ends, and both with the letter swaps undone."""
    compact = normalised(password)
    # Undo the swaps inside the word only: « P@ssw0rd2024 » → « password », not « passwordzoz4 ».
    word = _ADDED_AROUND_SWAPS.sub("", compact).translate(_UNSWAP)
    forms = {compact, _ADDED.sub("", compact), word, _ADDED.sub("", word)}
    return {form for form in forms if form}


def is_common_password(password: str) -> bool:
    """Whether `password` is one of the most common ones, once its disguises are undone."""
    return not _candidates(password).isdisjoint(common_passwords())
