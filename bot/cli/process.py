"""Running the service: `run` (the Telegram bot, else the offline sandbox), `worker` (the
outbox sent without the bot), `portal` (the activation portal without the bot) and
`db upgrade`, the schema they all need."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
from pathlib import Path
from typing import Annotated

import typer
from alembic.migration import MigrationContext

from bot.cli.database import open_database
from bot.cli.options import JsonOption
from bot.cli.output import print_json, stderr_console, stdout_console
from bot.config import get_settings
from bot.i18n import _, format_number, ngettext
from bot.jobs import OutboxSender
from bot.portal.security import load_session_secret
from bot.portal.standalone import listen, serve
from bot.runner import check_mail_transport, configure_logging
from bot.runner import run as run_bot

db_app = typer.Typer(help=_("Database."), no_args_is_help=True)


def register(app: typer.Typer) -> None:
    """Add `run`, `worker` and the `db` group to the command line."""
    app.command(
        "run",
        help=_("Run the Telegram bot (with TELEGRAM_BOT_TOKEN), else the offline sandbox.")
        + "\n\n"
        + _(
            "The sandbox never uses DATABASE_URL: its database is DATA_DIR/sandbox.db for the "
            "conversation (kept from one run to the next) and DATA_DIR/sandbox-demo.db for the "
            "demonstration (created afresh each time)."
        ),
    )(run_command)
    app.command(
        "worker",
        help=_(
            "Send the e-mails waiting in the outbox, without the bot, until Ctrl-C. Several "
            "workers, on several machines, can share one PostgreSQL database."
        ),
    )(worker_command)
    app.command(
        "portal",
        help=_(
            "Serve the activation portal without the bot, until Ctrl-C: the same pages, on the "
            "same database. Several processes, on several machines, can serve it behind a "
            "reverse proxy; set PORTAL_IN_BOT=false so that the bot no longer serves it."
        ),
    )(portal_command)
    app.add_typer(db_app, name="db")


@db_app.command("upgrade", help=_("Upgrade the database schema."))
def db_upgrade(as_json: JsonOption = False) -> None:
    """Upgrade the database schema."""
    with open_database() as engine, engine.connect() as connection:
        revision = MigrationContext.configure(connection).get_current_revision()
        dialect = engine.dialect.name
    if as_json:
        print_json({"revision": revision, "database": dialect})
        return
    stdout_console().print(
        _("Database up to date ({dialect}, revision {revision}).").format(
            dialect=dialect, revision=revision
        )
    )


def run_command(
    sandbox: Annotated[
        bool,
        typer.Option("--sandbox", help=_("Start the offline sandbox even if a token is set.")),
    ] = False,
    demo: Annotated[
        bool | None,
        typer.Option(
            "--demo/--chat",
            help=_(
                "Sandbox (even with a token): a scripted demonstration, or a conversation in "
                "the terminal (by default: the conversation if the input is a terminal, else "
                "the demonstration)."
            ),
            show_default=False,
        ),
    ] = None,
    samples: Annotated[
        Path | None,
        typer.Option(
            "--samples",
            help=_(
                "Sandbox: folder of other ONDE extractions to send (default: "
                "$EDUCONNECT_SAMPLES, else the demo school's, generated)."
            ),
        ),
    ] = None,
    reset: Annotated[
        bool, typer.Option("--reset", help=_("Sandbox: start again from an empty database."))
    ] = False,
) -> None:
    """Run the Telegram bot (with TELEGRAM_BOT_TOKEN), else the offline sandbox."""
    code = run_bot(get_settings(), sandbox=sandbox, demo=demo, samples=samples, reset=reset)
    if code:
        raise typer.Exit(code)


def worker_command(
    once: Annotated[
        bool, typer.Option("--once", help=_("Send what is due now, then stop."))
    ] = False,
) -> None:
    """Send the e-mails waiting in the outbox, without the bot."""
    settings = get_settings()
    if settings.telegram_bot_token:
        # A deployment's worker: its e-mails must reach families, as the bot's (see `run`).
        check_mail_transport(settings)
    with open_database() as engine:
        configure_logging(settings)  # after the schema upgrade: Alembic's lines are noise here
        sender = OutboxSender.from_settings(settings, engine, name="worker")
        stderr_console().print(
            _("Outbox worker {worker}: the e-mails go to {destination}.").format(
                worker=sender.worker_id, destination=sender.transport.description
            )
        )
        if once:
            sent = asyncio.run(_send_due(sender))
            stdout_console().print(
                ngettext("{count} e-mail sent.", "{count} e-mails sent.", sent).format(
                    count=format_number(sent)
                )
            )
            return
        asyncio.run(_run_worker(sender))
    stderr_console().print(_("Outbox worker stopped."))


async def _send_due(sender: OutboxSender) -> int:
    await sender.recover()
    return await sender.drain_once()


async def _run_worker(sender: OutboxSender) -> None:
    """Run the sender until SIGINT or SIGTERM, then let the message in flight finish."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await sender.run_forever(stop)


def portal_command(
    workers: Annotated[
        int,
        typer.Option(
            "--workers",
            min=1,
            help=_(
                "Processes serving the portal; more than one per core adds memory, not logins "
                "per second."
            ),
        ),
    ] = 1,
    bind: Annotated[
        str | None,
        typer.Option(
            "--bind",
            metavar="HOST:PORT",
            help=_("Where to listen (default: PORTAL_BIND)."),
            show_default=False,
        ),
    ] = None,
) -> None:
    """Serve the activation portal without the bot, until Ctrl-C."""
    settings = get_settings()
    # Bound first: a busy port is said before any migration runs, and by this process only.
    sock = listen(bind or settings.portal_bind)
    try:
        with open_database() as engine:
            # Made here, before the workers: N processes would otherwise race to create it.
            load_session_secret(settings.ensure_data_dir())
            _announce_portal(sock, workers, settings.portal_url)
            serve(settings, sock, engine, workers=workers)
    finally:
        sock.close()
    stderr_console().print(_("Portal stopped."))


def _announce_portal(sock: socket.socket, workers: int, public_url: str) -> None:
    """Where the portal listens, and whether it has more processes than cores."""
    host, port = sock.getsockname()[:2]
    host = f"[{host}]" if ":" in host else host
    console = stderr_console()
    console.print(
        ngettext(
            "Portal listening on http://{host}:{port} ({count} process); its public address is "
            "{url}. Ctrl-C stops it.",
            "Portal listening on http://{host}:{port} ({count} processes); its public address "
            "is {url}. Ctrl-C stops it.",
            workers,
        ).format(host=host, port=port, count=format_number(workers), url=public_url),
        soft_wrap=True,  # one line in the service's log, whatever the terminal's width
    )
    cores = len(os.sched_getaffinity(0))
    if workers > cores:
        console.print(
            ngettext(
                "Note: {workers} processes on {cores} core: more processes than cores add "
                "memory, not logins per second.",
                "Note: {workers} processes on {cores} cores: more processes than cores add "
                "memory, not logins per second.",
                cores,
            ).format(workers=format_number(workers), cores=format_number(cores)),
            soft_wrap=True,
        )
