"""The district view an inspector (IEN) gets: one line per school — the lights, both
percentages, the LSU date, the open help requests — furthest behind first, the district's
totals, the change since the inspector's previous weekly digest, and its chart (one bar per
school). Counts only: no guardian's name or address ever reaches an inspector.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlmodel import Session, col

from bot.config import get_settings
from bot.services.digests.chart import STATE_COLOURS, ChartData, ChartSeries
from bot.services.digests.progress import EMPTY, school_totals
from bot.services.digests.queries import as_utc, open_request_counts, schools_by_id
from bot.services.roster import Counts
from models import AccountState, DistrictDigestRun, utcnow


@dataclass(frozen=True)
class SchoolLine:
    """One school of the district as the inspector sees it."""

    school_id: int
    uai: str
    name: str
    counts: Counts
    lsu_date: date | None
    days_left: int | None
    open_requests: int
    # Accounts activated since the inspector's previous digest (None: no previous one).
    activated_since: int | None = None


@dataclass(frozen=True)
class DistrictOverview:
    """Every school an inspector sees, furthest behind first, and the district's totals (a
    guardian with children in two schools has an account in each, and counts in each)."""

    schools: tuple[SchoolLine, ...]
    total: Counts
    now: datetime
    previous_sent_at: datetime | None = None
    # Accounts activated in the whole district since the previous digest (None: no previous).
    activated_since: int | None = None
    # The earliest LSU date among the schools (the one the district works towards first).
    next_lsu_date: date | None = None

    def line(self, school_id: int) -> SchoolLine | None:
        """The line of one school, None if the inspector does not see it."""
        return next((line for line in self.schools if line.school_id == school_id), None)


def _behind_first(line: SchoolLine) -> tuple[float, int, str, str]:
    # The lowest share of activated accounts first; among equals, the larger school (there
    # is more to do there), then by name.
    return (line.counts.activated_accounts_percent, -line.counts.accounts, line.name, line.uai)


def _sum(counts: Sequence[Counts]) -> Counts:
    names = (
        "accounts",
        "not_notified",
        "notified",
        "activating",
        "activated",
        "pupils",
        "pupils_with_activated_guardian",
    )
    return Counts(**{name: sum(getattr(c, name) for c in counts) for name in names})


def previous_district_digest(
    session: Session, *, telegram_user_id: int, before: datetime
) -> tuple[datetime, dict[str, Any]] | None:
    """When the inspector's last district digest was sent (at or before `before`), and its
    snapshot."""
    row = session.execute(
        select(col(DistrictDigestRun.sent_at), col(DistrictDigestRun.snapshot))
        .where(
            col(DistrictDigestRun.telegram_user_id) == telegram_user_id,
            col(DistrictDigestRun.sent_at).is_not(None),
            col(DistrictDigestRun.sent_at) <= before,
        )
        .order_by(col(DistrictDigestRun.sent_at).desc(), col(DistrictDigestRun.id).desc())
        .limit(1)
    ).first()
    if row is None or row[0] is None:
        return None
    return as_utc(row[0]), dict(row[1] or {})


def _since(previous: dict[str, Any] | None, school_id: int, activated: int) -> int | None:
    schools = (previous or {}).get("activated")
    if not isinstance(schools, dict) or str(school_id) not in schools:
        return None
    return activated - int(schools[str(school_id)])


def district_overview(
    session: Session,
    *,
    school_ids: Sequence[int],
    now: datetime | None = None,
    tz: ZoneInfo | None = None,
    previous: tuple[datetime, dict[str, Any]] | None = None,
) -> DistrictOverview:
    """The district view of `school_ids` at `now` (unknown ids left out); days are counted in
    `tz` (default: TIMEZONE). `previous` (see `previous_district_digest`) adds the change
    since then. A few set-based queries, whatever the number of schools."""
    moment = as_utc(now or utcnow())
    today = moment.astimezone(tz or get_settings().tz).date()
    schools = schools_by_id(session, school_ids)
    ids = list(schools)
    progress = school_totals(session, school_ids=ids, stale_before=moment)
    requests = open_request_counts(session, school_ids=ids)
    snapshot = previous[1] if previous else None
    lines = []
    for school_id, school in schools.items():
        counts = progress.get(school_id, EMPTY).counts
        lines.append(
            SchoolLine(
                school_id=school_id,
                uai=school.uai,
                name=school.name,
                counts=counts,
                lsu_date=school.lsu_date,
                days_left=(school.lsu_date - today).days if school.lsu_date else None,
                open_requests=requests.get(school_id, 0),
                activated_since=_since(snapshot, school_id, counts.activated),
            )
        )
    lines.sort(key=_behind_first)
    changes = [line.activated_since for line in lines if line.activated_since is not None]
    upcoming = [d for d in (line.lsu_date for line in lines) if d is not None and d >= today]
    return DistrictOverview(
        schools=tuple(lines),
        total=_sum([line.counts for line in lines]),
        now=moment,
        previous_sent_at=previous[0] if previous else None,
        activated_since=sum(changes) if changes else None,
        next_lsu_date=min(upcoming) if upcoming else None,
    )


def district_snapshot(overview: DistrictOverview) -> dict[str, Any]:
    """What `DistrictDigestRun.snapshot` keeps: the activated accounts of each school (for
    the next digest's change) and the district's totals. JSON-ready."""
    return {
        "at": overview.now.isoformat(),
        "activated": {str(line.school_id): line.counts.activated for line in overview.schools},
        "accounts": overview.total.accounts,
        "activated_total": overview.total.activated,
    }


# « École élémentaire publique Jules Ferry » → « Jules Ferry »: what tells the bars apart.
_SCHOOL_KIND = re.compile(
    r"^(groupe\s+scolaire|[ée]cole)\s+((primaire|[ée]l[ée]mentaire|maternelle)\s+)?"
    r"((publique|priv[ée]e|d'application)\s+)?",
    re.IGNORECASE,
)


def chart_label(name: str) -> str:
    """A school's name without the kind of school every name starts with."""
    return _SCHOOL_KIND.sub("", name).strip() or name


def district_chart_data(overview: DistrictOverview) -> ChartData:
    """The district's chart: one bar per school (furthest behind at the top), stacked by
    state."""
    lines = overview.schools
    return ChartData(
        labels=tuple(chart_label(line.name) for line in lines),
        series=tuple(
            ChartSeries(
                state,
                STATE_COLOURS[state],
                tuple(line.counts.by_state()[state] for line in lines),
            )
            for state in AccountState
        ),
        activated_percent=tuple(line.counts.activated_accounts_percent for line in lines),
    )
