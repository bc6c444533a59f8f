"""/etat [classe]: the « état des comptes » for the school, a class or a level — the
lights, both percentages, per class and per level — and what to do next.

Without an argument it shows the whole school with a button per class to look closer; the
buttons (`etat:<scope>`) edit the same message. Anyone who directs no school sees their own
family account instead (`handlers.family_status`).
"""

from __future__ import annotations

import html
import re

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.ext import BaseHandler, CallbackQueryHandler, CommandHandler, filters

from bot.context import BotContext
from bot.i18n import _, format_number, format_percentage, ngettext
from bot.services.roster import (
    Counts,
    GroupCounts,
    NextStep,
    NextStepKind,
    ScopeKind,
    StatusReport,
    UnknownClassError,
    lights_and_percentages,
    status_report,
)
from handlers.access import SchoolRef, current_school, director_only
from handlers.family_status import show_family_status
from handlers.keyboards import (
    button_text,
    lights_text,
    rows_of,
    scope_buttons,
    scope_summary,
    show,
    unknown_class_text,
)

PREFIX = "etat:"
_SCOPE = re.compile(rf"^{PREFIX}(\w+)$")


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


def render_report(school: SchoolRef, report: StatusReport) -> list[str]:
    """The blocks of the status message."""
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
    blocks += ["", _("<b>What to do next</b>")]
    if stats.total.accounts == 0:
        blocks.append(
            _(
                "No guardian accounts yet: send me the ONDE extractions (« Élèves » and "
                "« Responsables » CSV files) to import them."
            )
        )
    elif not report.next_steps:
        blocks.append(_("🟢 Every account is activated. Nothing left to do!"))
    else:
        blocks += [_step_text(step) for step in report.next_steps]
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


def _keyboard(report: StatusReport) -> InlineKeyboardMarkup | None:
    scope = report.resolved.scope
    rows = []
    if scope.kind is not ScopeKind.CLASS:
        buttons = [
            InlineKeyboardButton(
                button_text(group.label), callback_data=f"{PREFIX}c{group.class_id}"
            )
            for group in report.statistics.classes
        ]
        rows = rows_of(buttons, 3)
    if scope.kind is not ScopeKind.SCHOOL:
        rows.append([InlineKeyboardButton(_("⬅️ Whole school"), callback_data=f"{PREFIX}e")])
    # A school with no class yet has no button: Telegram refuses an empty keyboard.
    return InlineKeyboardMarkup(rows) if rows else None


async def show_status(update: Update, context: BotContext) -> None:
    """/etat: a director's school (or class, or level); anyone else's own account."""
    school = await current_school(update, context)
    if school is None:
        await show_family_status(update, context)
        return
    await show_school_status(update, context, school)


async def show_school_status(update: Update, context: BotContext, school: SchoolRef) -> None:
    """Show the status of the school, or of the class or level named."""
    if update.effective_message is None:
        return
    try:
        report = await context.db.run(
            status_report, school_id=school.id, scope_text=" ".join(context.args or [])
        )
    except UnknownClassError as error:
        keyboard = scope_buttons(error.classes, error.levels, lambda token: f"{PREFIX}{token}")
        await show(update, [unknown_class_text(error)], InlineKeyboardMarkup(keyboard))
        return
    await show(update, render_report(school, report), _keyboard(report))


@director_only
async def scope_chosen(update: Update, context: BotContext, school: SchoolRef) -> None:
    """Show the status of the class, level or school whose button was pressed."""
    query = update.callback_query
    match = _SCOPE.match(query.data or "") if query else None
    if query is None or match is None:
        return
    await query.answer()
    token = match[1]
    try:
        report = await context.db.run(status_report, school_id=school.id, scope=token)
    except UnknownClassError:
        report = await context.db.run(status_report, school_id=school.id, scope_text="")
    await show(update, render_report(school, report), _keyboard(report))


_PRIVATE = filters.ChatType.PRIVATE

HANDLERS: list[BaseHandler] = [
    CommandHandler("etat", show_status, filters=_PRIVATE),
    CallbackQueryHandler(scope_chosen, pattern=_SCOPE),
]
