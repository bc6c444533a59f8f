"""A PDF of letters in the chat (/pdf, /relancer's paper reminders): encrypted with the school's
document password and sent with nothing recorded yet, then recorded in one short transaction —
or withdrawn from the chat if that fails (an account changed meanwhile) — and, on request, cut
into one encrypted document per guardian, sent as a ZIP.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeVar
from zoneinfo import ZoneInfo

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, InputFile, Message, Update
from telegram.error import TelegramError
from telegram.ext import Application

from bot.context import BotContext, educonnect
from bot.i18n import _, format_datetime, format_number, ngettext
from bot.jobs import arm_deletion
from bot.services.distribution import DistributionError, PaperLetters
from bot.services.letters import (
    LetterDocumentsError,
    encrypt_pdf,
    get_letter_password,
    get_retention_hours,
    individual_documents_zip,
    schedule_letter_deletion,
)
from handlers.access import SchoolRef, director_only
from handlers.distribution.state import ZIP
from models import utcnow

log = logging.getLogger(__name__)

T = TypeVar("T")

# chat_data: the file names of the letters of each PDF sent, by message id (no secret), so
# that the individual documents can be cut from the PDF later.
LETTER_FILES_KEY = "letter_files"
_LETTER_FILES_KEPT = 3 * 24 * 3600.0


def _hours(hours: int) -> timedelta:
    return timedelta(hours=hours)


@dataclass(frozen=True)
class LettersJob:
    """Where a letters PDF goes and whose it is: the chat, its status message, the school."""

    chat_id: int
    status_message_id: int
    school: SchoolRef
    language: str
    actor: str


@dataclass(frozen=True)
class SentLetters:
    """The PDF in the chat, before it is recorded."""

    message: Message
    sent_at: datetime
    filenames: list[str]


async def set_status(application: Application, job: LettersJob, text: str) -> None:
    """Say where the letters are, in the status message of `job`."""
    try:
        await application.bot.edit_message_text(
            text, chat_id=job.chat_id, message_id=job.status_message_id
        )
    except TelegramError as error:
        log.info("letters status not edited (%s)", type(error).__name__)


def letters_caption(
    count: int, carries_passwords: bool, hours: int, delete_at: datetime, tz: ZoneInfo
) -> str:
    """The caption of a letters PDF: how it is protected, when it goes, what to do."""
    when = format_datetime(delete_at, tz=tz)
    head = ngettext(
        "🔒 <b>{count} letter to print</b>, one page per guardian.",
        "🔒 <b>{count} letters to print</b>, one page per guardian.",
        count,
    ).format(count=format_number(count))
    if carries_passwords:
        body = ngettext(
            "This PDF carries passwords: it is encrypted (AES-256) with your school's document "
            "password, which opens it. I will delete it from this chat in {hours} hour ({when}). "
            "Print it now, hand each letter to its family, and keep the printed letters safe.",
            "This PDF carries passwords: it is encrypted (AES-256) with your school's document "
            "password, which opens it. I will delete it from this chat in {hours} hours ({when}). "
            "Print it now, hand each letter to its family, and keep the printed letters safe.",
            hours,
        )
    else:
        body = ngettext(
            "These reminders carry no password, but they carry the identifiers and the codes "
            "that link a chat to a family: the PDF is encrypted (AES-256) with your school's "
            "document password too. I will delete it from this chat in {hours} hour ({when}). "
            "Print it now and hand each letter to its family.",
            "These reminders carry no password, but they carry the identifiers and the codes "
            "that link a chat to a family: the PDF is encrypted (AES-256) with your school's "
            "document password too. I will delete it from this chat in {hours} hours ({when}). "
            "Print it now and hand each letter to its family.",
            hours,
        )
    return f"{head}\n{body.format(hours=format_number(hours), when=when)}"


def _zip_keyboard() -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        [[InlineKeyboardButton(_("🗂️ One PDF per guardian (ZIP)"), callback_data=ZIP)]]
    )


async def send_letters(
    application: Application, job: LettersJob, paper: PaperLetters
) -> SentLetters | None:
    """Encrypt and send the PDF (no transaction open); None, the director told, if it could
    not be sent."""
    app = educonnect(application)
    password = await app.db.run(
        get_letter_password, school_id=job.school.id, secret_key=app.settings.secret_key_source
    )
    if password is None:
        await set_status(
            application,
            job,
            _(
                "Your school has no document password any more, so nothing was printed. Set "
                "one with <code>/pdf motdepasse</code>, then try again."
            ),
        )
        return None
    encrypted = await asyncio.to_thread(encrypt_pdf, paper.pdf, password)
    hours = await app.db.run(get_retention_hours, school_id=job.school.id)
    now = utcnow()
    caption = letters_caption(
        paper.count,
        any(letter.carries_password for letter in paper.letters),
        hours,
        now + _hours(hours),
        app.settings.tz,
    )
    filename = f"lettres-{job.school.uai}-{now.astimezone(app.settings.tz):%Y%m%d-%H%M}.pdf"
    try:
        message = await application.bot.send_document(
            job.chat_id,
            InputFile(encrypted, filename=filename),
            caption=caption,
            reply_markup=_zip_keyboard() if paper.count > 1 else None,
        )
    except TelegramError:
        await set_status(
            application,
            job,
            _("I could not send you the PDF, so nothing was recorded. Please try again."),
        )
        return None
    return SentLetters(message, now, [file.filename for file in paper.files])


async def record_or_withdraw(
    application: Application,
    job: LettersJob,
    sent: SentLetters,
    record: Callable[[], Awaitable[T]],
) -> T | None:
    """Await `record` (the short write transaction, run by a service); if it fails — an account
    changed since the letters were made, or the database — delete the PDF just sent, whose
    letters are then not valid, and tell the director that nothing was recorded. None then."""
    try:
        return await record()
    except DistributionError:
        failure = _(
            "Some accounts changed while the letters were being made (another send, an "
            "activation or a new import), so nothing was recorded. Ask again to see the "
            "up-to-date preview."
        )
    except Exception:
        log.exception("recording letters failed")
        failure = _(
            "Sorry, recording the letters failed, so nothing was recorded. Please try again."
        )
    try:
        withdrawn = bool(await application.bot.delete_message(job.chat_id, sent.message.message_id))
    except TelegramError as error:
        log.warning("letters PDF not deleted (%s)", type(error).__name__)
        withdrawn = False
    if withdrawn:
        after = _("I deleted the PDF I had just sent: its letters are not valid.")
    else:
        after = _(
            "I could not delete the PDF I had just sent: please delete it yourself, its "
            "letters are not valid."
        )
    await set_status(application, job, f"{failure}\n\n{after}")
    return None


def keep_track(
    application: Application, job: LettersJob, sent: SentLetters, delete_at: datetime
) -> None:
    """Once recorded: arm the PDF's deletion, and remember its file names for the ZIP."""
    arm_deletion(application, delete_at)
    _remember_files(application, job.chat_id, sent.message.message_id, sent.filenames)


