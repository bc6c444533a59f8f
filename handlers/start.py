"""/start: welcome, and redeem the code a deep link or a letter carries (`/start <code>`).

A code is tried as each kind of code in turn (`CODE_REDEEMERS`): a director invitation, an
inspector invitation, then the family-link code printed on a letter (which links the family's
chat to its guardian). Failed attempts are counted per user in `user_data` (persisted, so a
restart does not reset them) and throttled.
"""

from __future__ import annotations

import enum
import html
import math
import time
from collections.abc import Awaitable, Callable

from telegram import Update
from telegram.ext import BaseHandler, CommandHandler, filters

from bot.context import BotContext
from bot.i18n import _, ngettext, use_language
from bot.services.accounts import FamilyLinkError, LinkRefusal, linked_guardians, redeem_link_code
from bot.services.schools import (
    InvitationAlreadyUsedError,
    InvitationExpiredError,
    InvitationRevokedError,
    UnknownInvitationError,
    redeem_director_invitation,
    redeem_inspector_invitation,
    school_by_uai,
)
from handlers.access import (
    SchoolRef,
    chosen_school,
    director_schools,
    inspector_schools_of,
    set_current_school,
)
from handlers.family import family_language, family_linked, family_next_step
from handlers.family_phone import phone_offer
from handlers.helpdesk.filing import SCHOOL_HINT_KEY
from handlers.menus import set_director_menu, set_inspector_menu

# At most this many failed codes per user within the window; then wait until the oldest ages out.
MAX_FAILED_CODES = 5
FAILED_CODES_WINDOW = 15 * 60.0
# user_data key: times (Unix seconds) of the user's recent failed codes.
FAILED_CODES_KEY = "failed_codes"

# `/start ecole_<UAI>`: the deep link of a school's poster.
SCHOOL_POSTER_PREFIX = "ecole_"

# Seconds since the epoch; tests replace it to move time forward.
clock: Callable[[], float] = time.time


class CodeOutcome(enum.Enum):
    """What one kind of code made of the code it was given."""

    ACCEPTED = "accepted"  # a code of this kind, redeemed; the user has been answered
    REFUSED = "refused"  # a code of this kind that cannot be used; the user has been told why
    NOT_MINE = "not_mine"  # not a code of this kind: try the next kind


CodeRedeemer = Callable[[Update, BotContext, str], Awaitable[CodeOutcome]]


# --- failed attempts ------------------------------------------------------------------------


def recent_failures(context: BotContext, now: float) -> list[float]:
    """The user's failed codes still inside the window, oldest first."""
    stored = (context.user_data or {}).get(FAILED_CODES_KEY) or []
    return sorted(t for t in stored if isinstance(t, int | float) and now - t < FAILED_CODES_WINDOW)


def _remember_failure(context: BotContext, now: float) -> None:
    if context.user_data is not None:
        context.user_data[FAILED_CODES_KEY] = [*recent_failures(context, now), now]


def _forget_failures(context: BotContext) -> None:
    if context.user_data is not None:
        context.user_data.pop(FAILED_CODES_KEY, None)


def minutes_to_wait(failures: list[float], now: float) -> int | None:
    """Whole minutes before another code may be tried, or None if one may be tried now."""
    if len(failures) < MAX_FAILED_CODES:
        return None
    # The attempt that must age out is the one that brings the count back under the limit.
    frees_at = failures[-MAX_FAILED_CODES] + FAILED_CODES_WINDOW
    return max(1, math.ceil((frees_at - now) / 60))


# --- director invitations -------------------------------------------------------------------


def _invitation_refusal(error: Exception) -> str:
    if isinstance(error, InvitationRevokedError):  # an InvitationExpiredError: caught with it
        return _(
            "This invitation has been cancelled by the person who sent it, so it no longer "
            "works. Ask them for a new invitation if you should still have one."
        )
    if isinstance(error, InvitationAlreadyUsedError):
        return _(
            "This invitation has already been used: each invitation works only once. If you "
            "used it yourself, you are already set up: type /aide. Otherwise, ask the person "
            "who sent it to you for a new invitation."
        )
    return _("This invitation has expired. Ask the person who sent it to you for a new invitation.")


def _welcome_director(school: SchoolRef, schools: int) -> str:
    lines = [
        _("Welcome! You are now the director of <b>{name}</b> (UAI {uai}).").format(
            name=html.escape(school.name), uai=html.escape(school.uai)
        ),
        "",
        _(
            "<b>Next step:</b> send me the two ONDE extractions of your school as CSV files, "
            "« Élèves » and « Responsables ». In ONDE, open Listes & documents → Extractions, "
            "download both lists, then send the two files here. I show you what I found "
            "before importing anything."
        ),
    ]
    if schools > 1:
        lines += [
            "",
            ngettext(
                "You direct {count} school: your commands now act on this one, and /ecole "
                "switches to another.",
                "You direct {count} schools: your commands now act on this one, and /ecole "
                "switches to another.",
                schools,
            ).format(count=schools),
        ]
    lines += ["", _("Your command menu is ready; /aide explains each command.")]
    return "\n".join(lines)


