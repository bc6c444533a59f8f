"""The director's side of the help desk: `/demandes` (open requests first, page by page, each
with its buttons), a request opened (and so taken in hand), the record chosen among candidates,
a reply typed to the family, and closing."""

from __future__ import annotations

import html
import warnings

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Message, Update
from telegram.ext import (
    BaseHandler,
    CallbackQueryHandler,
    CommandHandler,
    ConversationHandler,
    MessageHandler,
    filters,
)
from telegram.warnings import PTBUserWarning

from bot.context import BotContext
from bot.i18n import _, format_number, ngettext
from bot.services import helpdesk
from bot.services.helpdesk import HelpAction, HelpDeskError, HelpStatus, RequestView
from handlers.access import SchoolRef, director_only
from handlers.distribution.state import awaits_document_password
from handlers.helpdesk.buttons import CHOOSE, CLOSE, OPEN, PAGE, PREFIX, REPLY, request_keyboard
from handlers.helpdesk.followup import director_actor, record_answer
from handlers.helpdesk.texts import request_card, status_label, topic_label
from handlers.keyboards import button_text, pager_row, show, take_buttons_off

PAGE_SIZE = 5
TYPING_REPLY = "typing_reply"
# user_data: the request a director is typing an answer to.
REPLY_KEY = "help_reply"


def _page_text(school: SchoolRef, page: helpdesk.RequestPage, context: BotContext) -> str:
    if page.total == 0:
        return _("{school}: no help request from families so far.").format(school=school.title)
    lines = [
        ngettext(
            "{school}: {count} request waiting for an answer.",
            "{school}: {count} requests waiting for an answer.",
            page.unsettled,
        ).format(school=school.title, count=format_number(page.unsettled)),
        _("Tap a request to see it with its buttons."),
        "",
    ]
    for view in page.requests:
        who = view.record.name if view.record else (view.declared_guardian or "?")
        lines.append(
            f"<b>{view.reference}</b> — {html.escape(status_label(view.status))} — "
            f"{html.escape(topic_label(view.topic))} — {html.escape(who)}"
        )
    return "\n".join(lines)


def _page_keyboard(page: helpdesk.RequestPage) -> InlineKeyboardMarkup | None:
    rows = [
        [
            InlineKeyboardButton(
                button_text(f"{view.reference} — {topic_label(view.topic)}"),
                callback_data=f"{PREFIX}open:{view.id}",
            )
        ]
        for view in page.requests
    ]
    pager = pager_row(page.page, page.pages, lambda n: f"{PREFIX}pg:{n}")
    if pager:
        rows.append(pager)
    return InlineKeyboardMarkup(rows) if rows else None


async def _show_page(update: Update, context: BotContext, school: SchoolRef, page: int) -> None:
    found = await context.db.run(
        helpdesk.school_requests, school_id=school.id, page=page, page_size=PAGE_SIZE
    )
    await show(update, [_page_text(school, found, context)], _page_keyboard(found))


@director_only
async def list_requests(update: Update, context: BotContext, school: SchoolRef) -> None:
    """/demandes: the school's help requests, open ones first."""
    await _show_page(update, context, school, 0)


@director_only
async def requests_page(update: Update, context: BotContext, school: SchoolRef) -> None:
    """◀️ ▶️ of /demandes."""
    query = update.callback_query
    matched = PAGE.match(query.data or "") if query else None
    if query is None or matched is None:
        return
    await query.answer()
    await _show_page(update, context, school, int(matched[1]))


async def _refused(update: Update, error: HelpDeskError) -> None:
    query = update.callback_query
    if query is not None:
        await query.answer(str(error), show_alert=True)


async def _show_request(update: Update, context: BotContext, view: RequestView) -> None:
    message = update.effective_message
    if message is not None:
        await message.reply_text(
            request_card(view, context.settings.tz), reply_markup=request_keyboard(view)
        )


@director_only
async def open_request(update: Update, context: BotContext, school: SchoolRef) -> None:
    """Show one request with its buttons; an open request is now « in progress »."""
    query = update.callback_query
    matched = OPEN.match(query.data or "") if query else None
    if query is None or matched is None:
        return
    try:
        view = await context.db.run(
            helpdesk.take_request,
            request_id=int(matched[1]),
            school_id=school.id,
            actor=director_actor(update),
        )
    except HelpDeskError as error:
        await _refused(update, error)
        return
    await query.answer()
    await _show_request(update, context, view)


@director_only
async def choose_record(update: Update, context: BotContext, school: SchoolRef) -> None:
    """The director says which record the request is about: its buttons follow."""
    query = update.callback_query
    matched = CHOOSE.match(query.data or "") if query else None
    if query is None or matched is None:
        return
    try:
        view = await context.db.run(
            helpdesk.choose_record,
            request_id=int(matched[1]),
            school_id=school.id,
            guardian_id=int(matched[2]),
            actor=director_actor(update),
        )
    except HelpDeskError as error:
        await _refused(update, error)
        return
    await query.answer()
    await take_buttons_off(query)
    await _show_request(update, context, view)


