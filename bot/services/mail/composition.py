"""The credential e-mails (docs/PRODUCT.md): the same content as the printed letter, as a
multipart message whose plain-text part reads well on its own and whose HTML part is the same
text, laid out. No attachment. Written in French; for a family whose language is not French,
the same content follows in that language (`bot.services.mail.bilingual`).
"""

from __future__ import annotations

import base64
import binascii
import email.policy
import html
import secrets
from dataclasses import dataclass, replace
from datetime import date, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import Compat32
from email.utils import format_datetime, formataddr, make_msgid, parseaddr
from functools import lru_cache
from zoneinfo import ZoneInfo

from bot.config import get_settings
from bot.i18n import _, current_language, format_date, ngettext, use_language
from bot.services.accounts import CredentialKind
from bot.services.letters import ChildLine, Letter
from bot.services.mail.bilingual import (
    TranslationHeading,
    bilingual_subject,
    content_language,
    html_heading,
    plain_heading,
    second_language,
    translation_heading,
)
from models import utcnow

# Only an address with a non-ASCII local part needs SMTPUTF8 (and a server that offers it).
SMTPUTF8_POLICY = email.policy.SMTPUTF8
# Plain-text lines stay under the 78 characters mail readers expect (RFC 5322 §2.1.1).
TEXT_WIDTH = 76
# Used in Message-IDs when MAIL_FROM has no usable domain.
FALLBACK_DOMAIN = "educonnect.invalid"


class MissingAddressError(ValueError):
    """The letter's guardian has no e-mail address: they get a paper letter instead."""


@lru_cache(maxsize=16)
def sender_address(mail_from: str) -> Address:
    """MAIL_FROM (« EduConnect <no-reply@ecole.fr> » or a bare address) as a header address."""
    name, addr = parseaddr(mail_from)
    if "@" not in addr:
        raise ValueError(f"MAIL_FROM is not an e-mail address: {mail_from!r}")
    username, domain = addr.rsplit("@", 1)
    return Address(display_name=name, username=username, domain=domain)


@lru_cache(maxsize=16)
def message_id_domain(mail_from: str) -> str:
    """The domain our Message-IDs end with: MAIL_FROM's, so replies and bounces thread there."""
    _name, addr = parseaddr(mail_from)
    domain = addr.rsplit("@", 1)[-1].strip().lower() if "@" in addr else ""
    return domain or FALLBACK_DOMAIN


def _subject(letter: Letter) -> str:
    if letter.kind == CredentialKind.FIRST:
        subject = _("EduConnect — your account for {school}: identifier and provisional password")
    elif letter.kind == CredentialKind.RESET:
        subject = _("EduConnect — your new provisional password for {school}")
    else:
        subject = _("EduConnect — reminder of your identifier for {school}")
    return subject.format(school=letter.school_name)


@dataclass(frozen=True, slots=True)
class _Content:
    """The e-mail's text, already translated and formatted, before it is laid out."""

    subject: str
    addressee_name: str
    addressee: str
    school: str
    children_title: str
    children: tuple[str, ...]
    intro: str
    identifier_line: str
    password_line: str | None
    password_note: str | None
    expiry_line: str | None
    unchanged_line: str | None
    steps_title: str
    steps: tuple[str, ...]
    portal_line: str
    bot_lines: tuple[str, ...]
    bot_url: str | None
    safety_line: str
    dateline: str
    signature: str
    footer: str
    # The Content-Language header: « fr », or « fr, ar » once the translation is added.
    content_language: str = "fr"


@dataclass(frozen=True, slots=True)
class _Translated:
    """The e-mail's content in the family's language, with the heading that introduces it."""

    heading: TranslationHeading
    content: _Content


@lru_cache(maxsize=64)
def _date_text(day: date, language: str) -> str:
    # A batch repeats the same two dates a thousand times, and Babel is slow to format them.
    with use_language(language):
        return format_date(day)


def _local_day(moment: datetime | date, tz: ZoneInfo | None) -> date:
    # The day `format_date` would show.
    if isinstance(moment, datetime):
        return (moment.astimezone(tz) if tz is not None else moment).date()
    return moment


