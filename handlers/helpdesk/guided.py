"""Guided help for families: `/identifiant`, `/motdepasse`, `/activation`, `/question`, and the
paths free text proposes. Each asks the one question that tells the cases apart, gives the
self-help answer when there is one (only a linked chat gets personal answers), and otherwise
hands over to filing a help request (`handlers.helpdesk.filing`).
"""

from __future__ import annotations

import html
import re

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.ext import ConversationHandler

from bot.context import BotContext
from bot.i18n import _, current_language, format_datetime
from bot.services.family import (
    FamilyAccount,
    Intent,
    SelfHelpOutcome,
    SelfHelpResult,
    family_accounts,
    resend_confirmation_link,
    send_new_provisional_password,
)
from bot.services.helpdesk import HelpTopic
from bot.services.portal import forgotten_password_url
from bot.services.roster import STATE_LIGHTS, state_label
from handlers.family_phone import phone_offer
from handlers.helpdesk.filing import begin_filing
from handlers.keyboards import (
    HELP_PATH_PREFIX,
    button_text,
    help_path_button,
    help_request_button,
    take_buttons_off,
)
from models import AccountState

FAMILY_PREFIX = HELP_PATH_PREFIX
ASKING = "asking"
# fh:pw:<account id> — send a new provisional password; fh:cl:<account id> — the confirmation
# link again; fh:file:<topic> — ask the school; fh:active:<y|n> — the unlinked family's answer
# to « have you activated already? ».
NEW_PASSWORD = re.compile(rf"^{FAMILY_PREFIX}pw:([0-9]{{1,18}})$")
CONFIRMATION = re.compile(rf"^{FAMILY_PREFIX}cl:([0-9]{{1,18}})$")
FILE = re.compile(rf"^{FAMILY_PREFIX}file:([a-z_]+)$")
ACTIVE = re.compile(rf"^{FAMILY_PREFIX}active:([yn])$")


def _forgotten_password_url(context: BotContext) -> str:
    return forgotten_password_url(context.settings.portal_url)


def _account_title(account: FamilyAccount) -> str:
    name = f"{account.first_name} {account.last_name.upper()}".strip()
    return _("Account of {name} ({school}): {light} {state}").format(
        name=html.escape(name),
        school=html.escape(account.school_name),
        light=STATE_LIGHTS[account.state],
        state=html.escape(state_label(account.state)),
    )


async def _reply(update: Update, text: str, markup: InlineKeyboardMarkup | None = None) -> None:
    """Answer in the chat (a button's own answer is given where the button is handled)."""
    if update.effective_message is not None:
        await update.effective_message.reply_text(text, reply_markup=markup)


async def _unlinked_intro(update: Update, text: str, markup: InlineKeyboardMarkup) -> None:
    """For an unlinked chat: the phone offer first (a reply keyboard), then the other way."""
    offer, keyboard = phone_offer()
    message = update.effective_message
    if message is None:
        return
    await message.reply_text(f"{text}\n\n{offer}", reply_markup=keyboard)
    await message.reply_text(
        _("No letter, and your number is not the one the school has? Ask the school:"),
        reply_markup=markup,
    )


async def _accounts(update: Update, context: BotContext) -> list[FamilyAccount]:
    user = update.effective_user
    if user is None:
        return []
    return await context.db.run(family_accounts, telegram_user_id=user.id)


# --- /identifiant -----------------------------------------------------------------------------


async def lost_identifier(update: Update, context: BotContext) -> str | int:
    """/identifiant: show a linked chat its identifier; otherwise find out who they are."""
    accounts = await _accounts(update, context)
    if not accounts:
        await _unlinked_intro(
            update,
            _(
                "I can show your identifier here once I know who you are: share your mobile "
                "number (the one your school has), or use the code of a letter from the school."
            ),
            InlineKeyboardMarkup(
                [[help_request_button(_("✍️ Ask the school"), HelpTopic.IDENTIFIER)]]
            ),
        )
        return ASKING
    lines = [_("<b>Your EduConnect identifier</b>"), ""]
    for account in accounts:
        lines += [
            _account_title(account),
            _("Identifier: <code>{identifier}</code>").format(
                identifier=html.escape(account.identifier)
            ),
            "",
        ]
    lines.append(
        _(
            "I never show passwords. Lost the password too? Type /motdepasse. Log in at {portal}"
        ).format(portal=html.escape(context.settings.portal_url))
    )
    await _reply(update, "\n".join(lines))
    return ConversationHandler.END


# --- /motdepasse ------------------------------------------------------------------------------


