"""The digest as a director reads it: the HTML text (≤ 4096 characters, in the current
language), the chart as a PNG, and, for a final check too long for a message, its complete list
as a document. `compose_digest` renders the chart (CPU-bound): run it in a thread from the loop.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from bot.i18n import _, format_date, format_number, format_percentage, ngettext
from bot.services.digests import ActionKind, ClassProgress, DigestContent, NextAction, render_chart
from bot.services.roster import STATE_LIGHTS, lights_and_percentages
from models import AccountState, DigestKind

MESSAGE_LIMIT = 4096
# Names of reminded guardians written out before « and N more ».
MAX_REMINDED_NAMES = 20


@dataclass(frozen=True)
class DigestMessage:
    """What a director gets: the text, then the chart and, when needed, a document."""

    text: str
    chart_png: bytes | None
    document: tuple[str, bytes] | None = None


def _title(content: DigestContent, kind: DigestKind, late: bool) -> str:
    school = html.escape(content.school_name)
    if kind is DigestKind.FINAL:
        title = _("<b>Final check before the LSU — {school}</b>").format(school=school)
    elif kind is DigestKind.DAILY:
        title = _("<b>Daily digest — {school}</b>").format(school=school)
    elif kind is DigestKind.WEEKLY:
        title = _("<b>Weekly digest — {school}</b>").format(school=school)
    else:
        title = _("<b>Digest — {school}</b>").format(school=school)
    return _("{title} <i>(late)</i>").format(title=title) if late else title


def _days_left(content: DigestContent) -> str:
    if content.lsu_date is None or content.days_left is None:
        return _(
            "No LSU date set yet: set it with /lsu (for example <code>/lsu 15/01/2027</code>)."
        )
    day = format_date(content.lsu_date)
    if content.days_left < 0:
        return _("📅 The school reports (LSU) went online on {date}.").format(date=day)
    if content.days_left == 0:
        return _("📅 The school reports (LSU) go online <b>today</b>, {date}.").format(date=day)
    return ngettext(
        "📅 The school reports (LSU) go online on {date}: <b>{count} day</b> left.",
        "📅 The school reports (LSU) go online on {date}: <b>{count} days</b> left.",
        content.days_left,
    ).format(date=day, count=format_number(content.days_left))


def _signed(change: int) -> str:
    return ("+" if change > 0 else "−" if change < 0 else "±") + format_number(abs(change))


def _lights(content: DigestContent) -> list[str]:
    return lights_and_percentages(content.total)


def _changes(content: DigestContent, tz: ZoneInfo) -> list[str]:
    if content.previous_sent_at is None or not content.delta:
        return []
    since = _day(content.previous_sent_at, tz)
    activated = content.delta.get(AccountState.ACTIVATED.value, 0)
    lines = []
    if activated:
        lines.append(
            ngettext(
                "{trend} <b>{change}</b> activated since {date}",
                "{trend} <b>{change}</b> activated since {date}",
                abs(activated),
            ).format(trend="📈" if activated > 0 else "📉", change=_signed(activated), date=since)
        )
    others = [
        f"{STATE_LIGHTS[state]} {_signed(content.delta[state.value])}"
        for state in AccountState
        if state is not AccountState.ACTIVATED and content.delta.get(state.value)
    ]
    if others:
        lines.append(
            _("Other changes since {date}: {changes}").format(
                date=since, changes=" · ".join(others)
            )
        )
    return lines or [_("No change since {date}.").format(date=since)]


def _day(moment: datetime, tz: ZoneInfo) -> str:
    # « lundi 30 novembre »: a digest looks back a week at most.
    return format_date(moment, tz=tz, fmt="EEEE d MMMM")


def _counts_text(group: ClassProgress) -> str:
    return " · ".join(
        f"{STATE_LIGHTS[state]} {format_number(count)}" for state, count in group.by_state().items()
    )


def _behind(content: DigestContent) -> list[str]:
    if not content.behind:
        return []
    lines = [_("<b>Classes furthest behind</b>")]
    lines += [
        _("{label}: <b>{percent}</b> activated — {lights}").format(
            label=html.escape(group.label),
            percent=format_percentage(group.activated_percent / 100),
            lights=_counts_text(group),
        )
        for group in content.behind
    ]
    return lines


def _requests(content: DigestContent) -> list[str]:
    if not content.open_requests:
        return []
    return [
        ngettext(
            "📨 {count} help request from families is waiting for an answer: /demandes",
            "📨 {count} help requests from families are waiting for an answer: /demandes",
            content.open_requests,
        ).format(count=format_number(content.open_requests))
    ]


def _action_text(action: NextAction) -> str:
    if action.kind is ActionKind.EMAIL_NEVER_NOTIFIED:
        template = ngettext(
            "{command} — {count} guardian with an e-mail address never notified",
            "{command} — {count} guardians with an e-mail address never notified",
            action.count,
        )
    elif action.kind is ActionKind.PAPER_NEVER_NOTIFIED:
        template = ngettext(
            "{command} — {count} guardian without an e-mail address never notified",
            "{command} — {count} guardians without an e-mail address never notified",
            action.count,
        )
    elif action.kind is ActionKind.REMIND_STALE:
        template = ngettext(
            "{command} — {count} guardian notified more than {days} days ago",
            "{command} — {count} guardians notified more than {days} days ago",
            action.count,
        )
    else:
        template = ngettext(
            "{command} — {count} guardian has not clicked the confirmation link yet",
            "{command} — {count} guardians have not clicked the confirmation link yet",
            action.count,
        )
    # The command stays plain text so that Telegram makes it tappable.
    return template.format(
        command=html.escape(action.command),
        count=format_number(action.count),
        days=format_number(action.days or 0),
    )


def _actions(content: DigestContent) -> list[str]:
    if content.total.accounts == 0:
        return [
            _(
                "No guardian accounts yet: send me the ONDE extractions (« Élèves » and "
                "« Responsables » CSV files) to import them."
            )
        ]
    if not content.actions:
        return [_("🟢 Every account is activated. Nothing left to do!")]
    return [_("<b>What to do next</b>"), *(_action_text(action) for action in content.actions)]


def _reminded(content: DigestContent, limit: int) -> list[str]:
    if not content.reminded:
        return []
    names = [html.escape(name) for name in content.reminded[:limit]]
    rest = len(content.reminded) - len(names)
    if rest > 0:
        names.append(
            ngettext("and {count} other", "and {count} others", rest).format(
                count=format_number(rest)
            )
        )
    return [
        ngettext(
            "🔔 {count} guardian got an automatic reminder: {names}",
            "🔔 {count} guardians got an automatic reminder: {names}",
            len(content.reminded),
        ).format(count=format_number(len(content.reminded)), names=", ".join(names))
    ]


def _class_name(label: str) -> str:
    return html.escape(label) if label else _("Pupils without a class")


def _missing_blocks(content: DigestContent) -> list[str]:
    if content.missing_count == 0:
        return [_("🟢 Every guardian's account is activated: the school is ready for the LSU.")]
    lines = [
        ngettext(
            "<b>{count} guardian not activated yet</b>, by class:",
            "<b>{count} guardians not activated yet</b>, by class:",
            content.missing_count,
        ).format(count=format_number(content.missing_count))
    ]
    for label, names in content.missing_lights or content.missing:
        lines.append("")
        lines.append(
            _("<b>{label}</b> ({count})").format(
                label=_class_name(label), count=format_number(len(names))
            )
        )
        lines += [html.escape(name) for name in names]
    return lines


def _missing_document(content: DigestContent, tz: ZoneInfo) -> tuple[str, bytes]:
    """The final list as a plain-text file, for a school too large for one message."""
    lines = [
        _("Guardians whose account is not activated yet — {school} ({uai}), {date}").format(
            school=content.school_name, uai=content.uai, date=format_date(content.now, tz=tz)
        )
    ]
    for label, names in content.missing_lights or content.missing:
        lines += ["", f"{label or _('Pupils without a class')} ({len(names)})"]
        lines += list(names)
    filename = _("not-activated-{uai}.txt").format(uai=content.uai)
    return filename, ("\n".join(lines) + "\n").encode("utf-8")


def chart_title(content: DigestContent) -> str:
    """The chart's title: the school, and the LSU date when there is one (plain text)."""
    if content.lsu_date is None:
        return _("{school} — activation by class").format(school=content.school_name)
    return _("{school} — activation by class, LSU on {date}").format(
        school=content.school_name, date=format_date(content.lsu_date)
    )