def _child_line(child: ChildLine) -> str:
    if child.class_label:
        return _("{first_name} {last_name}, class {class_label}").format(
            first_name=child.first_name,
            last_name=child.last_name.upper(),
            class_label=child.class_label,
        )
    return f"{child.first_name} {child.last_name.upper()}"


def _school_line(letter: Letter) -> str:
    if letter.school_city:
        return _("{school}, {city} (UAI {uai})").format(
            school=letter.school_name, city=letter.school_city, uai=letter.school_uai
        )
    return _("{school} (UAI {uai})").format(school=letter.school_name, uai=letter.school_uai)


def _intro(kind: CredentialKind) -> str:
    if kind == CredentialKind.FIRST:
        return _(
            "Here are your credentials for EduConnect, the account with which you follow your "
            "children's schooling online, their school report booklet (LSU) included."
        )
    if kind == CredentialKind.RESET:
        return _(
            "Here is a new provisional password for your EduConnect account: the previous one "
            "no longer works."
        )
    return _("As a reminder, here is the identifier of your EduConnect account.")


@dataclass(frozen=True, slots=True)
class _PasswordText:
    """The lines about the password: a new one with its expiry, or « unchanged »."""

    password_line: str | None
    password_note: str | None
    expiry_line: str | None
    unchanged_line: str | None
    steps: tuple[str, ...]


def _password_text(letter: Letter, tz: ZoneInfo) -> _PasswordText:
    if letter.password is None:
        return _PasswordText(
            password_line=None,
            password_note=None,
            expiry_line=None,
            unchanged_line=_(
                "Your password is unchanged: use the one you received first. If you have lost "
                "it, ask the school for a new one."
            ),
            steps=(
                _("Go to {url} and log in with your identifier and your password.").format(
                    url=letter.activation_url
                ),
                _(
                    "If you have not done so yet, choose your own password, give your e-mail "
                    "address and follow the confirmation link you will receive by e-mail."
                ),
            ),
        )
    expiry_line = None
    if letter.expires_at is not None:
        expiry_line = _("This provisional password is valid until {date}.").format(
            date=_date_text(_local_day(letter.expires_at, tz), current_language())
        )
    return _PasswordText(
        password_line=_("Password: {password}").format(password=letter.password),
        password_note=_("provisional password, to be changed at the first login"),
        expiry_line=expiry_line,
        unchanged_line=None,
        steps=(
            _("Go to {url} and log in with your identifier and this provisional password.").format(
                url=letter.activation_url
            ),
            _(
                "Choose your own password, give your e-mail address and confirm the date of "
                "birth of one of your children, then follow the confirmation link you will "
                "receive by e-mail."
            ),
        ),
    )


def _bot_lines(letter: Letter) -> tuple[str, ...]:
    if letter.bot_link_url:
        return (
            _("Follow your account and get help on Telegram: {url}").format(
                url=letter.bot_link_url
            ),
            _("This link is yours alone and works only once."),
        )
    if letter.family_link_code:
        return (
            _(
                "To follow your account and get help on Telegram, send this message to the "
                "school's EduConnect assistant: {command}"
            ).format(command=f"/start {letter.family_link_code}"),
            _("This code is yours alone and works only once."),
        )
    return ()


def _content(letter: Letter, tz: ZoneInfo) -> _Content:
    password = _password_text(letter, tz)
    return _Content(
        subject=_subject(letter),
        addressee_name=letter.addressee,
        addressee=_("For the attention of {name}").format(name=letter.addressee),
        school=_school_line(letter),
        children_title=ngettext("Child concerned:", "Children concerned:", len(letter.children)),
        children=tuple(_child_line(child) for child in letter.children),
        intro=_intro(letter.kind),
        identifier_line=_("Identifier: {identifier}").format(identifier=letter.identifier),
        password_line=password.password_line,
        password_note=password.password_note,
        expiry_line=password.expiry_line,
        unchanged_line=password.unchanged_line,
        steps_title=_("Activate your account in 2 steps"),
        steps=password.steps,
        portal_line=_("EduConnect portal: {url}").format(url=letter.portal_url),
        bot_lines=_bot_lines(letter),
        bot_url=letter.bot_link_url,
        safety_line=_("Never give your password to anyone: the school will never ask you for it."),
        dateline=_("Dated {date}").format(
            date=_date_text(_local_day(letter.letter_date, None), current_language())
        ),
        signature=_("The school director"),
        footer=_("This message was sent automatically by the school's EduConnect assistant."),
    )


