"""Roster import in chat: the director sends the ONDE extractions (Élèves, Responsables, either
order) as CSV files → a preview with the counts and rejected lines → [Importer] / [Annuler].

The files wait in the data folder between the steps; user_data keeps only their names, paths
and categories (JSON), so a restart in the middle of the conversation loses nothing. Nothing is
written to the registry before [Importer], and the import uses the very bytes previewed.
"""

from __future__ import annotations

import asyncio
import html
import warnings
from pathlib import PurePath
from typing import Any

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, InputFile, Message, Update
from telegram.ext import (
    BaseHandler,
    CallbackQueryHandler,
    CommandHandler,
    ConversationHandler,
    MessageHandler,
    TypeHandler,
    filters,
)
from telegram.warnings import PTBUserWarning

from bot.context import BotContext
from bot.i18n import _, format_number, ngettext
from bot.services.roster import (
    MAX_FILE_BYTES,
    UPLOAD_LIFETIME,
    ImportReport,
    LineIssue,
    RecordCounts,
    RosterFileError,
    category_name,
    discard_uploads,
    identify_roster_file,
    import_uploads,
    save_upload,
)
from handlers.access import SchoolRef, director_only
from handlers.keyboards import answer_earlier_step_button, answer_stale_button, split_text

# Conversation states: what the director is doing.
WAITING_FOR_SECOND_FILE = "waiting_for_second_file"
CONFIRMING_IMPORT = "confirming_import"

PREFIX = "imp:"
IMPORT, IMPORT_ALONE, CANCEL = f"{PREFIX}go", f"{PREFIX}alone", f"{PREFIX}cancel"
# An import left waiting this long is dropped and its files deleted: they hold a school's
# pupils and families, and nobody is coming back for them.
IMPORT_TIMEOUT_SECONDS = UPLOAD_LIFETIME.total_seconds()
PENDING_KEY = "roster_import"  # user_data: {"school_id": 3, "files": [{name, path, kind}]}

_ACCEPTED_SUFFIXES = frozenset({".csv", ".txt"})
_CSV_TYPES = frozenset(
    {"text/csv", "text/plain", "application/csv", "text/comma-separated-values", "text/x-csv"}
)
_SHOWN_ISSUES = 10
_ISSUE_CHARS = 300
_OTHER_KIND = {"pupils": "guardians", "guardians": "pupils"}


# --- Pending files ----------------------------------------------------------------------------


def _pending(context: BotContext) -> dict[str, Any] | None:
    data = context.user_data
    pending = data.get(PENDING_KEY) if data is not None else None
    return pending if isinstance(pending, dict) else None


def _pending_files(context: BotContext) -> list[dict[str, str]]:
    pending = _pending(context)
    return list(pending.get("files", [])) if pending else []


def _forget_pending(context: BotContext) -> None:
    """Delete the waiting files and forget them."""
    files = _pending_files(context)
    discard_uploads([f["path"] for f in files], data_dir=context.settings.data_dir)
    if context.user_data is not None:
        context.user_data.pop(PENDING_KEY, None)


def _uploads(files: list[dict[str, str]]) -> list[tuple[str, str]]:
    # Élèves first: the report then lists its lines first, as the CLI does.
    ordered = sorted(files, key=lambda f: f["kind"] != "pupils")
    return [(f["name"], f["path"]) for f in ordered]


# --- Texts ------------------------------------------------------------------------------------


def _file_refused(filename: str, reason: str) -> str:
    return _(
        "I could not use the file « {filename} », and nothing was imported from it.\n{reason}"
    ).format(filename=html.escape(filename), reason=html.escape(reason))


def _counts_line(template: str, counts: RecordCounts) -> str:
    return template.format(
        added=format_number(counts.added),
        updated=format_number(counts.updated),
        unchanged=format_number(counts.unchanged),
        retired=format_number(counts.retired),
    )


def _issue_line(issue: LineIssue) -> str:
    message = issue.message
    if len(message) > _ISSUE_CHARS:
        message = message[: _ISSUE_CHARS - 1] + "…"
    # The message names its line already (« Ligne 10 : … »).
    return _("• {filename}: {message}").format(
        filename=html.escape(issue.filename), message=html.escape(message)
    )


def _report_lines(report: ImportReport) -> list[str]:
    """The counts of a preview or of a finished import."""
    lines = [
        _counts_line(
            _(
                "Pupils: {added} new, {updated} updated, {unchanged} unchanged, "
                "{retired} who left (archived)"
            ),
            report.pupils,
        ),
        _counts_line(
            _(
                "Guardians: {added} new, {updated} updated, {unchanged} unchanged, "
                "{retired} no longer linked to a pupil (account deactivated)"
            ),
            report.guardians,
        ),
        _counts_line(
            _("Classes: {added} new, {updated} updated, {unchanged} unchanged, {retired} archived"),
            report.classes,
        ),
        _(
            "Accounts: {created} created, {reactivated} reactivated, {deactivated} deactivated"
        ).format(
            created=format_number(report.accounts_created),
            reactivated=format_number(report.accounts_reactivated),
            deactivated=format_number(report.accounts_deactivated),
        ),
        _("Rejected lines: {rejected} · Warnings: {warnings}").format(
            rejected=format_number(len(report.rejected)),
            warnings=format_number(len(report.warnings)),
        ),
    ]
    return lines