def _remember_files(
    application: Application, chat_id: int, message_id: int, filenames: list[str]
) -> None:
    chat_data = application.chat_data[chat_id]
    files = chat_data.get(LETTER_FILES_KEY)
    if not isinstance(files, dict):
        files = {}
    now = time.time()
    files = {
        key: value
        for key, value in files.items()
        if isinstance(value, dict) and now - float(value.get("at", 0)) < _LETTER_FILES_KEPT
    }
    files[str(message_id)] = {"files": filenames, "at": now}
    chat_data[LETTER_FILES_KEY] = files
    application.mark_data_for_update_persistence(chat_ids=chat_id)


# --- Individual documents ------------------------------------------------------------------------


@director_only
async def zip_requested(update: Update, context: BotContext, school: SchoolRef) -> None:
    """Send the individual documents of the PDF whose button was pressed, as a ZIP."""
    query = update.callback_query
    if query is None or not isinstance(query.message, Message):
        return
    message = query.message
    files = (context.chat_data or {}).get(LETTER_FILES_KEY) or {}
    entry = files.get(str(message.message_id)) if isinstance(files, dict) else None
    if message.document is None or not isinstance(entry, dict):
        await query.answer(
            _("These letters are no longer available here. Type /pdf to print letters."),
            show_alert=True,
        )
        return
    await query.answer(_("Preparing one PDF per guardian…"))
    password = await context.db.run(
        get_letter_password, school_id=school.id, secret_key=context.settings.secret_key_source
    )
    if password is None:
        await message.reply_text(
            _("Your school has no document password any more: set one with /pdf motdepasse.")
        )
        return
    telegram_file = await message.document.get_file()
    pdf = bytes(await telegram_file.download_as_bytearray())
    try:
        archive = await asyncio.to_thread(
            individual_documents_zip,
            pdf=pdf,
            document_password=password,
            filenames=list(entry.get("files", [])),
        )
    except LetterDocumentsError:
        await message.reply_text(
            _(
                "I could not cut this PDF into individual documents (the document password was "
                "changed since it was made?). Print the combined PDF instead."
            )
        )
        return
    hours = await context.db.run(get_retention_hours, school_id=school.id)
    now = utcnow()
    count = len(entry.get("files", []))
    caption = ngettext(
        "🗂️ {count} individual document, encrypted with your school's document password. "
        "I will delete this ZIP from the chat on {when}.",
        "🗂️ {count} individual documents, each encrypted with your school's document password. "
        "I will delete this ZIP from the chat on {when}.",
        count,
    ).format(
        count=format_number(count),
        when=format_datetime(now + _hours(hours), tz=context.settings.tz),
    )
    name = (message.document.file_name or "lettres.pdf").removesuffix(".pdf") + ".zip"
    sent = await message.reply_document(InputFile(archive, filename=name), caption=caption)
    delete_at = await context.db.run(
        schedule_letter_deletion,
        school_id=school.id,
        chat_id=sent.chat_id,
        message_id=sent.message_id,
        now=now,
    )
    arm_deletion(context.application, delete_at)