def _wrap(text: str, indent: str = "", hanging: str | None = None) -> list[str]:
    """`text` in lines of at most 76 characters, cut at spaces only: links are never cut, so
    they stay clickable (a word longer than a line gets a line of its own)."""
    if len(indent) + len(text) <= TEXT_WIDTH:
        return [indent + text]
    following = indent if hanging is None else hanging
    lines: list[str] = []
    line, empty = indent, True
    for word in text.split():
        if empty:
            line, empty = line + word, False
        elif len(line) + 1 + len(word) > TEXT_WIDTH:
            lines.append(line)
            line = following + word
        else:
            line = f"{line} {word}"
    lines.append(line)
    return lines


def _plain_lines(content: _Content) -> list[str]:
    """The plain text of one language, without the footer."""
    lines = [*_wrap(content.addressee), *_wrap(content.school), "", content.children_title]
    for child in content.children:
        lines += _wrap(child, "  - ", "    ")
    lines += ["", *_wrap(content.intro), "", f"    {content.identifier_line}"]
    if content.password_line is not None:
        lines.append(f"    {content.password_line}")
        lines += _wrap(f"({content.password_note})", "    ")
    if content.expiry_line is not None:
        lines += ["", *_wrap(content.expiry_line)]
    if content.unchanged_line is not None:
        lines += ["", *_wrap(content.unchanged_line)]
    lines += ["", content.steps_title, ""]
    for number, step in enumerate(content.steps, start=1):
        lines += _wrap(step, f"  {number}. ", "     ")
    lines += ["", *_wrap(content.portal_line)]
    if content.bot_lines:
        lines.append("")
        for line in content.bot_lines:
            lines += _wrap(line)
    lines += ["", *_wrap(content.safety_line), "", content.dateline, content.signature]
    return lines


def _plain_text(content: _Content, translated: _Translated | None = None) -> str:
    """The plain-text part: French, then the translation if any, then the footer(s) after
    the signature separator (only there: readers grey out everything after it)."""
    lines = _plain_lines(content)
    footers = [content.footer]
    if translated is not None:
        lines += plain_heading(translated.heading) + _plain_lines(translated.content)
        footers.append(translated.content.footer)
    # « -- » + space: the signature separator mail readers recognise and grey out.
    lines += ["", "-- "]
    for footer in footers:
        lines += _wrap(footer)
    return "\n".join(lines) + "\n"


def _linked(text: str, url: str | None) -> str:
    """`text` escaped for HTML, with `url` (if it appears in it) made a link."""
    escaped = html.escape(text)
    if not url:
        return escaped
    escaped_url = html.escape(url)
    return escaped.replace(escaped_url, f'<a href="{escaped_url}">{escaped_url}</a>', 1)


def _html_parts(content: _Content, letter: Letter, start: str = "left") -> list[str]:
    """The HTML paragraphs of one language, footer included; `start` is the side lists are
    indented on (« right » in a right-to-left language)."""
    e = html.escape
    para = '<p style="margin:0 0 12px 0">{}</p>'.format
    parts = [
        para(f"<strong>{e(content.addressee)}</strong><br>{e(content.school)}"),
        para(
            e(content.children_title)
            + "<br>"
            + "<br>".join(f"&nbsp;&nbsp;• {e(child)}" for child in content.children)
        ),
        para(e(content.intro)),
    ]
    credentials = [e(content.identifier_line)]
    if content.password_line is not None and letter.password is not None:
        # The password alone in a monospace face: 8 characters without 0/O or 1/I to confuse.
        label = e(content.password_line).replace(
            e(letter.password),
            '<span dir="ltr" style="font-family:Consolas,Menlo,monospace;font-size:17px;'
            f'letter-spacing:2px">{e(letter.password)}</span>',
            1,
        )
        credentials.append(f"{label}<br><em>{e(content.password_note or '')}</em>")
    parts.append(
        '<div style="border:1px solid #c9d3e0;border-radius:6px;padding:12px 16px;'
        'margin:0 0 12px 0;background:#f5f8fc">' + "<br>".join(credentials) + "</div>"
    )
    if content.expiry_line is not None:
        parts.append(para(e(content.expiry_line)))
    if content.unchanged_line is not None:
        parts.append(para(e(content.unchanged_line)))
    steps = "".join(
        f'<li style="margin:0 0 6px 0">{_linked(step, letter.activation_url)}</li>'
        for step in content.steps
    )
    parts.append(
        f'<h2 style="font-size:17px;margin:16px 0 8px 0">{e(content.steps_title)}</h2>'
        f'<ol style="margin:0 0 12px 0;padding-{start}:22px">{steps}</ol>'
    )
    parts.append(para(_linked(content.portal_line, letter.portal_url)))
    if content.bot_lines:
        parts.append(
            para("<br>".join(_linked(line, content.bot_url) for line in content.bot_lines))
        )
    parts.append(para(e(content.safety_line)))
    parts.append(para(f"{e(content.dateline)}<br>{e(content.signature)}"))
    parts.append(
        '<p style="margin:16px 0 0 0;font-size:12px;color:#667085">' + e(content.footer) + "</p>"
    )
    return parts


