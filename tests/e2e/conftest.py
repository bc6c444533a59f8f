"""End-to-end harness: the bot runs as a separate process (`python -m bot run`, exactly what
`make run` starts) against a Bot API emulator running in a thread of the test, and the test
talks to it as people would through Telegram.

    def test_something(bot: BotProcess, director: ThreadedUser) -> None:
        reply = ask(director, "/classes")  # every message of the reply, latest state
        assert "CP A" in text_of(reply)

Fixtures: `bot_api` (the emulator), `bot_factory` (a factory of bot processes, stopped after
the test, on SQLite unless given a database), `make_bot` (the same on the test's database:
SQLite, then PostgreSQL), `bot` (one started and polling), `school` (the demo school with a
director invitation, seeded through services), `director` (a user who redeemed that
invitation in the chat), `family` (any other user). `BotProcess` seeds through the real CLI
(`cli`, `cli_json`) or services (`service`), restarts the process (`restart`), and keeps its
log: a failing test's report shows it. `ask`, `send_file` and `press` act and return the bot's
reply; `with_button` waits for a message offering a button.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from bot.db import make_engine, session_scope, upgrade_schema
from bot.sandbox.botapi import ChatEvent, ChatMessage, ThreadedBotApi, ThreadedUser
from tests.mailtools import SmtpTestServer, free_port

UAI = "0590001A"
SCHOOL_NAME = "École de démonstration Jules Ferry"
CITY = "Lille"
# A reply the bot must compute (an import, an export) gets this long; the bot answers
# instantly otherwise, but CI machines are shared.
REPLY_TIMEOUT = 30.0
START_TIMEOUT = 60.0
STOP_TIMEOUT = 30.0

# Settings of the developer's shell that must not leak into the bot process under test.
_FOREIGN_ENV = (
    "TELEGRAM_BOT_TOKEN",
    "TELEGRAM_BASE_URL",
    "TELEGRAM_BASE_FILE_URL",
    "DATABASE_URL",
    "DATA_DIR",
    "SMTP_HOST",
    "SMTP_PORT",
    "SMTP_USERNAME",
    "SMTP_PASSWORD",
    "SMTP_SECURITY",
    "MAIL_FROM",
    "MAIL_TRANSPORT",
    "PORTAL_URL",
    "PORTAL_BIND",
    "PORTAL_IN_BOT",
    "TELEGRAM_WEBHOOK_URL",
    "TELEGRAM_WEBHOOK_SECRET",
)

_BOTS_KEY = pytest.StashKey[list["BotProcess"]]()


def child_env(**overrides: str) -> dict[str, str]:
    """The test's environment without EduConnect settings, plus `overrides`."""
    env = {k: v for k, v in os.environ.items() if k not in _FOREIGN_ENV}
    env.update(PYTHONUNBUFFERED="1", **overrides)
    return env


@dataclass(frozen=True)
class SeededSchool:
    """A school in the bot's database, and a director invitation for it."""

    id: int
    uai: str
    name: str
    code: str


