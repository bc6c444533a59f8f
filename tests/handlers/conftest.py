"""The real bot, built by `build_application`, talking to the in-process Bot API emulator on a
fresh database: handler tests chat with it as a person would through Telegram.

    async def test_something(bot_harness: BotHarness) -> None:
        director = await bot_harness.new_director()          # a school + /start <code>
        await director.user.send_text("/classes")
        reply = await director.user.next_message()
        family = bot_harness.new_family()
        ...
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest
from sqlalchemy import Engine

import handlers
from bot.app import build_application
from bot.config import Settings
from bot.context import EduConnectApplication, ServiceRunner
from bot.sandbox.botapi import BotApiServer, ChatMessage, SandboxUser
from bot.services.schools.directors import directed_schools
from bot.services.schools.registry import DEFAULT_INVITATION_TTL, add_school, create_invitation

T = TypeVar("T")

_uai_numbers = itertools.count(750_001)


@dataclass
class DirectorChat:
    """A sandbox user who became the director of a school through `/start <code>`."""

    user: SandboxUser
    school_id: int
    uai: str
    school_name: str
    welcome: ChatMessage
    """The bot's answer to `/start <code>`."""


class BotHarness:
    """A running bot (`app`) on the emulator (`server`) and a database (`engine`)."""

    def __init__(self, server: BotApiServer, engine: Engine, data_dir: Path) -> None:
        self.server = server
        self.engine = engine
        self.db = ServiceRunner(engine)
        self.settings = Settings(
            _env_file=None,
            telegram_bot_token=server.token,
            telegram_base_url=server.base_url,
            telegram_base_file_url=server.base_file_url,
            data_dir=data_dir,
            database_url=engine.url.render_as_string(hide_password=False),
        )
        self._app: EduConnectApplication | None = None

    # -- the application ----------------------------------------------------------------

    @property
    def app(self) -> EduConnectApplication:
        """The running application (a new object after `restart`)."""
        assert self._app is not None, "the bot is not running"
        return self._app

    async def start(self, *, install_menus: bool = True) -> EduConnectApplication:
        """Build and start the bot, polling the emulator (post_init's menus too, by default)."""
        app = build_application(self.settings, self.engine)
        await app.initialize()
        if install_menus:
            # post_init runs only under run_polling: do its work here.
            await handlers.install_command_menus(app)
        await app.start()
        assert app.updater is not None
        await app.updater.start_polling(poll_interval=0, timeout=1)
        self._app = app
        return app

    async def stop(self) -> None:
        """Stop polling and the application (which writes user/chat data to the database)."""
        app, self._app = self._app, None
        if app is None:
            return
        if app.updater is not None and app.updater.running:
            await app.updater.stop()
        if app.running:
            await app.stop()
        await app.shutdown()

    async def restart(self) -> EduConnectApplication:
        """Stop the bot and start a new Application object on the same database and server."""
        await self.stop()
        return await self.start(install_menus=False)

    async def settle(self, timeout: float = 10.0) -> None:
        """Wait until every update sent so far has been fetched and fully handled."""
        deadline = asyncio.get_running_loop().time() + timeout
        while self.server.pending_update_count:
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError("the bot did not fetch its updates in time")
            await asyncio.sleep(0.01)
        await asyncio.wait_for(self.app.update_queue.join(), timeout)

    # -- data -----------------------------------------------------------------------------

    def call(self, function: Callable[..., T], /, **kwargs: Any) -> T:
        """Run a service function `function(session=..., **kwargs)` in its own transaction."""
        return self.db.call(function, **kwargs)

    def add_school(self, uai: str | None = None, name: str = "École Jules Ferry") -> int:
        """Register a school (a fresh UAI unless given); returns its id."""
        school = self.call(
            add_school, uai=uai or f"{next(_uai_numbers):07d}X", name=name, actor="test"
        )
        assert school.id is not None
        return school.id

    def invite(
        self,
        school_id: int,
        *,
        ttl: timedelta = DEFAULT_INVITATION_TTL,
        now: datetime | None = None,
    ) -> str:
        """A fresh invitation code for the school (created `now`, valid for `ttl`)."""
        code, _expires = self.call(
            create_invitation, school_id=school_id, actor="test", ttl=ttl, now=now
        )
        return code

    # -- people ---------------------------------------------------------------------------

    def new_family(self, first_name: str = "Parent", **options: Any) -> SandboxUser:
        """A user who directs nothing (language "fr" unless `language_code=` says otherwise)."""
        return self.server.new_user(first_name, **options)

    async def new_director(
        self,
        school_uai: str | None = None,
        *,
        school_name: str = "École Jules Ferry",
        user: SandboxUser | None = None,
        first_name: str = "Directrice",
    ) -> DirectorChat:
        """Register a school, invite a director and redeem the code with `/start <code>`
        exactly as a user would; the chat is drained afterwards. Pass `user` to make an
        existing director the director of one more school."""
        school_id = self.add_school(school_uai, school_name)
        code = self.invite(school_id)
        person = user or self.server.new_user(first_name)
        await person.send_text(f"/start {code}")
        await self.settle()
        schools = {s.id: s for s in self.call(directed_schools, telegram_user_id=person.id)}
        welcome = person.last_bot_message
        if school_id not in schools or welcome is None:
            shown = welcome.content if welcome else None
            raise AssertionError(f"/start <code> did not make a director; the bot said {shown!r}")
        person.drain()
        school = schools[school_id]
        return DirectorChat(
            user=person,
            school_id=school_id,
            uai=school.uai,
            school_name=school.name,
            welcome=welcome,
        )


@pytest.fixture
async def bot_harness(engine: Engine, tmp_path: Path) -> AsyncIterator[BotHarness]:
    """The running bot on a fresh database (SQLite, then PostgreSQL), with its command menus
    installed."""
    async with BotApiServer() as server:
        harness = BotHarness(server, engine, tmp_path / "data")
        await harness.start()
        try:
            yield harness
        finally:
            await harness.stop()
