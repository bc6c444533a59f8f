"""The offline sandbox: a local Bot API server and the real bot connected to it, as it would be
to Telegram, in one process and one event loop, with a demo school and two personas.

Databases: the sandbox never touches the configured database (`DATABASE_URL`), whose schools
are real. The terminal chat keeps its own SQLite file, `DATA_DIR/sandbox.db`, from one run to
the next (`--reset` starts afresh); the scripted demo plays on `DATA_DIR/sandbox-demo.db`,
recreated at every run so that it always shows the same thing. Documents the bot sends land in
`DATA_DIR/sandbox-downloads/`, the bot's log in `DATA_DIR/sandbox.log`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import Engine
from telegram import Update

from bot.config import Settings
from bot.context import EduConnectApplication
from bot.i18n import _, current_language, ngettext, use_language
from bot.sandbox.botapi import BotApiServer, CallbackAnswer, CallbackRef, SandboxUser

if TYPE_CHECKING:
    from bot.sandbox.terminal import ChatView

log = logging.getLogger(__name__)
T = TypeVar("T")

CHAT_DATABASE = "sandbox.db"
DEMO_DATABASE = "sandbox-demo.db"
DOWNLOADS_FOLDER = "sandbox-downloads"
LOG_FILE = "sandbox.log"

# Fixed ids, so that the personas are the same Telegram users from one run to the next (the
# director stays a director in sandbox.db); far from the emulator's own numbering.
DIRECTOR_USER_ID = 710_000_001
FAMILY_USER_ID = 710_000_002


@dataclass(frozen=True)
class Persona:
    """Someone the person at the terminal can speak as."""

    key: str
    label: str
    user: SandboxUser


class _HandledUpdates:
    """Knows which updates the application has finished handling.

    The sandbox wraps `Application.process_update` (the bot handles updates one at a time,
    in order), so the terminal waits exactly as long as the bot works, never a guessed delay.
    """

    def __init__(self) -> None:
        self.last_handled = -1
        self.in_progress: int | None = None
        self._changed = asyncio.Event()

    def install(self, application: EduConnectApplication) -> None:
        original = application.process_update

        async def process_update(update: object) -> None:
            update_id = update.update_id if isinstance(update, Update) else None
            self.in_progress = update_id
            try:
                await original(update)
            finally:
                self.in_progress = None
                if update_id is not None:
                    self.last_handled = max(self.last_handled, update_id)
                changed, self._changed = self._changed, asyncio.Event()
                changed.set()

        application.process_update = process_update  # type: ignore[method-assign]

    async def wait(self, update_id: int, timeout: float) -> bool:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self.last_handled < update_id:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), remaining)
        return True


class Sandbox:
    """The emulator, the bot application running against it, the demo school, the personas."""

    def __init__(
        self,
        *,
        server: BotApiServer,
        application: EduConnectApplication,
        engine: Engine,
        settings: Settings,
        school_id: int,
        school_title: str,
        director: Persona,
        family: Persona,
        handled: _HandledUpdates,
    ) -> None:
        self.server = server
        self.application = application
        self.engine = engine
        self.settings = settings
        self.school_id = school_id
        self.school_title = school_title
        self.director = director
        self.family = family
        self._handled = handled

    @property
    def personas(self) -> tuple[Persona, ...]:
        """Every persona, director first."""
        return (self.director, self.family)

    @property
    def busy(self) -> bool:
        """Whether updates are still waiting or being handled."""
        last = self.server.updates[-1]["update_id"] if self.server.updates else -1
        return self._handled.last_handled < last

    async def wait_handled(self, timeout: float) -> bool:
        """Wait until the bot has handled every update sent so far; False on timeout."""
        if not self.server.updates:
            return True
        last = int(self.server.updates[-1]["update_id"])
        return await self._handled.wait(last, timeout)

    async def callback_answer(self, persona: Persona, ref: CallbackRef) -> CallbackAnswer | None:
        """What the bot answered to a button press it has handled, if it answered."""
        try:
            return await persona.user.answer_for(ref, timeout=0.05)
        except TimeoutError:
            return None

    async def run_service(self, function: Callable[..., T], /, **kwargs: Any) -> T:
        """Run a service function in a transaction of the sandbox database."""
        return await self.application.db.run(function, **kwargs)


def sandbox_database_path(settings: Settings, *, demo: bool) -> Path:
    """The sandbox's own SQLite file (see the module docstring)."""
    return settings.data_dir.resolve() / (DEMO_DATABASE if demo else CHAT_DATABASE)