def _join(blocks: list[list[str]]) -> str:
    return "\n\n".join("\n".join(block) for block in blocks if block)


def compose_digest(
    content: DigestContent, *, kind: DigestKind, late: bool, tz: ZoneInfo
) -> DigestMessage:
    """The digest of one school for its directors, in the current language. A final check's
    list goes in the text when it fits, else in a document the text announces."""
    head = [_title(content, kind, late), _days_left(content)]
    blocks = [
        head,
        _lights(content),
        _changes(content, tz),
        _behind(content),
        _requests(content),
        _actions(content),
        _reminded(content, MAX_REMINDED_NAMES),
    ]
    text = _join(blocks)
    if len(text) > MESSAGE_LIMIT:  # very many reminded names: say how many only
        blocks[-1] = _reminded(content, 0)
        text = _join(blocks)
    document = None
    if kind is DigestKind.FINAL:
        with_list = _join([*blocks, _missing_blocks(content)])
        if len(with_list) <= MESSAGE_LIMIT:
            text = with_list
        else:
            document = _missing_document(content, tz)
            notice = ngettext(
                "📎 The complete list of the {count} guardian not activated yet, by class, is "
                "in the attached file.",
                "📎 The complete list of the {count} guardians not activated yet, by class, is "
                "in the attached file.",
                content.missing_count,
            ).format(count=format_number(content.missing_count))
            text = _join([*blocks, [notice]])
    chart = render_chart(content, title=chart_title(content)) if content.total.accounts else None
    return DigestMessage(text=text, chart_png=chart, document=document)
