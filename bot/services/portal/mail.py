"""The e-mails the activation portal sends: the activation confirmation link, the new-address
confirmation link, the notice to the old address once it is replaced, the « mot de passe
oublié » link and the « identifiant oublié » reminder.

Each is multipart/alternative (plain text that reads well alone + the same text as HTML), in
French, followed by the same text in the family's language when that is another one
(`bot.services.mail.bilingual`), with a unique Message-ID on MAIL_FROM's domain. They go through
the outbox (`bot.services.mail.outbox.enqueue`).
"""

from __future__ import annotations

import email.policy
import html
import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from functools import partial
from zoneinfo import ZoneInfo

from bot.config import get_settings
from bot.i18n import (
    DEFAULT_LANGUAGE,
    N_,
    _,
    format_date,
    format_time,
    ngettext,
    use_language,
)
from bot.services.mail import (
    TranslationHeading,
    bilingual_subject,
    content_language,
    html_heading,
    message_id_domain,
    plain_heading,
    second_language,
    sender_address,
    translation_heading,
)
from models import utcnow

TEXT_WIDTH = 76


@dataclass(frozen=True, slots=True)
class _Link:
    """A link on a line of its own (never wrapped, so it stays clickable)."""

    url: str


@dataclass(frozen=True, slots=True)
class IdentifierLine:
    """One account in an « identifiant oublié » reminder."""

    identifier: str
    addressee: str
    school_name: str


Paragraph = str | _Link | tuple[str, ...]


@dataclass(frozen=True, slots=True)
class _Version:
    """The e-mail in one language: its subject, paragraphs (greeting first) and footer."""

    subject: str
    paragraphs: Sequence[Paragraph]
    footer: str


@dataclass(frozen=True, slots=True)
class _Translated:
    """The e-mail in the family's language, with the heading that introduces it."""

    heading: TranslationHeading
    version: _Version


def _text_lines(paragraphs: Sequence[Paragraph]) -> list[str]:
    lines: list[str] = []
    for paragraph in paragraphs:
        if isinstance(paragraph, _Link):
            lines.append(paragraph.url)
        elif isinstance(paragraph, tuple):
            for item in paragraph:
                lines += textwrap.wrap(
                    item, TEXT_WIDTH, initial_indent="  - ", subsequent_indent="    "
                )
        else:
            lines += textwrap.wrap(paragraph, TEXT_WIDTH, break_on_hyphens=False) or [""]
        lines.append("")
    return lines


def _text(french: _Version, translated: _Translated | None) -> str:
    """The plain-text part: French, then the translation if any, then the footer(s) after the
    signature separator (only there: readers grey out everything after it)."""
    lines = _text_lines(french.paragraphs)
    footers = [french.footer]
    if translated is not None:
        lines += plain_heading(translated.heading)[1:] + _text_lines(translated.version.paragraphs)
        footers.append(translated.version.footer)
    lines.append("-- ")
    for footer in footers:
        lines += textwrap.wrap(footer, TEXT_WIDTH)
    return "\n".join(lines) + "\n"


def _html_parts(paragraphs: Sequence[Paragraph], footer: str, start: str = "left") -> list[str]:
    """The HTML paragraphs of one language, footer last; `start` is the side lists are
    indented on (« right » in a right-to-left language)."""
    e = html.escape
    parts: list[str] = []
    for paragraph in paragraphs:
        if isinstance(paragraph, _Link):
            url = e(paragraph.url)
            parts.append(
                f'<p style="margin:0 0 12px 0"><a href="{url}" style="color:#0b4f9c">{url}</a></p>'
            )
        elif isinstance(paragraph, tuple):
            items = "".join(f"<li>{e(item)}</li>" for item in paragraph)
            parts.append(f'<ul style="margin:0 0 12px 0;padding-{start}:22px">{items}</ul>')
        else:
            parts.append(f'<p style="margin:0 0 12px 0">{e(paragraph)}</p>')
    parts.append(f'<p style="margin:16px 0 0 0;font-size:12px;color:#4a5565">{e(footer)}</p>')
    return parts