def _password_answer(
    account: FamilyAccount, context: BotContext
) -> tuple[str, InlineKeyboardMarkup | None]:
    title = _account_title(account)
    if account.deactivated:
        return f"{title}\n" + _(
            "This account is no longer active. Please contact the school."
        ), None
    if account.state == AccountState.ACTIVATED:
        text = _(
            "Your account is activated: the password is the one you chose. If you forgot it, "
            "choose a new one with « Forgotten password » on the portal (a link is e-mailed to "
            "you)."
        )
        button = InlineKeyboardButton(
            button_text(_("Forgotten password")), url=_forgotten_password_url(context)
        )
        return f"{title}\n{text}", InlineKeyboardMarkup([[button]])
    if account.masked_email is None:
        text = _(
            "The school has no e-mail address for you, so a new provisional password can only "
            "reach you in a paper letter. Ask the school to prepare one:"
        )
        markup = InlineKeyboardMarkup(
            [[help_request_button(_("✍️ Ask for a letter"), HelpTopic.PASSWORD)]]
        )
        return f"{title}\n{text}", markup
    text = _(
        "I can send a <b>new provisional password</b> by e-mail to {address}, the address the "
        "school has. The previous one will stop working. Send it?"
    ).format(address=html.escape(account.masked_email))
    markup = InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton(
                    _("✉️ Send me a new password"),
                    callback_data=f"{FAMILY_PREFIX}pw:{account.account_id}",
                )
            ],
            [help_request_button(_("✍️ Wrong address"), HelpTopic.WRONG_EMAIL)],
        ]
    )
    return f"{title}\n{text}", markup


async def lost_password(update: Update, context: BotContext) -> str | int:
    """/motdepasse: the right way to a new password, for each account of the chat."""
    accounts = await _accounts(update, context)
    if not accounts:
        await _reply(
            update,
            _("Have you already activated your account (chosen your own password on the portal)?"),
            InlineKeyboardMarkup(
                [
                    [InlineKeyboardButton(_("Yes"), callback_data=f"{FAMILY_PREFIX}active:y")],
                    [InlineKeyboardButton(_("No"), callback_data=f"{FAMILY_PREFIX}active:n")],
                ]
            ),
        )
        return ASKING
    for account in accounts:
        text, markup = _password_answer(account, context)
        await _reply(update, text, markup)
    return ASKING


async def activated_or_not(update: Update, context: BotContext) -> str | int:
    """An unlinked family said whether it has activated its account."""
    query = update.callback_query
    matched = ACTIVE.match(query.data or "") if query else None
    if query is None or matched is None:
        return ConversationHandler.END
    await query.answer()
    await take_buttons_off(query)
    if matched[1] == "y":
        button = InlineKeyboardButton(
            button_text(_("Forgotten password")), url=_forgotten_password_url(context)
        )
        await _reply(
            update,
            _(
                "Then choose a new password with « Forgotten password » on the portal: a link is "
                "e-mailed to the address you gave at activation."
            ),
            InlineKeyboardMarkup([[button]]),
        )
        return ConversationHandler.END
    await _unlinked_intro(
        update,
        _(
            "A new provisional password goes to the e-mail address the school has, or in a paper "
            "letter. First I need to know who you are."
        ),
        InlineKeyboardMarkup([[help_request_button(_("✍️ Ask the school"), HelpTopic.PASSWORD)]]),
    )
    return ASKING


def _self_help_refusal(result: SelfHelpResult, context: BotContext) -> str:
    if (
        result.outcome is SelfHelpOutcome.ALREADY_TODAY
        or result.outcome is SelfHelpOutcome.RATE_LIMITED
    ):
        if result.retry_at is not None:
            return _(
                "An e-mail was already sent recently. Please check your inbox and spam folder; "
                "you can ask again after {when}."
            ).format(when=format_datetime(result.retry_at, tz=context.settings.tz))
        return _("An e-mail was already sent recently. Please check your inbox and spam folder.")
    if result.outcome is SelfHelpOutcome.NO_ADDRESS:
        return _("The school has no e-mail address for you: type /motdepasse to ask for a letter.")
    if result.outcome is SelfHelpOutcome.ACTIVATED:
        return _("Your account is already activated: type /motdepasse for a forgotten password.")
    if result.outcome is SelfHelpOutcome.NOT_ACTIVATING:
        return _("Your account is not waiting for an address confirmation: type /activation.")
    return _("This account is no longer active here. Please contact the school.")


async def _pressed_account(update: Update, pattern: re.Pattern[str]) -> tuple[int, int] | None:
    """The user and the account a self-help button names, the button answered and taken off
    (a second tap must not send a second e-mail); None for anything else."""
    query, user = update.callback_query, update.effective_user
    matched = pattern.match(query.data or "") if query else None
    if query is None or user is None or matched is None:
        return None
    await query.answer()
    if not await take_buttons_off(query):
        return None  # a second tap (or forged data): the first tap does the work
    return user.id, int(matched[1])


async def _answer_self_help(
    update: Update, context: BotContext, result: SelfHelpResult, sent: str
) -> int:
    text = sent if result.outcome is SelfHelpOutcome.SENT else _self_help_refusal(result, context)
    await _reply(update, text)
    return ConversationHandler.END


