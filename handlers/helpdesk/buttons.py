"""The buttons of a help request, as its school's directors get it: the standard answers for
the record it is about (the guardian card's actions, carrying the request), the records to
choose from when unsure, reply, close; and the callback data they carry."""

from __future__ import annotations

import re

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from bot.i18n import _
from bot.services.helpdesk import HelpStatus, RequestView
from handlers.guardian_card import guardian_action_rows
from handlers.keyboards import button_text

PREFIX = "hd:"
# hd:open:<id> — show the request (and take it); hd:rep:<id> — reply with a message;
# hd:end:<id> — close; hd:who:<id>:<guardian id> — this is the record; hd:pg:<page> — /demandes.
OPEN = re.compile(rf"^{PREFIX}open:([0-9]{{1,18}})$")
REPLY = re.compile(rf"^{PREFIX}rep:([0-9]{{1,18}})$")
CLOSE = re.compile(rf"^{PREFIX}end:([0-9]{{1,18}})$")
CHOOSE = re.compile(rf"^{PREFIX}who:([0-9]{{1,18}}):([0-9]{{1,18}})$")
PAGE = re.compile(rf"^{PREFIX}pg:([0-9]{{1,6}})$")


def request_keyboard(view: RequestView) -> InlineKeyboardMarkup | None:
    """The director's buttons for this request (none once it is closed)."""
    if view.status is HelpStatus.CLOSED:
        return None
    rows: list[list[InlineKeyboardButton]] = []
    record = view.record
    usable = record is not None and not record.deactivated
    if usable and record is not None and record.account_id is not None and record.state:
        rows += guardian_action_rows(
            record.account_id, record.state, record.has_email, request_id=view.id
        )
    for candidate in view.candidates:
        rows.append(
            [
                InlineKeyboardButton(
                    button_text(_("👤 It is {name}").format(name=candidate.name)),
                    callback_data=f"{PREFIX}who:{view.id}:{candidate.guardian_id}",
                )
            ]
        )
    rows.append(
        [
            InlineKeyboardButton(_("💬 Reply"), callback_data=f"{PREFIX}rep:{view.id}"),
            InlineKeyboardButton(_("📁 Close"), callback_data=f"{PREFIX}end:{view.id}"),
        ]
    )
    return InlineKeyboardMarkup(rows)
