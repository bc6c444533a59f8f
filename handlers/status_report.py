"""The « état des comptes » of a school as a message: the lights, both percentages, per class
and per level, and what to do next — with the commands to tap for its director, or as plain
facts for an inspector, who reads it without acting (`read_only`)."""

from __future__ import annotations

import html

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from bot.i18n import _, format_number, format_percentage, ngettext
from bot.services.roster import (
    Counts,
    GroupCounts,
    NextStep,
    NextStepKind,
    ScopeKind,
    StatusReport,
    lights_and_percentages,
)
from handlers.access import SchoolRef
from handlers.keyboards import button_text, lights_text, rows_of, scope_summary


def _totals(counts: Counts) -> list[str]:
    lines = [
        ngettext("{count} guardian account:", "{count} guardian accounts:", counts.accounts).format(
            count=format_number(counts.accounts)
        )
    ]
    lines += lights_and_percentages(counts)
    return lines


def _group_line(group: GroupCounts) -> str:
    return _("<b>{label}</b>: {lights} — {accounts} · {pupils}").format(
        label=html.escape(group.label),
        lights=lights_text(group),
        accounts=format_percentage(group.activated_accounts_percent / 100),
        pupils=format_percentage(group.pupils_with_activated_guardian_percent / 100),
    )


def _step_text(step: NextStep) -> str:
    argument = html.escape(step.scope.argument)
    count = format_number(step.count)
    if step.scope.kind is ScopeKind.CLASS:
        label = html.escape(step.scope.label)
    elif step.scope.kind is ScopeKind.LEVEL:
        label = _("level {level}").format(level=html.escape(step.scope.label))
    else:
        label = _("the whole school")
    if step.kind is NextStepKind.SEND_EMAIL:
        template = ngettext(
            "🔴 {count} guardian with an e-mail address was never notified in {label}: send "
            "the credentials by e-mail with <code>/envoyer {argument}</code>.",
            "🔴 {count} guardians with an e-mail address were never notified in {label}: send "
            "their credentials by e-mail with <code>/envoyer {argument}</code>.",
            step.count,
        )
    elif step.kind is NextStepKind.PRINT_LETTERS:
        template = ngettext(
            "🔴 {count} guardian without an e-mail address was never notified in {label}: "
            "print the letter with <code>/pdf {argument}</code>.",
            "🔴 {count} guardians without an e-mail address were never notified in {label}: "
            "print their letters with <code>/pdf {argument}</code>.",
            step.count,
        )
    elif step.kind is NextStepKind.REMIND:
        template = ngettext(
            "🟠 {count} guardian in {label} was notified but has not activated the account: "
            "send a reminder with <code>/relancer {argument}</code>.",
            "🟠 {count} guardians in {label} were notified but have not activated their "
            "account: send a reminder with <code>/relancer {argument}</code>.",
            step.count,
        )
    else:
        template = ngettext(
            "🟡 {count} guardian in {label} has not clicked the confirmation link yet: see who "
            "with <code>/responsables {argument} en_cours</code>.",
            "🟡 {count} guardians in {label} have not clicked the confirmation link yet: see "
            "who with <code>/responsables {argument} en_cours</code>.",
            step.count,
        )
    return template.format(count=count, label=label, argument=argument)