def _html(subject: str, french: _Version, translated: _Translated | None) -> str:
    """The HTML part: French, then the translation in a block of its own language and
    direction."""
    e = html.escape
    parts = _html_parts(french.paragraphs, french.footer)
    if translated is not None:
        heading = translated.heading
        parts += [
            f'<div {heading.html_attributes} style="margin:24px 0 0 0">',
            html_heading(heading),
            *_html_parts(
                translated.version.paragraphs, translated.version.footer, heading.start_side
            ),
            "</div>",
        ]
    return (
        f'<!DOCTYPE html>\n<html lang="{DEFAULT_LANGUAGE}">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{e(subject)}</title>\n</head>\n"
        '<body style="margin:0;padding:16px;font-family:Arial,Helvetica,sans-serif;'
        'font-size:15px;line-height:1.45;color:#1d2939">\n'
        '<div style="max-width:600px">\n' + "\n".join(parts) + "\n</div>\n</body>\n</html>\n"
    )


def _assemble(
    french: _Version,
    translated: _Translated | None,
    *,
    to: str,
    addressee: str,
    mail_from: str,
    tz: ZoneInfo,
    now: datetime | None,
) -> EmailMessage:
    """The e-mail, French then `translated` if any, dated `now` in the school's zone."""
    second = translated.heading.language if translated is not None else None
    subject = bilingual_subject(french.subject, second)
    username, _at, domain = to.rpartition("@")
    # Only an address with a non-ASCII local part needs SMTPUTF8 (and a server offering it).
    policy = email.policy.SMTP if username.isascii() else email.policy.SMTPUTF8
    message = EmailMessage(policy=policy)
    message["Subject"] = subject
    message["From"] = sender_address(mail_from)
    message["To"] = Address(display_name=addressee, username=username, domain=domain)
    message["Date"] = format_datetime((now or utcnow()).astimezone(tz))
    message["Message-ID"] = make_msgid(domain=message_id_domain(mail_from))
    # RFC 3834: out-of-office robots must not answer a machine.
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(_text(french, translated), charset="utf-8", cte="quoted-printable")
    message.add_alternative(
        _html(subject, french, translated),
        subtype="html",
        charset="utf-8",
        cte="quoted-printable",
    )
    message["Content-Language"] = content_language(second)
    return message


def _until(expires_at: datetime, tz: ZoneInfo) -> str:
    return _("This link works only once, until {time} on {date}.").format(
        time=format_time(expires_at, tz=tz), date=format_date(expires_at, tz=tz)
    )


def _footer() -> str:
    return _("This message was sent automatically by the school's EduConnect assistant.")


@dataclass(frozen=True, slots=True)
class _LinkWords:
    """What differs between the three link e-mails (message ids, translated when sent)."""

    subject: str
    # Says what the link is for; « {identifier} » and « {school} » are filled in.
    intro: str
    # What to do if the family did not ask for the link.
    closing: str


_ACTIVATION_WORDS = _LinkWords(
    subject=N_("EduConnect — confirm your e-mail address to activate your account"),
    intro=N_(
        "You have chosen the password of the EduConnect account {identifier} "
        "({school}). One step is left: confirm that this e-mail address is yours. "
        "Open this link, then press the button on the page it opens:"
    ),
    closing=N_(
        "If you did not activate an EduConnect account, do not open the link and tell the school."
    ),
)
_EMAIL_CHANGE_WORDS = _LinkWords(
    subject=N_("EduConnect — confirm your new e-mail address"),
    intro=N_(
        "You asked for this address to become the e-mail address of the EduConnect "
        "account {identifier} ({school}). To confirm it, open this link, then press "
        "the button on the page it opens:"
    ),
    closing=N_("If you did not ask for this, ignore this message: nothing will change."),
)
_PASSWORD_RESET_WORDS = _LinkWords(
    subject=N_("EduConnect — choose a new password"),
    intro=N_(
        "A new password was asked for the EduConnect account {identifier} ({school}). "
        "To choose it, open this link:"
    ),
    closing=N_("If you did not ask for this, ignore this message: your password stays the same."),
)


def _compose(
    content: Callable[[ZoneInfo], tuple[str, list[Paragraph]]],
    *,
    to: str,
    addressee: str,
    mail_from: str,
    language: str,
    tz: ZoneInfo | None,
    now: datetime | None,
) -> EmailMessage:
    """The e-mail to `addressee` whose subject and paragraphs `content` words (given the
    school's zone), after the greeting every portal e-mail opens with: in French, then in
    `language` when that is another one."""
    zone = tz or get_settings().tz

    def version(code: str) -> _Version:
        with use_language(code):
            subject, paragraphs = content(zone)
            greeting = _("For the attention of {name}").format(name=addressee)
            return _Version(subject, [greeting, *paragraphs], _footer())

    second = second_language(language)
    translated = None
    if second is not None:
        translated = _Translated(translation_heading(second), version(second))
    return _assemble(
        version(DEFAULT_LANGUAGE),
        translated,
        to=to,
        addressee=addressee,
        mail_from=mail_from,
        tz=zone,
        now=now,
    )


