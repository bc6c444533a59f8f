"""/pdf: printable letters, one page per guardian (by default those without an e-mail address;
`tous` for everyone); `/pdf motdepasse` and `/pdf conservation` change how they are protected
(`handlers.distribution.protection`).

Every letters PDF is encrypted with the school's document password (reminders included: even
without a password a letter carries the identifier and the single-use code that links a chat to
the family). The letters are made with nothing written (credentials drawn and hashed, PDF
rendered and encrypted), the PDF is sent, and only then does one short transaction record it
all — the credentials, the family-link codes, the accounts notified (paper), the PDF's deletion
— after checking that no account changed meanwhile; if one did, the PDF is deleted from the chat
and nothing is recorded (`handlers.distribution.delivery`). No write lock is held while the PDF
renders or uploads.
"""

from __future__ import annotations

import html
import logging
import re
import unicodedata
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from telegram import Update
from telegram.ext import Application, ConversationHandler

from bot.context import BotContext, educonnect
from bot.i18n import _, current_language, format_number, ngettext, use_language
from bot.services.distribution import (
    DistributionError,
    DistributionPreview,
    Purpose,
    draft_paper_letters,
    plan_paper_letters,
    record_letters_sent_in_chat,
)
from bot.services.helpdesk import HelpAction
from bot.services.letters import has_letter_password
from bot.services.roster import UnknownClassError
from handlers.access import SchoolRef, director_only
from handlers.distribution.delivery import (
    LettersJob,
    SentLetters,
    keep_track,
    record_or_withdraw,
    send_letters,
    set_status,
)
from handlers.distribution.picked import answer_help_request
from handlers.distribution.preview import (
    Confirmed,
    answer_unknown_scope,
    ask_for_scope,
    plan_for_arguments,
    show_preview,
    take_confirmation,
)
from handlers.distribution.protection import password_needed, password_prompt, show_retention
from handlers.distribution.state import (
    LETTERS_PREFIX,
    LETTERS_SCOPE,
    TYPING_DOCUMENT_PASSWORD,
    actor_of,
    forget_pending,
    set_pending,
)

log = logging.getLogger(__name__)

_PASSWORD_WORDS = frozenset({"motdepasse", "mot_de_passe", "mdp", "password", "mot_passe"})
_RETENTION_WORDS = frozenset({"conservation", "retention", "duree", "delai", "suppression"})
_EVERYONE_WORDS = frozenset({"tous", "tout", "toutes", "all", "everyone"})


def _fold(word: str) -> str:
    plain = unicodedata.normalize("NFKD", word)
    plain = "".join(c for c in plain if not unicodedata.combining(c)).casefold()
    return re.sub(r"[\s'’\-.]+", "_", plain).strip("_")


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
            has_letter_password, school_id=school.id, secret_key=context.settings.secret_key_source
        )
        text, keyboard = password_prompt(school, replacing=known)
        await message.reply_text(text, reply_markup=keyboard)
        return TYPING_DOCUMENT_PASSWORD
    if first in _RETENTION_WORDS:
        await show_retention(message, context, school, arguments[1:], actor_of(update))
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
            message,
            context,
            school,
            question,
            lambda token: f"{LETTERS_PREFIX}s:{everyone}:{token}",
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
            update, error, lambda token: f"{LETTERS_PREFIX}s:{everyone}:{token}"
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
        return await answer_unknown_scope(
            update, error, lambda t: f"{LETTERS_PREFIX}s:{match[1]}:{t}"
        )
    return await _preview_letters(update, context, school, preview)


@director_only
async def confirm_letters(
    update: Update, context: BotContext, school: SchoolRef
) -> str | int | None:
    """Make the PDF in the background and send it here."""
    taken = await take_confirmation(update, context, school, Purpose.PAPER)
    if not isinstance(taken, Confirmed):
        return taken
    status = await taken.message.reply_text(
        ngettext(
            "⏳ Preparing {count} letter…", "⏳ Preparing {count} letters…", taken.count
        ).format(count=format_number(taken.count))
    )
    job = LettersJob(
        chat_id=status.chat_id,
        status_message_id=status.message_id,
        school=school,
        language=current_language(),
        actor=actor_of(update),
    )
    found = taken.pending

    async def recorded() -> None:
        await answer_help_request(update, context, school, found, HelpAction.LETTER_PREPARED)

    context.application.create_task(
        _run_letters(context.application, job, found, recorded), update=update
    )
    return ConversationHandler.END


async def _run_letters(
    application: Application,
    job: LettersJob,
    found: dict[str, Any],
    recorded: Callable[[], Awaitable[None]],
) -> None:
    """Make the letters (nothing written yet), send the encrypted PDF, then record everything
    in one short transaction — or, if the accounts changed meanwhile, delete the PDF; then
    `recorded()`."""
    app = educonnect(application)
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
                await set_status(application, job, html.escape(str(error)))
                return
            assert draft.paper is not None
            sent = await send_letters(application, job, draft.paper)
        except Exception:
            log.exception("preparing letters failed")
            await set_status(
                application,
                job,
                _("Sorry, making the letters failed and nothing was recorded. Please try again."),
            )
            return
        if sent is None:
            return
        delete_at = await record_or_withdraw(
            application,
            job,
            sent,
            lambda: app.db.run(
                record_letters_sent_in_chat,
                draft=draft,
                chat_id=sent.message.chat_id,
                message_id=sent.message.message_id,
                sent_at=sent.sent_at,
            ),
        )
        if delete_at is not None:
            await _after_sent(application, job, sent, delete_at)
            await recorded()


async def _after_sent(
    application: Application, job: LettersJob, sent: SentLetters, delete_at: datetime
) -> None:
    """Once committed: arm the deletion, remember the file names, update the status."""
    keep_track(application, job, sent, delete_at)
    await set_status(
        application,
        job,
        ngettext(
            "✅ {count} letter ready: the PDF is below.",
            "✅ {count} letters ready: the PDF is below.",
            len(sent.filenames),
        ).format(count=format_number(len(sent.filenames))),
    )