@director_only
async def close_request(update: Update, context: BotContext, school: SchoolRef) -> None:
    """Close the request: the family is told; its buttons go."""
    query = update.callback_query
    matched = CLOSE.match(query.data or "") if query else None
    if query is None or matched is None:
        return
    notice = await record_answer(
        update, context, school=school, request_id=int(matched[1]), action=HelpAction.CLOSED
    )
    if notice is not None:
        await query.answer()
        await take_buttons_off(query)


# --- Replying with a message ------------------------------------------------------------------


@director_only
async def start_reply(update: Update, context: BotContext, school: SchoolRef) -> str | int:
    """Ask for the answer to send to the family."""
    query = update.callback_query
    matched = REPLY.match(query.data or "") if query else None
    if query is None or matched is None or not isinstance(query.message, Message):
        return ConversationHandler.END
    if awaits_document_password(context):
        # What is typed next goes to the letters' document password: not a reply.
        await query.answer(
            _("First type the document password I asked for, or /annuler it."), show_alert=True
        )
        return ConversationHandler.END
    try:
        view = await context.db.run(
            helpdesk.take_request,
            request_id=int(matched[1]),
            school_id=school.id,
            actor=director_actor(update),
        )
    except HelpDeskError as error:
        await _refused(update, error)
        return ConversationHandler.END
    if view.status is HelpStatus.CLOSED:
        await query.answer(
            _("This request is closed: nothing more is done on it."), show_alert=True
        )
        return ConversationHandler.END
    await query.answer()
    if context.user_data is not None:
        context.user_data[REPLY_KEY] = view.id
    await query.message.reply_text(
        _(
            "Type your answer to request {reference} in one message: I send it to the family as "
            "it is, and record it. /annuler to give up."
        ).format(reference=view.reference)
    )
    return TYPING_REPLY


@director_only
async def receive_reply(update: Update, context: BotContext, school: SchoolRef) -> str | int:
    """Send the director's answer to the family and record it."""
    message = update.effective_message
    request_id = (context.user_data or {}).get(REPLY_KEY)
    if message is None or not isinstance(request_id, int):
        return ConversationHandler.END
    notice = await record_answer(
        update,
        context,
        school=school,
        request_id=request_id,
        action=HelpAction.REPLIED,
        text=message.text or "",
    )
    if notice is None:
        return TYPING_REPLY if not (message.text or "").strip() else ConversationHandler.END
    if context.user_data is not None:
        context.user_data.pop(REPLY_KEY, None)
    return ConversationHandler.END


async def cancel_reply(update: Update, context: BotContext) -> int:
    """/annuler while typing an answer: nothing is sent."""
    if context.user_data is not None:
        context.user_data.pop(REPLY_KEY, None)
    if update.effective_message:
        await update.effective_message.reply_text(_("Cancelled: nothing was sent to the family."))
    return ConversationHandler.END


_PRIVATE = filters.ChatType.PRIVATE

# A director who pressed « Reply » and went on to something else must not send the family
# whatever they type much later.
REPLY_TIMEOUT_SECONDS = 15 * 60


async def reply_timed_out(update: Update, context: BotContext) -> None:
    """The answer was not typed in time: say that nothing was sent."""
    if context.user_data is not None:
        context.user_data.pop(REPLY_KEY, None)
    if update.effective_chat is not None:
        await context.bot.send_message(
            update.effective_chat.id,
            _("Nothing was sent to the family: press « 💬 Reply » again to answer the request."),
        )


def reply_conversation() -> ConversationHandler:
    """Typing an answer to a request. A new one per application (it has a timeout)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*per_message=False", category=PTBUserWarning)
        return ConversationHandler(
            entry_points=[CallbackQueryHandler(start_reply, pattern=REPLY)],
            states={
                TYPING_REPLY: [
                    MessageHandler(_PRIVATE & filters.TEXT & ~filters.COMMAND, receive_reply)
                ],
                ConversationHandler.TIMEOUT: [MessageHandler(filters.ALL, reply_timed_out)],
            },
            fallbacks=[CommandHandler("annuler", cancel_reply, filters=_PRIVATE)],
            name="helpdesk_reply",
            persistent=True,
            allow_reentry=True,
            conversation_timeout=REPLY_TIMEOUT_SECONDS,
        )


HANDLERS: list[BaseHandler] = [
    CommandHandler("demandes", list_requests, filters=_PRIVATE),
    CallbackQueryHandler(requests_page, pattern=PAGE),
    CallbackQueryHandler(open_request, pattern=OPEN),
    CallbackQueryHandler(choose_record, pattern=CHOOSE),
    CallbackQueryHandler(close_request, pattern=CLOSE),
]
