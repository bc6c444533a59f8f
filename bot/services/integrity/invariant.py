"""What an invariant is (a query listing the rows that break it) and what breaking it reports
(a `Violation`: a code, translated words, the ids concerned — never a family's data)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Select, Table

from bot.i18n import _

# A violation lists this many ids at most; `count` says how many rows there are in all.
MAX_LISTED_IDS = 50


def table(model: Any) -> Table:
    """The Core table of a SQLModel table class."""
    return cast(Table, model.__table__)


@dataclass(frozen=True, slots=True)
class Context:
    """What the queries may depend on: the moment checked and the database's dialect."""

    now: datetime
    dialect: str


@dataclass(frozen=True, slots=True)
class Invariant:
    """A rule the data must satisfy at rest, as one query of the ids that break it.

    `description` and `advice` are message ids (`N_`), translated when a violation is
    reported; `params` fills their named placeholders (table and column names, never data)."""

    code: str
    subject: str  # the table the ids are of
    description: str
    advice: str
    query: Callable[[Context], Select[Any]]
    params: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Violation:
    """An invariant some rows break: its code, what it means and what to do (in the current
    language), the ids of the rows concerned (the first `MAX_LISTED_IDS`) and their number."""

    code: str
    subject: str
    description: str
    advice: str
    ids: tuple[int, ...]
    count: int

    def to_dict(self) -> dict[str, Any]:
        """The violation as JSON for scripts."""
        return {
            "code": self.code,
            "subject": self.subject,
            "count": self.count,
            "ids": list(self.ids),
            "description": self.description,
            "advice": self.advice,
        }


def violation_of(invariant: Invariant, ids: list[int]) -> Violation:
    """The violation `ids` make of `invariant`, its words translated now."""
    unique = sorted(set(ids))
    return Violation(
        code=invariant.code,
        subject=invariant.subject,
        description=_(invariant.description).format(**invariant.params),
        advice=_(invariant.advice).format(**invariant.params),
        ids=tuple(unique[:MAX_LISTED_IDS]),
        count=len(unique),
    )
