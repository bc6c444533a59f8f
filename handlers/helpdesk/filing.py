"""Filing a help request from the chat: who the family is (a linked chat is known; otherwise the
school, the guardian's name, one child's name and class), what happened, then the request is
filed, the family gets its reference and every director of the school the request.

The draft lives in user_data (persisted), so a restart in the middle loses nothing.
"""

from __future__ import annotations

import html
import re
from typing import Any

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, ReplyKeyboardRemove, Update
from telegram.ext import ConversationHandler

from bot.context import BotContext
from bot.i18n import N_, _, current_language
from bot.services import helpdesk
from bot.services.family import family_accounts
from bot.services.helpdesk import (
    MAX_NAME_LENGTH,
    HelpDeclaration,
    HelpDeskError,
    HelpTopic,
    TooManyRequestsError,
)
from bot.services.schools import SchoolMatch, find_schools, school_by_uai
from handlers.helpdesk.followup import notify_directors
from handlers.helpdesk.texts import topic_label
from handlers.keyboards import button_text, take_buttons_off

# Conversation states of the filing steps.
TYPING_SCHOOL = "typing_school"
TYPING_GUARDIAN = "typing_guardian"
TYPING_CHILD = "typing_child"
TYPING_CLASS = "typing_class"
TYPING_MESSAGE = "typing_message"

FILING_PREFIX = "fr:"
# fr:school:<id> — this school; fr:skip — no message to add.
SCHOOL_CHOSEN = re.compile(rf"^{FILING_PREFIX}school:([0-9]{{1,18}})$")
SKIP_MESSAGE = f"{FILING_PREFIX}skip"

# user_data: the request being written; the school a poster's link preselected.
DRAFT_KEY = "help_draft"
SCHOOL_HINT_KEY = "school_hint"

# Topics whose request means nothing without the family's own words.
_MESSAGE_REQUIRED = frozenset({HelpTopic.QUESTION, HelpTopic.WRONG_EMAIL})


def _draft(context: BotContext) -> dict[str, Any]:
    data = context.user_data
    found = data.get(DRAFT_KEY) if data is not None else None
    return found if isinstance(found, dict) else {}


def _save(context: BotContext, draft: dict[str, Any]) -> None:
    if context.user_data is not None:
        context.user_data[DRAFT_KEY] = draft


def forget_draft(context: BotContext) -> None:
    if context.user_data is not None:
        context.user_data.pop(DRAFT_KEY, None)


async def _say(update: Update, text: str, markup: InlineKeyboardMarkup | None = None) -> None:
    if update.effective_message is not None:
        await update.effective_message.reply_text(text, reply_markup=markup)


def _message_question(topic: HelpTopic) -> tuple[str, InlineKeyboardMarkup | None]:
    if topic is HelpTopic.QUESTION:
        return _(
            "Type your question for the school in one message (for example: « my son Léo is "
            "missing from my account »)."
        ), None
    if topic is HelpTopic.WRONG_EMAIL:
        return _(
            "Type the right e-mail address (and anything the school should know) in one message."
        ), None
    skip = InlineKeyboardButton(_("Send without a message"), callback_data=SKIP_MESSAGE)
    return _(
        "Anything to add for the school (how to reach you, what you tried)? Type it in one "
        "message, or tap « Send without a message »."
    ), InlineKeyboardMarkup([[skip]])


async def _ask_message(update: Update, topic: HelpTopic) -> str:
    text, markup = _message_question(topic)
    await _say(update, text, markup)
    return TYPING_MESSAGE


async def _ask_school(update: Update, context: BotContext) -> str:
    hint = (context.user_data or {}).get(SCHOOL_HINT_KEY)
    school = await context.db.run(school_by_uai, uai=hint) if isinstance(hint, str) else None
    if school is not None:
        await _say(
            update,
            _("Which school is it? Tap it below, or type the name, town or UAI of another one."),
            _school_buttons([school]),
        )
    else:
        await _say(
            update,
            _("Which school is your child in? Type its name, its town or its UAI (e.g. 0590001A)."),
        )
    return TYPING_SCHOOL


def _school_buttons(schools: list[SchoolMatch]) -> InlineKeyboardMarkup:
    rows = []
    for school in schools:
        place = f" — {school.city}" if school.city else ""
        rows.append(
            [
                InlineKeyboardButton(
                    button_text(f"{school.name}{place}"),
                    callback_data=f"{FILING_PREFIX}school:{school.id}",
                )
            ]
        )
    return InlineKeyboardMarkup(rows)


async def begin_filing(update: Update, context: BotContext, topic: HelpTopic) -> str | int:
    """Start a request of `topic`: straight to the message for a linked chat, else who they are.
    Refused at once when the chat has filed its share of requests today."""
    user = update.effective_user
    if user is None:
        return ConversationHandler.END
    try:
        await context.db.run(helpdesk.check_request_limit, telegram_user_id=user.id)
    except TooManyRequestsError as error:
        await _say(update, html.escape(str(error)))
        return ConversationHandler.END
    accounts = await context.db.run(family_accounts, telegram_user_id=user.id)
    draft: dict[str, Any] = {"topic": topic.value}
    if accounts:
        draft["school_id"] = accounts[0].school_id
        _save(context, draft)
        return await _ask_message(update, topic)
    _save(context, draft)
    await _say(
        update,
        _(
            "I will pass your request « {topic} » to the school. A few questions first, so it "
            "can find you (/annuler stops)."
        ).format(topic=html.escape(topic_label(topic))),
    )
    return await _ask_school(update, context)


