"""Inline keyboards and message layout shared by the director's features: ◀️ ▶️ pages, a class
/ level / whole-school picker, long texts split under Telegram's limit, showing a screen by
editing the message a button belongs to, and answering the buttons of a step that is over.

Buttons carry their whole meaning in `callback_data` (a feature prefix, then `Scope.token`…),
so they keep working after a restart and need no conversation state.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence

from telegram import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message, Update
from telegram.constants import MessageLimit
from telegram.error import BadRequest

from bot.context import BotContext
from bot.i18n import _, format_number, ngettext
from bot.services.errors import quoted_input
from bot.services.family import Intent
from bot.services.helpdesk import HelpTopic
from bot.services.roster import (
    SCHOOL_SCOPE,
    STATE_LIGHTS,
    ClassInfo,
    Counts,
    ResolvedScope,
    Scope,
    ScopeKind,
    UnknownClassError,
)

MAX_TEXT = MessageLimit.MAX_TEXT_LENGTH
# Telegram shows about this many characters of a button on a phone; the rest is cut with «…».
_BUTTON_CHARS = 32


def button_text(text: str) -> str:
    """`text` short enough for a button (buttons are plain text: no HTML escaping)."""
    text = " ".join(text.split())
    return text if len(text) <= _BUTTON_CHARS else text[: _BUTTON_CHARS - 1] + "…"


# The family help paths' buttons (handled by `handlers.helpdesk`), here so that any feature can
# offer them: fh:file:<topic> — ask the school; fh:go:<intent> — a guided path.
HELP_PATH_PREFIX = "fh:"


def help_request_button(label: str, topic: HelpTopic) -> InlineKeyboardButton:
    """A button that starts a help request of `topic` to the school."""
    return InlineKeyboardButton(button_text(label), callback_data=f"{HELP_PATH_PREFIX}file:{topic}")


def help_path_button(label: str, intent: Intent) -> InlineKeyboardButton:
    """A button that opens the guided help path for `intent`."""
    return InlineKeyboardButton(button_text(label), callback_data=f"{HELP_PATH_PREFIX}go:{intent}")


def pager_row(
    page: int, page_count: int, callback_data: Callable[[int], str]
) -> list[InlineKeyboardButton]:
    """◀️ and ▶️ buttons around `page` (0-based); empty when everything fits on one page."""
    row = []
    if page > 0:
        row.append(InlineKeyboardButton("◀️", callback_data=callback_data(page - 1)))
    if page + 1 < page_count:
        row.append(InlineKeyboardButton("▶️", callback_data=callback_data(page + 1)))
    return row


def rows_of(
    buttons: Sequence[InlineKeyboardButton], width: int
) -> list[list[InlineKeyboardButton]]:
    """`buttons` laid out `width` to a row."""
    return [list(buttons[start : start + width]) for start in range(0, len(buttons), width)]


def scope_buttons(
    classes: Sequence[ClassInfo],
    levels: Sequence[str],
    callback_data: Callable[[str], str],
    *,
    whole_school: bool = True,
) -> list[list[InlineKeyboardButton]]:
    """One button per class, then one per level, then « Whole school »; each button's data is
    `callback_data(scope token)`. Reused by every command that takes a class argument."""
    class_buttons = [
        InlineKeyboardButton(
            button_text(info.label),
            callback_data=callback_data(
                Scope(ScopeKind.CLASS, class_id=info.id, label=info.label).token
            ),
        )
        for info in classes
    ]
    level_buttons = [
        InlineKeyboardButton(
            _("Level {level}").format(level=level),
            callback_data=callback_data(Scope(ScopeKind.LEVEL, level=level, label=level).token),
        )
        for level in levels
    ]
    rows = rows_of(class_buttons, 2) + rows_of(level_buttons, 3)
    if whole_school:
        rows.append(
            [
                InlineKeyboardButton(
                    _("Whole school"), callback_data=callback_data(SCHOOL_SCOPE.token)
                )
            ]
        )
    return rows


def split_text(blocks: Sequence[str], limit: int = MAX_TEXT) -> list[str]:
    """Join `blocks` (HTML, each well-formed on its own) with line breaks into as few
    messages as Telegram allows; a block is never cut in the middle unless it alone is too long."""
    messages: list[str] = []
    current = ""
    for block in blocks:
        while len(block) > limit:  # only plain text gets this long: cut on a line break
            cut = block.rfind("\n", 0, limit)
            cut = cut if cut > 0 else limit
            if current:
                messages.append(current)
                current = ""
            messages.append(block[:cut])
            block = block[cut:].lstrip("\n")
        candidate = f"{current}\n{block}" if current else block
        if len(candidate) > limit:
            messages.append(current)
            current = block
        else:
            current = candidate
    if current or not messages:
        messages.append(current)
    return messages


async def show(
    update: Update,
    blocks: Sequence[str],
    reply_markup: InlineKeyboardMarkup | None = None,
    *,
    keep: bool = False,
) -> None:
    """Show a screen: edit the message whose button was pressed (unless `keep`: a card or a
    help request the director still needs), else reply; the keyboard goes on the last message
    when the text needs several."""
    texts = split_text(blocks)
    query = update.callback_query
    # Under a photo or a document (forged data: our buttons are under text) there is no text
    # to edit: reply instead.
    pressed = query.message if query is not None else None
    under_text = not (isinstance(pressed, Message) and pressed.text is None)
    if query is not None and under_text and len(texts) == 1 and not keep:
        try:
            await query.edit_message_text(texts[0], reply_markup=reply_markup)
        except BadRequest as error:
            # Pressing the button of the page already shown: nothing to change.
            if "not modified" not in str(error).lower():
                raise
        return
    message = update.effective_message
    if message is None:
        return
    for index, text in enumerate(texts):
        markup = reply_markup if index == len(texts) - 1 else None
        await message.reply_text(text, reply_markup=markup)


async def take_buttons_off(query: CallbackQuery) -> bool:
    """Take the buttons off the message `query` was pressed under, so that they are not pressed
    again. False when they were off already: a second tap of the same button (or forged data
    under a message without buttons), for which Telegram refuses an edit that changes nothing
    and which must not act a second time."""
    if isinstance(query.message, Message) and not query.message.reply_markup:
        return False
    try:
        await query.edit_message_reply_markup(reply_markup=None)
    except BadRequest:  # edited by a tap a moment earlier, or deleted
        return False
    return True


async def answer_stale_button(update: Update, text: str) -> None:
    """Answer a button of a step that is over (`text` in an alert, so it is never missed) and
    take the buttons off its message, so that it is not pressed again."""
    query = update.callback_query
    if query is None:
        return
    await query.answer(text, show_alert=True)
    await take_buttons_off(query)


async def answer_unknown_button(update: Update, context: BotContext) -> None:
    """Answer a button that no feature recognises (one of an older version of the bot, or data
    a modified client forged), rather than leave it spinning. Usable as a PTB callback."""
    if update.callback_query:
        await update.callback_query.answer(
            _("This button no longer works. Send the command again to get up-to-date buttons."),
            show_alert=True,
        )


async def answer_earlier_step_button(update: Update, context: BotContext) -> None:
    """Answer a button of an earlier step of a conversation still in progress (its buttons
    stay: the step may be shown again). Usable as a PTB callback."""
    if update.callback_query:
        await update.callback_query.answer(
            _("This button belongs to an earlier step: use the buttons of my latest message."),
            show_alert=True,
        )


# --- Texts shared by the roster features ---------------------------------------------------------


def pupils_text(count: int) -> str:
    """« 23 pupils »."""
    return ngettext("{count} pupil", "{count} pupils", count).format(count=format_number(count))


def guardians_text(count: int) -> str:
    """« 38 guardians »."""
    return ngettext("{count} guardian", "{count} guardians", count).format(
        count=format_number(count)
    )


def lights_text(counts: Counts) -> str:
    """« 🔴 3 🟠 5 🟡 1 🟢 29 »: the accounts in each state, in the order of the lights."""
    return " ".join(
        f"{STATE_LIGHTS[state]} {format_number(number)}"
        for state, number in counts.by_state().items()
    )


def scope_summary(resolved: ResolvedScope) -> str:
    """What the bot resolved, said before acting: « Class CE2-CM1 — 23 pupils, 38 guardians »."""
    scope = resolved.scope
    pupils, guardians = pupils_text(resolved.pupils), guardians_text(resolved.guardians)
    label = html.escape(scope.label)
    if scope.kind is ScopeKind.CLASS:
        return _("Class <b>{label}</b> — {pupils}, {guardians}").format(
            label=label, pupils=pupils, guardians=guardians
        )
    if scope.kind is ScopeKind.LEVEL:
        return _("Level <b>{level}</b> ({classes}) — {pupils}, {guardians}").format(
            level=label,
            classes=html.escape(", ".join(resolved.classes)),
            pupils=pupils,
            guardians=guardians,
        )
    return _("<b>Whole school</b> — {pupils}, {guardians}").format(
        pupils=pupils, guardians=guardians
    )


def unknown_class_text(error: UnknownClassError) -> str:
    """The answer to a class argument that names nothing: what is known instead."""
    if not error.classes:
        return _(
            "Your school has no classes yet. Send me the ONDE extractions (« Élèves » and "
            "« Responsables » CSV files) to import them."
        )
    return _(
        "I don't know the class « {typed} ». Your classes: {classes}. Levels: {levels}. "
        "Choose one below, or type <code>ecole</code> for the whole school."
    ).format(
        typed=html.escape(quoted_input(error.text)),
        classes=html.escape(", ".join(info.label for info in error.classes)),
        levels=html.escape(", ".join(error.levels)) or "—",
    )
