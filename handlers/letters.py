"""/pdf: printable letters, one page per guardian (by default those without an e-mail address;
`tous` for everyone), the individual documents as a ZIP on request, and how the letters are
protected in chat.

A PDF of letters is encrypted (AES-256) with the school's document password, which the director
chooses once (the message in which it is typed is deleted at once and the password is never
repeated), and the bot deletes its message carrying the PDF after the school's retention
(24 hours unless changed; `handlers.deletions` does it, across restarts). Every letters PDF is
encrypted, reminders included: even without a password a letter carries the identifier and
the single-use code that links a chat to the family.

`/pdf motdepasse` changes the document password; `/pdf conservation [heures]` the retention.
The letters are made with nothing written (credentials drawn and hashed, PDF rendered and
encrypted), the PDF is sent, and only then does one short transaction record it all — the
credentials, the family-link codes, the accounts notified (paper), the PDF's deletion — after
checking that no account changed meanwhile; if one did, the PDF is deleted from the chat and
nothing is recorded. No write lock is held while the PDF renders or uploads.

This module also builds the one conversation shared with /envoyer and /relancer
(`handlers.distribution`), whose steps may need the document password.
"""

from __future__ import annotations

import asyncio
import html
import logging
import re
import time
import unicodedata
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from sqlmodel import Session
from telegram import InlineKeyboardButton, InlineKeyboardMarkup, InputFile, Message, Update
from telegram.error import BadRequest, TelegramError
from telegram.ext import (
    Application,
    BaseHandler,
    CallbackQueryHandler,
    CommandHandler,
    ConversationHandler,
    MessageHandler,
    filters,
)
from telegram.warnings import PTBUserWarning

from bot.context import BotContext, EduConnectApplication
from bot.i18n import _, current_language, format_datetime, format_number, ngettext, use_language
from bot.services.distribution import (
    DistributionError,
    DistributionPreview,
    PaperLetters,
    Purpose,
    ReminderResult,
    draft_paper_letters,
    draft_reminders,
    plan_paper_letters,
    record_paper_letters,
    record_reminders,
)
from bot.services.letter_documents import LetterDocumentsError, individual_documents_zip
from bot.services.letter_settings import (
    MAX_RETENTION_HOURS,
    MIN_LETTER_PASSWORD_LENGTH,
    MIN_RETENTION_HOURS,
    LetterSettingsError,
    get_letter_password,
    get_retention_hours,
    has_letter_password,
    schedule_letter_deletion,
    set_letter_password,
    set_retention_hours,
)
from bot.services.pdf_protection import encrypt_pdf
from bot.services.roster import UnknownClassError
from handlers import deletions, distribution
from handlers.access import SchoolRef, director_only
from handlers.distribution import (
    CHOOSING_SCOPE,
    CONFIRMING,
    TYPING_DOCUMENT_PASSWORD,
    BatchStart,
    actor_of,
    answer_unknown_scope,
    ask_for_scope,
    forget_pending,
    pending,
    plan_for_arguments,
    scope_lines,
    scope_tokens,
    set_pending,
    show_preview,
)
from handlers.keyboards import show
from models import utcnow

log = logging.getLogger(__name__)

T = TypeVar("T")

PREFIX = "pdf:"
# pdf:s:<a|d>:<scope> — a class chosen with a button (a: everyone, d: without e-mail only).
LETTERS_SCOPE = re.compile(rf"^{PREFIX}s:([ad]):(\w+)$")
PRINT, CANCEL = f"{PREFIX}go", f"{PREFIX}no"
ZIP = f"{PREFIX}zip"
RETENTION = re.compile(rf"^{PREFIX}ret:(\d+)$")
RETENTION_CHOICES = (1, 24, 48)

# chat_data: the file names of the letters of each PDF sent, by message id (no secret), so
# that the individual documents can be cut from the PDF later.
LETTER_FILES_KEY = "letter_files"
_LETTER_FILES_KEPT = 3 * 24 * 3600.0

_PASSWORD_WORDS = frozenset({"motdepasse", "mot_de_passe", "mdp", "password", "mot_passe"})
_RETENTION_WORDS = frozenset({"conservation", "retention", "duree", "delai", "suppression"})
_EVERYONE_WORDS = frozenset({"tous", "tout", "toutes", "all", "everyone"})


