"""The texts of a distribution's preview and summary: the scopes resolved, who will get what,
who is skipped and why (with what to type instead).
"""

from __future__ import annotations

import html
from collections.abc import Sequence

from bot.i18n import _, format_number, ngettext
from bot.services.accounts import CredentialKind
from bot.services.distribution import DistributionPreview, Purpose, SkipReason
from bot.services.roster import ResolvedScope, ScopeKind
from handlers.access import SchoolRef
from handlers.keyboards import guardians_text, pupils_text, scope_summary
from models import DistributionChannel

_SHOWN_NAMES = 10


def scope_argument(scopes: Sequence[ResolvedScope]) -> str:
    """How to type these scopes after a command (« CE1 CE2 », « niveau CM1 », « ecole »)."""
    return " ".join(item.scope.argument for item in scopes) or "ecole"


def scopes_title(scopes: Sequence[ResolvedScope]) -> str:
    """A short name for the scopes, for titles and summaries (HTML-escaped)."""
    names = []
    for item in scopes:
        if item.scope.kind is ScopeKind.SCHOOL:
            names.append(_("whole school"))
        elif item.scope.kind is ScopeKind.LEVEL:
            names.append(_("level {level}").format(level=item.scope.label))
        else:
            names.append(item.scope.label)
    return html.escape(", ".join(names))


def picked_names(preview: DistributionPreview) -> str:
    """Who a preview without scopes was made for (a guardian's card), HTML-escaped."""
    shown = ", ".join(
        f"{entry.name} ({entry.identifier})" for entry in preview.entries[:_SHOWN_NAMES]
    )
    return html.escape(shown + (", …" if len(preview.entries) > _SHOWN_NAMES else ""))


def preview_title(preview: DistributionPreview) -> str:
    """The scopes, or the guardians picked by hand, for titles and summaries (HTML-escaped)."""
    return scopes_title(preview.scopes) or picked_names(preview)


def scope_lines(preview: DistributionPreview) -> list[str]:
    """What the bot resolved, said before acting (« Class CM1 — 22 pupils, 37 guardians »)."""
    if not preview.scopes:
        return [_("For: {guardians}").format(guardians=picked_names(preview))]
    lines = [scope_summary(item) for item in preview.scopes]
    if len(preview.scopes) > 1:
        lines.append(
            _("In all: {pupils}, {guardians}").format(
                pupils=pupils_text(preview.pupils), guardians=guardians_text(preview.guardians)
            )
        )
    return lines


def kind_line(kind: CredentialKind, count: int) -> str:
    """One line of « who will get what »."""
    number = format_number(count)
    if kind is CredentialKind.FIRST:
        text = ngettext(
            "• {count} first distribution: identifier and a new provisional password",
            "• {count} first distributions: identifier and a new provisional password",
            count,
        )
    elif kind is CredentialKind.REMINDER:
        text = ngettext(
            "• {count} reminder: identifier only, the password is unchanged",
            "• {count} reminders: identifier only, the password is unchanged",
            count,
        )
    else:
        text = ngettext(
            "• {count} reset: a new provisional password, the previous one stops working",
            "• {count} resets: a new provisional password, the previous one stops working",
            count,
        )
    return text.format(count=number)


def _names(preview: DistributionPreview, reason: SkipReason) -> str:
    entries = preview.entries_for(reason)
    shown = ", ".join(
        f"{html.escape(entry.name)} (<code>{html.escape(entry.identifier)}</code>)"
        for entry in entries[:_SHOWN_NAMES]
    )
    if len(entries) > _SHOWN_NAMES:
        shown += ", …"
    return shown


