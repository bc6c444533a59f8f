"""The inspector's district view in words (HTML, in the current language): the pages `/etat`
shows, one block per school, furthest behind first, and the weekly district digest (totals,
the change since last week, the schools furthest behind, the most progress). Counts only.
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass
from datetime import date
from zoneinfo import ZoneInfo

from bot.i18n import _, format_date, format_number, format_percentage, ngettext
from bot.services.digests import (
    DistrictOverview,
    SchoolLine,
    district_chart_data,
    render_bars,
)
from bot.services.roster import STATE_LIGHTS, lights_and_percentages

# Schools per page of `/etat` (each has its button), and named by the weekly digest.
PAGE_SIZE = 10
DIGEST_BEHIND = 10
DIGEST_PROGRESS = 3


@dataclass(frozen=True)
class DistrictDigestMessage:
    """What an inspector gets on Monday: the text, then the chart."""

    text: str
    chart_png: bytes | None


def _lights(line: SchoolLine) -> str:
    return " ".join(
        f"{STATE_LIGHTS[state]} {format_number(count)}"
        for state, count in line.counts.by_state().items()
    )


def _lsu(lsu_date: date | None, days_left: int | None) -> str:
    if lsu_date is None or days_left is None:
        return _("no LSU date yet")
    if days_left < 0:
        return _("LSU online since {date}").format(date=format_date(lsu_date))
    if days_left == 0:
        return _("LSU today, {date}").format(date=format_date(lsu_date))
    return ngettext(
        "LSU {date} (in {count} day)", "LSU {date} (in {count} days)", days_left
    ).format(date=format_date(lsu_date), count=format_number(days_left))


def _requests(count: int) -> str:
    return ngettext("{count} open help request", "{count} open help requests", count).format(
        count=format_number(count)
    )


def school_block(line: SchoolLine, position: int) -> str:
    """« 3. École Jules Ferry (0751234X) », its lights and percentages, its LSU date and open
    requests: one school of the district."""
    title = _("<b>{position}. {name}</b> ({uai})").format(
        position=position, name=html.escape(line.name), uai=html.escape(line.uai)
    )
    counts = line.counts
    if counts.accounts == 0:
        figures = _("no guardian account yet (roster not imported)")
    else:
        figures = _("{lights} — <b>{accounts}</b> accounts · {pupils} pupils").format(
            lights=_lights(line),
            accounts=format_percentage(counts.activated_accounts_percent / 100),
            pupils=format_percentage(counts.pupils_with_activated_guardian_percent / 100),
        )
    details = [_lsu(line.lsu_date, line.days_left)]
    if line.open_requests:
        details.append(_requests(line.open_requests))
    return "\n".join([title, figures, " · ".join(details)])


def district_page_count(overview: DistrictOverview) -> int:
    """How many pages `/etat` shows the district in (at least one)."""
    return max(1, math.ceil(len(overview.schools) / PAGE_SIZE))


def district_page_lines(overview: DistrictOverview, page: int) -> tuple[SchoolLine, ...]:
    """The schools on `page` (0-based; clamped to the pages that exist)."""
    page = min(max(page, 0), district_page_count(overview) - 1)
    return overview.schools[page * PAGE_SIZE : (page + 1) * PAGE_SIZE]


def _totals(overview: DistrictOverview) -> list[str]:
    count = len(overview.schools)
    lines = [
        ngettext(
            "<b>Your district — {count} school</b>",
            "<b>Your district — {count} schools</b>",
            count,
        ).format(count=format_number(count))
    ]
    lines += lights_and_percentages(overview.total)
    return lines


def district_page(overview: DistrictOverview, page: int) -> list[str]:
    """The blocks of one page of the inspector's `/etat`: the district's totals, then the
    schools of the page, furthest behind first."""
    page = min(max(page, 0), district_page_count(overview) - 1)
    blocks = ["\n".join(_totals(overview)), ""]
    if not overview.schools:
        blocks.append(_("No school in your district yet: ask the operator to add yours."))
        return blocks
    pages = district_page_count(overview)
    heading = _("<b>Schools, furthest behind first</b> (accounts activated · pupils covered)")
    if pages > 1:
        heading += " " + _("— page {page} of {pages}").format(page=page + 1, pages=pages)
    blocks += [heading, ""]
    first = page * PAGE_SIZE + 1
    blocks += [
        school_block(line, first + index) + "\n"
        for index, line in enumerate(district_page_lines(overview, page))
    ]
    blocks.append(
        _(
            "Tap a school for its classes (read-only), or type <code>/etat UAI</code>. "
            "The chart shows every school."
        )
    )
    return blocks


def district_chart(overview: DistrictOverview) -> bytes | None:
    """The district's chart (one bar per school, furthest behind at the top), or None when no
    school has any account yet. CPU-bound: run it in a thread."""
    if overview.total.accounts == 0:
        return None
    title = ngettext(
        "Guardian accounts — {count} school",
        "Guardian accounts — {count} schools",
        len(overview.schools),
    ).format(count=format_number(len(overview.schools)))
    return render_bars(district_chart_data(overview), title=title)


def _change(overview: DistrictOverview, tz: ZoneInfo) -> list[str]:
    if overview.previous_sent_at is None or overview.activated_since is None:
        return []
    since = format_date(overview.previous_sent_at, tz=tz, fmt="EEEE d MMMM")
    change = overview.activated_since
    if change == 0:
        return [_("No account activated since {date}.").format(date=since)]
    sign, trend = ("+", "📈") if change > 0 else ("−", "📉")
    return [
        ngettext(
            "{trend} <b>{sign}{count}</b> activated since {date}",
            "{trend} <b>{sign}{count}</b> activated since {date}",
            abs(change),
        ).format(trend=trend, sign=sign, count=format_number(abs(change)), date=since)
    ]


def _next_lsu(overview: DistrictOverview, tz: ZoneInfo) -> list[str]:
    if overview.next_lsu_date is None:
        return []
    days = (overview.next_lsu_date - overview.now.astimezone(tz).date()).days
    return [
        ngettext(
            "📅 Next LSU date in the district: {date} ({count} day left).",
            "📅 Next LSU date in the district: {date} ({count} days left).",
            max(days, 0),
        ).format(date=format_date(overview.next_lsu_date), count=format_number(max(days, 0)))
    ]


def _progress(overview: DistrictOverview) -> list[str]:
    best = [line for line in overview.schools if line.activated_since]
    best = sorted(best, key=lambda line: -(line.activated_since or 0))[:DIGEST_PROGRESS]
    best = [line for line in best if (line.activated_since or 0) > 0]
    if not best:
        return []
    lines = [_("<b>Most progress this week</b>")]
    lines += [
        _("{name}: +{count} activated").format(
            name=html.escape(line.name), count=format_number(line.activated_since or 0)
        )
        for line in best
    ]
    return lines


def compose_district_digest(
    overview: DistrictOverview, *, late: bool, tz: ZoneInfo
) -> DistrictDigestMessage:
    """The weekly district digest: totals, change, next LSU date, the schools furthest behind,
    the most progress, the open requests; and the chart. Short enough for one message."""
    title = ngettext(
        "<b>Weekly district digest — {count} school</b>",
        "<b>Weekly district digest — {count} schools</b>",
        len(overview.schools),
    ).format(count=format_number(len(overview.schools)))
    if late:
        title = _("{title} <i>(late)</i>").format(title=title)
    blocks = [[title], lights_and_percentages(overview.total), _change(overview, tz)]
    blocks.append(_next_lsu(overview, tz))
    behind = [line for line in overview.schools if line.counts.activated < line.counts.accounts]
    behind = behind[:DIGEST_BEHIND] or list(overview.schools[:DIGEST_BEHIND])
    if behind:
        blocks.append(
            [_("<b>Furthest behind</b>")]
            + [school_block(line, position) + "\n" for position, line in enumerate(behind, start=1)]
        )
    blocks.append(_progress(overview))
    requests = sum(line.open_requests for line in overview.schools)
    if requests:
        blocks.append(
            [
                ngettext(
                    "💬 {count} help request from families is open in the district's schools.",
                    "💬 {count} help requests from families are open in the district's schools.",
                    requests,
                ).format(count=format_number(requests))
            ]
        )
    blocks.append([_("/etat shows every school; <code>/etat UAI</code> one school's classes.")])
    text = "\n\n".join("\n".join(block) for block in blocks if block)
    return DistrictDigestMessage(text=text, chart_png=district_chart(overview))
