"""EduConnect identifiers: « prénom.nom » in lower-case ASCII, numbered to stay unique.

Examples from the ministry's guide: ``celine.dupont114``, ``a.cosams``, ``g.reabu5``. An
identifier is unique across the whole deployment and never reused: accounts are never deleted,
so the set of identifiers ever issued is the account table itself.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence

from anyascii import anyascii
from sqlalchemy import func
from sqlmodel import Session, col, select

from models import Account
from models.queries import in_chunks

# Longest identifier we issue, number included; the column allows 64.
MAX_LENGTH = 40
_NON_LETTERS = re.compile(r"[^a-z]+")
# Particles written apart (« de La Fontaine ») are kept, glued: « delafontaine », as the
# official tool does; hyphens and apostrophes disappear the same way (« dalmeidanunez »).


def _fold(text: str) -> str:
    # Letters and their accents only: digits would blur the homonym number, and symbols would
    # be spelled out by anyascii (an emoji becomes « slightsmile »).
    letters = "".join(char for char in text if unicodedata.category(char)[0] in "LM")
    # anyascii turns ß→ss, œ→oe, Ø→O, ñ→n, ı→i, Ł→L; whatever it spells with non-letters goes.
    return _NON_LETTERS.sub("", anyascii(letters).lower())


def identifier_base(first_name: str, last_name: str) -> str:
    """The identifier before numbering: folded first name + "." + folded surname.

    A first name that folds to nothing (or is absent) is left out, keeping just the surname.
    """
    first = _fold(first_name)
    last = _fold(last_name) or "responsable"
    # Keep room for a number of up to 4 digits.
    budget = MAX_LENGTH - 4
    if not first:
        return last[:budget]
    if len(first) + 1 + len(last) > budget:
        # Shorten the first name to its initial before touching the surname (« a.cosams »).
        first = first[0]
        last = last[: budget - 2]
    return f"{first}.{last}"


def _taken_with_base(session: Session, bases: Iterable[str]) -> set[str]:
    """Every issued identifier that is one of `bases` or one of them followed by digits."""
    wanted = sorted(set(bases))
    taken: set[str] = set()
    # Bases never end with a digit, so stripping the trailing digits of an identifier gives its
    # base exactly: one `IN` test per row, where `LIKE 'base%' OR …` cost one test per base.
    stem = func.rtrim(col(Account.identifier), "0123456789")
    for chunk in in_chunks(wanted):
        taken.update(session.exec(select(Account.identifier).where(stem.in_(chunk))))
    return taken


def allocate_identifiers(session: Session, people: Sequence[tuple[str, str]]) -> list[str]:
    """New unique identifiers for `people` (first name, surname), in the same order.

    The first holder of a base gets it bare; homonyms get the lowest free number from 2 up.
    The caller inserts the accounts in the same transaction.
    """
    bases = [identifier_base(first, last) for first, last in people]
    taken = _taken_with_base(session, bases)
    next_number: dict[str, int] = {}
    identifiers: list[str] = []
    for base in bases:
        if base not in taken:
            candidate = base
        else:
            number = next_number.get(base, 2)
            while f"{base}{number}" in taken:
                number += 1
            candidate = f"{base}{number}"
            next_number[base] = number + 1
        taken.add(candidate)
        identifiers.append(candidate)
    return identifiers
