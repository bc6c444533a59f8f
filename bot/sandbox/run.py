"""The offline sandbox, `educonnect-bot run` without a token: the local Bot API server and the
real bot (`bot.sandbox.session`), then the terminal chat (`terminal`) or the scripted demo
(`demo`) when nobody is at the terminal.

Databases: the sandbox never touches the configured database (`DATABASE_URL`), whose schools
are real. The terminal chat keeps its own SQLite file, `DATA_DIR/sandbox.db`, from one run to
the next (`--reset` starts afresh); the scripted demo plays on `DATA_DIR/sandbox-demo.db`,
recreated at every run so that it always shows the same thing. The demo school's ONDE files are
written to `DATA_DIR/sandbox-samples/`, documents the bot sends land in
`DATA_DIR/sandbox-downloads/`, the bot's log in `DATA_DIR/sandbox.log`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from bot.app import running_portal
from bot.config import Settings
from bot.i18n import _, current_language, ngettext, use_language
from bot.sandbox.demo import play_demo, welcome_director, welcome_inspector
from bot.sandbox.school import find_samples
from bot.sandbox.session import (
    DOWNLOADS_FOLDER,
    LOG_FILE,
    Sandbox,
    open_sandbox,
    remove_database,
    sandbox_database_path,
)
from bot.sandbox.terminal import HELP, ChatView, chat, make_console
from bot.services.mail import maildir_path


class _BotErrors(logging.Handler):
    """Counts the errors the bot logs, and says so on the terminal."""

    def __init__(self, on_error: Callable[[logging.LogRecord], None] | None = None) -> None:
        super().__init__(level=logging.ERROR)
        self.count = 0
        self.on_error = on_error

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1
        if self.on_error is not None:
            self.on_error(record)


def _log_to_file(path: Path) -> logging.Handler:
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    # One line per HTTP request to the emulator says nothing useful.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("uvicorn").setLevel(logging.WARNING)
    return handler


def run_sandbox(
    settings: Settings,
    *,
    interactive: bool,
    samples: Path | None,
    reset: bool = False,
) -> int:
    """Run the sandbox: the terminal chat, or the scripted demo; returns the exit code."""
    data_dir = settings.ensure_data_dir().resolve()
    database = sandbox_database_path(settings, demo=not interactive)
    if reset or not interactive:
        remove_database(database)
    samples_dir = find_samples(samples, data_dir=data_dir, required=not interactive)
    file_log = _log_to_file(data_dir / LOG_FILE)
    errors = _BotErrors()
    logging.getLogger().addHandler(errors)
    try:
        return asyncio.run(
            _main(
                settings,
                database=database,
                samples=samples_dir,
                interactive=interactive,
                errors=errors,
            )
        )
    finally:
        logging.getLogger().removeHandler(errors)
        logging.getLogger().removeHandler(file_log)
        file_log.close()


async def _main(
    settings: Settings,
    *,
    database: Path,
    samples: Path | None,
    interactive: bool,
    errors: _BotErrors,
) -> int:
    console = make_console()
    data_dir = settings.data_dir.resolve()
    # The sandbox speaks the language it started in (French, from the CLI), whatever the
    # language of the update, task or thread that logs an error.
    language = current_language()
    async with open_sandbox(settings, database) as sandbox:
        view = ChatView(sandbox, console, data_dir / DOWNLOADS_FOLDER)

        def tell(record: logging.LogRecord) -> None:
            with use_language(language):
                view.note(
                    _("⚠ the bot ran into an error ({error}) — details in {log}").format(
                        error=record.getMessage()[:120], log=data_dir / LOG_FILE
                    ),
                    "bold red",
                )

        errors.on_error = tell
        body: Coroutine[Any, Any, int]
        if interactive:
            view.note(
                _(
                    "EduConnect sandbox, offline: no TELEGRAM_BOT_TOKEN is set. Demo school: "
                    "{school}. Database: {database}."
                ).format(school=sandbox.school_title, database=database),
                "bold",
            )
            view.note(_portal_banner(sandbox), "bold")
            console.print(_(HELP))
            body = _interactive(view, samples)
        else:
            body = play_demo(view, samples=_required(samples), database=database)
        code = await _until_stopped(body)
        if code is None:
            view.note(_("Stop requested: the sandbox is stopping."))
            # Stopping is how a chat ends; a demo cut short did not show everything.
            return 0 if interactive else 130
        if not interactive and code == 0 and errors.count:
            logged = ngettext(
                "the bot logged {count} error during the demonstration; details in {log}.",
                "the bot logged {count} errors during the demonstration; details in {log}.",
                errors.count,
            ).format(count=errors.count, log=data_dir / LOG_FILE)
            print(_("Error: {message}").format(message=logged), file=sys.stderr)
            return 1
        return code


def _portal_banner(sandbox: Sandbox) -> str:
    """Where the activation portal of this sandbox answers (the letters point there)."""
    settings = sandbox.settings
    portal = running_portal(sandbox.application)
    if portal is None:
        log_file = settings.data_dir.resolve() / LOG_FILE
        return _(
            "Activation portal unavailable: the address {address} is taken (PORTAL_BIND); "
            "details in {log}."
        ).format(address=settings.portal_bind, log=log_file)
    mail = str(maildir_path(settings))
    return _(
        "Activation portal: {url} (listening on {local_url}). The letters and the e-mails "
        "point there; the e-mails go to {mail}."
    ).format(url=settings.portal_url, local_url=portal.local_url, mail=mail)


async def _until_stopped(body: Coroutine[Any, Any, int]) -> int | None:
    """Run `body` until it ends (its result) or Ctrl-C / SIGTERM stops it (None)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    signals = (signal.SIGINT, signal.SIGTERM)
    for sig in signals:
        loop.add_signal_handler(sig, stop.set)
    task = asyncio.create_task(body)
    stopper = asyncio.create_task(stop.wait())
    try:
        done, _pending = await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for sig in signals:
            loop.remove_signal_handler(sig)
        stopper.cancel()
    if task in done:
        return task.result()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    return None


def _required(samples: Path | None) -> Path:
    assert samples is not None  # find_samples(required=True) raised otherwise
    return samples


async def _interactive(view: ChatView, samples: Path | None) -> int:
    await welcome_director(view)
    # The district is registered and the inspector invited only if someone speaks as her.
    return await chat(
        view,
        samples=samples,
        echo_input=not sys.stdin.isatty(),
        welcomes={view.sandbox.inspector.key: welcome_inspector},
    )
