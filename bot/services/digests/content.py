"""What a digest tells a school's directors: the lights and both percentages (as /etat), the
change since the previous digest, the days left before the LSU date, the classes furthest
behind, the open help requests, the next actions with their counts, who was reminded, and, for
the final check, every guardian not green yet, by class. Nothing here speaks Telegram.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlmodel import Session

from bot.config import get_settings
from bot.services.digests.progress import EMPTY, Progress, ToDoCounts, school_progress
from bot.services.digests.queries import (
    GuardianName,
    as_utc,
    not_activated_by_class,
    open_request_counts,
    previous_digests,
    reminded_between,
    schools_by_id,
)
from bot.services.errors import ServiceError
from bot.services.roster import STATE_LIGHTS, ClassInfo, Counts, known_classes_by_school
from models import AccountState, School, utcnow

# The classes furthest behind a digest names, and how many classes an action may name before
# it is given once for the whole school instead (a long list of commands helps nobody).
BEHIND_CLASSES = 5
MAX_CLASSES_PER_ACTION = 3
# Without a previous digest, « reminded » covers the last week.
FIRST_REMINDED_WINDOW = timedelta(days=7)


class ActionKind(enum.StrEnum):
    """A next action a digest proposes, in the order to do them."""

    EMAIL_NEVER_NOTIFIED = "email_never_notified"  # /envoyer
    PAPER_NEVER_NOTIFIED = "paper_never_notified"  # /pdf
    REMIND_STALE = "remind_stale"  # /relancer, notified more than N days ago
    CONFIRM_PENDING = "confirm_pending"  # /responsables … en_cours

    @property
    def command(self) -> str:
        return _COMMANDS[self]


_COMMANDS = {
    ActionKind.EMAIL_NEVER_NOTIFIED: "/envoyer {argument}",
    ActionKind.PAPER_NEVER_NOTIFIED: "/pdf {argument}",
    ActionKind.REMIND_STALE: "/relancer {argument}",
    ActionKind.CONFIRM_PENDING: "/responsables {argument} en_cours",
}
# How a command names the whole school (see `bot.services.roster.Scope.argument`).
SCHOOL_ARGUMENT = "ecole"


class SchoolNotFoundError(ServiceError):
    """The school of a digest does not exist (any more)."""


@dataclass(frozen=True)
class ClassProgress:
    """The accounts per state of a class (or of the whole school, `class_id` None)."""

    label: str
    class_id: int | None
    accounts: int
    not_notified: int
    notified: int
    activating: int
    activated: int
    activated_percent: float
    pupils: int = 0
    pupils_with_activated_guardian: int = 0

    @classmethod
    def of(cls, label: str, class_id: int | None, counts: Counts) -> ClassProgress:
        return cls(
            label=label,
            class_id=class_id,
            accounts=counts.accounts,
            not_notified=counts.not_notified,
            notified=counts.notified,
            activating=counts.activating,
            activated=counts.activated,
            activated_percent=counts.activated_accounts_percent,
            pupils=counts.pupils,
            pupils_with_activated_guardian=counts.pupils_with_activated_guardian,
        )

    def by_state(self) -> dict[AccountState, int]:
        """The accounts in each state, in the order of the lights."""
        return {state: getattr(self, state.value) for state in AccountState}


@dataclass(frozen=True)
class NextAction:
    """A command to tap, « /pdf CE1 », and how many guardians it is for."""

    command: str
    count: int
    kind: ActionKind
    # The class it names, None for the whole school.
    class_label: str | None = None
    # REMIND_STALE: notified more than this many days ago.
    days: int | None = None


@dataclass(frozen=True)
class DigestContent:
    """Everything one digest of one school says, computed at `now`."""

    school_id: int
    school_name: str
    uai: str
    lsu_date: date | None
    days_left: int | None
    total: ClassProgress
    activated_accounts_percent: float
    pupils_with_activated_guardian_percent: float
    previous_sent_at: datetime | None
    delta: dict[str, int]
    classes: tuple[ClassProgress, ...]
    behind: tuple[ClassProgress, ...]
    open_requests: int
    actions: tuple[NextAction, ...]
    reminded: tuple[str, ...]
    missing: tuple[tuple[str, tuple[str, ...]], ...] = ()
    now: datetime = field(default_factory=utcnow)
    # `missing` with each guardian's light (« 🟠 Mme Céline DUPONT »).
    missing_lights: tuple[tuple[str, tuple[str, ...]], ...] = ()

    @property
    def missing_count(self) -> int:
        """Guardians in the final list (one in two classes counts twice)."""
        return sum(len(names) for _label, names in self.missing)


def _behind(classes: Sequence[ClassProgress]) -> tuple[ClassProgress, ...]:
    # As /etat: worth saying when there are classes to compare; fuller classes first among
    # equals (there is more to do there).
    if len(classes) < 2:
        return ()
    lagging = [group for group in classes if group.accounts and group.activated < group.accounts]
    lagging.sort(key=lambda group: (group.activated_percent, -group.accounts, group.label))
    return tuple(lagging[:BEHIND_CLASSES])


def _actions(
    school: ToDoCounts, classes: Sequence[tuple[str, ToDoCounts]], stale_days: int
) -> tuple[NextAction, ...]:
    actions: list[NextAction] = []
    for kind in ActionKind:
        days = stale_days if kind is ActionKind.REMIND_STALE else None
        total = getattr(school, kind.value)
        if not total:
            continue
        named = [(label, getattr(counts, kind.value)) for label, counts in classes]
        named = [(label, count) for label, count in named if count]
        named.sort(key=lambda item: -item[1])
        if not named or len(named) > MAX_CLASSES_PER_ACTION:
            command = kind.command.format(argument=SCHOOL_ARGUMENT)
            actions.append(NextAction(command, total, kind, None, days))
            continue
        actions += [
            NextAction(kind.command.format(argument=label), count, kind, label, days)
            for label, count in named
        ]
    return tuple(actions)


def _delta(current: ClassProgress, snapshot: dict[str, Any] | None) -> dict[str, int]:
    states = (snapshot or {}).get("states")
    if not isinstance(states, dict):
        return {}
    now = current.by_state()
    return {state.value: now[state] - int(states.get(state.value, 0)) for state in AccountState}


Missing = tuple[tuple[str, tuple[str, ...]], ...]


def _missing(
    by_class: dict[int | None, list[GuardianName]], classes: Sequence[ClassInfo]
) -> tuple[Missing, Missing]:
    """The final list, plain and with each guardian's light, in school order; pupils without a
    class last, under an empty label (the message names it)."""
    labels: dict[int | None, str] = {info.id: info.label for info in classes}
    plain: list[tuple[str, tuple[str, ...]]] = []
    lit: list[tuple[str, tuple[str, ...]]] = []
    for class_id in [*(info.id for info in classes), None]:
        names = by_class.get(class_id)
        if not names:
            continue
        label = labels.get(class_id, "")
        plain.append((label, tuple(guardian.name for guardian in names)))
        lit.append(
            (label, tuple(f"{STATE_LIGHTS[guardian.state]} {guardian.name}" for guardian in names))
        )
    return tuple(plain), tuple(lit)


@dataclass(frozen=True)
class _Facts:
    """What the batched queries found, for every school at once."""

    now: datetime
    today: date
    classes: dict[int, list[ClassInfo]]
    progress: dict[tuple[int, int | None], Progress]
    previous: dict[int, tuple[datetime, dict[str, Any]]]
    reminded: dict[int, list[GuardianName]]
    requests: dict[int, int]
    missing: dict[int, dict[int | None, list[GuardianName]]] | None


def _content(school: School, facts: _Facts) -> DigestContent:
    assert school.id is not None
    school_id = school.id
    classes = facts.classes.get(school_id, [])
    progress = [facts.progress.get((school_id, info.id), EMPTY) for info in classes]
    groups = [
        ClassProgress.of(info.label, info.id, p.counts)
        for info, p in zip(classes, progress, strict=True)
    ]
    whole = facts.progress.get((school_id, None), EMPTY)
    total = ClassProgress.of(school.name, None, whole.counts)
    previous = facts.previous.get(school_id)
    missing, missing_lights = (
        _missing(facts.missing.get(school_id, {}), classes)
        if facts.missing is not None
        else ((), ())
    )
    return DigestContent(
        school_id=school_id,
        school_name=school.name,
        uai=school.uai,
        lsu_date=school.lsu_date,
        days_left=(school.lsu_date - facts.today).days if school.lsu_date else None,
        total=total,
        activated_accounts_percent=whole.counts.activated_accounts_percent,
        pupils_with_activated_guardian_percent=whole.counts.pupils_with_activated_guardian_percent,
        previous_sent_at=previous[0] if previous else None,
        delta=_delta(total, previous[1] if previous else None),
        classes=tuple(groups),
        behind=_behind(groups),
        open_requests=facts.requests.get(school_id, 0),
        actions=_actions(
            whole.to_do,
            [(info.label, p.to_do) for info, p in zip(classes, progress, strict=True)],
            school.reminder_after_days,
        ),
        reminded=tuple(guardian.name for guardian in facts.reminded.get(school_id, [])),
        missing=missing,
        now=facts.now,
        missing_lights=missing_lights,
    )


def digest_contents(
    session: Session,
    *,
    school_ids: Sequence[int],
    now: datetime | None = None,
    with_missing: bool = False,
    tz: ZoneInfo | None = None,
) -> list[DigestContent]:
    """What the digests of many schools say at `now`, in the order of `school_ids` (unknown
    ones left out): the same few set-based queries for 1 school or 500. Days are counted in
    `tz` (default: TIMEZONE); `with_missing` adds the final check's complete list."""
    moment = as_utc(now or utcnow())
    schools = schools_by_id(session, school_ids)
    ids = list(schools)
    stale_days = {school.reminder_after_days for school in schools.values()}
    # Usually one value (the default): one aggregate per distinct threshold.
    progress: dict[tuple[int, int | None], Progress] = {}
    for days in stale_days:
        same = [i for i in ids if schools[i].reminder_after_days == days]
        progress |= school_progress(
            session, school_ids=same, stale_before=moment - timedelta(days=days)
        )
    previous = previous_digests(session, school_ids=ids, before=moment)
    since = {i: previous[i][0] if i in previous else moment - FIRST_REMINDED_WINDOW for i in ids}
    facts = _Facts(
        now=moment,
        today=moment.astimezone(tz or get_settings().tz).date(),
        classes=known_classes_by_school(session, school_ids=ids),
        progress=progress,
        previous=previous,
        reminded=reminded_between(session, since=since, until=moment),
        requests=open_request_counts(session, school_ids=ids),
        missing=not_activated_by_class(session, school_ids=ids) if with_missing else None,
    )
    return [_content(schools[i], facts) for i in dict.fromkeys(school_ids) if i in schools]