def _compose_link(
    words: _LinkWords,
    *,
    to: str,
    addressee: str,
    identifier: str,
    school_name: str,
    link: str,
    expires_at: datetime,
    mail_from: str,
    language: str = "fr",
    tz: ZoneInfo | None = None,
    now: datetime | None = None,
) -> EmailMessage:
    """A link e-mail: what it is for, the link alone on its line, until when it works."""

    def content(zone: ZoneInfo) -> tuple[str, list[Paragraph]]:
        return _(words.subject), [
            _(words.intro).format(identifier=identifier, school=school_name),
            _Link(link),
            _until(expires_at, zone),
            _(words.closing),
        ]

    return _compose(
        content, to=to, addressee=addressee, mail_from=mail_from, language=language, tz=tz, now=now
    )


# The three link e-mails differ only in their words.
# The link that confirms the address given at activation and activates the account.
compose_activation_link = partial(_compose_link, _ACTIVATION_WORDS)
# The link, sent to a new address, that makes it the account's address.
compose_email_change_link = partial(_compose_link, _EMAIL_CHANGE_WORDS)
# The « mot de passe oublié » link: choose a new password within 30 minutes.
compose_password_reset_link = partial(_compose_link, _PASSWORD_RESET_WORDS)


def compose_email_changed_notice(
    *,
    to: str,
    addressee: str,
    identifier: str,
    school_name: str,
    changed_at: datetime,
    mail_from: str,
    language: str = "fr",
    tz: ZoneInfo | None = None,
    now: datetime | None = None,
) -> EmailMessage:
    """To the old address, once a new one replaced it through « Mon compte »: so that a family
    whose account was taken over learns it from the address it still reads. The new address
    is not in it (it would tell a stranger where the account's mail now goes)."""

    def content(zone: ZoneInfo) -> tuple[str, list[Paragraph]]:
        return _("EduConnect — the e-mail address of your account was changed"), [
            _(
                "The e-mail address of the EduConnect account {identifier} ({school}) was "
                "changed on {date} at {time}: the school's messages now go to the new address, "
                "no longer to this one."
            ).format(
                identifier=identifier,
                school=school_name,
                date=format_date(changed_at, tz=zone),
                time=format_time(changed_at, tz=zone),
            ),
            _(
                "If you made this change, there is nothing to do. If you did not, tell the "
                "school at once: it can give the account back to you."
            ),
        ]

    return _compose(
        content, to=to, addressee=addressee, mail_from=mail_from, language=language, tz=tz, now=now
    )


def compose_identifier_reminder(
    *,
    to: str,
    addressee: str,
    lines: Sequence[IdentifierLine],
    login_url: str,
    forgot_password_url: str,
    mail_from: str,
    language: str = "fr",
    tz: ZoneInfo | None = None,
    now: datetime | None = None,
) -> EmailMessage:
    """The « identifiant oublié » reminder: the identifiers linked to this address."""

    def content(_zone: ZoneInfo) -> tuple[str, list[Paragraph]]:
        count = len(lines)
        subject = ngettext("EduConnect — your identifier", "EduConnect — your identifiers", count)
        return subject, [
            ngettext(
                "Here is the EduConnect identifier linked to this e-mail address:",
                "Here are the EduConnect identifiers linked to this e-mail address:",
                count,
            ),
            tuple(
                _("{identifier} — {name}, {school}").format(
                    identifier=line.identifier, name=line.addressee, school=line.school_name
                )
                for line in lines
            ),
            _("Log in on the EduConnect portal:"),
            _Link(login_url),
            _(
                "If your account is activated and you have forgotten your password too, "
                "choose a new one here:"
            ),
            _Link(forgot_password_url),
            _("If you did not ask for this, ignore this message: nothing will change."),
        ]

    return _compose(
        content, to=to, addressee=addressee, mail_from=mail_from, language=language, tz=tz, now=now
    )
