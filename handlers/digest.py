"""/lsu: the school's LSU date (typed, or chosen with buttons); /digest: the digest schedule in
words, with buttons to change the day and hour, pause or resume, send one now, and turn the
automatic reminders to families on or off.

Buttons carry their whole meaning (`lsu:…`, `dg:…`), so they work after a restart.
"""

from __future__ import annotations

import calendar
import re
from datetime import date

from babel.dates import get_day_names, get_month_names
from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.ext import BaseHandler, CallbackQueryHandler, CommandHandler, filters

from bot.context import BotContext
from bot.i18n import _, babel_locale, format_date, ngettext
from bot.jobs import rearm_digests, send_digest_now
from bot.services.errors import ServiceError
from bot.services.scheduling import (
    REMINDER_DAYS,
    DigestSettings,
    LsuDateError,
    describe_schedule,
    digest_settings,
    hour_text,
    latest_lsu_date,
    parse_lsu_date,
    set_digest_paused,
    set_digest_schedule,
    set_lsu_date,
    set_reminders,
)
from handlers.access import SchoolRef, director_only
from handlers.keyboards import rows_of, show
from models import utcnow

LSU_PREFIX = "lsu:"
DIGEST_PREFIX = "dg:"
_LSU_MONTH = re.compile(rf"^{LSU_PREFIX}m:(\d{{4}})-(\d{{2}})$")
_LSU_DAY = re.compile(rf"^{LSU_PREFIX}d:(\d{{4}})-(\d{{2}})-(\d{{2}})$")
_LSU_MONTHS = re.compile(rf"^{LSU_PREFIX}months$")
_DIGEST = re.compile(rf"^{DIGEST_PREFIX}(\w+)(?::(\d+))?$")
# The hours offered for the weekly digest: a school day, never at night.
DIGEST_HOURS = tuple(range(6, 21))


def _today(context: BotContext) -> date:
    return utcnow().astimezone(context.settings.tz).date()


def _actor(update: Update) -> str:
    user = update.effective_user
    return f"telegram:{user.id if user else 'unknown'}"


# -- /lsu ----------------------------------------------------------------------------------


def _months_keyboard(today: date) -> InlineKeyboardMarkup:
    names = get_month_names("wide", locale=babel_locale())
    last = latest_lsu_date(today)
    buttons = []
    year, month = today.year, today.month
    while (year, month) <= (last.year, last.month):
        buttons.append(
            InlineKeyboardButton(
                f"{names[month]} {year}", callback_data=f"{LSU_PREFIX}m:{year:04d}-{month:02d}"
            )
        )
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return InlineKeyboardMarkup(rows_of(buttons, 3))


def _days_keyboard(year: int, month: int, today: date) -> InlineKeyboardMarkup:
    last = latest_lsu_date(today)
    days = [
        date(year, month, day)
        for day in range(1, calendar.monthrange(year, month)[1] + 1)
        if today <= date(year, month, day) <= last
    ]
    buttons = [
        InlineKeyboardButton(str(day.day), callback_data=f"{LSU_PREFIX}d:{day.isoformat()}")
        for day in days
    ]
    rows = rows_of(buttons, 7)
    rows.append([InlineKeyboardButton(_("⬅️ Months"), callback_data=f"{LSU_PREFIX}months")])
    return InlineKeyboardMarkup(rows)


def _lsu_current(settings: DigestSettings) -> str:
    if settings.lsu_date is None:
        return _("No LSU date yet for this school.")
    return _("The LSU date is {date}.").format(date=format_date(settings.lsu_date))


async def _lsu_set(
    update: Update, context: BotContext, school: SchoolRef, value: date
) -> list[str]:
    """Record the date and return the confirmation with the schedule in words."""
    settings = await context.db.run(
        set_lsu_date,
        school_id=school.id,
        lsu_date=value,
        today=_today(context),
        actor=_actor(update),
    )
    await rearm_digests(context.application)
    lines = describe_schedule(settings, now=utcnow(), tz=context.settings.tz)
    return [
        _("✅ LSU date of {school}: <b>{date}</b>.").format(
            school=school.title, date=format_date(value)
        ),
        "",
        *lines,
    ]


@director_only
async def lsu_command(update: Update, context: BotContext, school: SchoolRef) -> None:
    """/lsu [date]: set the LSU date, or choose it with buttons."""
    message = update.effective_message
    if message is None:
        return
    today = _today(context)
    if context.args:
        try:
            value = parse_lsu_date(" ".join(context.args), today=today)
        except LsuDateError as error:
            await message.reply_text(error.message)
            return
        await show(update, await _lsu_set(update, context, school, value))
        return
    settings = await context.db.run(digest_settings, school_id=school.id)
    text = "\n".join(
        [
            _lsu_current(settings),
            _(
                "Choose the month the school reports (LSU) go online, or type the date: "
                "<code>/lsu 15/01/2027</code>."
            ),
        ]
    )
    await message.reply_text(text, reply_markup=_months_keyboard(today))


@director_only
async def lsu_button(update: Update, context: BotContext, school: SchoolRef) -> None:
    """Show the days of the month pressed, or set the day pressed."""
    query = update.callback_query
    if query is None:
        return
    data = query.data or ""
    today = _today(context)
    month, day = _LSU_MONTH.match(data), _LSU_DAY.match(data)
    try:
        if day:
            value = date(int(day[1]), int(day[2]), int(day[3]))
            blocks = await _lsu_set(update, context, school, value)
            await query.answer()
            await show(update, blocks)
            return
        if month:
            year, number = int(month[1]), int(month[2])
            keyboard = _days_keyboard(year, number, today)
            names = get_month_names("wide", locale=babel_locale())
            await query.answer()
            await show(
                update,
                [_("Choose the day in {month} {year}:").format(month=names[number], year=year)],
                keyboard,
            )
            return
    except (ValueError, LsuDateError) as error:
        # An old button (a day now past) or forged data.
        reason = error.message if isinstance(error, LsuDateError) else _("This date is not valid.")
        await query.answer(reason.replace("<code>", "").replace("</code>", ""), show_alert=True)
        return
    await query.answer()
    await show(update, [_("Choose the month:")], _months_keyboard(today))