async def redeem_invitation_code(update: Update, context: BotContext, code: str) -> CodeOutcome:
    """Make the user a director if `code` is a valid invitation."""
    user, message = update.effective_user, update.effective_message
    if user is None or message is None:
        return CodeOutcome.NOT_MINE
    try:
        redeemed = await context.db.run(
            redeem_director_invitation,
            code=code,
            telegram_user_id=user.id,
            display_name=user.full_name,
        )
    except UnknownInvitationError:
        return CodeOutcome.NOT_MINE
    except (InvitationAlreadyUsedError, InvitationExpiredError) as error:
        await message.reply_text(_invitation_refusal(error))
        return CodeOutcome.REFUSED
    school = SchoolRef(id=redeemed.id, uai=redeemed.uai, name=redeemed.name)
    # The school just joined is the one whose files come next.
    set_current_school(context, school)
    schools = await director_schools(context, user.id)
    await message.reply_text(_welcome_director(school, len(schools)))
    await set_director_menu(context.bot, message.chat.id)
    return CodeOutcome.ACCEPTED


# --- inspector invitations -----------------------------------------------------------------


def _welcome_inspector(schools: list[SchoolRef]) -> str:
    names = ", ".join(school.title for school in schools[:5])
    if len(schools) > 5:
        names = _("{names} and {count} more").format(names=names, count=len(schools) - 5)
    return "\n".join(
        [
            ngettext(
                "Welcome! You now follow {count} school of your district, read-only: {names}.",
                "Welcome! You now follow {count} schools of your district, read-only: {names}.",
                len(schools),
            ).format(count=len(schools), names=names),
            "",
            _(
                "/etat shows every school at a glance, furthest behind first, with a chart; "
                "<code>/etat UAI</code> shows one school's classes. Every Monday at 8:00 I send "
                "you the week's district digest. You see figures only, never a family's name."
            ),
        ]
    )


async def redeem_inspector_code(update: Update, context: BotContext, code: str) -> CodeOutcome:
    """Let the user follow the schools of an inspector invitation, if `code` is one."""
    user, message = update.effective_user, update.effective_message
    if user is None or message is None:
        return CodeOutcome.NOT_MINE
    try:
        await context.db.run(
            redeem_inspector_invitation,
            code=code,
            telegram_user_id=user.id,
            display_name=user.full_name,
        )
    except UnknownInvitationError:
        return CodeOutcome.NOT_MINE
    except (InvitationAlreadyUsedError, InvitationExpiredError) as error:
        await message.reply_text(_invitation_refusal(error))
        return CodeOutcome.REFUSED
    schools = await inspector_schools_of(context, user.id)
    await message.reply_text(_welcome_inspector(schools))
    if not await director_schools(context, user.id):
        await set_inspector_menu(context.bot, message.chat.id)
    return CodeOutcome.ACCEPTED


# --- family-link codes (the bot QR code of a letter) ----------------------------------------


def _link_refusal(reason: LinkRefusal) -> str:
    if reason is LinkRefusal.USED:
        return _(
            "This code has already been used to link another Telegram account: each code works "
            "only once. If it was not you, tell the school, which can send you a new letter."
        )
    if reason is LinkRefusal.SUPERSEDED:
        return _(
            "This code comes from an older letter: a newer letter or e-mail was sent to you "
            "since. Use the code of the most recent one."
        )
    if reason is LinkRefusal.DEACTIVATED:
        return _(
            "This account is no longer active: the school no longer lists a child of yours. If "
            "this is a mistake, please contact the school."
        )
    if reason is LinkRefusal.ACTIVATED:
        return _(
            "This account is already activated, so the code of its letter no longer works: "
            "this protects your children's information if the letter is lost. To link this "
            "Telegram account, send /start and tap « 📱 Share my number », or ask the school."
        )
    return _(
        "This code has expired, like the provisional password of the same letter. Ask the "
        "school for a new letter."
    )


async def redeem_family_code(update: Update, context: BotContext, code: str) -> CodeOutcome:
    """Link the family's chat to the guardian whose letter carries `code`."""
    user, message = update.effective_user, update.effective_message
    if user is None or message is None:
        return CodeOutcome.NOT_MINE
    try:
        linked = await context.db.run(redeem_link_code, code=code, telegram_user_id=user.id)
    except FamilyLinkError as error:
        if error.reason is LinkRefusal.UNKNOWN:
            return CodeOutcome.NOT_MINE
        await message.reply_text(_link_refusal(error.reason))
        return CodeOutcome.REFUSED
    with use_language(family_language(context, user, linked)):
        next_step = family_next_step(linked, context.settings.portal_url, context.settings.tz)
        text = family_linked(linked, next_step)
    await message.reply_text(text)
    return CodeOutcome.ACCEPTED


