"""A guardian's card as a director sees it (from /responsables and in a help request): the text,
and the one-tap actions its state allows, with their callback data.

Callback data: `ga:<action>:<account id>[:<help request id>]` — `card` shows the card; `mail`,
`pdf` start the distribution conversation (`handlers.distribution.picked`); `link` and `email`
are handled in `handlers.guardian_card_actions`; `unlock` (on the notice of an activation
waiting for the school) in `handlers.activation_unlock`. Only buttons and texts live here, so
that the help desk's keyboards can use them.
"""

from __future__ import annotations

import html
import re

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from bot.i18n import _, language_name
from bot.services.roster import GuardianCard, state_label
from models import AccountState

PREFIX = "ga:"
CARD = "card"
MAIL = "mail"
PDF = "pdf"
LINK = "link"
EMAIL = "email"
LANGUAGE = "lang"
UNLOCK = "unlock"


def action_pattern(*actions: str) -> re.Pattern[str]:
    """The buttons of these actions: group 1 the account id, group 2 the request id (or None)."""
    names = "|".join(re.escape(action) for action in actions)
    return re.compile(rf"^{PREFIX}(?:{names}):([0-9]{{1,18}})(?::([0-9]{{1,18}}))?$")


def action_data(action: str, account_id: int, request_id: int | None = None) -> str:
    """A button's callback data (at most 64 bytes: two ids of 20 digits would still fit)."""
    data = f"{PREFIX}{action}:{account_id}"
    return data if request_id is None else f"{data}:{request_id}"


def guardian_action_rows(
    account_id: int, state: AccountState, has_email: bool, request_id: int | None = None
) -> list[list[InlineKeyboardButton]]:
    """The actions a director may take on this guardian now (none for an activated account:
    the family uses « mot de passe oublié » on the portal)."""
    if state == AccountState.ACTIVATED:
        return []

    def button(label: str, action: str) -> InlineKeyboardButton:
        return InlineKeyboardButton(
            label, callback_data=action_data(action, account_id, request_id)
        )

    rows: list[list[InlineKeyboardButton]] = []
    first = []
    if has_email:
        first.append(button(_("✉️ Resend by e-mail"), MAIL))
    first.append(button(_("🖨️ Paper letter"), PDF))
    rows.append(first)
    if state == AccountState.ACTIVATING and has_email:
        rows.append([button(_("🔁 Resend the confirmation link"), LINK)])
    rows.append([button(_("✏️ Correct the e-mail"), EMAIL)])
    return rows


def card_keyboard(card: GuardianCard, request_id: int | None = None) -> InlineKeyboardMarkup | None:
    """The card's action buttons (None when there is nothing to do)."""
    if card.deactivated:
        return None
    rows = guardian_action_rows(card.account_id, card.state, card.has_email, request_id)
    language = InlineKeyboardButton(
        _("🌐 Language"), callback_data=action_data(LANGUAGE, card.account_id, request_id)
    )
    return InlineKeyboardMarkup([*rows, [language]])


def card_text(card: GuardianCard) -> str:
    """The card: name, identifier, light and state, address (masked), children and class."""
    lines = [
        _("👤 <b>{name}</b>").format(name=html.escape(card.name)),
        _("Identifier: <code>{identifier}</code>").format(identifier=html.escape(card.identifier)),
        f"{card.light} {html.escape(state_label(card.state))}",
    ]
    if card.masked_email:
        lines.append(_("E-mail: yes ({address})").format(address=html.escape(card.masked_email)))
    else:
        lines.append(_("E-mail: no"))
    if card.language:
        lines.append(
            _("Language: {language} (letters and e-mails in French, then in {language})").format(
                language=html.escape(language_name(card.language))
            )
        )
    if card.deactivated:
        lines.append(_("Account deactivated: no child enrolled any more."))
    for child in card.children:
        name = html.escape(f"{child.first_name} {child.last_name}")
        if child.class_label:
            lines.append(
                _("• {child} ({class_label})").format(
                    child=name, class_label=html.escape(child.class_label)
                )
            )
        else:
            lines.append(f"• {name}")
    if card.state == AccountState.ACTIVATED and not card.deactivated:
        lines += [
            "",
            _(
                "Activated: nothing to send. If the family forgot its password, it uses "
                "« Mot de passe oublié » on the portal."
            ),
        ]
    return "\n".join(lines)
