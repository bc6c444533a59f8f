"""Following a batch of e-mails (/envoyer, /relancer) while the outbox's sender sends it: one
progress message edited as the batch moves, then the summary with each failure.

The send never blocks the chat: once confirmed, drawing the passwords and writing the outbox run
in a background task, the sender sends, and a follower edits the progress message (at most every
`EDIT_INTERVAL` seconds, only when its text changed) until the batch is done, then posts the
summary. Followed batches are remembered in bot_data, so a restart resumes them (`setup`).
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from typing import Any

from telegram.error import BadRequest, TelegramError
from telegram.ext import Application

from bot.context import BotContext, educonnect
from bot.i18n import _, format_number, ngettext, use_language
from bot.services.distribution import (
    DistributionError,
    NothingToDistributeError,
    Purpose,
    StalePlanError,
)
from bot.services.mail import BatchProgress, FailedMessage, FailureKind, batch_progress
from handlers.distribution.texts import skip_lines
from handlers.keyboards import split_text

log = logging.getLogger(__name__)

# bot_data: the e-mail batches whose progress message is followed, by batch id.
FOLLOWED_KEY = "followed_batches"

# The progress message is edited at most this often (Telegram limits edits), and only when its
# text changed; the outbox is looked at every POLL_INTERVAL seconds.
EDIT_INTERVAL = 3.0
POLL_INTERVAL = 1.0
_BAR_CELLS = 10


@dataclass(frozen=True)
class BatchStart:
    """What the follower of one batch needs (kept in bot_data as JSON, by batch id)."""

    chat_id: int
    message_id: int
    school_id: int
    title: str  # the scopes, HTML-escaped
    skipped: dict[str, int]  # SkipReason value → count, as the preview said
    argument: str  # the scopes as typed after a command
    language: str
    kind: str  # a `Purpose` value

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> BatchStart:
        return cls(
            chat_id=int(data["chat_id"]),
            message_id=int(data["message_id"]),
            school_id=int(data.get("school_id", 0)),
            title=str(data.get("title", "")),
            skipped={str(k): int(v) for k, v in dict(data.get("skipped") or {}).items()},
            argument=str(data.get("argument", "")),
            language=str(data.get("language", "fr")),
            kind=str(data.get("kind", Purpose.EMAIL.value)),
        )


def _bar(done: int, total: int) -> str:
    filled = round(_BAR_CELLS * done / total) if total else _BAR_CELLS
    return "▰" * filled + "▱" * (_BAR_CELLS - filled)


def progress_text(progress: BatchProgress) -> str:
    """The progress message: a bar, what is sent, failed, waiting for a retry."""
    finished = progress.sent + progress.failed + progress.cancelled
    lines = [
        _("✉️ <b>Sending the e-mails</b> {bar} {done} of {total}").format(
            bar=_bar(finished, progress.total),
            done=format_number(finished),
            total=format_number(progress.total),
        ),
        _("Sent: {sent} · failed: {failed} · waiting: {waiting}").format(
            sent=format_number(progress.sent),
            failed=format_number(progress.failed),
            waiting=format_number(progress.pending + progress.sending),
        ),
    ]
    if progress.retrying:
        lines.append(
            ngettext(
                "{count} e-mail will be tried again (the mail server said: {reason})",
                "{count} e-mails will be tried again (the mail server said: {reason})",
                progress.retrying,
            ).format(
                count=format_number(progress.retrying),
                reason=html.escape((progress.last_retry_reason or "")[:200]),
            )
        )
    lines.append(_("You can keep using the bot meanwhile; I will post a summary at the end."))
    return "\n".join(lines)


def _failure_line(failure: FailedMessage) -> str:
    reasons = {
        FailureKind.REFUSED: _("refused by the mail server"),
        FailureKind.INVALID_ADDRESS: _("invalid address"),
        FailureKind.GAVE_UP: _("the mail server could not be reached"),
    }
    return _("• {name} (<code>{identifier}</code>) — {address}: {why} ({reason})").format(
        name=html.escape(failure.guardian_name or "?"),
        identifier=html.escape(failure.identifier or "?"),
        address=html.escape(failure.to_address),
        why=reasons[failure.kind],
        reason=html.escape(failure.reason[:200]),
    )


def summary_blocks(batch: BatchStart, progress: BatchProgress) -> list[str]:
    """The summary of a finished batch: sent, failed (each with its reason), skipped."""
    if batch.kind == Purpose.REMINDER.value:
        title = _("<b>Reminders by e-mail: done</b> — {scope}")
    else:
        title = _("<b>E-mails sent: done</b> — {scope}")
    blocks = [
        title.format(scope=batch.title),
        _("✅ Sent: {count}").format(count=format_number(progress.sent)),
        _("❌ Failed: {count}").format(count=format_number(progress.failed)),
    ]
    blocks += [_failure_line(failure) for failure in progress.failures]
    if progress.cancelled:
        blocks.append(
            _("↩️ Replaced by a newer e-mail before being sent: {count}").format(
                count=format_number(progress.cancelled)
            )
        )
    skipped = sum(batch.skipped.values())
    if skipped:
        blocks.append(_("⏭️ Skipped: {count}").format(count=format_number(skipped)))
        blocks += skip_lines(batch.skipped, batch.argument)
    if progress.failures:
        blocks += [
            "",
            _(
                "For each failure, check the address with the family and correct it in ONDE, "
                "then import again; or print their letters with /pdf."
            ),
        ]
    blocks += ["", _("The lights follow each accepted e-mail: see /etat.")]
    return blocks


def _followed(application: Application) -> dict[str, Any]:
    data = application.bot_data
    followed = data.get(FOLLOWED_KEY)
    if not isinstance(followed, dict):
        followed = {}
        data[FOLLOWED_KEY] = followed
    return followed


async def _edit(application: Application, batch: BatchStart, text: str) -> None:
    try:
        await application.bot.edit_message_text(
            text, chat_id=batch.chat_id, message_id=batch.message_id
        )
    except BadRequest as error:
        if "not modified" not in str(error).lower():
            log.info("progress message not edited (%s)", error)
    except TelegramError as error:
        log.warning("progress message not edited (%s)", type(error).__name__)


async def _post(application: Application, batch: BatchStart, blocks: list[str]) -> None:
    for text in split_text(blocks):
        try:
            await application.bot.send_message(batch.chat_id, text)
        except TelegramError as error:
            log.warning("batch summary not posted (%s)", type(error).__name__)
            return


async def follow_batch(application: Application, batch_id: str, batch: BatchStart) -> None:
    """Edit the progress message while the batch is sent (throttled), then post the summary.

    Stops quietly when the application stops: the next start resumes it from bot_data."""
    db = educonnect(application).db
    with use_language(batch.language):
        shown: str | None = None
        last_edit = 0.0
        while application.running:
            try:
                progress = await db.run(batch_progress, batch_id=batch_id)
            except Exception:
                log.exception("could not read the progress of a batch")
                await _sleep_while_running(application, EDIT_INTERVAL)
                continue
            if progress.done:
                await _edit(application, batch, progress_text(progress))
                await _post(application, batch, summary_blocks(batch, progress))
                _followed(application).pop(batch_id, None)
                with contextlib.suppress(Exception):  # else saved at the next persistence tick
                    await application.update_persistence()
                return
            text = progress_text(progress)
            if text != shown and time.monotonic() - last_edit >= EDIT_INTERVAL:
                await _edit(application, batch, text)
                # Counted from the edit's answer: a slow request never brings the next one closer.
                shown, last_edit = text, time.monotonic()
            await _sleep_while_running(application, POLL_INTERVAL)


async def _sleep_while_running(application: Application, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while application.running and time.monotonic() < deadline:
        await asyncio.sleep(min(0.2, max(0.0, deadline - time.monotonic())))


async def follow(application: Application, batch_id: str, batch: BatchStart) -> None:
    """Remember the batch (a restart resumes it) and follow it in the background."""
    _followed(application)[batch_id] = batch.to_json()
    try:
        # At once, not at the next persistence tick: a crash now must not lose the summary.
        await application.update_persistence()
    except Exception:
        log.exception("could not save the batch to follow")
    application.create_task(follow_batch(application, batch_id, batch))


async def run_batch(
    application: Application,
    batch: BatchStart,
    prepare: Callable[[], Awaitable[str | None]],
) -> None:
    """Prepare the e-mails (draw the passwords, fill the outbox), then follow their sending."""
    with use_language(batch.language):
        try:
            batch_id = await prepare()
        except StalePlanError as error:
            await _edit(application, batch, html.escape(str(error)))
            return
        except NothingToDistributeError as error:
            await _edit(application, batch, html.escape(str(error)))
            return
        except DistributionError as error:
            await _edit(application, batch, html.escape(str(error)))
            return
        except Exception:
            log.exception("preparing a batch of e-mails failed")
            await _edit(
                application,
                batch,
                _(
                    "Sorry, preparing the e-mails failed and nothing was sent. Please try again "
                    "in a moment."
                ),
            )
            return
    if batch_id is None:
        return
    await follow(application, batch_id, batch)


async def _resume(context: BotContext) -> None:
    """Follow again the batches a previous run was following."""
    application = context.application
    for batch_id, data in list(_followed(application).items()):
        try:
            batch = BatchStart.from_json(data)
        except (KeyError, TypeError, ValueError):
            _followed(application).pop(batch_id, None)
            continue
        application.create_task(follow_batch(application, batch_id, batch))


def setup(application: Application) -> None:
    """Resume following the batches in progress once the application runs."""
    if application.job_queue is not None:
        application.job_queue.run_once(_resume, when=0)