def _fold(word: str) -> str:
    plain = unicodedata.normalize("NFKD", word)
    plain = "".join(c for c in plain if not unicodedata.combining(c)).casefold()
    return re.sub(r"[\s'’\-.]+", "_", plain).strip("_")


def _app(application: Application) -> EduConnectApplication:
    assert isinstance(application, EduConnectApplication)
    return application


# --- Texts ---------------------------------------------------------------------------------------


def paper_question(school: SchoolRef) -> str:
    """What confirming /pdf does, said before it is done."""
    return _(
        "Nothing has been printed yet. The PDF will be encrypted with your school's document "
        "password, and the accounts will count as notified (on paper) as soon as it is made."
    )


def letters_keyboard(count: int, nonce: str) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton(
                    ngettext(
                        "🖨️ Make the PDF ({count} letter)", "🖨️ Make the PDF ({count} letters)", count
                    ).format(count=format_number(count)),
                    callback_data=distribution.confirm_data(PRINT, nonce),
                ),
                InlineKeyboardButton(
                    _("✖️ Cancel"), callback_data=distribution.confirm_data(CANCEL, nonce)
                ),
            ]
        ]
    )


def _password_prompt(school: SchoolRef, *, replacing: bool) -> str:
    lines = [_("🔒 <b>Document password</b> — {school}").format(school=school.title)]
    if replacing:
        lines.append(
            _("Type the new document password. The PDFs already sent keep the previous one.")
        )
    else:
        lines.append(
            _(
                "Letters carry passwords, so the PDFs I send you are encrypted (AES-256) with a "
                "document password that you choose once for your school. It opens the PDFs: "
                "share it only with whoever prints them."
            )
        )
    lines.append(
        _(
            "Type it now: at least {count} characters. I will delete your message at once and "
            "never repeat the password. /annuler to stop."
        ).format(count=MIN_LETTER_PASSWORD_LENGTH)
    )
    return "\n\n".join(lines)


def _retention_text(hours: int) -> str:
    return ngettext(
        "The PDFs of letters stay in this chat for {hours} hour, then I delete them.",
        "The PDFs of letters stay in this chat for {hours} hours, then I delete them.",
        hours,
    ).format(hours=format_number(hours))


def _retention_keyboard(current: int) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton(
                    ("✅ " if hours == current else "")
                    + ngettext("{hours} hour", "{hours} hours", hours).format(hours=hours),
                    callback_data=f"{PREFIX}ret:{hours}",
                )
                for hours in RETENTION_CHOICES
            ]
        ]
    )


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


# --- The document password ----------------------------------------------------------------------


async def password_needed(
    update: Update, context: BotContext, school: SchoolRef, preview: DistributionPreview
) -> bool:
    """If the school has no document password yet, ask for it (the preview waits); True then."""
    known = await context.db.run(
        has_letter_password, school_id=school.id, data_dir=context.settings.data_dir
    )
    if known:
        return False
    set_pending(
        context,
        {
            "purpose": preview.purpose.value,
            "school_id": school.id,
            "scopes": scope_tokens(preview),
            "include_all": preview.include_all,
        },
    )
    blocks = [*scope_lines(preview), "", _password_prompt(school, replacing=False)]
    await show(update, blocks)
    return True


async def _delete_typed(message: Message) -> bool:
    try:
        return bool(await message.delete())
    except TelegramError:
        return False


@director_only
async def receive_document_password(
    update: Update, context: BotContext, school: SchoolRef
) -> str | int:
    """Store the document password typed (deleting its message), then go on."""
    message = update.effective_message
    if message is None or message.text is None:
        return TYPING_DOCUMENT_PASSWORD
    typed = message.text
    deleted = await _delete_typed(message)
    try:
        await context.db.run(
            set_letter_password,
            school_id=school.id,
            password=typed,
            data_dir=context.settings.data_dir,
            actor=actor_of(update),
        )
    except LetterSettingsError as error:
        await message.chat.send_message(
            _("{reason} Type another one, or /annuler to stop.").format(
                reason=html.escape(str(error))
            )
        )
        return TYPING_DOCUMENT_PASSWORD
    if deleted:
        saved = _(
            "✅ Document password saved for {school}. I deleted your message so that it does not "
            "stay in this chat. To change it later: <code>/pdf motdepasse</code>."
        )
    else:
        saved = _(
            "✅ Document password saved for {school}. I could not delete your message: please "
            "delete it yourself (press and hold it, then « Delete »)."
        )
    await message.chat.send_message(saved.format(school=school.title))
    found = pending(context) or {}
    if (
        found.get("purpose") not in {p.value for p in Purpose}
        or found.get("school_id") != school.id
    ):
        forget_pending(context)
        return ConversationHandler.END
    return await distribution.replan(update, context, school)


