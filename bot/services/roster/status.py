"""The « état des comptes » of a scope: its statistics and the next things to do."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from sqlmodel import Session

from bot.services.roster.scopes import (
    ResolvedScope,
    Scope,
    resolve_scope,
    scope_from_token,
)
from bot.services.roster.statistics import (
    GroupCounts,
    SchoolStatistics,
)
from models.queries import (
    never_notified_by_email,
)


class NextStepKind(enum.StrEnum):
    SEND_EMAIL = "send_email"  # never notified, with an e-mail address: /envoyer
    PRINT_LETTERS = "print_letters"  # never notified, no e-mail address: /pdf
    REMIND = "remind"  # notified, not activated: /relancer
    CONFIRM = "confirm"  # activation in progress: the confirmation link was not clicked


@dataclass(frozen=True)
class NextStep:
    """One thing to do next for the guardians of the scope: `count` of them need it."""

    kind: NextStepKind
    count: int
    scope: Scope


@dataclass(frozen=True)
class StatusReport:
    """The « état des comptes » of a scope, what to do next (in the order to do it), and the
    classes furthest behind (lowest share of activated accounts first)."""

    resolved: ResolvedScope
    next_steps: list[NextStep]
    behind: list[GroupCounts]

    @property
    def statistics(self) -> SchoolStatistics:
        return self.resolved.statistics


BEHIND_CLASSES = 3


def status_report(
    session: Session, *, school_id: int, scope_text: str = "", scope: str | None = None
) -> StatusReport:
    """The statistics of the school, or of the class or level `scope_text` names (or the
    `Scope.token` `scope` carries), with the next steps. A few aggregate queries, whatever the
    school's size. Raises `UnknownClassError` like `resolve_scope`."""
    if scope is not None:
        resolved = scope_from_token(session=session, school_id=school_id, token=scope)
    else:
        resolved = resolve_scope(session=session, school_id=school_id, text=scope_text)
    named, total = resolved.scope, resolved.statistics.total
    never_notified = never_notified_by_email(
        session, school_id=school_id, class_id=named.class_id, level=named.level
    )
    candidates = (
        (NextStepKind.SEND_EMAIL, never_notified[True]),
        (NextStepKind.PRINT_LETTERS, never_notified[False]),
        (NextStepKind.REMIND, total.notified),
        (NextStepKind.CONFIRM, total.activating),
    )
    steps = [NextStep(kind, count, named) for kind, count in candidates if count]
    behind: list[GroupCounts] = []
    # Worth saying once activations have begun, and when there are classes to compare.
    if total.activated and len(resolved.statistics.classes) > 1:
        lagging = [
            group
            for group in resolved.statistics.classes
            if group.accounts and group.activated < group.accounts
        ]
        lagging.sort(key=lambda group: (group.activated_accounts_percent, -group.accounts))
        behind = lagging[:BEHIND_CLASSES]
    return StatusReport(resolved, steps, behind)
