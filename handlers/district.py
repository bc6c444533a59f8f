"""The inspector's `/etat`: the district at a glance (one block per school, furthest behind
first, a page at a time, with the chart), and `/etat UAI` (or a school's button) for one
school's classes — read-only: the same « état des comptes » as its director's, without the
commands, and never a guardian's name.

Every step checks afresh that the school is one the inspector sees: a forged button or a
removed inspector gets a refusal, never another school's figures. The buttons are
`ien:p<page>` (a page of the district) and `ien:<school id>:<scope>` (a school, a class).
"""

from __future__ import annotations

import asyncio
import re

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.ext import BaseHandler, CallbackQueryHandler

from bot.context import BotContext
from bot.i18n import _
from bot.jobs import (
    DISTRICT_PAGE_SIZE,
    district_chart,
    district_page,
    district_page_count,
    district_page_lines,
)
from bot.services.digests import DistrictOverview, district_overview
from bot.services.roster import UnknownClassError, status_report
from bot.services.schools import InvalidUAIError, normalize_uai
from handlers.access import SchoolRef, inspector_schools_of
from handlers.keyboards import button_text, rows_of, scope_buttons, show, unknown_class_text
from handlers.status_report import render_report, report_keyboard

PREFIX = "ien:"
_PAGE = re.compile(rf"^{PREFIX}p(\d{{1,4}})$")
_SCHOOL = re.compile(rf"^{PREFIX}(\d{{1,12}}):(\w{{1,40}})$")
# `/etat district` (or « circonscription »): the district view for someone who also directs
# a school (their plain `/etat` is their school's).
DISTRICT_WORDS = frozenset({"district", "circonscription", "circo"})


def _school_keyboard(overview: DistrictOverview, page: int) -> InlineKeyboardMarkup | None:
    page = min(max(page, 0), district_page_count(overview) - 1)
    first = page * DISTRICT_PAGE_SIZE + 1
    buttons = [
        InlineKeyboardButton(
            button_text(f"{first + index}. {line.name}"),
            callback_data=f"{PREFIX}{line.school_id}:e",
        )
        for index, line in enumerate(district_page_lines(overview, page))
    ]
    rows = rows_of(buttons, 2)
    navigation = []
    if page > 0:
        navigation.append(
            InlineKeyboardButton(_("◀️ Previous"), callback_data=f"{PREFIX}p{page - 1}")
        )
    if page + 1 < district_page_count(overview):
        navigation.append(InlineKeyboardButton(_("Next ▶️"), callback_data=f"{PREFIX}p{page + 1}"))
    if navigation:
        rows.append(navigation)
    return InlineKeyboardMarkup(rows) if rows else None


async def _overview(context: BotContext, schools: list[SchoolRef]) -> DistrictOverview:
    return await context.db.run(
        district_overview, school_ids=[school.id for school in schools], tz=context.settings.tz
    )


async def show_district(
    update: Update, context: BotContext, schools: list[SchoolRef], *, page: int, chart: bool
) -> None:
    """One page of the district, with a button per school; `chart` adds the chart after it."""
    overview = await _overview(context, schools)
    await show(update, district_page(overview, page), _school_keyboard(overview, page))
    message = update.effective_message
    if chart and message is not None:
        # Drawing takes a few hundred milliseconds: off the event loop.
        png = await asyncio.to_thread(district_chart, overview)
        if png is not None:
            await message.reply_photo(png, filename="district.png")


def _back_row() -> list[list[InlineKeyboardButton]]:
    return [[InlineKeyboardButton(_("⬅️ District"), callback_data=f"{PREFIX}p0")]]


async def show_inspected_school(
    update: Update,
    context: BotContext,
    school: SchoolRef,
    *,
    scope_text: str = "",
    token: str | None = None,
) -> None:
    """One school (or one of its classes or levels) as its inspector reads it."""
    prefix = f"{PREFIX}{school.id}:"
    try:
        if token is not None:
            report = await context.db.run(status_report, school_id=school.id, scope=token)
        else:
            report = await context.db.run(status_report, school_id=school.id, scope_text=scope_text)
    except UnknownClassError as error:
        rows = scope_buttons(error.classes, error.levels, lambda scope: f"{prefix}{scope}")
        await show(update, [unknown_class_text(error)], InlineKeyboardMarkup(rows + _back_row()))
        return
    blocks = [_("👁️ <i>Read-only view for the district's inspector.</i>"), ""]
    blocks += render_report(school, report, read_only=True)
    await show(update, blocks, report_keyboard(report, prefix, _back_row()))


def _not_in_district(uai: str) -> str:
    return _(
        "The school {uai} is not one of the schools you can see. /etat lists yours; if one is "
        "missing, ask the operator who invited you."
    ).format(uai=uai)


async def inspector_status(update: Update, context: BotContext, *, directs: bool) -> bool:
    """`/etat` for an inspector; True when it was answered here. Someone who also `directs` a
    school keeps their school's `/etat` and reaches the district with `/etat UAI` or
    `/etat district`."""
    user, message = update.effective_user, update.effective_message
    if user is None or message is None:
        return False
    schools = await inspector_schools_of(context, user.id)
    if not schools:
        return False
    args = context.args or []
    if args and args[0].casefold() in DISTRICT_WORDS:
        await show_district(update, context, schools, page=0, chart=True)
        return True
    if args:
        try:
            uai = normalize_uai(args[0])
        except InvalidUAIError:
            uai = None
        if uai is not None:
            school = next((s for s in schools if s.uai == uai), None)
            if school is None:
                await message.reply_text(_not_in_district(uai))
            else:
                await show_inspected_school(update, context, school, scope_text=" ".join(args[1:]))
            return True
    if directs:
        return False
    await show_district(update, context, schools, page=0, chart=True)
    return True


async def _refuse_button(update: Update) -> None:
    query = update.callback_query
    if query is not None:
        await query.answer(
            _("You can no longer see this school. /etat shows the schools of your district."),
            show_alert=True,
        )


async def page_chosen(update: Update, context: BotContext) -> None:
    """A page of the district (◀️ ▶️, or « ⬅️ District »)."""
    query, user = update.callback_query, update.effective_user
    match = _PAGE.match(query.data or "") if query else None
    if query is None or user is None or match is None:
        return
    schools = await inspector_schools_of(context, user.id)
    if not schools:
        await _refuse_button(update)
        return
    await query.answer()
    await show_district(update, context, schools, page=int(match[1]), chart=False)


async def school_chosen(update: Update, context: BotContext) -> None:
    """A school of the district, or a class of it, whose button was pressed."""
    query, user = update.callback_query, update.effective_user
    match = _SCHOOL.match(query.data or "") if query else None
    if query is None or user is None or match is None:
        return
    schools = await inspector_schools_of(context, user.id)
    school = next((s for s in schools if s.id == int(match[1])), None)
    if school is None:
        await _refuse_button(update)
        return
    await query.answer()
    await show_inspected_school(update, context, school, token=match[2])


HANDLERS: list[BaseHandler] = [
    CallbackQueryHandler(page_chosen, pattern=_PAGE),
    CallbackQueryHandler(school_chosen, pattern=_SCHOOL),
]
