"""Who may do what: director commands act on the director's current school only, in a private
chat; everyone else gets a polite refusal that says what to do."""

from __future__ import annotations

import functools
import html
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from telegram import Chat, Update
from telegram.ext import ConversationHandler

from bot.context import BotContext
from bot.i18n import _
from bot.services.schools import directed_schools, inspected_schools
from handlers.menus import reset_stale_director_menu

# user_data key of the school a director of several schools is working on.
CURRENT_SCHOOL_KEY = "school_id"


@dataclass(frozen=True)
class SchoolRef:
    """The school a director's command acts on."""

    id: int
    uai: str
    name: str

    @property
    def title(self) -> str:
        """« École Jules Ferry (0751234X) », HTML-escaped."""
        return html.escape(f"{self.name} ({self.uai})")


async def director_schools(context: BotContext, telegram_user_id: int) -> list[SchoolRef]:
    """The schools this Telegram user directs, by name (empty for a family)."""
    schools = await context.db.run(directed_schools, telegram_user_id=telegram_user_id)
    return [SchoolRef(id=s.id, uai=s.uai, name=s.name) for s in schools]


async def inspector_schools_of(context: BotContext, telegram_user_id: int) -> list[SchoolRef]:
    """The schools this Telegram user sees as an inspector (read-only), by name; looked up
    afresh on every update, so a removed inspector loses access at once."""
    schools = await context.db.run(inspected_schools, telegram_user_id=telegram_user_id)
    return [SchoolRef(id=s.id, uai=s.uai, name=s.name) for s in schools]


def chosen_school(schools: list[SchoolRef], context: BotContext) -> SchoolRef | None:
    """Among `schools`, the one chosen with /ecole, else the first (None if there is none)."""
    if not schools:
        return None
    chosen = (context.user_data or {}).get(CURRENT_SCHOOL_KEY)
    for school in schools:
        if school.id == chosen:
            return school
    return schools[0]


async def current_school(update: Update, context: BotContext) -> SchoolRef | None:
    """The school the director is working on, or None for someone who directs none.

    A director of one school always works on it; a director of several works on the one chosen
    with /ecole (the first by name until they choose). A school they no longer direct is never
    returned, whatever user_data remembers.
    """
    user = update.effective_user
    if user is None:
        return None
    return chosen_school(await director_schools(context, user.id), context)


def set_current_school(context: BotContext, school: SchoolRef) -> None:
    """Remember the school a director of several schools chose."""
    if context.user_data is not None:
        context.user_data[CURRENT_SCHOOL_KEY] = school.id


async def _reply(update: Update, text: str) -> None:
    if update.callback_query:
        await update.callback_query.answer()
    if update.effective_message:
        await update.effective_message.reply_text(text)


async def refuse_non_director(update: Update) -> None:
    """Tell a family member, politely, that this command is for school directors."""
    await _reply(
        update,
        _(
            "This command is for school directors. If you direct a school, type "
            "<code>/start</code> followed by the invitation code you received. "
            "If you are a parent, type /aide to see what I can do for you."
        ),
    )


async def refuse_former_director(update: Update, context: BotContext) -> bool:
    """If this user's chat still shows the director menu though they direct no school any
    more (the operator removed them), reset the menu and tell them why; False otherwise."""
    user, chat = update.effective_user, update.effective_chat
    if user is None or chat is None:
        return False
    inspector = bool(await inspector_schools_of(context, user.id))
    if not await reset_stale_director_menu(context.bot, chat.id, inspector=inspector):
        return False
    await _reply(
        update,
        _(
            "You no longer direct a school with this assistant, so school commands are closed "
            "to you and your menu has been reset. If this is a mistake, ask the person who "
            "invited you for a new invitation, then type <code>/start</code> followed by its "
            "code."
        ),
    )
    return True


async def refuse_outside_private_chat(update: Update) -> None:
    """Tell a director that school data is only shown in their private chat with the bot."""
    await _reply(
        update,
        _(
            "For your pupils' privacy, school commands only work in a private chat with me. "
            "Open a private chat with me and type the command there."
        ),
    )


DirectorCallback = Callable[[Update, BotContext, SchoolRef], Awaitable[Any]]


def director_only(
    callback: DirectorCallback,
) -> Callable[[Update, BotContext], Coroutine[Any, Any, Any]]:
    """Run `callback(update, context, school)` for directors; refuse everyone else.

    The school is looked up afresh on every update, so a removed director loses access at once
    (and their chat's director menu is reset) and a director never reaches another school's
    data. Outside a private chat nothing is shown, since other members of a group would see it.
    """

    @functools.wraps(callback)
    async def wrapper(update: Update, context: BotContext) -> Any:
        chat = update.effective_chat
        if chat is not None and chat.type != Chat.PRIVATE:
            await refuse_outside_private_chat(update)
            return ConversationHandler.END
        school = await current_school(update, context)
        if school is None:
            if not await refuse_former_director(update, context):
                await refuse_non_director(update)
            return ConversationHandler.END
        return await callback(update, context, school)

    return wrapper
