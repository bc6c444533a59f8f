"""A family links its chat by sharing its phone number: the « 📱 Partager mon numéro » button of the
welcome asks Telegram for the user's own number, which the school's data is checked against.

A contact counts only when Telegram says it is the sender's own (`contact.user_id`); anything else
gets the same answer as an unknown number, which reveals nothing. A match links the chat, as a
letter's code does, and brings a single-use button to the portal's activation page.
"""

from __future__ import annotations

import re

from telegram import (
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    Message,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
    Update,
    User,
)
from telegram.ext import BaseHandler, CallbackQueryHandler, MessageHandler, filters

from bot.context import BotContext
from bot.i18n import _, format_datetime, format_time, use_language
from bot.services.accounts import (
    LinkedGuardian,
    PhoneLinkOutcome,
    PhoneLinkResult,
    choose_phone_guardian,
    link_by_phone,
)
from bot.services.helpdesk import HelpTopic
from bot.services.portal import PhoneActivationLink, issue_phone_activation_link
from handlers.family import family_language, family_linked
from handlers.keyboards import button_text, help_request_button, take_buttons_off

# Callback data of the « which one are you? » buttons: the guardian's id.
_CHOICE_PREFIX = "tel:"
_CHOICE = re.compile(rf"^{_CHOICE_PREFIX}([0-9]{{1,18}})$")


def phone_offer() -> tuple[str, ReplyKeyboardMarkup]:
    """The welcome's invitation to share one's number, and its one-button reply keyboard."""
    text = _(
        "<b>Quicker:</b> tap « 📱 Share my number » below. I check it against the mobile number "
        "your school has for you; Telegram itself proves the number is yours, so no code is "
        "needed."
    )
    button = KeyboardButton(_("📱 Share my number"), request_contact=True)
    keyboard = ReplyKeyboardMarkup([[button]], one_time_keyboard=True, resize_keyboard=True)
    return text, keyboard


def unknown_number() -> str:
    """The answer to a number no guardian has, and to a contact that is not the sender's own."""
    return _(
        "I could not find this number among those your school gave me. If you have a letter "
        "from the school, scan its QR code or type /start followed by its code."
    )


def _limited(result: PhoneLinkResult, context: BotContext) -> str:
    if result.retry_at is None:
        return _("You have shared a number too many times today. Please try again tomorrow.")
    return _(
        "You have shared a number too many times today. Please try again after {when}."
    ).format(when=format_datetime(result.retry_at, tz=context.settings.tz))


def _activation_step(link: PhoneActivationLink) -> str:
    if link.url is not None:
        return _(
            "<b>Next step:</b> tap « Activate my account » below to choose your password: you "
            "do not need the provisional password of the letter."
        )
    if link.already_activated:
        return _(
            "<b>All set:</b> your account is already activated. If you forgot your password, "
            "tap « Forgotten password » below."
        )
    return _("This account is not active at the moment. Please contact the school.")


def _activation_button(
    link: PhoneActivationLink, context: BotContext
) -> tuple[str, InlineKeyboardMarkup] | None:
    """The message that carries the portal button, if the account has one."""
    if link.url is not None:
        label, url = _("Activate my account"), link.url
        text = _("This button works only once.")
        if link.expires_at is not None:
            text = _("This button works only once, until {time}.").format(
                time=format_time(link.expires_at, tz=context.settings.tz)
            )
    elif link.already_activated:
        label, url = _("Forgotten password"), link.forgotten_password_url
        text = _("To choose a new password:")
    else:
        return None
    return text, InlineKeyboardMarkup([[InlineKeyboardButton(button_text(label), url=url)]])


async def _answer_linked(
    message: Message, user: User, context: BotContext, linked: LinkedGuardian
) -> None:
    link = await context.db.run(
        issue_phone_activation_link,
        guardian_id=linked.guardian_id,
        portal_url=context.settings.portal_url,
    )
    with use_language(family_language(context, user, linked)):
        text = family_linked(linked, _activation_step(link))
        button = _activation_button(link, context)
    # The reply keyboard has done its job (a message carries one markup: the text takes it away).
    await message.reply_text(text, reply_markup=ReplyKeyboardRemove())
    if button is not None:
        await message.reply_text(button[0], reply_markup=button[1])


async def _answer_choice(message: Message, result: PhoneLinkResult) -> None:
    await message.reply_text(
        _("This number belongs to several people of your school."),
        reply_markup=ReplyKeyboardRemove(),
    )
    buttons = [
        [
            InlineKeyboardButton(
                button_text(c.label), callback_data=f"{_CHOICE_PREFIX}{c.guardian_id}"
            )
        ]
        for c in result.candidates
    ]
    await message.reply_text(
        _("Which one are you? Tap your name."), reply_markup=InlineKeyboardMarkup(buttons)
    )


async def _answer(
    message: Message, user: User, context: BotContext, result: PhoneLinkResult
) -> None:
    if result.outcome is PhoneLinkOutcome.LINKED and result.linked is not None:
        await _answer_linked(message, user, context, result.linked)
        return
    if result.outcome is PhoneLinkOutcome.CHOOSE and result.candidates:
        await _answer_choice(message, result)
        return
    if result.outcome is PhoneLinkOutcome.LIMITED:
        await message.reply_text(_limited(result, context), reply_markup=ReplyKeyboardRemove())
        return
    # A message carries one markup: the answer takes the reply keyboard away, the next one
    # brings the way forward.
    await message.reply_text(unknown_number(), reply_markup=ReplyKeyboardRemove())
    button = help_request_button(_("✍️ Ask the school"), HelpTopic.UNKNOWN_PHONE)
    await message.reply_text(
        _("No letter? Ask the school to find you: a few questions, then it answers you here."),
        reply_markup=InlineKeyboardMarkup([[button]]),
    )


async def contact_shared(update: Update, context: BotContext) -> None:
    """Check the shared number against the school's data and link the chat if it matches."""
    user, message = update.effective_user, update.effective_message
    if user is None or message is None or message.contact is None:
        return
    contact = message.contact
    result = await context.db.run(
        link_by_phone,
        telegram_user_id=user.id,
        contact_user_id=contact.user_id,
        phone_number=contact.phone_number,
    )
    await _answer(message, user, context, result)


async def guardian_chosen(update: Update, context: BotContext) -> None:
    """The family said which of the guardians sharing its number it is."""
    query, user = update.callback_query, update.effective_user
    if query is None or user is None or not isinstance(query.message, Message):
        return
    matched = _CHOICE.match(query.data or "")
    await query.answer()
    if matched is None:
        return
    result = await context.db.run(
        choose_phone_guardian, telegram_user_id=user.id, guardian_id=int(matched.group(1))
    )
    await take_buttons_off(query)
    await _answer(query.message, user, context, result)


HANDLERS: list[BaseHandler] = [
    MessageHandler(filters.CONTACT & filters.ChatType.PRIVATE, contact_shared),
    CallbackQueryHandler(guardian_chosen, pattern=_CHOICE),
]
