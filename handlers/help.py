"""/aide for directors and families, /annuler outside any conversation, and the hint given
when a message matches nothing.

`cancel_conversation` is the `/annuler` fallback every conversation can reuse.
"""

from __future__ import annotations

import html

from telegram import InlineKeyboardMarkup, Update
from telegram.ext import (
    BaseHandler,
    CallbackQueryHandler,
    CommandHandler,
    ConversationHandler,
    MessageHandler,
    filters,
)

from bot.context import BotContext
from bot.i18n import N_, _, ngettext
from bot.services.family import Intent, detect_intent
from bot.services.schools import enrolled_pupil_count
from handlers.access import SchoolRef, chosen_school, director_schools, inspector_schools_of
from handlers.keyboards import answer_unknown_button, help_path_button

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
    N_(
        "/demandes — the families' help requests, open ones first, each with the standard "
        "answers one tap away (e-mail, letter, confirmation link, address, reply, close)."
    ),
    N_(
        "/lsu <code>15/01/2027</code> — the day the school reports (LSU) go online; I send you "
        "a digest every day in the last 7 days before it, and the list of guardians not green "
        "yet the day before."
    ),
    N_(
        "/digest — when the digests come (every Monday at 8:00 unless you change it), pause "
        "them, get one now, and turn on the automatic reminders to families."
    ),
    N_("/export — a spreadsheet (CSV) of every account, without any password."),
    N_("/ecole — choose the school you are working on, if you direct several."),
    N_("/annuler — stop the operation in progress."),
)

FAMILY_HELP_LINES: tuple[str, ...] = (
    N_(
        "/identifiant — <b>lost your identifier or your letter?</b> I show it here once your "
        "chat is linked (by your mobile number or your letter's code), or I ask the school."
    ),
    N_(
        "/motdepasse — <b>lost your password?</b> A new provisional password by e-mail, a "
        "letter from the school, or « mot de passe oublié » on the portal ({portal}) if you "
        "already activated your account. Never in this chat."
    ),
    N_(
        "/activation — <b>stuck while activating?</b> No confirmation e-mail, a wrong address, "
        "a birth date refused: what to do, or a request to the school."
    ),
    N_("/etat — <b>where is my account?</b> Its light, what it means and the next step."),
    N_(
        "/question — <b>anything else</b> (a child missing from your account…): a request to "
        "the school, in your own words. /demande follows your requests."
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


def _inspector_help(schools: list[SchoolRef]) -> str:
    lines = [
        ngettext(
            "<b>Help for inspectors</b> — you follow {count} school, read-only.",
            "<b>Help for inspectors</b> — you follow {count} schools, read-only.",
            len(schools),
        ).format(count=len(schools)),
        "",
        _(
            "/etat — every school of your district: its lights, the share of guardian accounts "
            "activated and of pupils with an activated guardian, its LSU date and open help "
            "requests, furthest behind first, with a chart. Tap a school for its classes."
        ),
        _("/etat <code>UAI</code> — one school's classes and what is left to do there."),
        "",
        _(
            "Every Monday at 8:00 I send you the district digest: the week's progress and the "
            "schools that need attention. You see figures only: sending, letters and exports "
            "stay with each school's director."
        ),
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
        inspected = await inspector_schools_of(context, user.id)
        if inspected:
            await message.reply_text(_inspector_help(inspected))
            return
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


# What free text seems to ask for: the path proposed, and its button.
INTENT_PROPOSALS: dict[Intent, tuple[str, str]] = {
    Intent.IDENTIFIER: (N_("Lost your identifier?"), N_("🔎 Find my identifier")),
    Intent.PASSWORD: (N_("Lost or forgot your password?"), N_("🔑 Get a new password")),
    Intent.ACTIVATION: (N_("Trouble activating your account?"), N_("✅ Help with activation")),
    Intent.CONFIRMATION_EMAIL: (
        N_("No confirmation e-mail, or a wrong address?"),
        N_("📧 Help with the confirmation e-mail"),
    ),
    Intent.BIRTH_DATE: (
        N_("Is your child's birth date refused?"),
        N_("📅 Help with the birth date"),
    ),
    Intent.MISSING_CHILD: (
        N_("A child missing from your account?"),
        N_("✍️ Ask the school"),
    ),
    Intent.HELP_STATUS: (N_("Where is your request?"), N_("📬 My requests")),
}


async def unmatched_message(update: Update, context: BotContext) -> None:
    """Propose the help path free text asks for; point anything else (a photo, a sticker, text
    that matches nothing) to /aide."""
    message = update.effective_message
    if message is None:
        return
    intent = detect_intent(message.text) if message.text else None
    if intent is None:
        await message.reply_text(
            _("I did not understand this message. Type /aide to see what I can do for you.")
        )
        return
    question, label = INTENT_PROPOSALS[intent]
    button = help_path_button(_(label), intent)
    await message.reply_text(
        _("{question} Tap below, or type /aide to see everything I can do.").format(
            question=_(question)
        ),
        reply_markup=InlineKeyboardMarkup([[button]]),
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
    # Any chat: a button under a message is pressed by one person, and expects an answer.
    CallbackQueryHandler(answer_unknown_button),
]
