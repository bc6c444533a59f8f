"""Issue 14, PostgreSQL restarted under load: while users send commands and the bot's outbox
sender is mailing, `pg_ctl restart -m fast` cuts every connection. The bot keeps running (no
restart), a command caught by the restart gets the clear « try again » message (never silence),
every command sent after the restart is answered normally, and the outbox drains with no
message lost or sent twice.

The restart happens on a PostgreSQL of this test's own, not the session's shared one.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import httpx
import pytest
from sqlalchemy import func, select
from sqlmodel import Session, col

from bot.sandbox.botapi import ThreadedBotApi, ThreadedUser
from bot.services.integrity import check_invariants
from models import OutboxMessage
from tests.e2e.conftest import BotProcess, replies, smtp_env, text_of
from tests.e2e.test_outbox_fleet import message_id_of, seed_outbox
from tests.mailtools import SmtpTestServer, free_port
from tests.postgres import PostgresServer

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.timeout(120)]

# The error handler's words (handlers.on_error), in English or French.
TRY_AGAIN = ("try again in a moment", "réessayez dans un instant")
MESSAGES = 400


@pytest.fixture
def own_postgres() -> Iterator[PostgresServer]:
    """A PostgreSQL server for this test alone: it is restarted under the bot's feet."""
    server = PostgresServer()
    reason = server.unavailable_reason
    if reason:
        pytest.skip(f"PostgreSQL tests skipped: {reason}")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@dataclass(frozen=True)
class Exchange:
    """One command a user sent and what the bot answered (empty: nothing at all)."""

    user: str
    command: str
    sent_at: float  # monotonic
    answer: str

    @property
    def try_again(self) -> bool:
        return any(words in self.answer for words in TRY_AGAIN)


class Load:
    """Users sending commands one after another, each waiting for the bot's answer."""

    def __init__(self, users: dict[str, tuple[ThreadedUser, str]]) -> None:
        self.users = users
        self.exchanges: list[Exchange] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._talk, args=(name,), daemon=True) for name in users
        ]

    def _talk(self, name: str) -> None:
        user, command = self.users[name]
        while not self._stop.is_set():
            user.drain()
            sent_at = time.monotonic()
            user.send_text(command)
            try:
                answer = text_of(replies(user, timeout=20, quiet=0.3))
            except TimeoutError:
                answer = ""
            with self._lock:
                self.exchanges.append(Exchange(name, command, sent_at, answer))

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(30)


def _wait_for(condition: Callable[[], bool], what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


def test_postgresql_restarted_under_load_the_bot_answers_and_mails_on(
    own_postgres: PostgresServer,
    bot_factory: Callable[..., BotProcess],
    bot_api: ThreadedBotApi,
) -> None:
    with SmtpTestServer() as smtp:
        smtp.handler.delay = 0.02  # the sender is still mailing when the database restarts
        portal = f"127.0.0.1:{free_port()}"
        bot = bot_factory(
            database_url=own_postgres.create_database("educonnect"),
            env=smtp_env(smtp) | {"PORTAL_BIND": portal, "PORTAL_URL": f"http://{portal}"},
        )
        bot.start()
        pid = bot.process.pid if bot.process else None
        school = bot.seed_school()
        director = bot_api.new_user("Claire", last_name="Martin")
        director.send_text(f"/start {school.code}")
        assert school.name in text_of(replies(director)), "the director did not join"
        family = bot_api.new_user("Léa", last_name="Dubois")
        engine = bot.database()
        seed_outbox(engine, MESSAGES)
        _wait_for(lambda: len(smtp.messages) >= 20, "the bot's sender did not start mailing")

        load = Load({"director": (director, "/classes"), "family": (family, "/aide")})
        with load:
            time.sleep(1.0)  # answered normally before
            restart_began = time.monotonic()
            own_postgres.restart()
            restarted = time.monotonic()
            print(f"\nPostgreSQL restarted in {restarted - restart_began:.1f} s")
            time.sleep(3)  # and after
            # The portal, on the same engine, answers from the database again too.
            health = httpx.get(f"http://{portal}/health", timeout=10)
            assert (health.status_code, health.json().get("database")) == (200, "ok")
        _wait_for(
            lambda: len({message_id_of(m.data) for m in smtp.messages}) >= MESSAGES,
            "the outbox did not drain after the restart",
        )
        received = Counter(message_id_of(message.data) for message in smtp.messages)

    for line in bot.output.splitlines():  # what the operator would read (pytest -s)
        if " WARNING " in line or " ERROR " in line:
            print(line[:300])
    assert bot.running and bot.process is not None and bot.process.pid == pid
    assert bot.exit_codes == [], "the bot was restarted"
    exchanges = load.exchanges
    for name in load.users:
        mine = [e for e in exchanges if e.user == name]
        assert any(e.sent_at < restart_began for e in mine), f"{name}: nothing before"
        assert any(e.sent_at > restarted for e in mine), f"{name}: nothing after"
    silent = [e for e in exchanges if not e.answer]
    assert not silent, f"commands left unanswered: {silent}"
    caught = [e for e in exchanges if e.try_again]
    print(f"{len(exchanges)} commands, {len(caught)} answered « try again »")
    # Only what was sent before the server accepted connections again may fail.
    assert all(e.sent_at < restarted for e in caught), caught
    late = [e for e in exchanges if e.sent_at > restarted]
    assert late and not any(e.try_again for e in late)

    # The bot's sender came back by itself: every message once, nothing left behind.
    assert len(received) == MESSAGES
    assert set(received.values()) == {1}, "a message was sent twice"
    with Session(engine) as session:
        statuses: dict[str, int] = dict(
            session.execute(
                select(col(OutboxMessage.status), func.count()).group_by(OutboxMessage.status)
            ).all()
        )
    assert statuses == {"sent": MESSAGES}, statuses
    assert check_invariants(engine) == []
