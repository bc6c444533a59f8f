"""How help requests read in the chat: topics and statuses in words, a request as its school's
directors see it, a family's list of its requests, and what a family is told of an answer."""

from __future__ import annotations

import html
from zoneinfo import ZoneInfo

from bot.i18n import N_, _, format_datetime
from bot.services.helpdesk import (
    FamilyNotice,
    HelpAction,
    HelpStatus,
    HelpTopic,
    RecordSummary,
    RequestView,
)
from bot.services.roster import STATE_LIGHTS, state_label

TOPIC_LABELS: dict[HelpTopic, str] = {
    HelpTopic.IDENTIFIER: N_("Lost identifier"),
    HelpTopic.PASSWORD: N_("New provisional password (no e-mail address)"),
    HelpTopic.WRONG_EMAIL: N_("Confirmation e-mail sent to a wrong address"),
    HelpTopic.BIRTH_DATE: N_("Child's birth date refused"),
    HelpTopic.UNKNOWN_PHONE: N_("Mobile number not found"),
    HelpTopic.QUESTION: N_("Question"),
}

STATUS_LABELS: dict[HelpStatus, str] = {
    HelpStatus.OPEN: N_("🆕 open"),
    HelpStatus.IN_PROGRESS: N_("⏳ in progress"),
    HelpStatus.ANSWERED: N_("✅ answered"),
    HelpStatus.CLOSED: N_("📁 closed"),
}

ACTION_LABELS: dict[HelpAction, str] = {
    HelpAction.FILED: N_("filed"),
    HelpAction.TAKEN: N_("taken in hand"),
    HelpAction.MATCHED: N_("record chosen"),
    HelpAction.EMAIL_SENT: N_("credentials sent by e-mail"),
    HelpAction.LETTER_PREPARED: N_("paper letter prepared"),
    HelpAction.CONFIRMATION_RESENT: N_("confirmation link sent again"),
    HelpAction.EMAIL_CORRECTED: N_("e-mail address corrected"),
    HelpAction.REPLIED: N_("answer sent"),
    HelpAction.FAMILY_MESSAGE: N_("message from the family"),
    HelpAction.CLOSED: N_("closed"),
}


def topic_label(topic: HelpTopic) -> str:
    return _(TOPIC_LABELS[topic])


def status_label(status: HelpStatus) -> str:
    return _(STATUS_LABELS[status])


def record_line(record: RecordSummary) -> str:
    """« Léa DUBOIS — lea.dubois — 🟠 Notified — e-mail: yes — Inès (CP A) »."""
    parts = [f"<b>{html.escape(record.name)}</b>"]
    if record.identifier:
        parts.append(f"<code>{html.escape(record.identifier)}</code>")
    if record.state is not None:
        parts.append(f"{STATE_LIGHTS[record.state]} {html.escape(state_label(record.state))}")
    parts.append(_("e-mail: yes") if record.has_email else _("e-mail: none"))
    if record.deactivated:
        parts.append(_("account deactivated"))
    if record.children:
        parts.append(html.escape(", ".join(record.children)))
    return " — ".join(parts)


def _declared_lines(view: RequestView) -> list[str]:
    lines: list[str] = []
    if view.declared_guardian:
        lines.append(_("Says they are: {name}").format(name=html.escape(view.declared_guardian)))
    if view.declared_child or view.declared_class:
        lines.append(
            _("Child: {child} — class: {label}").format(
                child=html.escape(view.declared_child or "?"),
                label=html.escape(view.declared_class or "?"),
            )
        )
    return lines


def _match_lines(view: RequestView) -> list[str]:
    if view.record is not None:
        how = {
            "linked": _("the chat is linked to this account"),
            "phone": _("found by the mobile number Telegram verified"),
            "names": _("found by the names given: check them"),
            "director": _("chosen by a director"),
        }.get(view.matched_by or "", "")
        lines = [_("Record: {record}").format(record=record_line(view.record))]
        if how:
            lines.append(f"<i>{html.escape(how)}</i>")
        return lines
    if view.candidates:
        lines = [_("Possible records (tap the right one below):")]
        lines += [f"• {record_line(c)}" for c in view.candidates]
        return lines
    return [_("No record found from what the family gave: check /responsables.")]


def request_card(view: RequestView, tz: ZoneInfo) -> str:
    """A request as its school's directors see it: the family's words escaped."""
    lines = [
        _("<b>Help request {reference}</b> — {status}").format(
            reference=view.reference, status=html.escape(status_label(view.status))
        ),
        _("{topic} — {when}").format(
            topic=html.escape(topic_label(view.topic)),
            when=format_datetime(view.created_at, tz=tz),
        ),
        *_declared_lines(view),
    ]
    if view.message:
        lines += ["", f"« {html.escape(view.message)} »"]
    lines += ["", *_match_lines(view)]
    later = [e for e in view.history if e.action not in (HelpAction.FILED, HelpAction.TAKEN)]
    if later:
        lines += ["", _("<b>History</b>")]
        for event in later[-6:]:
            label = html.escape(_(ACTION_LABELS[event.action]))
            line = f"• {format_datetime(event.at, tz=tz)} — {label}"
            if event.text:
                line += f" : « {html.escape(event.text)} »"
            lines.append(line)
    return "\n".join(lines)


def family_request_line(view: RequestView, tz: ZoneInfo) -> str:
    """One of a family's requests: reference, topic, status, and the school's last message."""
    line = _("<b>{reference}</b> — {topic} — {status}\n{school}, {when}").format(
        reference=view.reference,
        topic=html.escape(topic_label(view.topic)),
        status=html.escape(status_label(view.status)),
        school=html.escape(view.school_name),
        when=format_datetime(view.created_at, tz=tz),
    )
    replies = [e for e in view.history if e.action is HelpAction.REPLIED and e.text]
    if replies:
        line += "\n" + _("The school's last answer: « {text} »").format(
            text=html.escape(replies[-1].text or "")
        )
    return line


def family_notice_text(notice: FamilyNotice) -> str:
    """What the family reads when a director acted on its request (in the family's language:
    the caller sets it)."""
    reference = html.escape(notice.reference)
    if notice.action is HelpAction.EMAIL_SENT:
        body = _(
            "The school sent your EduConnect credentials to your e-mail address. Open the e-mail "
            "(check the spam folder too) and follow its steps to activate your account."
        )
    elif notice.action is HelpAction.LETTER_PREPARED:
        body = _(
            "The school has prepared a paper letter with your EduConnect credentials. Ask for it "
            "at the school (or look in your child's school bag), then follow its steps."
        )
    elif notice.action is HelpAction.CONFIRMATION_RESENT:
        body = _(
            "The school sent the confirmation link again to your e-mail address. Open the e-mail "
            "and click its link to finish activating your account (it may be in the spam folder)."
        )
    elif notice.action is HelpAction.EMAIL_CORRECTED:
        body = _(
            "The school corrected your e-mail address. If your account was waiting for its "
            "confirmation, a new confirmation link has been sent to the right address."
        )
    elif notice.action is HelpAction.REPLIED:
        body = _("The school answered:\n« {text} »").format(text=html.escape(notice.text or ""))
    else:
        body = _("The school has closed this request. If you still need help, type /question.")
    lines = [_("📬 <b>Your request {reference}</b>").format(reference=reference), "", body]
    if notice.action is not HelpAction.CLOSED:
        lines += ["", _("/demande shows your requests; you can add a message there if needed.")]
    return "\n".join(lines)