def remove_database(path: Path) -> None:
    """Delete a SQLite database and its WAL companions."""
    for suffix in ("", "-wal", "-shm", "-journal"):
        with contextlib.suppress(FileNotFoundError):
            Path(f"{path}{suffix}").unlink()


@asynccontextmanager
async def open_sandbox(settings: Settings, database: Path) -> AsyncIterator[Sandbox]:
    """Start the emulator and the bot on the running loop; stop both on exit."""
    # Imported here: the Telegram application pulls in every handler module.
    from bot.app import build_application
    from bot.db import make_engine, upgrade_schema
    from bot.sandbox.demo import DIRECTOR, FAMILY, ensure_demo_school

    async with BotApiServer(
        bot_username="educonnect_sandbox_bot", bot_first_name=_("EduConnect (sandbox)")
    ) as server:
        engine = make_engine(f"sqlite:///{database}")
        try:
            await asyncio.to_thread(upgrade_schema, engine)
            # The personas exist before the bot starts: it sets each director's menu at start.
            director = Persona(
                "directeur",
                DIRECTOR.label,
                server.new_user(
                    DIRECTOR.first_name,
                    last_name=DIRECTOR.last_name,
                    user_id=DIRECTOR_USER_ID,
                    language_code="fr",
                ),
            )
            family = Persona(
                "famille",
                FAMILY.label,
                server.new_user(
                    FAMILY.first_name,
                    last_name=FAMILY.last_name,
                    user_id=FAMILY_USER_ID,
                    language_code="fr",
                ),
            )
            bot_settings = settings.model_copy(
                update={
                    "telegram_bot_token": server.token,
                    "telegram_base_url": server.base_url,
                    "telegram_base_file_url": server.base_file_url,
                    "database_url": str(engine.url),
                    # The demo school's addresses are invented, and some may exist: the
                    # sandbox never uses a real relay, even one set in .env; mail goes to
                    # the Maildir in the data folder.
                    "smtp_host": None,
                }
            )
            application = build_application(bot_settings, engine)
            handled = _HandledUpdates()
            handled.install(application)
            school = await application.db.run(ensure_demo_school)
            sandbox = Sandbox(
                server=server,
                application=application,
                engine=engine,
                settings=bot_settings,
                school_id=school.id,
                school_title=school.title,
                director=director,
                family=family,
                handled=handled,
            )
            async with _running(application):
                yield sandbox
        finally:
            engine.dispose()


@asynccontextmanager
async def _running(application: EduConnectApplication) -> AsyncIterator[None]:
    """Run the application as `run_polling` would, hooks included, without owning the loop."""
    await application.initialize()
    try:
        # post_init is what installs the command menus (and later starts what runs beside the
        # bot); run_polling calls it, so the sandbox does too.
        if application.post_init is not None:
            await application.post_init(application)
        await application.start()
        updater = application.updater
        assert updater is not None
        await updater.start_polling(poll_interval=0, timeout=5, allowed_updates=Update.ALL_TYPES)
        try:
            yield
        finally:
            if updater.running:
                await updater.stop()
            if application.running:
                await application.stop()
                if application.post_stop is not None:
                    await application.post_stop(application)
    finally:
        await application.shutdown()
        if application.post_shutdown is not None:
            await application.post_shutdown(application)


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
    from bot.sandbox.demo import find_samples

    data_dir = settings.ensure_data_dir().resolve()
    database = sandbox_database_path(settings, demo=not interactive)
    if reset or not interactive:
        remove_database(database)
    samples_dir = find_samples(samples, required=not interactive)
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
    from bot.sandbox.demo import play_demo
    from bot.sandbox.terminal import HELP, ChatView, make_console

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
    from bot.app import running_portal
    from bot.services.mail_transport import maildir_path

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
    from bot.sandbox.demo import welcome_director
    from bot.sandbox.terminal import chat

    await welcome_director(view)
    return await chat(view, samples=samples, echo_input=not sys.stdin.isatty())