async def school_typed(update: Update, context: BotContext) -> str | int:
    """Search the registered schools for what was typed."""
    message = update.effective_message
    if message is None or not message.text:
        return TYPING_SCHOOL
    found = await context.db.run(find_schools, text=message.text)
    if not found:
        await message.reply_text(
            _(
                "I found no school for « {text} » among those using this assistant. Check the "
                "spelling, or type the town or the school's UAI (on its letters)."
            ).format(text=html.escape(message.text[:80]))
        )
        return TYPING_SCHOOL
    await message.reply_text(_("Tap your child's school:"), reply_markup=_school_buttons(found))
    return TYPING_SCHOOL


async def school_chosen(update: Update, context: BotContext) -> str | int:
    """The school is chosen: now the guardian's name."""
    query = update.callback_query
    matched = SCHOOL_CHOSEN.match(query.data or "") if query else None
    draft = _draft(context)
    if query is None or matched is None or not draft:
        return ConversationHandler.END
    await query.answer()
    await take_buttons_off(query)
    draft["school_id"] = int(matched[1])
    _save(context, draft)
    await _say(update, _("Your first name and last name, as the school knows them?"))
    return TYPING_GUARDIAN


async def _typed(update: Update) -> str | None:
    message = update.effective_message
    text = (message.text or "").strip() if message is not None else ""
    if not text and message is not None:
        await message.reply_text(_("Please type it as text."))
    return text or None


async def _keep_typed(
    update: Update, context: BotContext, field: str, state: str
) -> dict[str, Any] | str | int:
    """Keep what was typed for this step in the draft; else the state to stay in (or to end,
    when the draft was lost)."""
    text, draft = await _typed(update), _draft(context)
    if not draft:
        return ConversationHandler.END
    if text is None:
        return state
    draft[field] = text[:MAX_NAME_LENGTH]
    _save(context, draft)
    return draft


async def guardian_typed(update: Update, context: BotContext) -> str | int:
    """The guardian's name: now one child's."""
    kept = await _keep_typed(update, context, "guardian", TYPING_GUARDIAN)
    if not isinstance(kept, dict):
        return kept
    await _say(update, _("The first name and last name of one of your children at this school?"))
    return TYPING_CHILD


async def child_typed(update: Update, context: BotContext) -> str | int:
    """The child's name: now their class."""
    kept = await _keep_typed(update, context, "child", TYPING_CHILD)
    if not isinstance(kept, dict):
        return kept
    await _say(update, _("Their class (for example « CP A » or « CE2-CM1 »)?"))
    return TYPING_CLASS


async def class_typed(update: Update, context: BotContext) -> str | int:
    """The class: now the family's own words."""
    kept = await _keep_typed(update, context, "class", TYPING_CLASS)
    if not isinstance(kept, dict):
        return kept
    return await _ask_message(update, HelpTopic(kept["topic"]))


async def message_typed(update: Update, context: BotContext) -> str | int:
    """The family's message: file the request."""
    text, draft = await _typed(update), _draft(context)
    if text is None or not draft:
        return TYPING_MESSAGE if draft else ConversationHandler.END
    return await _file(update, context, draft, text)


async def message_skipped(update: Update, context: BotContext) -> str | int:
    """« Send without a message » (where a message is optional): file the request."""
    query, draft = update.callback_query, _draft(context)
    if query is None or not draft:
        return ConversationHandler.END
    await query.answer()
    await take_buttons_off(query)
    if HelpTopic(draft["topic"]) in _MESSAGE_REQUIRED:
        return await _ask_message(update, HelpTopic(draft["topic"]))
    return await _file(update, context, draft, None)


async def _file(
    update: Update, context: BotContext, draft: dict[str, Any], text: str | None
) -> str | int:
    user = update.effective_user
    if user is None or "school_id" not in draft:
        return ConversationHandler.END
    declaration = HelpDeclaration(
        topic=HelpTopic(draft["topic"]),
        school_id=int(draft["school_id"]),
        message=text,
        guardian_name=draft.get("guardian"),
        child_name=draft.get("child"),
        class_label=draft.get("class"),
    )
    try:
        filed = await context.db.run(
            helpdesk.file_help_request,
            telegram_user_id=user.id,
            declaration=declaration,
            language=current_language(),
        )
    except HelpDeskError as error:
        forget_draft(context)
        await _say(update, html.escape(str(error)))
        return ConversationHandler.END
    forget_draft(context)
    if update.effective_message is not None:
        await update.effective_message.reply_text(
            _(
                "✅ Your request <b>{reference}</b> has been sent to the school. I will tell you "
                "here what it does. /demande shows your requests and their status."
            ).format(reference=filed.reference),
            reply_markup=ReplyKeyboardRemove(),
        )
    await notify_directors(
        context,
        request_id=filed.id,
        school_id=filed.school_id,
        director_ids=filed.director_ids,
        headline=N_("🆘 <b>New help request from a family</b>"),
    )
    return ConversationHandler.END