# --- /pdf -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _LettersRequest:
    words: list[str]
    include_all: bool


def _parse(arguments: list[str]) -> _LettersRequest:
    words = [word for argument in arguments for word in argument.split()]
    include_all = False
    if words and _fold(words[-1]) in _EVERYONE_WORDS:
        include_all = True
        words = words[:-1]
    return _LettersRequest(words, include_all)


@director_only
async def start_letters(update: Update, context: BotContext, school: SchoolRef) -> str | int:
    """Preview the letters of the classes named, or ask for the class; or change a setting."""
    message = update.effective_message
    if message is None:
        return ConversationHandler.END
    forget_pending(context)
    arguments = list(context.args or [])
    first = _fold(arguments[0]) if arguments else ""
    if first in _PASSWORD_WORDS:
        set_pending(context, {"purpose": "password", "school_id": school.id})
        known = await context.db.run(
            has_letter_password, school_id=school.id, data_dir=context.settings.data_dir
        )
        await message.reply_text(_password_prompt(school, replacing=known))
        return TYPING_DOCUMENT_PASSWORD
    if first in _RETENTION_WORDS:
        await _retention(message, context, school, arguments[1:], actor_of(update))
        return ConversationHandler.END
    request = _parse(arguments)
    everyone = "a" if request.include_all else "d"
    if not request.words:
        question = (
            _(
                "For whom should I print the letters (everyone)? Choose a class, a level or the "
                "whole school."
            )
            if request.include_all
            else _(
                "For whom should I print the letters (the guardians without an e-mail "
                "address)? Choose a class, a level or the whole school."
            )
        )
        return await ask_for_scope(
            message, context, school, question, lambda token: f"{PREFIX}s:{everyone}:{token}"
        )
    try:
        preview = await plan_for_arguments(
            context,
            plan_paper_letters,
            school,
            request.words,
            include_all=request.include_all,
        )
    except UnknownClassError as error:
        return await answer_unknown_scope(
            update, error, lambda token: f"{PREFIX}s:{everyone}:{token}"
        )
    return await _preview_letters(update, context, school, preview)


async def _preview_letters(
    update: Update, context: BotContext, school: SchoolRef, preview: DistributionPreview
) -> str | int:
    if not preview.is_empty and await password_needed(update, context, school, preview):
        return TYPING_DOCUMENT_PASSWORD
    return await show_preview(update, context, school, preview)


@director_only
async def letters_scope_chosen(update: Update, context: BotContext, school: SchoolRef) -> str | int:
    """Preview the letters of the class whose button was pressed."""
    query = update.callback_query
    match = LETTERS_SCOPE.match(query.data or "") if query else None
    if query is None or match is None:
        return ConversationHandler.END
    await query.answer()
    include_all = match[1] == "a"
    try:
        preview = await context.db.run(
            plan_paper_letters,
            school_id=school.id,
            scope_tokens=[match[2]],
            include_all=include_all,
        )
    except UnknownClassError as error:
        return await answer_unknown_scope(update, error, lambda t: f"{PREFIX}s:{match[1]}:{t}")
    return await _preview_letters(update, context, school, preview)


