"""/etat for a family: where each account its chat is linked to stands (the light, what it means,
the next step), its identifier, the children it covers and the school; never a password. An
unlinked chat is told how to link it (its phone number, or the code of its letter).
"""

from __future__ import annotations

import html

from telegram import Update

from bot.context import BotContext
from bot.i18n import _, format_date, use_language
from bot.services.family import FamilyAccount, family_accounts
from bot.services.roster import STATE_LIGHTS, state_label
from handlers.family import family_language, family_next_step
from handlers.family_phone import phone_offer
from handlers.keyboards import show
from models import AccountState


def _meaning(account: FamilyAccount, context: BotContext) -> str:
    """What the account's state means for the family, in one sentence or two."""
    if account.deactivated:
        return _(
            "This account is no longer active: the school no longer lists a child of yours. If "
            "this is a mistake, please contact the school."
        )
    if account.state == AccountState.NOT_NOTIFIED:
        return _("The school has not sent you your identifier and provisional password yet.")
    if account.state == AccountState.NOTIFIED:
        return _(
            "The school sent you your identifier and provisional password; the account is not "
            "activated yet."
        )
    if account.state == AccountState.ACTIVATING:
        meaning = _("You chose your password; your e-mail address still has to be confirmed.")
        if account.confirmation_sent_at is not None and account.masked_email is not None:
            sent = _("The confirmation link was sent to {email} on {date}.").format(
                email=html.escape(account.masked_email),
                date=format_date(account.confirmation_sent_at, tz=context.settings.tz),
            )
            meaning = f"{meaning} {sent}"
        return meaning
    return _("Your account is activated: you can see the school report online.")


def _next_step(account: FamilyAccount, context: BotContext) -> str | None:
    """What the family does next, and the command that helps if it is stuck."""
    if account.deactivated:
        return None
    if account.state == AccountState.NOT_NOTIFIED:
        if account.masked_email is None:
            return _(
                "<b>Next step:</b> the school will give you a letter with them. In a hurry? "
                "Type /question to ask the school."
            )
        return _(
            "<b>Next step:</b> wait for the school's e-mail, or type /motdepasse to receive them "
            "now at {email}."
        ).format(email=html.escape(account.masked_email))
    step = family_next_step(account, context.settings.portal_url, context.settings.tz)
    if account.state == AccountState.NOTIFIED:
        stuck = _("Lost the provisional password? Type /motdepasse.")
    elif account.state == AccountState.ACTIVATING:
        stuck = _("No e-mail? Check your spam folder, then type /activation.")
    else:
        stuck = _("Forgot your password? Use « Forgotten password » on the portal.")
    return f"{step}\n{stuck}"


def _children(account: FamilyAccount) -> str:
    if not account.children:
        return _("Children: none enrolled at the moment.")
    names = ", ".join(
        _("{name} ({class_label})").format(
            name=html.escape(child.first_name), class_label=html.escape(child.class_label)
        )
        if child.class_label
        else html.escape(child.first_name)
        for child in account.children
    )
    return _("Children: {names}").format(names=names)


def render_family_account(account: FamilyAccount, context: BotContext) -> str:
    """One account's block of a family's /etat."""
    name = f"{account.first_name} {account.last_name.upper()}".strip()
    light = "⚪" if account.deactivated else STATE_LIGHTS[account.state]
    lines = [
        _("<b>EduConnect account of {name}</b> — {school}").format(
            name=html.escape(name), school=html.escape(account.school_name)
        ),
        _("Account state: {light} {label}").format(
            light=light, label=html.escape(state_label(account.state))
        ),
        _meaning(account, context),
        _("Identifier: <code>{identifier}</code>").format(
            identifier=html.escape(account.identifier)
        ),
        _children(account),
    ]
    step = _next_step(account, context)
    if step is not None:
        lines.append(step)
    return "\n".join(lines)


def unlinked_text() -> str:
    """What a chat that is linked to no account is told /etat needs."""
    return _(
        "I cannot show your account yet: this chat is not linked to it. Scan the QR code of the "
        "letter your school gave you, or type /start followed by the code printed on it."
    )


async def show_family_status(update: Update, context: BotContext) -> None:
    """Show the family the accounts its chat is linked to, or how to link it."""
    user, message = update.effective_user, update.effective_message
    if user is None or message is None:
        return
    accounts = await context.db.run(family_accounts, telegram_user_id=user.id)
    if not accounts:
        offer, keyboard = phone_offer()
        await message.reply_text(f"{unlinked_text()}\n\n{offer}", reply_markup=keyboard)
        return
    with use_language(family_language(context, user, accounts[0])):
        blocks = [render_family_account(account, context) for account in accounts]
        blocks.append(
            _(
                "I will never ask for your password, and never show one here. /aide lists what "
                "I can do."
            )
        )
    # A blank line between accounts; `show` splits between blocks if the text gets long.
    await show(update, [part for block in blocks for part in (block, "")][:-1])
