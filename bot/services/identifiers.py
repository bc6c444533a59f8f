"""EduConnect identifiers: « prénom.nom » in lower-case ASCII, numbered to stay unique.

Examples from the ministry's guide: ``celine.dupont114``, ``a.cosams``, ``g.reabu5``. An
identifier is unique across the whole deployment and never reused: accounts are never deleted,
so the set of identifiers ever issued is the account table itself.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from anyascii import anyascii
from sqlalchemy import or_, select
from sqlmodel import Session

from models import Account

# Longest identifier we issue, number included; the column allows 64.
MAX_LENGTH = 40
_NON_LETTERS = re.compile(r"[^a-z]+")
# Particles written apart (« de La Fontaine ») are kept, glued: « delafontaine », as the
# official tool does; hyphens and apostrophes disappear the same way (« dalmeidanunez »).


def _fold(text: str) -> str:
    # anyascii turns ß→ss, œ→oe, Ø→O, ñ→n, ı→i; what is left that is not a letter goes.
    return _NON_LETTERS.sub("", anyascii(text).lower())


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
    wanted = set(bases)
    if not wanted:
        return set()
    taken: set[str] = set()
    ordered = sorted(wanted)
    # One query per chunk of bases (SQLite caps bound parameters); LIKE 'base%' may over-match,
    # which the pattern check below filters.
    for start in range(0, len(ordered), 200):
        chunk = ordered[start : start + 200]
        conditions = [Account.identifier.like(f"{base}%") for base in chunk]  # type: ignore[attr-defined]

        rows = session.execute(select(Account.identifier).where(or_(*conditions))).scalars()
        taken.update(rows)
    pattern = re.compile(r"^(.*?)(\d*)$")
    result: set[str] = set()
    for identifier in taken:
        match = pattern.match(identifier)
        if match and match.group(1) in wanted:
            result.add(identifier)
    return result


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