# The kinds of code `/start <code>` accepts, tried in order. A redeemer answers NOT_MINE for a
# code it does not know, so the next kind gets its chance.
CODE_REDEEMERS: list[CodeRedeemer] = [
    redeem_invitation_code,
    redeem_inspector_code,
    redeem_family_code,
]


async def redeem_start_code(update: Update, context: BotContext, code: str) -> None:
    """Redeem `code` as the first kind of code that knows it, unless the user is throttled."""
    message = update.effective_message
    if message is None:
        return
    now = clock()
    wait = minutes_to_wait(recent_failures(context, now), now)
    if wait is not None:
        await message.reply_text(
            ngettext(
                "Too many wrong codes. For your security, please wait {minutes} minute "
                "before trying again, and check the code carefully.",
                "Too many wrong codes. For your security, please wait {minutes} minutes "
                "before trying again, and check the code carefully.",
                wait,
            ).format(minutes=wait)
        )
        return
    for redeemer in CODE_REDEEMERS:
        outcome = await redeemer(update, context, code)
        if outcome is CodeOutcome.ACCEPTED:
            _forget_failures(context)
            return
        if outcome is CodeOutcome.REFUSED:
            _remember_failure(context, now)
            return
    _remember_failure(context, now)
    await message.reply_text(
        _(
            "I don't recognise this code. Check that you copied it completely, exactly as it "
            "is written. If it still does not work, ask the person who sent it to you for a "
            "new one."
        )
    )


# --- /start ---------------------------------------------------------------------------------


def _welcome_back(school: SchoolRef, schools: int) -> str:
    if schools > 1:
        return ngettext(
            "Welcome back! You direct {count} school and are working on {school}. "
            "/ecole switches to another; /aide lists your commands.",
            "Welcome back! You direct {count} schools and are working on {school}. "
            "/ecole switches to another; /aide lists your commands.",
            schools,
        ).format(count=schools, school=school.title)
    return _("Welcome back! You are the director of {school}. /aide lists your commands.").format(
        school=school.title
    )


def _welcome_family(first_name: str) -> str:
    return _(
        "Hello {name}! I am the EduConnect assistant of your children's school.\n\n"
        "I help families with their EduConnect account, which shows the school report (LSU) "
        "online: a lost identifier, a forgotten password, or an account to activate.\n\n"
        "Type /aide to see what to do in each case."
    ).format(name=html.escape(first_name))


async def _school_poster(update: Update, context: BotContext, uai: str) -> None:
    """`/start ecole_<UAI>` (a school's poster): welcome, with that school preselected for a
    help request."""
    user, message = update.effective_user, update.effective_message
    if user is None or message is None:
        return
    school = await context.db.run(school_by_uai, uai=uai)
    if school is None:
        await message.reply_text(
            _(
                "I do not know this school: it may not use this assistant yet. Type /aide to see "
                "what I can do for you."
            )
        )
        return
    if context.user_data is not None:
        context.user_data[SCHOOL_HINT_KEY] = school.uai
    offer, keyboard = phone_offer()
    intro = _("You came from the poster of {school}.").format(school=html.escape(school.name))
    await message.reply_text(
        f"{_welcome_family(user.first_name)}\n\n{intro}\n\n{offer}", reply_markup=keyboard
    )


async def start(update: Update, context: BotContext) -> None:
    """Redeem the code that follows /start, or welcome the user."""
    user, message = update.effective_user, update.effective_message
    if user is None or message is None:
        return
    if context.args and context.args[0].lower().startswith(SCHOOL_POSTER_PREFIX):
        await _school_poster(update, context, context.args[0][len(SCHOOL_POSTER_PREFIX) :])
        return
    if context.args:
        await redeem_start_code(update, context, context.args[0])
        return
    schools = await director_schools(context, user.id)
    school = chosen_school(schools, context)
    if school is None:
        inspected = await inspector_schools_of(context, user.id)
        if inspected:
            await message.reply_text(_welcome_inspector(inspected))
            await set_inspector_menu(context.bot, message.chat.id)
            return
        if await context.db.run(linked_guardians, telegram_user_id=user.id):
            # Already linked: nothing to prove again.
            await message.reply_text(_welcome_family(user.first_name))
            return
        offer, keyboard = phone_offer()
        await message.reply_text(
            f"{_welcome_family(user.first_name)}\n\n{offer}", reply_markup=keyboard
        )
        return
    await message.reply_text(_welcome_back(school, len(schools)))
    # Cheap, and it repairs a menu lost on Telegram's side.
    await set_director_menu(context.bot, message.chat.id)


HANDLERS: list[BaseHandler] = [
    # Private chats only: an invitation code typed in a group would be seen by all its members.
    CommandHandler("start", start, filters=filters.ChatType.PRIVATE),
]
