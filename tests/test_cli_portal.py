"""`educonnect-bot portal`: the activation portal served without the bot, in one process or in
N worker processes on one database, as the operator runs it (a separate process, stopped by a
signal); its clear refusals; its hourly purge; and the bot serving no portal when told so."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine
from sqlmodel import select

from bot.config import Settings, get_settings
from bot.db import make_engine, session_scope
from bot.portal.account import ACCOUNT_PATH
from bot.portal.activation import FORM_PATH, WAITING_PATH
from bot.portal.login import ACTIVATION_PATH, LOGIN_PATH
from bot.portal.server import start_portal
from bot.portal.standalone import WORKERS_VARIABLE, HourlyPurge, create_app, password_slots
from models import PortalThrottle, utcnow
from tests.e2e.conftest import child_env
from tests.e2e.steps import CSRF, confirm_on_portal
from tests.mailtools import free_port
from tests.portal.conftest import NEW_PASSWORD, PORTAL_URL, Family, PortalHarness, make_family
from tests.postgres import PostgresServer
from tests.test_cli import Cli

START_TIMEOUT = 60.0
STOP_TIMEOUT = 20.0
LISTENING = re.compile(r"http://127\.0\.0\.1:(\d+)")


class PortalCommand:
    """`python -m bot portal --bind 127.0.0.1:0 …` in its own process group, its stderr read
    as it comes (the port it chose is in its first line)."""

    def __init__(self, workdir: Path, database_url: str, *args: str) -> None:
        env = child_env(
            DATA_DIR=str(workdir / "data"), DATABASE_URL=database_url, PORTAL_URL=PORTAL_URL
        )
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bot", "portal", "--bind", "127.0.0.1:0", *args],
            cwd=workdir,  # no .env there
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.url = f"http://127.0.0.1:{self._port()}"

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.append(line)

    @property
    def log(self) -> str:
        return "".join(self.lines)

    def _port(self) -> int:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline and self.process.poll() is None:
            found = LISTENING.search(self.log)
            if found:
                return int(found[1])
            time.sleep(0.05)
        raise AssertionError(f"the portal did not say where it listens:\n{self.log}")

    def wait_healthy(self) -> None:
        """Until /health answers 200 (the workers take a moment to import the app)."""
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.log
            try:
                if httpx.get(f"{self.url}/health", timeout=5).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"/health never answered:\n{self.log}")

    def workers(self) -> int:
        """How many worker processes the command spawned (its children running the app)."""
        count = 0
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
                command = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            parent = int(stat.rsplit(")", 1)[1].split()[1])
            if parent == self.process.pid and b"spawn_main" in command:
                count += 1
        return count

    def stop(self, signum: int) -> int:
        self.process.send_signal(signum)
        code = self.process.wait(STOP_TIMEOUT)
        self._reader.join(5)
        return code

    def kill(self) -> None:
        """After a failed test: the whole group, workers included."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(5)


def _activate_and_log_in(url: str, harness: PortalHarness, family: Family) -> httpx.Response:
    """The whole family flow, every request on a new connection (so that the workers share
    it): the letter's password, the form, the e-mailed link, then a login with the new one."""
    fresh = httpx.Limits(max_keepalive_connections=0)
    with httpx.Client(base_url=url, follow_redirects=True, timeout=30, limits=fresh) as browser:
        page = browser.get(ACTIVATION_PATH)
        form = {"identifier": family.identifier, "password": family.password}
        page = browser.post(ACTIVATION_PATH, data={**form, "csrf_token": _csrf(page)})
        assert page.url.path == FORM_PATH, page.text
        form = {
            "new_password": NEW_PASSWORD,
            "confirm_password": NEW_PASSWORD,
            "email": "famille@example.org",
            "birth_date": "14/03/2017",
        }
        page = browser.post(FORM_PATH, data={**form, "csrf_token": _csrf(page)})
        assert page.url.path == WAITING_PATH, page.text
        confirmed = confirm_on_portal(url + harness.link_path("activation_confirmation"))
        assert confirmed.status_code == 200, confirmed.text
        page = browser.get(LOGIN_PATH)
        form = {"identifier": family.identifier, "password": NEW_PASSWORD}
        return browser.post(LOGIN_PATH, data={**form, "csrf_token": _csrf(page)})


def _csrf(page: httpx.Response) -> str:
    found = CSRF.search(page.text)
    assert found, page.text
    return found[1]


