"""How letters are protected in chat: the school's document password, which encrypts every
letters PDF (asked for once, its message deleted at once, never repeated), and the retention,
how long the bot keeps those PDFs in the chat before deleting them (`bot.jobs.deletions`).

`/pdf motdepasse` changes the password; `/pdf conservation [heures]` the retention.
"""

from __future__ import annotations

import html
import re
from typing import Any

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Message, Update
from telegram.error import BadRequest, TelegramError
from telegram.ext import ConversationHandler

from bot.context import BotContext
from bot.i18n import _, format_number, ngettext
from bot.services.distribution import DistributionPreview, Purpose
from bot.services.letters import (
    MAX_RETENTION_HOURS,
    MIN_LETTER_PASSWORD_LENGTH,
    MIN_RETENTION_HOURS,
    LetterSettingsError,
    generate_letter_passphrase,
    get_retention_hours,
    has_letter_password,
    set_letter_password,
    set_retention_hours,
)
from handlers.access import SchoolRef, director_only
from handlers.distribution.preview import replan, scope_tokens
from handlers.distribution.state import (
    LETTERS_PREFIX,
    PASSPHRASE,
    RETENTION,
    TYPING_DOCUMENT_PASSWORD,
    actor_of,
    forget_pending,
    pending,
    set_pending,
)
from handlers.distribution.texts import scope_lines
from handlers.keyboards import show

RETENTION_CHOICES = (1, 24, 48)


# --- The document password ----------------------------------------------------------------------


def password_prompt(school: SchoolRef, *, replacing: bool) -> tuple[str, InlineKeyboardMarkup]:
    """Ask for the school's document password (what it is for, or that it replaces the old
    one), offering a passphrase drawn now that one button takes."""
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
    passphrase = generate_letter_passphrase()
    lines.append(
        _(
            "Or take this passphrase, drawn at random for you: <code>{passphrase}</code> — "
            "note it first, then press the button."
        ).format(passphrase=passphrase)
    )
    keyboard = InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton(
                    _("🎲 Use this passphrase"), callback_data=f"{LETTERS_PREFIX}pw:{passphrase}"
                )
            ]
        ]
    )
    return "\n\n".join(lines), keyboard


async def password_needed(
    update: Update,
    context: BotContext,
    school: SchoolRef,
    preview: DistributionPreview,
    *,
    origin: dict[str, Any] | None = None,
) -> bool:
    """If the school has no document password yet, ask for it (the preview waits, with its
    `origin` as `show_preview` keeps it); True then."""
    known = await context.db.run(
        has_letter_password, school_id=school.id, secret_key=context.settings.secret_key_source
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
            **(origin or {}),
        },
    )
    prompt, keyboard = password_prompt(school, replacing=False)
    await show(update, [*scope_lines(preview), "", prompt], keyboard, keep=bool(origin))
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
            secret_key=context.settings.secret_key_source,
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
    return await _go_on(update, context, school)


async def _go_on(update: Update, context: BotContext, school: SchoolRef) -> str | int:
    """After the password is saved: the preview it was asked for, if any."""
    found = pending(context) or {}
    if (
        found.get("purpose") not in {p.value for p in Purpose}
        or found.get("school_id") != school.id
    ):
        forget_pending(context)
        return ConversationHandler.END
    return await replan(update, context, school)


@director_only
async def passphrase_chosen(update: Update, context: BotContext, school: SchoolRef) -> str | int:
    """Store the passphrase the prompt offered, say it once more to be noted, then go on."""
    query = update.callback_query
    match = PASSPHRASE.match(query.data or "") if query else None
    if query is None or match is None or query.message is None:
        return TYPING_DOCUMENT_PASSWORD
    try:
        await context.db.run(
            set_letter_password,
            school_id=school.id,
            password=match[1],
            secret_key=context.settings.secret_key_source,
            actor=actor_of(update),
        )
    except LetterSettingsError as error:
        await query.answer(str(error), show_alert=True)
        return TYPING_DOCUMENT_PASSWORD
    await query.answer()
    await query.message.chat.send_message(
        _(
            "✅ Document password saved for {school}: <code>{passphrase}</code>. Note it now "
            "where you keep passwords and give it only to whoever prints the letters, then "
            "delete this message. To change it later: <code>/pdf motdepasse</code>."
        ).format(school=school.title, passphrase=match[1])
    )
    # The passphrase stays in that one message: take it and its button off the prompt.
    await query.edit_message_text(
        _("🔒 <b>Document password</b> — {school}").format(school=school.title)
    )
    return await _go_on(update, context, school)


# --- Retention ----------------------------------------------------------------------------------


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
                    callback_data=f"{LETTERS_PREFIX}ret:{hours}",
                )
                for hours in RETENTION_CHOICES
            ]
        ]
    )


async def show_retention(
    message: Message, context: BotContext, school: SchoolRef, arguments: list[str], actor: str
) -> None:
    """/pdf conservation [heures]: change the retention if a number is typed, then show it with
    a button per usual choice."""
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