@director_only
async def confirm_letters(
    update: Update, context: BotContext, school: SchoolRef
) -> str | int | None:
    """Make the PDF in the background and send it here."""
    query = update.callback_query
    if query is None or not isinstance(query.message, Message):
        return ConversationHandler.END
    found = distribution.confirmed_pending(update, context, school, Purpose.PAPER)
    if found is None:
        return await distribution.stale_confirmation(update, context, school)
    await query.answer()
    await query.edit_message_reply_markup(reply_markup=None)
    forget_pending(context)
    count = len(found["confirmation"].get("accounts", {}))
    status = await query.message.reply_text(
        ngettext("⏳ Preparing {count} letter…", "⏳ Preparing {count} letters…", count).format(
            count=format_number(count)
        )
    )
    job = _LettersJob(
        chat_id=status.chat_id,
        status_message_id=status.message_id,
        school=school,
        language=current_language(),
        actor=actor_of(update),
    )
    context.application.create_task(_run_letters(context.application, job, found), update=update)
    return ConversationHandler.END


@dataclass(frozen=True)
class _LettersJob:
    chat_id: int
    status_message_id: int
    school: SchoolRef
    language: str
    actor: str


async def _set_status(application: Application, job: _LettersJob, text: str) -> None:
    try:
        await application.bot.edit_message_text(
            text, chat_id=job.chat_id, message_id=job.status_message_id
        )
    except TelegramError as error:
        log.info("letters status not edited (%s)", type(error).__name__)


async def _run_letters(application: Application, job: _LettersJob, found: dict[str, Any]) -> None:
    """Make the letters (nothing written yet), send the encrypted PDF, then record everything
    in one short transaction — or, if the accounts changed meanwhile, delete the PDF."""
    app = _app(application)
    with use_language(job.language):
        try:
            try:
                draft = await app.db.run(
                    draft_paper_letters,
                    school_id=job.school.id,
                    preview_or_account_ids=found["confirmation"],
                    include_all=bool(found.get("include_all")),
                    actor=job.actor,
                    bot_username=application.bot.username,
                    portal_url=app.settings.portal_url,
                )
            except DistributionError as error:
                await _set_status(application, job, html.escape(str(error)))
                return
            assert draft.paper is not None
            sent = await _send_letters(application, job, draft.paper)
        except Exception:
            log.exception("preparing letters failed")
            await _set_status(
                application,
                job,
                _("Sorry, making the letters failed and nothing was recorded. Please try again."),
            )
            return
        if sent is None:
            return

        def record(*, session: Session) -> datetime:
            record_paper_letters(session=session, draft=draft)
            return _schedule_deletion(session, job, sent)

        delete_at = await _record_or_withdraw(application, job, sent, record)
        if delete_at is not None:
            await _after_sent(application, job, sent, delete_at)


@dataclass(frozen=True)
class _Sent:
    message: Message
    sent_at: datetime
    filenames: list[str]