@contextmanager
def listening_on(port: int = 0) -> Iterator[int]:
    """A socket listening on `port` (any free one by default) for the block: binding it proves
    nobody else holds the port, and holding it makes the port busy for the code under test."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))
        sock.listen(1)
        yield int(sock.getsockname()[1])


@pytest.fixture
def postgres_url(postgres_server: PostgresServer, postgres_template: str) -> str:
    return postgres_server.create_database("cli_portal", template=postgres_template)


@pytest.mark.postgres
async def test_two_worker_processes_on_postgresql_serve_a_family_and_stop_on_sigterm(
    postgres_url: str, tmp_path: Path
) -> None:
    engine = make_engine(postgres_url)
    harness = PortalHarness(engine, tmp_path)
    family = make_family(harness)
    command = PortalCommand(tmp_path, postgres_url, "--workers", "2")
    try:
        command.wait_healthy()
        assert command.workers() == 2

        reply = _activate_and_log_in(command.url, harness, family)

        assert reply.url.path == ACCOUNT_PATH and family.identifier in reply.text
        assert "server" not in reply.headers  # configured as the bot's embedded server
        assert command.stop(signal.SIGTERM) == 0
        assert "Traceback" not in command.log, command.log
        assert command.workers() == 0
    finally:
        command.kill()
        await harness.aclose()
        engine.dispose()


async def test_one_process_on_sqlite_lets_a_family_log_in_and_stops_on_sigint(
    sqlite_engine: Engine, tmp_path: Path
) -> None:
    harness = PortalHarness(sqlite_engine, tmp_path)
    family = make_family(harness)
    command = PortalCommand(tmp_path, str(sqlite_engine.url))
    try:
        command.wait_healthy()
        assert command.workers() == 0  # one worker: served by the command's own process
        with httpx.Client(base_url=command.url, timeout=30) as browser:
            page = browser.get(f"{ACTIVATION_PATH}?identifiant={family.identifier}")
            form = {"identifier": family.identifier, "password": family.password}
            reply = browser.post(ACTIVATION_PATH, data={**form, "csrf_token": _csrf(page)})
        assert reply.status_code == 303 and reply.headers["location"] == FORM_PATH

        assert command.stop(signal.SIGINT) == 0
        assert "Traceback" not in command.log, command.log
    finally:
        command.kill()
        await harness.aclose()


def test_a_busy_port_is_one_clear_error(tmp_path: Path) -> None:
    with listening_on() as port:
        result = Cli(tmp_path).run("portal", "--bind", f"127.0.0.1:{port}")
    assert result.returncode == 1
    [line] = result.stderr.splitlines()
    assert f"127.0.0.1:{port}" in line and "--bind" in line and "PORTAL_BIND" in line
    assert not (tmp_path / "data" / "educonnect.db").exists()  # refused before any migration


def test_a_malformed_address_is_one_clear_error(tmp_path: Path) -> None:
    result = Cli(tmp_path).run("portal", "--bind", "localhost")
    assert result.returncode == 1
    [line] = result.stderr.splitlines()
    assert "« localhost »" in line and "HOST:PORT" in line


def test_an_unreachable_database_is_one_clear_error_and_frees_the_port(tmp_path: Path) -> None:
    port = free_port()
    nowhere = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/educonnect"
    result = Cli(tmp_path, DATABASE_URL=nowhere).run("portal", "--bind", f"127.0.0.1:{port}")
    assert result.returncode == 1
    [line] = result.stderr.splitlines()
    assert "la base de données est inaccessible" in line
    with listening_on(port):
        pass  # the command closed its listening socket


def test_the_hourly_purge_deletes_stale_rows_at_start_then_stops_without_waiting(
    sqlite_engine: Engine,
) -> None:
    now, long_ago = utcnow(), utcnow() - timedelta(days=2)
    with session_scope(sqlite_engine) as session:
        session.add(PortalThrottle(key="stale", count=3, window_started_at=long_ago))
        session.add(PortalThrottle(key="counting", count=1, window_started_at=now))
        session.add(
            PortalThrottle(
                key="locked", count=5, window_started_at=long_ago, locked_until=now + timedelta(1)
            )
        )
    purge = HourlyPurge(sqlite_engine)
    purge.start()
    deadline = time.monotonic() + 10
    while purge.runs == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    started = time.monotonic()
    purge.stop()
    assert time.monotonic() - started < 2  # not an hour
    with session_scope(sqlite_engine) as session:
        kept = session.exec(select(PortalThrottle.key).order_by(PortalThrottle.key)).all()
    assert kept == ["counting", "locked"]


async def test_the_bot_serves_no_portal_when_portal_in_bot_is_false(
    sqlite_engine: Engine, tmp_path: Path
) -> None:
    port = free_port()
    settings = Settings(
        data_dir=tmp_path / "data", portal_bind=f"127.0.0.1:{port}", portal_in_bot=False
    )
    assert await start_portal(settings, sqlite_engine) is None
    with listening_on(port):
        pass  # nobody listens there


def test_the_workers_of_one_machine_share_its_cores_for_password_checks() -> None:
    assert [password_slots(workers, cores=4) for workers in (1, 2, 3, 4, 8)] == [4, 2, 1, 1, 1]
    assert password_slots(1, cores=1) == 1


def test_each_worker_app_takes_its_share_of_the_cores_from_the_parent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'educonnect.db'}")
    monkeypatch.setenv(WORKERS_VARIABLE, "2")
    get_settings.cache_clear()
    try:
        app = create_app()
    finally:
        get_settings.cache_clear()
    cores = len(os.sched_getaffinity(0))
    assert app.state.portal.password_slots._value == password_slots(2, cores)