def _issues_block(report: ImportReport) -> list[str]:
    issues = report.rejected + report.warnings
    if not issues:
        return []
    lines = [_("<b>Lines to look at</b> (rejected first):")]
    lines += [_issue_line(issue) for issue in issues[:_SHOWN_ISSUES]]
    if len(issues) > _SHOWN_ISSUES:
        lines.append(
            ngettext(
                "…and {count} more: the full report is in the file below.",
                "…and {count} more: the full report is in the file below.",
                len(issues) - _SHOWN_ISSUES,
            ).format(count=format_number(len(issues) - _SHOWN_ISSUES))
        )
    return lines


def _full_report(report: ImportReport) -> bytes:
    """Every rejected line and warning, as a text file (UTF-8 with BOM, CRLF: Notepad too)."""
    lines = [_("Import report: every rejected line, then every warning."), ""]
    for title, issues in ((_("Rejected lines"), report.rejected), (_("Warnings"), report.warnings)):
        lines.append(f"{title} ({len(issues)})")
        lines += [
            _("{filename}: {message}").format(filename=issue.filename, message=issue.message)
            for issue in issues
        ]
        lines.append("")
    return "\r\n".join(lines).encode("utf-8-sig")


def _files_line(files: list[dict[str, str]]) -> str:
    return ", ".join(
        _("« {filename} » ({category})").format(
            filename=html.escape(f["name"]), category=html.escape(category_name(f["kind"]))
        )
        for f in files
    )


def _confirm_keyboard() -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton(_("✅ Import"), callback_data=IMPORT),
                InlineKeyboardButton(_("✖️ Cancel"), callback_data=CANCEL),
            ]
        ]
    )


# --- Steps ------------------------------------------------------------------------------------


def _is_csv(filename: str, mime_type: str | None) -> bool:
    suffix = PurePath(filename).suffix.lower()
    if suffix:
        return suffix in _ACCEPTED_SUFFIXES
    return (mime_type or "").split(";")[0].strip().lower() in _CSV_TYPES


async def _download(message: Message) -> bytes | None:
    """The document's bytes, or None (after telling the director) if it is refused."""
    document = message.document
    if document is None:
        return None
    filename = document.file_name or _("(file without a name)")
    limit_mb = MAX_FILE_BYTES // (1024 * 1024)
    if document.file_size and document.file_size > MAX_FILE_BYTES:
        await message.reply_text(
            _(
                "The file « {filename} » is {size} MB: I accept files up to {limit} MB, and an "
                "ONDE extraction of a school is far smaller. Nothing was imported. Send the "
                "« Élèves » or « Responsables » CSV file as ONDE produced it."
            ).format(
                filename=html.escape(filename),
                size=format_number(round(document.file_size / 1024 / 1024, 1)),
                limit=limit_mb,
            )
        )
        return None
    if not _is_csv(filename, document.mime_type):
        await message.reply_text(
            _(
                "The file « {filename} » is not a CSV file, so nothing was imported. In ONDE, "
                "open « Listes & documents » → « Extractions » and send me the CSV files it "
                "produces (« Élèves » and « Responsables »), without opening them in a "
                "spreadsheet first."
            ).format(filename=html.escape(filename))
        )
        return None
    telegram_file = await document.get_file()
    return bytes(await telegram_file.download_as_bytearray())