def _html(content: _Content, letter: Letter, translated: _Translated | None = None) -> str:
    """The HTML part: French, then the translation in a block of its own language and
    direction."""
    e = html.escape
    parts = _html_parts(content, letter)
    if translated is not None:
        heading = translated.heading
        parts += [
            f'<div {heading.html_attributes} style="margin:24px 0 0 0">',
            html_heading(heading),
            *_html_parts(translated.content, letter, heading.start_side),
            "</div>",
        ]
    return (
        '<!DOCTYPE html>\n<html lang="fr">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{e(content.subject)}</title>\n</head>\n"
        '<body style="margin:0;padding:16px;font-family:Arial,Helvetica,sans-serif;'
        'font-size:15px;line-height:1.45;color:#1d2939">\n'
        '<div style="max-width:600px">\n' + "\n".join(parts) + "\n</div>\n</body>\n</html>\n"
    )


class PreEncodedPolicy(Compat32):
    """compat32, writing as they are the header values that are ASCII and properly folded.

    Ours are: `_encoded_words` encodes (RFC 2047) and folds them when they are set. Re-folding
    each header is most of the time the standard policies spend serialising a message, which
    matters at 1,000 e-mails a batch; anything else goes through compat32 as usual.
    """

    def _verbatim(self, name: str, value: object) -> str | None:
        if not isinstance(value, str) or not value.isascii() or "\r" in value:
            return None
        lines = value.split("\n")
        if any(not line.startswith((" ", "\t")) for line in lines[1:]):
            return None  # a bare line break would start a new header: not ours
        return f"{name}: {self.linesep.join(lines)}{self.linesep}"

    def fold(self, name: str, value: str) -> str:
        return self._verbatim(name, value) or super().fold(name, value)

    def fold_binary(self, name: str, value: str) -> bytes:
        folded = self._verbatim(name, value)
        if folded is None:
            return super().fold_binary(name, value)
        return folded.encode("ascii")


# No « >From » mangling: that is for mbox files, and QP bodies never start a line with it.
PRE_ENCODED = PreEncodedPolicy(mangle_from_=False)
# Keeps each encoded word within RFC 2047's 75 characters and each header line within 78.
_WORD_BYTES = 42


def _encoded_words(text: str) -> str:
    """`text` as RFC 2047 encoded words (UTF-8, base64), folded one word per line; ASCII text
    without line breaks is kept as it is."""
    if text.isascii() and "\n" not in text and "\r" not in text and "=?" not in text:
        return text
    words: list[str] = []
    chunk = b""
    for char in text.replace("\r", " ").replace("\n", " "):
        encoded = char.encode("utf-8")
        if len(chunk) + len(encoded) > _WORD_BYTES:
            words.append(chunk.decode("utf-8"))
            chunk = b""
        chunk += encoded
    if chunk:
        words.append(chunk.decode("utf-8"))
    return "\n ".join(
        f"=?utf-8?b?{base64.b64encode(word.encode('utf-8')).decode('ascii')}?=" for word in words
    )


@lru_cache(maxsize=16)
def _from_header(mail_from: str) -> str:
    name, addr = parseaddr(mail_from)
    return _mailbox(name, addr) if name else addr