def skip_line(reason: SkipReason, count: int, argument: str, names: str = "") -> str:
    """One line of « who is skipped and why »."""
    number = format_number(count)
    argument = html.escape(argument)
    if reason is SkipReason.NO_ADDRESS:
        text = ngettext(
            "• {count} without an e-mail address: print the letter with "
            "<code>/pdf {argument}</code>",
            "• {count} without an e-mail address: print their letters with "
            "<code>/pdf {argument}</code>",
            count,
        )
    elif reason is SkipReason.INVALID_ADDRESS:
        text = ngettext(
            "• {count} with an invalid e-mail address, to correct in ONDE (a paper letter "
            "meanwhile): {names}",
            "• {count} with an invalid e-mail address, to correct in ONDE (paper letters "
            "meanwhile): {names}",
            count,
        )
    elif reason is SkipReason.HAS_ADDRESS:
        text = ngettext(
            "• {count} with an e-mail address: send it with <code>/envoyer {argument}</code>, "
            "or type <code>/pdf {argument} tous</code> to print for everyone",
            "• {count} with an e-mail address: send them with <code>/envoyer {argument}</code>, "
            "or type <code>/pdf {argument} tous</code> to print for everyone",
            count,
        )
    elif reason is SkipReason.ALREADY_ACTIVATED:
        text = ngettext(
            "• {count} already activated: nothing to send",
            "• {count} already activated: nothing to send",
            count,
        )
    elif reason is SkipReason.NOT_YET_NOTIFIED:
        text = ngettext(
            "• {count} never notified: send the credentials first with "
            "<code>/envoyer {argument}</code> or <code>/pdf {argument}</code>",
            "• {count} never notified: send their credentials first with "
            "<code>/envoyer {argument}</code> or <code>/pdf {argument}</code>",
            count,
        )
    elif reason is SkipReason.ARCHIVED:
        text = ngettext(
            "• {count} archived: no child enrolled any more",
            "• {count} archived: no child enrolled any more",
            count,
        )
    else:
        text = ngettext(
            "• {count} whose account is deactivated",
            "• {count} whose accounts are deactivated",
            count,
        )
    return text.format(count=number, argument=argument, names=names)


def skip_lines(
    skipped: dict[str, int], argument: str, names: dict[str, str] | None = None
) -> list[str]:
    """« Skipped » lines from counts keyed by `SkipReason` value (as bot_data keeps them)."""
    lines = []
    for reason in SkipReason:
        count = skipped.get(reason.value, 0)
        if count:
            lines.append(skip_line(reason, count, argument, (names or {}).get(reason.value, "")))
    return lines


def skipped_counts(preview: DistributionPreview) -> dict[str, int]:
    return {reason.value: count for reason, count in preview.skip_counts().items()}


def preview_blocks(school: SchoolRef, preview: DistributionPreview) -> list[str]:
    """The preview: what was resolved, who will get what, who is skipped and why."""
    titles = {
        Purpose.EMAIL: _("<b>Credentials by e-mail</b> — {school}"),
        Purpose.PAPER: _("<b>Letters to print</b> — {school}"),
        Purpose.REMINDER: _("<b>Reminders</b> — {school}"),
    }
    blocks = [titles[preview.purpose].format(school=school.title), *scope_lines(preview), ""]
    planned = len(preview.planned)
    if preview.purpose is Purpose.EMAIL:
        heading = ngettext(
            "<b>{count} guardian will receive an e-mail:</b>",
            "<b>{count} guardians will receive an e-mail:</b>",
            planned,
        )
    elif preview.purpose is Purpose.PAPER:
        heading = ngettext(
            "<b>{count} letter to print, one page per guardian:</b>",
            "<b>{count} letters to print, one page per guardian:</b>",
            planned,
        )
    else:
        heading = ngettext(
            "<b>{count} guardian notified but not activated will be reminded:</b>",
            "<b>{count} guardians notified but not activated will be reminded:</b>",
            planned,
        )
    if planned:
        blocks.append(heading.format(count=format_number(planned)))
        blocks += [kind_line(kind, count) for kind, count in preview.counts().items()]
    if preview.purpose is Purpose.REMINDER and planned:
        blocks.append(
            _("By e-mail: {emails} · on paper (a PDF to print): {letters}").format(
                emails=format_number(preview.channel_count(DistributionChannel.EMAIL)),
                letters=format_number(preview.channel_count(DistributionChannel.PAPER)),
            )
        )
    if preview.already_queued:
        blocks.append(
            ngettext(
                "{count} of them still has an earlier e-mail waiting to be sent: this one "
                "replaces it.",
                "{count} of them still have an earlier e-mail waiting to be sent: this one "
                "replaces it.",
                preview.already_queued,
            ).format(count=format_number(preview.already_queued))
        )
    skipped = preview.skip_counts()
    if skipped:
        names = {
            SkipReason.INVALID_ADDRESS.value: _names(preview, SkipReason.INVALID_ADDRESS),
        }
        blocks += ["", _("<b>Skipped:</b>")]
        blocks += skip_lines(skipped_counts(preview), scope_argument(preview.scopes), names)
    return blocks


def nobody_text(preview: DistributionPreview) -> str:
    """Why there is nothing to do for this scope."""
    if preview.purpose is Purpose.PAPER:
        return _("No letter to print here: nobody of this list needs one.")
    if preview.purpose is Purpose.REMINDER:
        return _("Nobody to remind here: no guardian is notified and waiting to activate.")
    return _("Nobody to send an e-mail to here.")


def paper_question() -> str:
    """What confirming /pdf does, said before it is done."""
    return _(
        "Nothing has been printed yet. The PDF will be encrypted with your school's document "
        "password, and the accounts will count as notified (on paper) as soon as it is made."
    )