# -- /digest -------------------------------------------------------------------------------


def _button(label: str, action: str, value: int | None = None) -> InlineKeyboardButton:
    suffix = "" if value is None else f":{value}"
    return InlineKeyboardButton(label, callback_data=f"{DIGEST_PREFIX}{action}{suffix}")


def _digest_keyboard(settings: DigestSettings) -> InlineKeyboardMarkup:
    rows = [
        [_button(_("📅 Change the day"), "day"), _button(_("🕗 Change the hour"), "hour")],
        [
            _button(_("▶️ Resume"), "resume") if settings.paused else _button(_("⏸ Pause"), "pause"),
            _button(_("📨 Send one now"), "now"),
        ],
    ]
    if settings.reminders_enabled:
        rows.append([_button(_("🔕 Turn reminders off"), "reminders", 0)])
        rows.append(
            [
                _button(
                    ("✅ " if days == settings.reminder_after_days else "")
                    + ngettext("{days} day", "{days} days", days).format(days=days),
                    "after",
                    days,
                )
                for days in REMINDER_DAYS
            ]
        )
    else:
        rows.append([_button(_("🔔 Turn automatic reminders on"), "reminders", 1)])
    return InlineKeyboardMarkup(rows)


def _digest_screen(school: SchoolRef, settings: DigestSettings, context: BotContext) -> list[str]:
    return [
        _("<b>Digests — {school}</b>").format(school=school.title),
        "",
        *describe_schedule(settings, now=utcnow(), tz=context.settings.tz),
    ]


@director_only
async def digest_command(update: Update, context: BotContext, school: SchoolRef) -> None:
    """/digest: the schedule in words, and buttons to change it."""
    settings = await context.db.run(digest_settings, school_id=school.id)
    await show(update, _digest_screen(school, settings, context), _digest_keyboard(settings))


def _weekday_keyboard() -> InlineKeyboardMarkup:
    names = get_day_names("wide", locale=babel_locale())
    buttons = [_button(str(names[day]), "weekday", day) for day in range(7)]
    return InlineKeyboardMarkup([*rows_of(buttons, 3), [_button(_("⬅️ Back"), "back")]])


def _hour_keyboard() -> InlineKeyboardMarkup:
    buttons = [_button(hour_text(hour), "at", hour) for hour in DIGEST_HOURS]
    return InlineKeyboardMarkup([*rows_of(buttons, 5), [_button(_("⬅️ Back"), "back")]])


async def _change(
    update: Update, context: BotContext, school: SchoolRef, action: str, value: int | None
) -> DigestSettings | None:
    """Apply the setting a button changes; None for a button that changes nothing."""
    actor, school_id = _actor(update), school.id
    if action == "weekday" and value is not None:
        return await context.db.run(
            set_digest_schedule, school_id=school_id, weekday=value, actor=actor
        )
    if action == "at" and value is not None:
        return await context.db.run(
            set_digest_schedule, school_id=school_id, hour=value, actor=actor
        )
    if action in ("pause", "resume"):
        return await context.db.run(
            set_digest_paused, school_id=school_id, paused=action == "pause", actor=actor
        )
    if action == "reminders" and value is not None:
        return await context.db.run(
            set_reminders, school_id=school_id, enabled=bool(value), actor=actor
        )
    if action == "after" and value is not None:
        return await context.db.run(
            set_reminders, school_id=school_id, after_days=value, actor=actor
        )
    return None


@director_only
async def digest_button(update: Update, context: BotContext, school: SchoolRef) -> None:
    """Change what the button says, then show the schedule again."""
    query = update.callback_query
    match = _DIGEST.match(query.data or "") if query else None
    if query is None or match is None:
        return
    action, value = match[1], int(match[2]) if match[2] else None
    if action == "day":
        await query.answer()
        await show(update, [_("Choose the day of the weekly digest:")], _weekday_keyboard())
        return
    if action == "hour":
        await query.answer()
        await show(update, [_("Choose the hour of the weekly digest:")], _hour_keyboard())
        return
    if action == "now":
        await query.answer(_("Preparing the digest…"))
        # Directors' commands work in their private chat only: its id is the user's.
        chat_id = query.from_user.id
        if not await send_digest_now(context.application, school_id=school.id, chat_id=chat_id):
            await context.bot.send_message(
                chat_id, _("The digest could not be sent. Please try again in a moment.")
            )
        return
    try:
        settings = await _change(update, context, school, action, value)
    except ServiceError as error:
        await query.answer(error.message, show_alert=True)
        return
    if settings is None:
        settings = await context.db.run(digest_settings, school_id=school.id)
    else:
        await rearm_digests(context.application)
    await query.answer()
    await show(update, _digest_screen(school, settings, context), _digest_keyboard(settings))


_PRIVATE = filters.ChatType.PRIVATE

HANDLERS: list[BaseHandler] = [
    CommandHandler("lsu", lsu_command, filters=_PRIVATE),
    CommandHandler("digest", digest_command, filters=_PRIVATE),
    CallbackQueryHandler(lsu_button, pattern=rf"^{LSU_PREFIX}"),
    CallbackQueryHandler(digest_button, pattern=_DIGEST),
]