async def _send_letters(
    application: Application, job: _LettersJob, paper: PaperLetters
) -> _Sent | None:
    """Encrypt and send the PDF (no transaction open); None, the director told, if it could
    not be sent."""
    app = _app(application)
    password = await app.db.run(
        get_letter_password, school_id=job.school.id, data_dir=app.settings.data_dir
    )
    if password is None:
        await _set_status(
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
        await _set_status(
            application,
            job,
            _("I could not send you the PDF, so nothing was recorded. Please try again."),
        )
        return None
    return _Sent(message, now, [file.filename for file in paper.files])


def _schedule_deletion(session: Session, job: _LettersJob, sent: _Sent) -> datetime:
    return schedule_letter_deletion(
        session=session,
        school_id=job.school.id,
        chat_id=sent.message.chat_id,
        message_id=sent.message.message_id,
        now=sent.sent_at,
    )


async def _record_or_withdraw(
    application: Application,
    job: _LettersJob,
    sent: _Sent,
    record: Callable[..., T],
) -> T | None:
    """Run `record` (the short write transaction); if it fails — an account changed since the
    letters were made, or the database — delete the PDF just sent, whose letters are then not
    valid, and tell the director that nothing was recorded. None then."""
    app = _app(application)
    try:
        return await app.db.run(record)
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
    await _set_status(application, job, f"{failure}\n\n{after}")
    return None


def _hours(hours: int) -> timedelta:
    return timedelta(hours=hours)


async def _after_sent(
    application: Application, job: _LettersJob, sent: _Sent, delete_at: datetime
) -> None:
    """Once committed: arm the deletion, remember the file names, update the status."""
    deletions.arm(application, delete_at)
    _remember_files(application, job.chat_id, sent.message.message_id, sent.filenames)
    await _set_status(
        application,
        job,
        ngettext(
            "✅ {count} letter ready: the PDF is below.",
            "✅ {count} letters ready: the PDF is below.",
            len(sent.filenames),
        ).format(count=format_number(len(sent.filenames))),
    )


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
        get_letter_password, school_id=school.id, data_dir=context.settings.data_dir
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
    deletions.arm(context.application, delete_at)


# --- Retention ----------------------------------------------------------------------------------


async def _retention(
    message: Message, context: BotContext, school: SchoolRef, arguments: list[str], actor: str
) -> None:
    if arguments:
        number = re.sub(r"[^0-9]", "", arguments[0])
        if not number:
            await message.reply_text(
                _(
                    "Type a number of hours between {low} and {high}, for example "
                    "<code>/pdf conservation 24</code>."
                ).format(low=MIN_RETENTION_HOURS, high=MAX_RETENTION_HOURS)
            )
            return
        try:
            await context.db.run(
                set_retention_hours, school_id=school.id, hours=int(number), actor=actor
            )
        except LetterSettingsError as error:
            await message.reply_text(html.escape(str(error)))
            return
    hours = await context.db.run(get_retention_hours, school_id=school.id)
    text = [_retention_text(hours)]
    if not arguments:
        text.append(
            _(
                "Choose how long (Telegram lets me delete my messages for {high} hours at most):"
            ).format(high=MAX_RETENTION_HOURS)
        )
    await message.reply_text("\n".join(text), reply_markup=_retention_keyboard(hours))


@director_only
async def retention_chosen(update: Update, context: BotContext, school: SchoolRef) -> None:
    """Change how long the PDFs of letters stay in the chat."""
    query = update.callback_query
    match = RETENTION.match(query.data or "") if query else None
    if query is None or match is None:
        return
    try:
        await context.db.run(
            set_retention_hours, school_id=school.id, hours=int(match[1]), actor=actor_of(update)
        )
    except LetterSettingsError as error:
        await query.answer(str(error), show_alert=True)
        return
    await query.answer()
    hours = await context.db.run(get_retention_hours, school_id=school.id)
    try:
        await query.edit_message_text(
            _retention_text(hours) + "\n" + _("Applies to the PDFs sent from now on."),
            reply_markup=_retention_keyboard(hours),
        )
    except BadRequest as error:
        if "not modified" not in str(error).lower():
            raise


# --- /relancer's paper letters ------------------------------------------------------------------


async def run_reminders(
    application: Application,
    update: Update,
    school: SchoolRef,
    found: dict[str, Any],
    *,
    reset: bool,
) -> None:
    """Compose the reminder e-mails and make the PDF of the paper ones (nothing written yet),
    send the PDF, then queue the e-mails and record everything in one short transaction (or
    delete the PDF if the accounts changed meanwhile); then follow the e-mails."""
    app = _app(application)
    chat = update.effective_chat
    if chat is None:
        return
    language = current_language()
    status = await application.bot.send_message(
        chat.id,
        _("⏳ Preparing the new passwords and the reminders…")
        if reset
        else _("⏳ Preparing the reminders…"),
    )
    job = _LettersJob(
        chat_id=chat.id,
        status_message_id=status.message_id,
        school=school,
        language=language,
        actor=actor_of(update),
    )
    with use_language(language):
        sent: _Sent | None = None
        try:
            try:
                draft = await app.db.run(
                    draft_reminders,
                    school_id=school.id,
                    preview_or_account_ids=found["confirmation"],
                    reset=reset,
                    actor=job.actor,
                    bot_username=application.bot.username,
                    portal_url=app.settings.portal_url,
                    mail_from=app.settings.mail_from,
                )
            except DistributionError as error:
                await _set_status(application, job, html.escape(str(error)))
                return
            if draft.paper is not None:
                sent = await _send_letters(application, job, draft.paper)
                if sent is None:
                    return
            if sent is None:
                result = await app.db.run(record_reminders, draft=draft)
                delete_at = None
            else:
                letters_sent = sent

                def record(*, session: Session) -> tuple[ReminderResult, datetime]:
                    recorded = record_reminders(session=session, draft=draft)
                    return recorded, _schedule_deletion(session, job, letters_sent)

                recorded = await _record_or_withdraw(application, job, letters_sent, record)
                if recorded is None:
                    return
                result, delete_at = recorded
        except DistributionError as error:
            await _set_status(application, job, html.escape(str(error)))
            return
        except Exception:
            log.exception("preparing reminders failed")
            await _set_status(
                application,
                job,
                _("Sorry, preparing the reminders failed and nothing was sent. Please try again."),
            )
            return
        if sent is not None and delete_at is not None:
            deletions.arm(application, delete_at)
            _remember_files(application, chat.id, sent.message.message_id, sent.filenames)
        if result.batch_id is None:
            await _set_status(
                application,
                job,
                _("✅ Reminders ready: no e-mail to send, the letters to print are below."),
            )
            return
        batch = BatchStart(
            chat_id=chat.id,
            message_id=status.message_id,
            school_id=school.id,
            title=str(found.get("title") or ""),
            skipped=dict(found.get("skipped") or {}),
            argument=str(found.get("argument") or ""),
            language=language,
            kind=Purpose.REMINDER.value,
        )
        await distribution.follow(application, result.batch_id, batch)


# --- The conversation ---------------------------------------------------------------------------

_PRIVATE = filters.ChatType.PRIVATE
_TEXT = _PRIVATE & filters.TEXT & ~filters.COMMAND
_ANY_STEP = rf"^(?:{distribution.EMAIL_PREFIX}|{distribution.REMINDER_PREFIX}|{PREFIX})"
_SCOPE_BUTTONS: list[BaseHandler] = [
    CallbackQueryHandler(distribution.email_scope_chosen, pattern=distribution.EMAIL_SCOPE),
    CallbackQueryHandler(distribution.reminder_scope_chosen, pattern=distribution.REMINDER_SCOPE),
    CallbackQueryHandler(letters_scope_chosen, pattern=LETTERS_SCOPE),
]

# Buttons belong to the chat's one distribution in progress, not to a message.
with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message=".*per_message=False", category=PTBUserWarning)
    distribution_conversation = ConversationHandler(
        entry_points=[
            CommandHandler("envoyer", distribution.start_email, filters=_PRIVATE),
            CommandHandler("relancer", distribution.start_reminder, filters=_PRIVATE),
            CommandHandler("pdf", start_letters, filters=_PRIVATE),
            # A class button of an earlier message starts over from that class.
            *_SCOPE_BUTTONS,
        ],
        states={
            CHOOSING_SCOPE: _SCOPE_BUTTONS,
            TYPING_DOCUMENT_PASSWORD: [MessageHandler(_TEXT, receive_document_password)],
            CONFIRMING: [
                CallbackQueryHandler(
                    distribution.confirm_email,
                    pattern=distribution.confirm_pattern(distribution.SEND),
                ),
                CallbackQueryHandler(
                    distribution.confirm_reminders,
                    pattern=distribution.confirm_pattern(distribution.REMIND, distribution.RESET),
                ),
                CallbackQueryHandler(confirm_letters, pattern=distribution.confirm_pattern(PRINT)),
                CallbackQueryHandler(
                    distribution.cancel_button,
                    pattern=distribution.confirm_pattern(
                        distribution.CANCEL_SEND, distribution.CANCEL_REMINDERS, CANCEL
                    ),
                ),
            ],
        },
        fallbacks=[
            CommandHandler("annuler", distribution.cancel_distribution, filters=_PRIVATE),
            CallbackQueryHandler(
                distribution.earlier_step_button,
                pattern=_ANY_STEP + r"(?:go|no|remind|reset):",
            ),
        ],
        name="distribution",
        persistent=True,
        allow_reentry=True,
    )

HANDLERS: list[BaseHandler] = [
    distribution_conversation,
    # Work at any time, whatever the conversation: they carry their whole meaning.
    CallbackQueryHandler(zip_requested, pattern=f"^{ZIP}$"),
    CallbackQueryHandler(retention_chosen, pattern=RETENTION),
    # Buttons of a preview that is over: say so, never hang.
    CallbackQueryHandler(distribution.stale_button, pattern=_ANY_STEP),
]
