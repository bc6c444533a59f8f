"""`send`: credentials by e-mail to the guardians of classes who have an address — the plan
confirmed, the e-mails queued in the outbox, then sent from this process unless --no-wait."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy import Engine

from bot.cli.database import open_database, operator_name
from bot.cli.distribution import (
    ClassesArgument,
    ResetOption,
    YesOption,
    plan_and_confirm,
    progress_bar,
)
from bot.cli.options import PROG_NAME, JsonOption, UaiArgument
from bot.cli.output import print_json, stdout_console
from bot.config import Settings, get_settings
from bot.db import session_scope
from bot.i18n import _, format_number, ngettext
from bot.jobs import OutboxSender
from bot.services.accounts import known_bot_username
from bot.services.distribution import (
    DistributionPreview,
    plan_email_distribution,
    start_email_distribution,
)
from bot.services.mail import BatchProgress, batch_progress


def register(app: typer.Typer) -> None:
    """Add `send` to the command line."""
    app.command(
        "send",
        help=_(
            "Send credentials by e-mail to the guardians of classes who have an address: shows "
            "who gets what, asks for confirmation, then sends (first distribution, reminder, or "
            "new password with --reset)."
        ),
    )(send_command)


def send_command(
    uai: UaiArgument,
    classes: ClassesArgument,
    reset: ResetOption = False,
    yes: YesOption = False,
    no_wait: Annotated[
        bool,
        typer.Option(
            "--no-wait",
            help=_(
                "Only put the e-mails in the outbox: the running bot, or « educonnect-bot "
                "worker », sends them."
            ),
        ),
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Send credentials by e-mail to the guardians of classes who have an address."""
    settings = get_settings()
    console = stdout_console()
    with open_database() as engine:
        planned = _plan_emails(
            engine, uai=uai, classes=classes, reset=reset, as_json=as_json, yes=yes
        )
        if planned is None:
            return
        school_id, preview, result = planned
        batch_id = _queue_emails(
            engine, settings, school_id=school_id, preview=preview, reset=reset
        )
        result["batch_id"] = batch_id
        if no_wait:
            _print_queued(console, result, count=len(preview.planned), as_json=as_json)
            return
        progress = _send_batch(engine, settings, batch_id)
    if as_json:
        print_json(
            result
            | {
                "sent": progress.sent,
                "failed": _failure_dicts(progress),
                "waiting": progress.pending + progress.sending,
                "cancelled": progress.cancelled,
            }
        )
        return
    _print_send_summary(console, progress)


def _plan_emails(
    engine: Engine, *, uai: str, classes: Sequence[str], reset: bool, as_json: bool, yes: bool
) -> tuple[int, DistributionPreview, dict[str, Any]] | None:
    """The e-mails of the classes planned, shown and confirmed (see `plan_and_confirm`)."""
    return plan_and_confirm(
        engine,
        plan_email_distribution,
        uai=uai,
        classes=classes,
        title=_("E-mails — {school}"),
        nobody=_("Nobody to send an e-mail to."),
        not_done={"batch_id": None},
        question=lambda count: ngettext(
            "Send {count} e-mail?", "Send {count} e-mails?", count
        ).format(count=format_number(count)),
        as_json=as_json,
        yes=yes,
        reset=reset,
    )


def _queue_emails(
    engine: Engine, settings: Settings, *, school_id: int, preview: DistributionPreview, reset: bool
) -> str:
    """Record the distribution and put its e-mails in the outbox; the batch's id."""
    with session_scope(engine) as session:
        return start_email_distribution(
            session=session,
            school_id=school_id,
            preview_or_account_ids=preview,
            reset=reset,
            actor=operator_name(),
            bot_username=known_bot_username(session=session),
            portal_url=settings.portal_url,
            mail_from=settings.mail_from,
        )


def _print_queued(console: Console, result: dict[str, Any], *, count: int, as_json: bool) -> None:
    """--no-wait: say the e-mails are in the outbox, for the bot or a worker to send."""
    if as_json:
        print_json(result | {"queued": count})
        return
    console.print(
        ngettext(
            "{count} e-mail is in the outbox (batch {batch}): the bot or « {program} "
            "worker » sends it.",
            "{count} e-mails are in the outbox (batch {batch}): the bot or « {program} "
            "worker » sends them.",
            count,
        ).format(count=format_number(count), batch=result["batch_id"], program=PROG_NAME)
    )


def _send_batch(engine: Engine, settings: Settings, batch_id: str) -> BatchProgress:
    """Send the batch from this process, with a progress bar on a terminal."""
    with progress_bar(_("Sending")) as advance:

        def show(progress: BatchProgress) -> None:
            advance(progress.sent + progress.failed + progress.cancelled, progress.total)

        return asyncio.run(_drain_batch(engine, settings, batch_id, show))


async def _drain_batch(
    engine: Engine, settings: Settings, batch_id: str, show: Callable[[BatchProgress], None]
) -> BatchProgress:
    """Send the outbox in this process until the batch is done, or only retries are left."""

    def progress() -> BatchProgress:
        with session_scope(engine) as session:
            return batch_progress(session=session, batch_id=batch_id)

    sender = OutboxSender.from_settings(settings, engine, name="cli")
    while True:
        task = asyncio.create_task(sender.drain_once())
        while not task.done():
            await asyncio.wait({task}, timeout=0.25)
            show(await asyncio.to_thread(progress))
        task.result()
        current = await asyncio.to_thread(progress)
        show(current)
        # Done, or what is left waits for a retry later (the bot or a worker sends it).
        if current.done or (current.sending == 0 and current.pending <= current.retrying):
            return current
        # Rows another sender holds: wait for it, or for its claims to be recovered.
        await sender.recover()
        await asyncio.sleep(0.5)


def _failure_dicts(progress: BatchProgress) -> list[dict[str, Any]]:
    return [
        {
            "identifier": failure.identifier,
            "name": failure.guardian_name,
            "address": failure.to_address,
            "reason": failure.reason,
            "kind": failure.kind.value,
        }
        for failure in progress.failures
    ]


def _print_send_summary(console: Console, progress: BatchProgress) -> None:
    console.print(
        _("Sent: {sent} — failed: {failed} — waiting for a retry: {waiting}").format(
            sent=format_number(progress.sent),
            failed=format_number(progress.failed),
            waiting=format_number(progress.pending + progress.sending),
        )
    )
    if progress.failures:
        table = Table(
            _("Guardian"), _("Identifier"), _("Address"), _("Reason"), title_justify="left"
        )
        for failure in progress.failures:
            table.add_row(
                failure.guardian_name or "",
                failure.identifier or "",
                failure.to_address,
                failure.reason,
            )
        console.print(table)
    if progress.pending:
        console.print(
            _(
                "The server asked to try again later ({reason}): the bot, or « {program} worker », "
                "sends them automatically."
            ).format(reason=progress.last_retry_reason or "—", program=PROG_NAME)
        )
