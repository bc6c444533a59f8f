"""The invariants the data must satisfy at rest — whole imports, accounts in a possible state,
no e-mail lost, secrets hashed, no dangling row — and the checker that lists what breaks them.
"""

from __future__ import annotations

from bot.services.integrity.checker import INVARIANTS, check_invariants
from bot.services.integrity.invariant import MAX_LISTED_IDS, Invariant, Violation

__all__ = ["INVARIANTS", "MAX_LISTED_IDS", "Invariant", "Violation", "check_invariants"]
