"""/responsables [classe|niveau|ecole] [avec|sans] [état]: the guardians of a scope, with their
children, identifier, whether they have an e-mail address, and their light, page by page.

Without arguments it is a guided choice: scope buttons, then filter buttons, then the list.
Each step lives in its buttons' callback data (`resp:…`), so there is no conversation state to
lose, and ◀️ ▶️ edit the same message. « 👤 Card… » numbers the page's guardians as buttons,
each opening that guardian's card (`handlers.guardian_card_actions`).
"""

from __future__ import annotations

import html
import re

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.ext import BaseHandler, CallbackQueryHandler, CommandHandler
from telegram.ext import filters as telegram_filters

from bot.context import BotContext
from bot.i18n import _, format_number
from bot.services.roster import (
    STATE_LIGHTS,
    GuardianFilters,
    GuardianLine,
    GuardianPage,
    ResolvedScope,
    UnknownClassError,
    known_classes,
    known_levels,
    list_guardians,
    parse_guardian_query,
    resolve_scope,
    scope_from_token,
    state_label,
)
from handlers.access import SchoolRef, director_only
from handlers.guardian_card import CARD, action_data
from handlers.keyboards import (
    guardians_text,
    pager_row,
    scope_buttons,
    scope_summary,
    show,
    unknown_class_text,
)
from models import AccountState

PREFIX = "resp:"
PAGE_SIZE = 15
# resp:s:<scope>:<email>:<states> — a scope was chosen: show the filters.
# resp:p:<scope>:<email>:<states>:<page> — show one page of the list.
_CHOSEN = re.compile(rf"^{PREFIX}s:(\w+):([-as]):([-a-z]+)$")
_PAGE = re.compile(rf"^{PREFIX}p:(\w+):([-as]):([-a-z]+):([0-9]{{1,6}})$")
# resp:f:<scope>:<email>:<states>:<page> — the same page, with a button per guardian's card.
_CARDS = re.compile(rf"^{PREFIX}f:(\w+):([-as]):([-a-z]+):([0-9]{{1,6}})$")
_CARD_BUTTONS_PER_ROW = 5
# Beyond this a guardian's line drops their children, so a page always fits in one message.
_CHILDREN_CHARS = 160


def _page_data(scope: str, filters: GuardianFilters, page: int) -> str:
    return f"{PREFIX}p:{scope}:{filters.token}:{page}"


def _chosen_data(scope: str, filters: GuardianFilters) -> str:
    return f"{PREFIX}s:{scope}:{filters.token}"


def _filters_text(filters: GuardianFilters) -> str | None:
    parts = []
    if filters.has_email is True:
        parts.append(_("with an e-mail address"))
    elif filters.has_email is False:
        parts.append(_("without an e-mail address"))
    parts += [
        f"{STATE_LIGHTS[state]} {state_label(state)}"
        for state in AccountState
        if state in filters.states
    ]
    return ", ".join(parts) if parts else None


def _guardian_block(number: int, guardian: GuardianLine, *, with_children: bool) -> str:
    name = " ".join(
        part for part in (guardian.civility, guardian.first_name, guardian.last_name) if part
    )
    email = _("e-mail: yes") if guardian.has_email else _("e-mail: no")
    line = _("{number}. {light} <b>{name}</b> · <code>{identifier}</code> · {email}").format(
        number=number,
        light=guardian.light,
        name=html.escape(name),
        identifier=html.escape(guardian.identifier),
        email=email,
    )
    children = ", ".join(
        f"{child.first_name} {child.last_name} ({child.class_label})"
        if child.class_label
        else f"{child.first_name} {child.last_name}"
        for child in guardian.children
    )
    if not with_children or not children:
        return line
    if len(children) > _CHILDREN_CHARS:
        children = children[: _CHILDREN_CHARS - 1] + "…"
    return f"{line}\n    {html.escape(children)}"


