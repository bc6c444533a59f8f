"""What the bot tells a family whose chat was just linked to its guardian, whichever way the link
was made (the code of a letter, `/start <code>`, or the phone number Telegram vouched for)."""

from __future__ import annotations

import html
from zoneinfo import ZoneInfo

from telegram import User

from bot.context import BotContext
from bot.i18n import _, format_date, negotiate_language
from bot.services.accounts import LinkedGuardian
from bot.services.family import FamilyAccount
from bot.services.roster import STATE_LIGHTS, state_label
from handlers.language import GUARDIAN_LANGUAGE_KEY, LANGUAGE_KEY
from models import AccountState


def family_language(context: BotContext, user: User, linked: LinkedGuardian | FamilyAccount) -> str:
    """The language to answer a linked family in: the user's own choice first, else the one
    the school knows for the guardian, else Telegram's. Remembers the school's for the next
    updates (`handlers.set_update_language`)."""
    data = context.user_data
    if data is not None and linked.language:
        data[GUARDIAN_LANGUAGE_KEY] = linked.language
    chosen = (data or {}).get(LANGUAGE_KEY) or linked.language or user.language_code
    return negotiate_language(chosen)


def family_next_step(linked: LinkedGuardian | FamilyAccount, portal_url: str, tz: ZoneInfo) -> str:
    """What the family does next with the letter's identifier and provisional password."""
    portal = html.escape(portal_url)
    if linked.state == AccountState.ACTIVATED:
        return _(
            "<b>All set:</b> your account is activated. Log in at {portal} with your identifier "
            "and the password you chose."
        ).format(portal=portal)
    if linked.state == AccountState.ACTIVATING:
        return _(
            "<b>Next step:</b> open the e-mail we sent to confirm your address and click its "
            "confirmation link: your account is then activated."
        )
    step = _(
        "<b>Next step:</b> go to {portal} and log in with your identifier <code>{identifier}"
        "</code> and the provisional password written on your letter or e-mail. You will then "
        "choose your own password."
    ).format(portal=portal, identifier=html.escape(linked.identifier))
    if linked.provisional_expires_at is not None:
        expiry = _("The provisional password is valid until {date}.").format(
            date=format_date(linked.provisional_expires_at, tz=tz)
        )
        step = f"{step}\n{expiry}"
    return step


def family_linked(linked: LinkedGuardian, next_step: str) -> str:
    """The chat is linked to `linked`'s account: whose, its state, and `next_step`."""
    name = html.escape(f"{linked.first_name} {linked.last_name.upper()}".strip())
    school = html.escape(linked.school_name)
    if linked.already_linked:
        intro = _("This chat is already linked to the EduConnect account of {name} ({school}).")
    else:
        intro = _("Done! This chat is now linked to the EduConnect account of {name} ({school}).")
    state = _("Account state: {light} {label}").format(
        light=STATE_LIGHTS[linked.state], label=html.escape(state_label(linked.state))
    )
    lines = [intro.format(name=name, school=school), "", state, next_step]
    lines += [
        "",
        _(
            "I will never ask for your password, and never show one here. /aide lists what I "
            "can do."
        ),
    ]
    return "\n".join(lines)