@director_only
async def receive_file(update: Update, context: BotContext, school: SchoolRef) -> str | int | None:
    """Check and keep an ONDE extraction, then preview or ask for the other one."""
    message, user = update.effective_message, update.effective_user
    if message is None or user is None or message.document is None:
        return None
    data = await _download(message)
    if data is None:
        return None  # nothing changes: the conversation stays where it was
    filename = message.document.file_name or "extraction.csv"
    try:
        info = await asyncio.to_thread(identify_roster_file, data=data, filename=filename)
    except RosterFileError as error:
        await message.reply_text(_file_refused(filename, str(error)))
        return None
    pending = _pending(context)
    if pending is None or pending.get("school_id") != school.id:
        _forget_pending(context)  # files sent for another school (before /ecole) are dropped
        pending = {"school_id": school.id, "files": []}
    replaced = [f for f in pending["files"] if f["kind"] == info.kind]
    discard_uploads([f["path"] for f in replaced], data_dir=context.settings.data_dir)
    path = await asyncio.to_thread(
        save_upload, data_dir=context.settings.data_dir, telegram_user_id=user.id, data=data
    )
    files = [f for f in pending["files"] if f["kind"] != info.kind]
    files.append({"name": filename, "path": str(path), "kind": info.kind})
    pending["files"] = files
    assert context.user_data is not None
    context.user_data[PENDING_KEY] = pending
    if len(files) == 2:
        return await _preview(message, context, school, user.id)
    lines = [
        ngettext(
            "Received « {filename} »: the ONDE « {category} » extraction ({lines} line).",
            "Received « {filename} »: the ONDE « {category} » extraction ({lines} lines).",
            info.data_lines,
        ).format(
            filename=html.escape(filename),
            category=html.escape(category_name(info.kind)),
            lines=format_number(info.data_lines),
        )
    ]
    if replaced:
        lines.append(
            _("It replaces « {filename} », sent earlier.").format(
                filename=html.escape(replaced[0]["name"])
            )
        )
    lines.append(
        _(
            "For a complete roster, now send the « {other} » extraction. You can also import "
            "this file alone."
        ).format(other=html.escape(category_name(_OTHER_KIND[info.kind])))
    )
    keyboard = InlineKeyboardMarkup(
        [
            [InlineKeyboardButton(_("Import this file alone"), callback_data=IMPORT_ALONE)],
            [InlineKeyboardButton(_("✖️ Cancel"), callback_data=CANCEL)],
        ]
    )
    await message.reply_text("\n".join(lines), reply_markup=keyboard)
    return WAITING_FOR_SECOND_FILE


async def _preview(
    message: Message, context: BotContext, school: SchoolRef, user_id: int
) -> str | int:
    """Dry-run the pending files and show what the import would do."""
    files = _pending_files(context)
    await message.reply_chat_action("typing")
    try:
        report = await context.db.run(
            import_uploads,
            school_id=school.id,
            uploads=_uploads(files),
            actor=f"telegram:{user_id}",
            dry_run=True,
        )
    except RosterFileError as error:
        await message.reply_text(_file_refused(error.filename or files[-1]["name"], str(error)))
        if len(files) == 1:
            # A Responsables file alone, for a school without pupils: it waits for Élèves.
            return WAITING_FOR_SECOND_FILE
        _forget_pending(context)
        await message.reply_text(_("Send the corrected files when they are ready."))
        return ConversationHandler.END
    except FileNotFoundError:
        return await _files_lost(message, context)
    lines = [
        _("<b>Import preview</b> — {school}").format(school=school.title),
        _("Files: {files}").format(files=_files_line(files)),
        "",
        *_report_lines(report),
    ]
    issues = _issues_block(report)
    if issues:
        lines += ["", *issues]
    lines += ["", _("Nothing has been imported yet. Import now?")]
    texts = split_text(lines)  # long file names and reasons may need two messages
    for text in texts[:-1]:
        await message.reply_text(text)
    await message.reply_text(texts[-1], reply_markup=_confirm_keyboard())
    if len(report.issues) > _SHOWN_ISSUES:
        # Thousands of lines for a large file: written off the event loop.
        full_report = await asyncio.to_thread(_full_report, report)
        await message.reply_document(
            InputFile(full_report, filename="rapport-import.txt"),
            caption=_("Full report of the import preview: every rejected line and warning."),
        )
    return CONFIRMING_IMPORT


async def _files_lost(message: Message, context: BotContext) -> int:
    _forget_pending(context)
    await message.reply_text(
        _("The files you sent are no longer available. Please send them again.")
    )
    return ConversationHandler.END


@director_only
async def preview_single_file(update: Update, context: BotContext, school: SchoolRef) -> Any:
    """Preview the import of the one file received so far."""
    query, user = update.callback_query, update.effective_user
    if query is None or user is None or not isinstance(query.message, Message):
        return None
    await query.answer()
    await query.edit_message_reply_markup(reply_markup=None)
    if not _pending_files(context):
        return await _files_lost(query.message, context)
    return await _preview(query.message, context, school, user.id)


