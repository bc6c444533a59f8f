"""Command menus (setMyCommands): families see the family menu everywhere by default; each
director's private chat gets the director menu, each inspector's the inspector menu. The
family menu in every family language, the others in French (the default) and English.

Only commands that exist are listed: a later feature adds its command here when it lands.
"""

from __future__ import annotations

import logging

from telegram import Bot, BotCommand, BotCommandScope, BotCommandScopeChat, BotCommandScopeDefault
from telegram.error import TelegramError
from telegram.ext import Application

from bot.context import EduConnectApplication
from bot.i18n import N_, SUPPORTED_LANGUAGES, _, use_language
from bot.services.schools import director_telegram_ids, inspector_schools

log = logging.getLogger(__name__)

# (command, description) in menu order.
DIRECTOR_COMMANDS: tuple[tuple[str, str], ...] = (
    ("classes", N_("Classes with their pupils, guardians and lights")),
    ("responsables", N_("Guardians of a class, with their account state")),
    ("envoyer", N_("Send the credentials by e-mail")),
    ("pdf", N_("Letters to print (PDF)")),
    ("relancer", N_("Remind the guardians not activated yet")),
    ("etat", N_("Account statistics and what to do next")),
    ("demandes", N_("Families' help requests")),
    ("lsu", N_("The date the school reports (LSU) go online")),
    ("digest", N_("Digests before LSU day, and automatic reminders")),
    ("export", N_("Download every account as a spreadsheet (CSV)")),
    ("ecole", N_("Choose the school you are working on")),
    ("aide", N_("Help: what I can do for you")),
    ("annuler", N_("Cancel the operation in progress")),
)

INSPECTOR_COMMANDS: tuple[tuple[str, str], ...] = (
    ("etat", N_("The schools of your district at a glance")),
    ("aide", N_("Help: what I can do for you")),
)

FAMILY_COMMANDS: tuple[tuple[str, str], ...] = (
    ("start", N_("Welcome and getting started")),
    ("etat", N_("Where my account is, and the next step")),
    ("identifiant", N_("I lost my identifier")),
    ("motdepasse", N_("I lost my password")),
    ("activation", N_("Help with activating my account")),
    ("question", N_("Ask the school a question")),
    ("demande", N_("My requests to the school")),
    ("langue", N_("Choose my language")),
    ("aide", N_("Help with your EduConnect account")),
    ("annuler", N_("Cancel the operation in progress")),
)

# Menu language → Telegram's language_code (None: the menu for every other language). The
# family menu speaks every family language; the director's side is French and English.
MENU_LANGUAGES: tuple[tuple[str, str | None], ...] = (("fr", None), ("en", "en"))
FAMILY_MENU_LANGUAGES: tuple[tuple[str, str | None], ...] = (
    *MENU_LANGUAGES,
    *((code, code) for code in SUPPORTED_LANGUAGES if code not in ("fr", "en")),
)


def menu(commands: tuple[tuple[str, str], ...], language: str) -> list[BotCommand]:
    """`commands` with their descriptions translated into `language`."""
    with use_language(language):
        return [BotCommand(command, _(description)) for command, description in commands]


async def _set_menu(
    bot: Bot,
    commands: tuple[tuple[str, str], ...],
    scope: BotCommandScope,
    languages: tuple[tuple[str, str | None], ...] = MENU_LANGUAGES,
) -> None:
    for language, language_code in languages:
        await bot.set_my_commands(
            menu(commands, language), scope=scope, language_code=language_code
        )


async def set_family_menu(bot: Bot) -> None:
    """Give everyone the family menu (the default scope, overridden per director chat)."""
    await _set_menu(bot, FAMILY_COMMANDS, BotCommandScopeDefault(), FAMILY_MENU_LANGUAGES)


async def set_director_menu(bot: Bot, chat_id: int) -> bool:
    """Give a director's private chat the director menu; False if Telegram refused."""
    try:
        await _set_menu(bot, DIRECTOR_COMMANDS, BotCommandScopeChat(chat_id))
    except TelegramError as error:
        # A chat that no longer exists, or a director who blocked the bot: nothing to fix here.
        log.warning("could not set a director's command menu (%s)", type(error).__name__)
        return False
    return True


async def set_inspector_menu(bot: Bot, chat_id: int) -> bool:
    """Give an inspector's private chat the inspector menu; False if Telegram refused."""
    try:
        await _set_menu(bot, INSPECTOR_COMMANDS, BotCommandScopeChat(chat_id))
    except TelegramError as error:
        log.warning("could not set an inspector's command menu (%s)", type(error).__name__)
        return False
    return True


async def reset_stale_director_menu(bot: Bot, chat_id: int, *, inspector: bool) -> bool:
    """Take the director menu away from a private chat whose user no longer directs a school
    (an operator removed them): the inspector menu if they still inspect, else the default
    family menu. True if the chat still had the director menu; never raises."""
    director = {command for command, _description in DIRECTOR_COMMANDS}
    scope = BotCommandScopeChat(chat_id)
    try:
        shown = await bot.get_my_commands(scope=scope)
        if not shown or {command.command for command in shown} != director:
            return False
        if inspector:
            await _set_menu(bot, INSPECTOR_COMMANDS, scope)
        else:
            for _language, language_code in MENU_LANGUAGES:
                await bot.delete_my_commands(scope=scope, language_code=language_code)
    except TelegramError as error:
        log.warning("could not reset a former director's menu (%s)", type(error).__name__)
        return False
    return True


async def install(application: Application) -> None:
    """Set the family menu, then the menu of every known director's chat.

    Never raises: a bot without menus is better than a bot that does not start.
    """
    try:
        await set_family_menu(application.bot)
    except TelegramError as error:
        log.error("could not set the family command menu (%s)", type(error).__name__)
    assert isinstance(application, EduConnectApplication)
    director_ids = await application.db.run(director_telegram_ids)
    # Sequential on purpose: the rate limiter spaces the calls; a few hundred directors take
    # seconds, once per start.
    refused = 0
    for chat_id in director_ids:
        if not await set_director_menu(application.bot, chat_id):
            refused += 1
    # Someone who directs a school keeps the director menu (its /etat reaches the district).
    inspectors = set(await application.db.run(inspector_schools)) - set(director_ids)
    for chat_id in sorted(inspectors):
        if not await set_inspector_menu(application.bot, chat_id):
            refused += 1
    log.info(
        "command menus installed for %d directors and %d inspectors (%d refused)",
        len(director_ids),
        len(inspectors),
        refused,
    )