class BotProcess:
    """The bot as a separate process, its data folder and database, and the CLI beside it."""

    def __init__(
        self,
        api: ThreadedBotApi,
        workdir: Path,
        *,
        database_url: str | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.api = api
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.data_dir = workdir / "data"
        self.database_url = database_url or f"sqlite:///{self.data_dir / 'educonnect.db'}"
        self.env = child_env(
            **api.env(), DATA_DIR=str(self.data_dir), DATABASE_URL=self.database_url
        )
        if env:
            self.env.update(env)
        if "SMTP_HOST" not in self.env:
            # A real bot without an SMTP server starts only when the Maildir is chosen.
            self.env["MAIL_TRANSPORT"] = "maildir"
        self.process: subprocess.Popen[bytes] | None = None
        self.exit_codes: list[int] = []
        self._logs: list[Path] = []
        self._engine: Engine | None = None
        self._calls_at_start = 0

    # -- the process -------------------------------------------------------------------

    @property
    def running(self) -> bool:
        """Whether the bot process is alive."""
        return self.process is not None and self.process.poll() is None

    def start(self, *, wait: bool = True, timeout: float = START_TIMEOUT) -> None:
        """Start `python -m bot run`; with `wait`, return once it polls for updates."""
        if self.running:
            raise RuntimeError("the bot process is already running")
        self.database()  # the schema exists before the bot and the test both use it
        self._calls_at_start = len(self.api.calls())
        log_path = self.workdir / f"bot-{len(self._logs) + 1}.log"
        self._logs.append(log_path)
        with log_path.open("wb") as log:
            # The working folder holds no .env: only the environment above configures the bot.
            self.process = subprocess.Popen(
                [sys.executable, "-m", "bot", "run"],
                cwd=self.workdir,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        if wait:
            self.wait_until_polling(timeout=timeout)

    def wait_until_polling(self, *, timeout: float = START_TIMEOUT) -> None:
        """Block until the process last started asks the emulator for updates (it is then
        ready); fails early, with its log, if it exits instead."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.api.wait_for_call("getUpdates", timeout=0.5, since=self._calls_at_start)
                return
            except TimeoutError:
                pass
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(
                    f"the bot process exited with {self.process.returncode} before polling:\n"
                    f"{self.output[-5000:]}"
                )
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"the bot did not poll within {timeout}s:\n{self.output[-5000:]}"
                )

    def stop(self, timeout: float = STOP_TIMEOUT) -> int:
        """SIGTERM, as a service manager stops it; returns the exit code (killed: -9)."""
        process = self.process
        if process is None:
            raise RuntimeError("the bot process was never started")
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)
        code = int(process.returncode)
        self.exit_codes.append(code)
        self.process = None
        return code

    def restart(self, *, timeout: float = START_TIMEOUT) -> None:
        """Stop the process cleanly (exit 0 expected) and start a new one."""
        code = self.stop()
        assert code == 0, f"the bot exited with {code} when stopped:\n{self.output[-5000:]}"
        self.start(timeout=timeout)

    def close(self) -> None:
        """Stop the process if it runs, and release the test's database connections."""
        if self.running:
            self.stop()
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    @property
    def output(self) -> str:
        """Everything the bot processes wrote (stdout and stderr), one start after another."""
        parts = []
        for number, path in enumerate(self._logs, 1):
            text = path.read_text("utf-8", errors="replace") if path.exists() else ""
            parts.append(f"--- bot process #{number} ---\n{text}")
        return "\n".join(parts)

    # -- the database and the CLI --------------------------------------------------------

    def database(self) -> Engine:
        """An engine on the bot's database, schema up to date."""
        if self._engine is None:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            self._engine = make_engine(self.database_url)
            upgrade_schema(self._engine)
        return self._engine

    def service(self, function: Callable[..., Any], /, **kwargs: Any) -> Any:
        """Run `function(session=..., **kwargs)` in one transaction on the bot's database."""
        with session_scope(self.database()) as session:
            return function(session=session, **kwargs)

    def cli(self, *args: str | Path) -> subprocess.CompletedProcess[str]:
        """Run `python -m bot ARGS` with the bot's settings, as the operator would."""
        return subprocess.run(
            [sys.executable, "-m", "bot", *map(str, args)],
            cwd=self.workdir,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    def cli_ok(self, *args: str | Path) -> str:
        """`cli`, which must succeed; its stdout."""
        result = self.cli(*args)
        assert result.returncode == 0, result.stderr
        return result.stdout

    def cli_json(self, *args: str | Path) -> Any:
        """`cli ... --json`, parsed."""
        return json.loads(self.cli_ok(*args, "--json"))

    def seed_school(self, *, via_cli: bool = False) -> SeededSchool:
        """Register the demo school and create a director invitation for it."""
        if via_cli:
            added = self.cli_json("school", "add", UAI, SCHOOL_NAME, "--city", CITY)
            invitation = self.cli_json("director", "invite", UAI)
            return SeededSchool(int(added["id"]), added["uai"], added["name"], invitation["code"])
        from bot.services.schools.registry import add_school, create_invitation

        def seed(session: Any) -> SeededSchool:
            school = add_school(session=session, uai=UAI, name=SCHOOL_NAME, city=CITY, actor="e2e")
            assert school.id is not None
            code, _ = create_invitation(session=session, school_id=school.id, actor="e2e")
            return SeededSchool(school.id, school.uai, school.name, code)

        seeded: SeededSchool = self.service(seed)
        return seeded


# --------------------------------------------------------------------------------------------
# Talking to the bot
# --------------------------------------------------------------------------------------------


def replies(
    user: ThreadedUser, *, timeout: float = REPLY_TIMEOUT, quiet: float = 0.6
) -> list[ChatMessage]:
    """What the bot did in reply to the user's last action: every message it sent or edited
    from the first one (within `timeout`) until it stays quiet for `quiet` seconds, each in its
    latest state. Raises TimeoutError when the bot says nothing."""
    events: list[ChatEvent] = [user.next_event(timeout)]
    while True:
        try:
            events.append(user.next_event(quiet))
        except TimeoutError:
            break
    latest: dict[int, ChatMessage] = {}
    for event in events:
        latest[event.message.message_id] = user.message(event.message.message_id)
    return [m for m in latest.values() if not m.deleted]


def ask(user: ThreadedUser, text: str) -> list[ChatMessage]:
    """Type `text` and return the bot's reply (see `replies`)."""
    user.drain()  # what came before belongs to earlier actions
    user.send_text(text)
    return replies(user)


def send_file(
    user: ThreadedUser, data: bytes, filename: str, mime_type: str | None = None
) -> list[ChatMessage]:
    """Send a document and return the bot's reply."""
    user.drain()
    user.send_document(data, filename=filename, mime_type=mime_type)
    return replies(user)


def press(user: ThreadedUser, message: ChatMessage, button: str) -> list[ChatMessage]:
    """Press an inline button (label or callback data), check that the bot acknowledged it,
    and return what it did next."""
    user.drain()
    callback = user.press(message, button)
    user.answer_for(callback, timeout=REPLY_TIMEOUT)
    return replies(user)


def text_of(messages: list[ChatMessage]) -> str:
    """The text (or captions) of several messages, one after another."""
    return "\n".join(m.content for m in messages)


def buttons_of(messages: list[ChatMessage]) -> list[tuple[str, str | None]]:
    """Every inline button of several messages, as (label, callback data or URL)."""
    return [pair for m in messages for row in m.buttons for pair in row]


def with_button(user: ThreadedUser, *words: str, timeout: float = REPLY_TIMEOUT) -> ChatMessage:
    """The first bot message (since the user's last action) with a button whose label or
    callback data contains one of `words` (case-insensitive)."""
    wanted = [w.casefold() for w in words]

    def matches(message: ChatMessage) -> bool:
        return any(
            any(w in f"{label} {value or ''}".casefold() for w in wanted)
            for row in message.buttons
            for label, value in row
        )

    return user.wait_for(matches, timeout)


def button_matching(message: ChatMessage, *words: str, avoid: tuple[str, ...] = ()) -> str:
    """The callback data of the message's first button whose label or data contains one of
    `words` and none of `avoid` (case-insensitive)."""
    for row in message.buttons:
        for label, value in row:
            haystack = f"{label} {value or ''}".casefold()
            if any(w.casefold() in haystack for w in words) and not any(
                a.casefold() in haystack for a in avoid
            ):
                assert value is not None
                return value
    raise LookupError(f"no button like {words} on {message.buttons}")


# --------------------------------------------------------------------------------------------
# Fixtures
# --------------------------------------------------------------------------------------------


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """A failing test's report shows what its bot processes logged."""
    report = yield
    if report.failed:
        for bot in item.stash.get(_BOTS_KEY, []):
            report.sections.append((f"bot process log ({bot.workdir})", bot.output[-20000:]))
    return report


@pytest.fixture
def bot_api() -> Iterator[ThreadedBotApi]:
    """The Bot API emulator, in a thread of the test process."""
    with ThreadedBotApi(bot_username="educonnect_test_bot") as api:
        yield api


@pytest.fixture
def bot_factory(
    request: pytest.FixtureRequest, bot_api: ThreadedBotApi, tmp_path: Path
) -> Iterator[Callable[..., BotProcess]]:
    """A factory of bot processes (not started yet), all stopped after the test; each on the
    database it is given, else a SQLite file in its own folder."""
    made: list[BotProcess] = []
    request.node.stash[_BOTS_KEY] = made

    def make(**options: Any) -> BotProcess:
        bot = BotProcess(bot_api, tmp_path / f"bot{len(made) + 1}", **options)
        made.append(bot)
        return bot

    yield make
    for bot in made:
        bot.close()


@pytest.fixture
def make_bot(
    bot_factory: Callable[..., BotProcess], database_url: str
) -> Callable[..., BotProcess]:
    """A factory of bot processes on the test's database (SQLite, then PostgreSQL)."""

    def make(**options: Any) -> BotProcess:
        options.setdefault("database_url", database_url)
        return bot_factory(**options)

    return make


@pytest.fixture
def bot(make_bot: Callable[..., BotProcess]) -> BotProcess:
    """The bot process, started and polling, with an empty database (SQLite, then
    PostgreSQL)."""
    process = make_bot()
    process.start()
    return process


@pytest.fixture
def school(bot: BotProcess) -> SeededSchool:
    """The demo school and a fresh director invitation, written through the services."""
    return bot.seed_school()


@pytest.fixture
def director(bot: BotProcess, bot_api: ThreadedBotApi, school: SeededSchool) -> ThreadedUser:
    """A Telegram user who became the school's director by sending `/start <code>`."""
    user = bot_api.new_user("Claire", last_name="Martin")
    reply = text_of(ask(user, f"/start {school.code}"))
    assert school.name in reply or school.uai in reply, reply
    return user


@pytest.fixture
def family(bot_api: ThreadedBotApi) -> ThreadedUser:
    """A Telegram user who directs nothing."""
    return bot_api.new_user("Léa", last_name="Dubois")


def smtp_env(server: SmtpTestServer) -> dict[str, str]:
    """The bot's settings for mailing through `server`."""
    return {
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(server.port),
        "SMTP_SECURITY": "none",
        "MAIL_FROM": "École Jules Ferry <no-reply@ecole-test.fr>",
    }


@pytest.fixture
def smtp() -> Iterator[SmtpTestServer]:
    """A local SMTP server that keeps what it accepts."""
    with SmtpTestServer() as server:
        yield server


@pytest.fixture
def portal_bot(make_bot: Callable[..., BotProcess], smtp: SmtpTestServer) -> BotProcess:
    """The bot, mailing through the test's SMTP server, its portal on a free local port (on
    SQLite, then PostgreSQL)."""
    port = free_port()
    process = make_bot(
        env=smtp_env(smtp)
        | {"PORTAL_BIND": f"127.0.0.1:{port}", "PORTAL_URL": f"http://127.0.0.1:{port}"}
    )
    process.start()
    return process