def _card_rows(listing: GuardianPage) -> list[list[InlineKeyboardButton]]:
    """A button per guardian of the page, numbered as the list numbers them."""
    first = listing.page * listing.page_size + 1
    buttons = [
        InlineKeyboardButton(
            str(first + index), callback_data=action_data(CARD, guardian.account_id)
        )
        for index, guardian in enumerate(listing.guardians)
    ]
    return [
        buttons[start : start + _CARD_BUTTONS_PER_ROW]
        for start in range(0, len(buttons), _CARD_BUTTONS_PER_ROW)
    ]


def render_page(
    listing: GuardianPage, *, choosing_card: bool = False
) -> tuple[str, InlineKeyboardMarkup]:
    """The text and buttons of one page of a guardian list (`choosing_card`: a numbered button
    per guardian, to open their card)."""
    header = [scope_summary(listing.scope)]
    described = _filters_text(listing.filters)
    if described:
        header.append(
            _("Filter: {filters} — {guardians}").format(
                filters=html.escape(described), guardians=guardians_text(listing.total)
            )
        )
    if listing.total == 0:
        header.append(_("No guardian matches. Try other filters."))
    elif listing.page_count > 1:
        header.append(
            _("Page {page} of {pages}").format(
                page=format_number(listing.page + 1), pages=format_number(listing.page_count)
            )
        )
    first = listing.page * listing.page_size + 1
    for with_children in (True, False):
        blocks = [
            _guardian_block(first + index, guardian, with_children=with_children)
            for index, guardian in enumerate(listing.guardians)
        ]
        text = "\n".join(header) + ("\n\n" + "\n".join(blocks) if blocks else "")
        if len(text) <= 4096:
            break
    scope = listing.scope.scope.token
    page_data = _page_data(scope, listing.filters, listing.page)
    if choosing_card:
        rows = _card_rows(listing)
        rows.append([InlineKeyboardButton(_("◀️ Back to the list"), callback_data=page_data)])
        return text + "\n\n" + _("Whose card? Tap their number."), InlineKeyboardMarkup(rows)
    rows = []
    pager = pager_row(
        listing.page,
        listing.page_count,
        lambda page: _page_data(scope, listing.filters, page),
    )
    if pager:
        rows.append(pager)
    last_row = [
        InlineKeyboardButton(_("🔎 Filters"), callback_data=_chosen_data(scope, GuardianFilters()))
    ]
    if listing.guardians:
        last_row.insert(
            0,
            InlineKeyboardButton(
                _("👤 Card…"), callback_data=f"{PREFIX}f:" + page_data.removeprefix(f"{PREFIX}p:")
            ),
        )
    rows.append(last_row)
    return text, InlineKeyboardMarkup(rows)


def _filter_keyboard(resolved: ResolvedScope) -> InlineKeyboardMarkup:
    scope = resolved.scope.token
    counts = resolved.statistics.total.by_state()

    def button(label: str, filters: GuardianFilters) -> InlineKeyboardButton:
        return InlineKeyboardButton(label, callback_data=_page_data(scope, filters, 0))

    return InlineKeyboardMarkup(
        [
            [
                button(_("Everyone"), GuardianFilters()),
                button(_("With e-mail"), GuardianFilters(has_email=True)),
                button(_("Without e-mail"), GuardianFilters(has_email=False)),
            ],
            [
                button(
                    f"{STATE_LIGHTS[state]} {format_number(counts[state])}",
                    GuardianFilters(states=frozenset({state})),
                )
                for state in AccountState
            ],
            [
                button(
                    _("🔴 without e-mail (paper letters)"),
                    GuardianFilters(False, frozenset({AccountState.NOT_NOTIFIED})),
                )
            ],
        ]
    )


async def _show_unknown(update: Update, error: UnknownClassError, filters: GuardianFilters) -> None:
    keyboard = scope_buttons(
        error.classes, error.levels, lambda scope: _page_data(scope, filters, 0)
    )
    await show(update, [unknown_class_text(error)], InlineKeyboardMarkup(keyboard))


