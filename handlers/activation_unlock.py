"""An activation waiting for its school after too many wrong birth dates: the notice every
director of the school gets (a job polls the portal's locks, since the portal never speaks
Telegram), and its button « 🔓 Allow activation again » (`ga:unlock:<account id>`).

The notice goes once per lock; a notice no director could be sent (a network failure, not a
blocked chat) is tried again at the next poll.
"""

from __future__ import annotations

import html
import logging
from functools import partial

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.ext import Application, BaseHandler, CallbackQueryHandler

from bot.context import BotContext, educonnect
from bot.i18n import _, format_datetime, use_language
from bot.jobs import Delivery, deliver
from bot.services.portal import (
    MAX_WRONG_BIRTH_DATES,
    LockNotice,
    UnlockStatus,
    activation_lock_notices,
    allow_activation_again,
    record_lock_notice,
)
from handlers.access import SchoolRef, director_only
from handlers.guardian_card import UNLOCK, action_data, action_pattern
from handlers.helpdesk.followup import director_actor

log = logging.getLogger(__name__)

JOB_NAME = "activation-locks:poll"
# A family waits for its school: told within a minute or so.
INTERVAL = 60.0
FIRST_RUN = 10.0
JOB_KWARGS = {"misfire_grace_time": 300, "coalesce": True, "max_instances": 1}
_UNLOCK = action_pattern(UNLOCK)


def notice_text(notice: LockNotice, application: Application) -> str:
    """The notice of one locked activation, in the current language."""
    tz = educonnect(application).settings.tz
    return _(
        "🔒 <b>Activation paused</b>: {count} wrong dates of birth were typed for the account "
        "<code>{identifier}</code> ({name}), last at {time}. It may be the family mistyping, or "
        "someone else trying. Check with the family (the date of birth in your records may be "
        "wrong), then allow activation again."
    ).format(
        count=MAX_WRONG_BIRTH_DATES,
        identifier=html.escape(notice.identifier),
        name=html.escape(notice.guardian_name),
        time=format_datetime(notice.locked_at, tz=tz),
    )


def notice_keyboard(account_id: int) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton(
                    _("🔓 Allow activation again"), callback_data=action_data(UNLOCK, account_id)
                )
            ]
        ]
    )


async def send_activation_lock_notices(application: Application) -> int:
    """Tell the directors of every newly locked activation; how many locks were dealt with."""
    app = educonnect(application)
    done = 0
    for notice in await app.db.run(activation_lock_notices):
        # Directors read French by default; the bot has no per-director language yet.
        with use_language("fr"):
            text = notice_text(notice, application)
            keyboard = notice_keyboard(notice.account_id)
        told = failed = 0
        for chat_id in notice.director_ids:
            send = partial(application.bot.send_message, chat_id, text, reply_markup=keyboard)
            delivery = await deliver(application, chat_id, send)
            told += delivery is Delivery.DELIVERED
            failed += delivery is Delivery.FAILED
        if failed and not told:
            log.warning("activation lock of account %s: no director reached", notice.account_id)
            continue
        await app.db.run(record_lock_notice, account_id=notice.account_id, told=told)
        done += 1
    return done


async def _poll(context: BotContext) -> None:
    """Tell the directors of the activations locked since the last poll."""
    await send_activation_lock_notices(context.application)


def setup(application: Application) -> None:
    """Register the polling job (at every start: PTB does not keep jobs)."""
    job_queue = application.job_queue
    if job_queue is None:  # pragma: no cover - the job-queue extra is a dependency
        log.error("no job queue: directors will not be told of paused activations")
        return
    for job in job_queue.get_jobs_by_name(JOB_NAME):
        job.schedule_removal()
    job_queue.run_repeating(
        _poll, interval=INTERVAL, first=FIRST_RUN, name=JOB_NAME, job_kwargs=JOB_KWARGS
    )


@director_only
async def unlock(update: Update, context: BotContext, school: SchoolRef) -> None:
    """Allow a paused activation again, for an account of the director's school only."""
    query = update.callback_query
    match = _UNLOCK.match(query.data or "") if query is not None else None
    if query is None or match is None:
        return
    status = await context.db.run(
        allow_activation_again,
        account_id=int(match[1]),
        school_id=school.id,
        actor=director_actor(update),
    )
    if status is UnlockStatus.UNKNOWN_ACCOUNT:
        await query.answer(
            _("This guardian is not in your school's list (or no longer): open /responsables."),
            show_alert=True,
        )
        return
    if status is UnlockStatus.NOT_LOCKED:
        await query.answer(_("Activation was already allowed again."), show_alert=True)
        return
    await query.answer()
    if update.effective_message is not None:
        await update.effective_message.reply_text(
            _(
                "🔓 Activation allowed again: the family can type a child's date of birth on "
                "the portal once more."
            )
        )


HANDLERS: list[BaseHandler] = [CallbackQueryHandler(unlock, pattern=_UNLOCK)]
