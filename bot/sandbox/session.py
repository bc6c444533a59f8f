"""The running sandbox: a local Bot API server and the real bot connected to it, as it would be
to Telegram, in one event loop, with the demo school and the three personas (director, family,
the district's inspector).

Databases: the sandbox never touches the configured database (`DATABASE_URL`), whose schools
are real; it runs on its own SQLite file (see `sandbox_database_path`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Engine
from telegram import Update

from bot.app import build_application
from bot.config import Settings
from bot.context import EduConnectApplication
from bot.db import make_engine, upgrade_schema
from bot.i18n import _
from bot.sandbox.botapi import BotApiServer, CallbackAnswer, CallbackRef, SandboxUser
from bot.sandbox.school import DIRECTOR, FAMILY, INSPECTOR, demo_family_phone, ensure_demo_school

T = TypeVar("T")

CHAT_DATABASE = "sandbox.db"
DEMO_DATABASE = "sandbox-demo.db"
DOWNLOADS_FOLDER = "sandbox-downloads"
LOG_FILE = "sandbox.log"

# Fixed ids, so that the personas are the same Telegram users from one run to the next (the
# director stays a director in sandbox.db); far from the emulator's own numbering.
DIRECTOR_USER_ID = 710_000_001
FAMILY_USER_ID = 710_000_002
INSPECTOR_USER_ID = 710_000_003


@dataclass(frozen=True)
class Persona:
    """Someone the person at the terminal can speak as."""

    key: str
    label: str
    user: SandboxUser
    phone_owner: str | None = None
    """Whose number, in the school's data, the persona's Telegram account has (if any)."""


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
        inspector: Persona,
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
        self.inspector = inspector
        self._handled = handled

    @property
    def personas(self) -> tuple[Persona, ...]:
        """Every persona, director first."""
        return (self.director, self.family, self.inspector)

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
    """The sandbox's own SQLite file: DATA_DIR/sandbox.db for the terminal chat, kept from one
    run to the next; DATA_DIR/sandbox-demo.db for the scripted demo, recreated at every run."""
    return settings.data_dir.resolve() / (DEMO_DATABASE if demo else CHAT_DATABASE)


def remove_database(path: Path) -> None:
    """Delete a SQLite database and its WAL companions."""
    for suffix in ("", "-wal", "-shm", "-journal"):
        with contextlib.suppress(FileNotFoundError):
            Path(f"{path}{suffix}").unlink()


@asynccontextmanager
async def open_sandbox(settings: Settings, database: Path) -> AsyncIterator[Sandbox]:
    """Start the emulator and the bot on the running loop; stop both on exit."""
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
            # The family's Telegram account has the mobile of a demo-school guardian: the
            # « Share my number » button then finds that guardian once the files are imported.
            phone = await asyncio.to_thread(demo_family_phone)
            family = Persona(
                "famille",
                FAMILY.label,
                server.new_user(
                    FAMILY.first_name,
                    last_name=FAMILY.last_name,
                    user_id=FAMILY_USER_ID,
                    language_code="fr",
                    phone_number=phone.telegram_number if phone else None,
                ),
                phone_owner=phone.guardian if phone else None,
            )
            # She follows the demo school's district once invited (`bot.sandbox.district`).
            inspector = Persona(
                "inspecteur",
                INSPECTOR.label,
                server.new_user(
                    INSPECTOR.first_name,
                    last_name=INSPECTOR.last_name,
                    user_id=INSPECTOR_USER_ID,
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
                    # One process polling the emulator, whatever .env says of a deployment.
                    "portal_in_bot": True,
                    "telegram_webhook_url": None,
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
                inspector=inspector,
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