def digest_content(
    session: Session,
    *,
    school_id: int,
    now: datetime | None = None,
    with_missing: bool = False,
    tz: ZoneInfo | None = None,
) -> DigestContent:
    """What the digest of the school says at `now` (see `digest_contents`).
    Raises `SchoolNotFoundError`."""
    found = digest_contents(
        session, school_ids=[school_id], now=now, with_missing=with_missing, tz=tz
    )
    if not found:
        raise SchoolNotFoundError(f"no school {school_id}")
    return found[0]


def digest_snapshot(content: DigestContent) -> dict[str, Any]:
    """What `DigestRun.snapshot` keeps of a digest sent: enough for the next one's « +14
    activated since Monday », and a trace of what was said. JSON-ready."""
    total = content.total
    return {
        "at": content.now.isoformat(),
        "accounts": total.accounts,
        "states": {state.value: count for state, count in total.by_state().items()},
        "pupils": total.pupils,
        "pupils_with_activated_guardian": total.pupils_with_activated_guardian,
        "activated_accounts_percent": round(content.activated_accounts_percent, 2),
        "pupils_with_activated_guardian_percent": round(
            content.pupils_with_activated_guardian_percent, 2
        ),
        "open_requests": content.open_requests,
        "reminded": len(content.reminded),
        "lsu_date": content.lsu_date.isoformat() if content.lsu_date else None,
    }