def _step_fact(step: NextStep) -> str:
    """What is left to do, as a fact an inspector reads (no command: they cannot act)."""
    if step.scope.kind is ScopeKind.CLASS:
        label = html.escape(step.scope.label)
    elif step.scope.kind is ScopeKind.LEVEL:
        label = _("level {level}").format(level=html.escape(step.scope.label))
    else:
        label = _("the whole school")
    if step.kind is NextStepKind.SEND_EMAIL:
        template = ngettext(
            "🔴 {count} guardian with an e-mail address never notified ({label})",
            "🔴 {count} guardians with an e-mail address never notified ({label})",
            step.count,
        )
    elif step.kind is NextStepKind.PRINT_LETTERS:
        template = ngettext(
            "🔴 {count} guardian without an e-mail address never notified ({label})",
            "🔴 {count} guardians without an e-mail address never notified ({label})",
            step.count,
        )
    elif step.kind is NextStepKind.REMIND:
        template = ngettext(
            "🟠 {count} guardian notified, account not activated ({label})",
            "🟠 {count} guardians notified, accounts not activated ({label})",
            step.count,
        )
    else:
        template = ngettext(
            "🟡 {count} guardian has not confirmed their address yet ({label})",
            "🟡 {count} guardians have not confirmed their address yet ({label})",
            step.count,
        )
    return template.format(count=format_number(step.count), label=label)


def _next_steps(report: StatusReport, read_only: bool) -> list[str]:
    blocks = [_("<b>Still to do at the school</b>") if read_only else _("<b>What to do next</b>")]
    if report.statistics.total.accounts == 0:
        if read_only:
            blocks.append(_("No guardian accounts yet: the school has not imported its roster."))
            return blocks
        blocks.append(
            _(
                "No guardian accounts yet: send me the ONDE extractions (« Élèves » and "
                "« Responsables » CSV files) to import them."
            )
        )
    elif not report.next_steps:
        blocks.append(_("🟢 Every account is activated. Nothing left to do!"))
    else:
        step_text = _step_fact if read_only else _step_text
        blocks += [step_text(step) for step in report.next_steps]
    return blocks


def render_report(school: SchoolRef, report: StatusReport, *, read_only: bool = False) -> list[str]:
    """The blocks of the status message; `read_only` (an inspector) says what is left to do
    without the director's commands."""
    resolved, stats = report.resolved, report.statistics
    blocks = [
        _("<b>Account status — {school}</b>").format(school=school.title),
        scope_summary(resolved),
        "",
        "\n".join(_totals(stats.total)),
    ]
    if resolved.scope.kind is not ScopeKind.CLASS and len(stats.classes) > 0:
        blocks += [
            "",
            _("<b>Per class</b> (accounts activated · pupils with an activated guardian)"),
        ]
        blocks += [_group_line(group) for group in stats.classes]
    if stats.levels and (resolved.scope.kind is not ScopeKind.LEVEL):
        blocks += [
            "",
            _("<b>Per level</b> (accounts activated · pupils with an activated guardian)"),
        ]
        blocks += [_group_line(group) for group in stats.levels]
    blocks += ["", *_next_steps(report, read_only)]
    if report.behind:
        blocks += [
            "",
            _("Furthest behind: {classes}. Tap a class below for its own status.").format(
                classes=", ".join(
                    _("{label} ({percent} activated)").format(
                        label=html.escape(group.label),
                        percent=format_percentage(group.activated_accounts_percent / 100),
                    )
                    for group in report.behind
                )
            ),
        ]
    return blocks


def report_keyboard(
    report: StatusReport, prefix: str, extra: list[list[InlineKeyboardButton]] | None = None
) -> InlineKeyboardMarkup | None:
    """A button per class to look closer (`<prefix>c<class id>`), « whole school » when a
    part is shown (`<prefix>e`), then the `extra` rows."""
    scope = report.resolved.scope
    rows: list[list[InlineKeyboardButton]] = []
    if scope.kind is not ScopeKind.CLASS:
        buttons = [
            InlineKeyboardButton(
                button_text(group.label), callback_data=f"{prefix}c{group.class_id}"
            )
            for group in report.statistics.classes
        ]
        rows = rows_of(buttons, 3)
    if scope.kind is not ScopeKind.SCHOOL:
        rows.append([InlineKeyboardButton(_("⬅️ Whole school"), callback_data=f"{prefix}e")])
    rows += extra or []
    # A school with no class yet has no button: Telegram refuses an empty keyboard.
    return InlineKeyboardMarkup(rows) if rows else None