def _mailbox(name: str, address: str) -> str:
    """« "Prénom NOM" <address> » for a header, the name encoded when it is not plain ASCII."""
    if name.isascii() and "\n" not in name and "\r" not in name:
        return formataddr((name, address))
    return f"{_encoded_words(name)}\n <{address}>"


def _text_part(body: str, subtype: str) -> EmailMessage:
    part = EmailMessage(policy=PRE_ENCODED)
    part["Content-Type"] = f'text/{subtype}; charset="utf-8"'
    # Quoted-printable keeps the accented text 7-bit clean for any server, and readable.
    part["Content-Transfer-Encoding"] = "quoted-printable"
    part.set_payload(binascii.b2a_qp(body.encode("utf-8")).decode("ascii"))
    return part


def _assemble_ascii(
    content: _Content, text: str, body_html: str, *, to: str, mail_from: str, date: str
) -> EmailMessage:
    # The common case, built the fast way: headers encoded here, bodies encoded by binascii
    # in C, serialised without re-folding (`PreEncodedPolicy`): about 8 times faster than
    # the modern API.
    message = EmailMessage(policy=PRE_ENCODED)
    message["Subject"] = _encoded_words(content.subject)
    message["From"] = _from_header(mail_from)
    message["To"] = _mailbox(content.addressee_name, to)
    message["Date"] = date
    message["Message-ID"] = make_msgid(domain=message_id_domain(mail_from))
    # RFC 3834: out-of-office robots must not answer a machine.
    message["Auto-Submitted"] = "auto-generated"
    message["Content-Language"] = content.content_language
    message["MIME-Version"] = "1.0"
    # « =_ » never occurs in quoted-printable text: the boundary cannot clash with the parts.
    message["Content-Type"] = f'multipart/alternative;\n boundary="=_{secrets.token_hex(16)}"'
    message.attach(_text_part(text, "plain"))
    message.attach(_text_part(body_html, "html"))
    return message


def _assemble_smtputf8(
    content: _Content, text: str, body_html: str, *, to: str, mail_from: str, date: str
) -> EmailMessage:
    # An address with a non-ASCII local part travels only with SMTPUTF8: UTF-8 headers.
    username, _at, domain = to.rpartition("@")
    message = EmailMessage(policy=SMTPUTF8_POLICY)
    message["Subject"] = content.subject
    message["From"] = sender_address(mail_from)
    message["To"] = Address(display_name=content.addressee_name, username=username, domain=domain)
    message["Date"] = date
    message["Message-ID"] = make_msgid(domain=message_id_domain(mail_from))
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(text, charset="utf-8", cte="quoted-printable")
    message.add_alternative(body_html, subtype="html", charset="utf-8", cte="quoted-printable")
    # After the content: setting the content replaces every Content-* header.
    message["Content-Language"] = content.content_language
    return message


def compose_credentials_email(
    letter: Letter,
    *,
    mail_from: str,
    tz: ZoneInfo | None = None,
    now: datetime | None = None,
) -> EmailMessage:
    """The e-mail carrying `letter` to its guardian: multipart/alternative (plain text + HTML),
    in French, followed by the same content in `letter.language` when that is another language,
    `To: "Prénom NOM" <address>` (RFC 2047 encoded), a Subject naming the school, a unique
    Message-ID on MAIL_FROM's domain and a Date. Dates are shown in `tz` (default: the TIMEZONE
    setting). Serialise it with `as_bytes()`; its headers are already encoded.

    Raises `MissingAddressError` when the guardian has no e-mail address.
    """
    if not letter.email:
        raise MissingAddressError(f"account {letter.account_id} has no e-mail address")
    zone = tz or get_settings().tz
    with use_language("fr"):
        content = _content(letter, zone)
    translated = None
    second = second_language(letter.language)
    if second is not None:
        with use_language(second):
            translated = _Translated(translation_heading(second), _content(letter, zone))
        content = replace(
            content,
            subject=bilingual_subject(content.subject, second),
            content_language=content_language(second),
        )
    with use_language("fr"):
        text = _plain_text(content, translated)
        body_html = _html(content, letter, translated)
    date = format_datetime((now or utcnow()).astimezone(zone))
    username = letter.email.rpartition("@")[0]
    assemble = _assemble_ascii if username.isascii() else _assemble_smtputf8
    return assemble(content, text, body_html, to=letter.email, mail_from=mail_from, date=date)