@director_only
async def run_import(update: Update, context: BotContext, school: SchoolRef) -> int:
    """Import the previewed files for real and report what changed."""
    query, user = update.callback_query, update.effective_user
    if query is None or user is None or not isinstance(query.message, Message):
        return ConversationHandler.END
    await query.answer()
    pending = _pending(context)
    files = _pending_files(context)
    if not files or pending is None:
        return await _files_lost(query.message, context)
    if pending.get("school_id") != school.id:
        _forget_pending(context)
        await query.edit_message_text(
            _(
                "You switched to another school since these files were sent, so nothing was "
                "imported. Send the files again to import them into {school}."
            ).format(school=school.title)
        )
        return ConversationHandler.END
    # Remove the buttons first: a second tap must not import twice.
    await query.edit_message_reply_markup(reply_markup=None)
    await query.message.reply_text(_("Importing…"))
    try:
        report = await context.db.run(
            import_uploads,
            school_id=school.id,
            uploads=_uploads(files),
            actor=f"telegram:{user.id}",
            dry_run=False,
        )
    except RosterFileError as error:
        _forget_pending(context)
        await query.message.reply_text(
            _file_refused(error.filename or files[-1]["name"], str(error))
        )
        return ConversationHandler.END
    except FileNotFoundError:
        return await _files_lost(query.message, context)
    _forget_pending(context)
    lines = [
        _("<b>Import done</b> — {school}").format(school=school.title),
        "",
        *_report_lines(report),
        "",
        _("Next: check your classes with /classes and the accounts with /etat."),
    ]
    await query.message.reply_text("\n".join(lines))
    return ConversationHandler.END


@director_only
async def cancel_import_button(update: Update, context: BotContext, school: SchoolRef) -> int:
    """Drop the waiting files: nothing is imported."""
    query = update.callback_query
    if query is not None:
        await query.answer()
        _forget_pending(context)
        await query.edit_message_text(_("Import cancelled: nothing was imported."))
    return ConversationHandler.END


async def cancel_import(update: Update, context: BotContext) -> int:
    """Leave the import with /annuler: the waiting files are deleted, nothing is imported."""
    _forget_pending(context)
    if update.effective_message:
        await update.effective_message.reply_text(_("Import cancelled: nothing was imported."))
    return ConversationHandler.END


async def import_timed_out(update: Update, context: BotContext) -> None:
    """The import waited too long for a file or a button: delete the waiting files and say so,
    so the director knows why the buttons no longer work."""
    _forget_pending(context)
    if update.effective_chat is not None:
        await context.bot.send_message(
            update.effective_chat.id,
            _(
                "The import waited too long, so I deleted the files you sent: nothing was "
                "imported. Send the ONDE extractions again whenever you are ready."
            ),
        )


async def remind_what_is_expected(update: Update, context: BotContext) -> None:
    """Answer text typed while the import waits for a file or a button."""
    if update.effective_message:
        await update.effective_message.reply_text(
            _(
                "An import is in progress: send the other ONDE file, use the buttons above, or "
                "type /annuler to stop it."
            )
        )


async def stale_button(update: Update, context: BotContext) -> None:
    """Answer a button of an import that is over."""
    await answer_stale_button(
        update, _("This import is over. Send the ONDE files again to start a new one.")
    )


_PRIVATE = filters.ChatType.PRIVATE
_DOCUMENT = _PRIVATE & filters.Document.ALL
_TEXT = _PRIVATE & filters.TEXT & ~filters.COMMAND


# Buttons belong to the chat's one import, not to a message: per_message=False is meant, so
# PTB's warning about it says nothing here.
def import_conversation() -> ConversationHandler:
    """The import of ONDE files: files, preview, confirmation."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*per_message=False", category=PTBUserWarning)
        return ConversationHandler(
            entry_points=[MessageHandler(_DOCUMENT, receive_file)],
            states={
                WAITING_FOR_SECOND_FILE: [
                    MessageHandler(_DOCUMENT, receive_file),
                    CallbackQueryHandler(preview_single_file, pattern=f"^{IMPORT_ALONE}$"),
                    CallbackQueryHandler(cancel_import_button, pattern=f"^{CANCEL}$"),
                    MessageHandler(_TEXT, remind_what_is_expected),
                ],
                CONFIRMING_IMPORT: [
                    MessageHandler(_DOCUMENT, receive_file),
                    CallbackQueryHandler(run_import, pattern=f"^{IMPORT}$"),
                    CallbackQueryHandler(cancel_import_button, pattern=f"^{CANCEL}$"),
                    MessageHandler(_TEXT, remind_what_is_expected),
                ],
                ConversationHandler.TIMEOUT: [TypeHandler(Update, import_timed_out)],
            },
            fallbacks=[
                CommandHandler("annuler", cancel_import, filters=_PRIVATE),
                CallbackQueryHandler(answer_earlier_step_button, pattern=f"^{PREFIX}"),
            ],
            conversation_timeout=IMPORT_TIMEOUT_SECONDS,
            name="roster_import",
            persistent=True,
        )


_PLAIN_HANDLERS: list[BaseHandler] = [
    # Buttons of an import that ended (or of a chat state lost): say so, never hang.
    CallbackQueryHandler(stale_button, pattern=f"^{PREFIX}"),
]


def build_handlers() -> list[BaseHandler]:
    """The feature's handlers, the conversation new for each application: a conversation
    handler keeps the state of the conversations it saw, which belongs to one application."""
    return [import_conversation(), *_PLAIN_HANDLERS]
