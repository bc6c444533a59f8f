"""/aide for directors and families, /annuler outside any conversation, and the hint given
when a message matches nothing.

`cancel_conversation` is the `/annuler` fallback every conversation can reuse.
"""

from __future__ import annotations

import html

from telegram import Update
from telegram.ext import BaseHandler, CommandHandler, ConversationHandler, MessageHandler, filters

from bot.context import BotContext
from bot.i18n import N_, _
from bot.services.schools import enrolled_pupil_count
from handlers.access import SchoolRef, chosen_school, director_schools

# One line per command, in menu order: what it does and how to call it.
DIRECTOR_HELP_LINES: tuple[str, ...] = (
    N_("/classes — your classes, with their pupils, guardians and lights."),
    N_(
        "/responsables <code>CM1</code> — the guardians of a class or level "
        "(<code>ecole</code> for the whole school), with their identifier and account state."
    ),
    N_(
        "/envoyer <code>CM1</code> — send the credentials by e-mail to the guardians of a class "
        "(several classes, or <code>ecole</code>): a preview first, then a live progress and a "
        "summary."
    ),
    N_(
        "/pdf <code>CM1</code> — the letters to print for the guardians without an e-mail "
        "address (<code>tous</code>: everyone), in a PDF protected by your document password. "
        "<code>/pdf motdepasse</code> changes that password, <code>/pdf conservation</code> how "
        "long the PDFs stay in this chat."
    ),
    N_(
        "/relancer — remind the guardians notified but not activated yet (a class, or the whole "
        "school), keeping their password or giving a new one."
    ),
    N_("/etat — account statistics per class and level, and what to do next."),
    N_("/export — a spreadsheet (CSV) of every account, without any password."),
    N_("/ecole — choose the school you are working on, if you direct several."),
    N_("/annuler — stop the operation in progress."),
)

FAMILY_HELP_LINES: tuple[str, ...] = (
    N_(
        "<b>Lost your identifier or your letter?</b> Ask your child's school director to send "
        "you a reminder, by e-mail or on paper."
    ),
    N_(
        "<b>Lost your provisional password before activating your account?</b> Ask the school "
        "director for a new one: it will reach you by e-mail or in a letter, never in this chat."
    ),
    N_(
        "<b>Forgot the password you chose?</b> Use « mot de passe oublié » on the EduConnect "
        "portal: {portal}"
    ),
    N_(
        "<b>Activation: no confirmation e-mail?</b> Check your spam folder. The school director "
        "can send the confirmation link again or correct your address."
    ),
    N_(
        "<b>Your child's birth date is refused?</b> Tell the school director: the school "
        "database must be corrected first."
    ),
)


def _director_help(school: SchoolRef, schools: int, pupils: int) -> str:
    lines = [_("<b>Help for directors</b> — {school}").format(school=school.title), ""]
    if pupils == 0:
        lines += [
            _(
                "<b>First step:</b> send me the two ONDE extractions of your school as CSV "
                "files, « Élèves » and « Responsables » (ONDE → Listes & documents → "
                "Extractions). I show you what I found before importing anything."
            ),
            "",
        ]
    else:
        lines += [
            _(
                "To update your pupils and guardians, send me a newer ONDE extraction "
                "(« Élèves » and « Responsables » CSV files)."
            ),
            "",
        ]
    lines += [_(line) for line in DIRECTOR_HELP_LINES]
    if schools > 1:
        lines += ["", _("You direct several schools: every command acts on the current one.")]
    return "\n".join(lines)


def _family_help(portal_url: str) -> str:
    portal = html.escape(portal_url)
    lines = [
        _(
            "<b>I help families with their EduConnect account</b>, which shows your child's "
            "school report (LSU) online."
        ),
        "",
        # A blank line between problems: each is read on its own, on a phone.
        "\n\n".join(_(line).format(portal=portal) for line in FAMILY_HELP_LINES),
        "",
        _("/annuler stops the operation in progress. I never ask for your password here."),
    ]
    return "\n".join(lines)


async def show_help(update: Update, context: BotContext) -> None:
    """Show the director's commands, or the families' help."""
    user, message = update.effective_user, update.effective_message
    if user is None or message is None:
        return
    schools = await director_schools(context, user.id)
    school = chosen_school(schools, context)
    if school is None:
        await message.reply_text(_family_help(context.settings.portal_url))
        return
    pupils = await context.db.run(enrolled_pupil_count, school_id=school.id)
    await message.reply_text(_director_help(school, len(schools), pupils))


async def cancel_conversation(update: Update, context: BotContext) -> int:
    """Leave the conversation in progress: the `/annuler` fallback of every conversation."""
    if update.effective_message:
        await update.effective_message.reply_text(
            _("Cancelled: nothing more will be done. Type /aide to see what you can do.")
        )
    return ConversationHandler.END


async def nothing_to_cancel(update: Update, context: BotContext) -> None:
    """Answer /annuler when no conversation is in progress."""
    if update.effective_message:
        await update.effective_message.reply_text(
            _("There is nothing to cancel. Type /aide to see what you can do.")
        )


async def unknown_command(update: Update, context: BotContext) -> None:
    """Point an unknown command to /aide."""
    if update.effective_message:
        await update.effective_message.reply_text(
            _("I don't know this command. Type /aide to see the commands you can use.")
        )


async def unmatched_message(update: Update, context: BotContext) -> None:
    """Point a message that matches nothing (text, photo, sticker…) to /aide."""
    if update.effective_message:
        await update.effective_message.reply_text(
            _("I did not understand this message. Type /aide to see what I can do for you.")
        )


_PRIVATE = filters.ChatType.PRIVATE
# New messages only: editing an old message is no request, and needs no answer.
_PRIVATE_MESSAGE = _PRIVATE & filters.UpdateType.MESSAGE

HANDLERS: list[BaseHandler] = [
    CommandHandler("aide", show_help, filters=_PRIVATE),
]

# Added by `handlers.register` after every feature's handlers, so that they only answer what
# nothing else (a conversation step, a command, a file) took. Private chats only: in a group the
# bot must not chatter after every message.
FALLBACK_HANDLERS: list[BaseHandler] = [
    CommandHandler("annuler", nothing_to_cancel, filters=_PRIVATE_MESSAGE),
    MessageHandler(_PRIVATE_MESSAGE & filters.COMMAND, unknown_command),
    MessageHandler(_PRIVATE_MESSAGE & ~filters.StatusUpdate.ALL, unmatched_message),
]