async def new_password_confirmed(update: Update, context: BotContext) -> str | int:
    """Send the new provisional password by e-mail (through the same service as /relancer)."""
    pressed = await _pressed_account(update, NEW_PASSWORD)
    if pressed is None:
        return ConversationHandler.END
    result = await context.db.run(
        send_new_provisional_password,
        telegram_user_id=pressed[0],
        account_id=pressed[1],
        bot_username=context.bot.username,
        portal_url=context.settings.portal_url,
        mail_from=context.settings.mail_from,
    )
    sent = _(
        "✉️ A new provisional password is on its way to {address}. Open the e-mail in a few "
        "minutes (check the spam folder too) and log in at {portal} to choose your own."
    ).format(
        address=html.escape(result.masked_email or ""),
        portal=html.escape(context.settings.portal_url),
    )
    return await _answer_self_help(update, context, result, sent)


# --- /activation ------------------------------------------------------------------------------


def _activation_answer(
    account: FamilyAccount, context: BotContext
) -> tuple[str, InlineKeyboardMarkup | None]:
    title = _account_title(account)
    if account.state == AccountState.ACTIVATED:
        return f"{title}\n" + _("Your account is activated: nothing more to do."), None
    if account.state == AccountState.ACTIVATING:
        parts = [
            _(
                "Your account waits for you to confirm your e-mail address {address}: open the "
                "e-mail we sent and click its link."
            ).format(address=html.escape(account.masked_email or ""))
        ]
        if account.confirmation_sent_at is not None:
            parts.append(
                _("The confirmation link was sent on {when}.").format(
                    when=format_datetime(account.confirmation_sent_at, tz=context.settings.tz)
                )
            )
        parts.append(_("Not received?"))
        text = " ".join(parts)
        markup = InlineKeyboardMarkup(
            [
                [
                    InlineKeyboardButton(
                        _("🔁 Send the link again"),
                        callback_data=f"{FAMILY_PREFIX}cl:{account.account_id}",
                    )
                ],
                [help_request_button(_("✍️ Wrong address"), HelpTopic.WRONG_EMAIL)],
            ]
        )
        return f"{title}\n{text}", markup
    if account.state == AccountState.NOT_NOTIFIED:
        text = _(
            "The school has not sent you your credentials yet. /motdepasse sends them to the "
            "e-mail address the school has, or asks the school for a letter."
        )
        return f"{title}\n{text}", None
    text = _(
        "To activate, log in at {portal} with your identifier <code>{identifier}</code> and the "
        "provisional password of your letter or e-mail, then choose a password, give your e-mail "
        "address and one child's birth date. What goes wrong?"
    ).format(
        portal=html.escape(context.settings.portal_url), identifier=html.escape(account.identifier)
    )
    markup = InlineKeyboardMarkup(
        [
            [help_request_button(_("📅 The birth date is refused"), HelpTopic.BIRTH_DATE)],
            [help_path_button(_("🔑 I lost the provisional password"), Intent.PASSWORD)],
            [help_request_button(_("✍️ Something else"), HelpTopic.QUESTION)],
        ]
    )
    return f"{title}\n{text}", markup


async def activation_help(update: Update, context: BotContext) -> str | int:
    """/activation: where the account is in its activation, and the way forward."""
    accounts = await _accounts(update, context)
    if not accounts:
        await _unlinked_intro(
            update,
            _(
                "To activate, log in at {portal} with the identifier and provisional password of "
                "the letter or e-mail the school sent you. No letter? Share your mobile number: "
                "if the school has it, you can activate without the letter."
            ).format(portal=html.escape(context.settings.portal_url)),
            InlineKeyboardMarkup(
                [
                    [help_request_button(_("📅 The birth date is refused"), HelpTopic.BIRTH_DATE)],
                    [help_request_button(_("✍️ Something else"), HelpTopic.QUESTION)],
                ]
            ),
        )
        return ASKING
    for account in accounts:
        text, markup = _activation_answer(account, context)
        await _reply(update, text, markup)
    return ASKING


async def confirmation_again(update: Update, context: BotContext) -> str | int:
    """Send the confirmation link again to the address on file."""
    pressed = await _pressed_account(update, CONFIRMATION)
    if pressed is None:
        return ConversationHandler.END
    result = await context.db.run(
        resend_confirmation_link,
        telegram_user_id=pressed[0],
        account_id=pressed[1],
        portal_url=context.settings.portal_url,
        mail_from=context.settings.mail_from,
        language=current_language(),
    )
    sent = _(
        "🔁 A new confirmation link is on its way to {address}. Click it within a few days; "
        "the older links no longer work. Check the spam folder too."
    ).format(address=html.escape(result.masked_email or ""))
    return await _answer_self_help(update, context, result, sent)


# --- /question and « ask the school » -------------------------------------------------------


async def ask_question(update: Update, context: BotContext) -> str | int:
    """/question: anything else (a child missing from the account…), in free text."""
    return await begin_filing(update, context, HelpTopic.QUESTION)


async def file_chosen(update: Update, context: BotContext) -> str | int:
    """« Ask the school » buttons: file a request of that topic."""
    query = update.callback_query
    matched = FILE.match(query.data or "") if query else None
    if query is None or matched is None:
        return ConversationHandler.END
    try:
        topic = HelpTopic(matched[1])
    except ValueError:
        await query.answer()
        return ConversationHandler.END
    await query.answer()
    await take_buttons_off(query)
    return await begin_filing(update, context, topic)