@director_only
async def list_command(update: Update, context: BotContext, school: SchoolRef) -> None:
    """List the guardians the arguments name, or ask for the class first."""
    message = update.effective_message
    if message is None:
        return
    classes = await context.db.run(known_classes, school_id=school.id)
    query = parse_guardian_query(context.args or [], known_labels=[c.label for c in classes])
    if not query.scope_text:
        levels = await context.db.run(known_levels, school_id=school.id)
        if not classes:
            await message.reply_text(unknown_class_text(UnknownClassError("", [], [])))
            return
        keyboard = scope_buttons(classes, levels, lambda scope: _chosen_data(scope, query.filters))
        await message.reply_text(
            _("Whose guardians? Choose a class, a level or the whole school."),
            reply_markup=InlineKeyboardMarkup(keyboard),
        )
        return
    try:
        resolved = await context.db.run(resolve_scope, school_id=school.id, text=query.scope_text)
    except UnknownClassError as error:
        await _show_unknown(update, error, query.filters)
        return
    listing = await context.db.run(
        list_guardians,
        school_id=school.id,
        scope=resolved.scope.token,
        filters=query.filters,
        page_size=PAGE_SIZE,
    )
    text, markup = render_page(listing)
    await message.reply_text(text, reply_markup=markup)


@director_only
async def scope_chosen(update: Update, context: BotContext, school: SchoolRef) -> None:
    """Show the filter buttons for the chosen scope (the list, if filters were typed)."""
    query = update.callback_query
    match = _CHOSEN.match(query.data or "") if query else None
    if query is None or match is None:
        return
    await query.answer()
    wanted = GuardianFilters.from_token(f"{match[2]}:{match[3]}")
    if wanted != GuardianFilters():  # « /responsables sans » then a class button
        await _show_page(update, context, school, match[1], wanted, 0)
        return
    try:
        resolved = await context.db.run(scope_from_token, school_id=school.id, token=match[1])
    except UnknownClassError as error:
        await _show_gone(update, error)
        return
    await show(
        update,
        [scope_summary(resolved), _("Which guardians?")],
        _filter_keyboard(resolved),
    )


@director_only
async def page_chosen(update: Update, context: BotContext, school: SchoolRef) -> None:
    """Show the requested page of the list, in place."""
    query = update.callback_query
    match = _PAGE.match(query.data or "") if query else None
    if query is None or match is None:
        return
    await query.answer()
    wanted = GuardianFilters.from_token(f"{match[2]}:{match[3]}")
    await _show_page(update, context, school, match[1], wanted, int(match[4]))


@director_only
async def card_wanted(update: Update, context: BotContext, school: SchoolRef) -> None:
    """Show a numbered button per guardian of the page, each opening their card."""
    query = update.callback_query
    match = _CARDS.match(query.data or "") if query else None
    if query is None or match is None:
        return
    await query.answer()
    wanted = GuardianFilters.from_token(f"{match[2]}:{match[3]}")
    await _show_page(update, context, school, match[1], wanted, int(match[4]), choosing_card=True)


async def _show_page(
    update: Update,
    context: BotContext,
    school: SchoolRef,
    scope: str,
    wanted: GuardianFilters,
    page: int,
    *,
    choosing_card: bool = False,
) -> None:
    try:
        listing = await context.db.run(
            list_guardians,
            school_id=school.id,
            scope=scope,
            filters=wanted,
            page=page,
            page_size=PAGE_SIZE,
        )
    except UnknownClassError as error:
        await _show_gone(update, error)
        return
    text, markup = render_page(listing, choosing_card=choosing_card)
    await show(update, [text], markup)


async def _show_gone(update: Update, error: UnknownClassError) -> None:
    """A button naming a class that is no longer in the current school's list."""
    keyboard = scope_buttons(
        error.classes, error.levels, lambda scope: _chosen_data(scope, GuardianFilters())
    )
    text = _(
        "This class is no longer in your school's list (a newer import, or another school "
        "chosen with /ecole). Choose again:"
    )
    if not error.classes:
        text = unknown_class_text(error)
    await show(update, [text], InlineKeyboardMarkup(keyboard))


_PRIVATE = telegram_filters.ChatType.PRIVATE

HANDLERS: list[BaseHandler] = [
    CommandHandler("responsables", list_command, filters=_PRIVATE),
    CallbackQueryHandler(scope_chosen, pattern=_CHOSEN),
    CallbackQueryHandler(page_chosen, pattern=_PAGE),
    CallbackQueryHandler(card_wanted, pattern=_CARDS),
]
