"""Faults (issue 14): `kill -9` at seeded random points of an ONDE import (the CLI), a send (the
CLI, to a real SMTP server) and an activation (the portal, in the bot process); then the restart
or the rerun an operator would do, and `check_invariants` finds nothing broken — no half import,
no e-mail lost, no account in an impossible state — and the work completes.

The kill points are printed (`pytest -s`): « import[sqlite] kill 1: 0.88 s after the lock, of
1.51 s (killed) ».
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from sqlalchemy import Engine, Table, select
from sqlmodel import Session

from bot.db import make_engine, session_scope, upgrade_schema
from bot.jobs import MAX_UNRECORDED
from bot.sandbox.botapi import ThreadedBotApi
from bot.sandbox.onde_generator import SchoolExtraction, generate_school
from bot.services.accounts import normalise_email, notify_accounts, verify_password
from bot.services.integrity import check_invariants
from bot.services.roster import import_roster
from bot.services.schools import add_school
from models import (
    Account,
    AccountState,
    Guardian,
    OutboxMessage,
    Pupil,
    PupilGuardian,
    SchoolClass,
)
from tests.e2e.conftest import BotProcess, child_env, smtp_env
from tests.e2e.steps import CSRF, link_in, mails_to
from tests.mailtools import SmtpTestServer, free_port, plain_text
from tests.postgres import PostgresServer

ACCOUNT: Table = Account.__table__  # type: ignore[attr-defined]
GUARDIAN: Table = Guardian.__table__  # type: ignore[attr-defined]
LINKS: Table = PupilGuardian.__table__  # type: ignore[attr-defined]
PUPIL: Table = Pupil.__table__  # type: ignore[attr-defined]
CLASS: Table = SchoolClass.__table__  # type: ignore[attr-defined]
OUTBOX: Table = OutboxMessage.__table__  # type: ignore[attr-defined]

# Issue 14: the same kill points at every run.
SEED = 14
KILLS = 3
NEW_PASSWORD = "Vacances-2027!"
PROCESS_TIMEOUT = 60.0
DIALECTS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


# --- Databases, processes, probes -------------------------------------------------------------


@dataclass
class Database:
    """One test database: its URL, an engine on it, and how to tell that a writer holds the
    school's row (the import's lock)."""

    url: str
    engine: Engine

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def school_locked(self, school_id: int) -> bool:
        """Whether another transaction holds the write lock an import takes (SQLite: the
        database's; PostgreSQL: the school's row)."""
        if self.dialect == "sqlite":
            path = self.engine.url.database
            assert path is not None
            probe = sqlite3.connect(path, timeout=0, isolation_level=None)
            try:
                probe.execute("BEGIN IMMEDIATE")
                probe.execute("ROLLBACK")
                return False
            except sqlite3.OperationalError:
                return True
            finally:
                probe.close()
        url = self.engine.url
        with psycopg.connect(
            host=url.host, port=url.port, user=url.username, dbname=url.database
        ) as server:
            try:
                server.execute("SELECT 1 FROM school WHERE id = %s FOR UPDATE NOWAIT", (school_id,))
                return False
            except psycopg.errors.LockNotAvailable:
                return True
            finally:
                server.rollback()


@pytest.fixture
def make_database(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[Callable[..., Database]]:
    """A factory of migrated, empty databases of one dialect (`make_database(dialect, name)`)."""
    made: list[Database] = []

    def make(dialect: str, name: str) -> Database:
        if dialect == "sqlite":
            url = f"sqlite:///{tmp_path / name / 'educonnect.db'}"
        else:
            server: PostgresServer = request.getfixturevalue("postgres_server")
            template: str = request.getfixturevalue("postgres_template")
            url = server.create_database(f"kill_{name}_{os.getpid()}", template=template)
        engine = make_engine(url)
        upgrade_schema(engine)
        made.append(Database(url, engine))
        return made[-1]

    yield make
    for database in made:
        database.engine.dispose()


# The CLI's processes are forked from one interpreter that has imported it already: each is a
# real process running `educonnect-bot ARGS` (`bot.cli.run`, what the console script calls),
# killed with SIGKILL, without paying the interpreter's start (seconds) at every kill.
_FORK_SERVER = r"""
import json, os, sys
import bot.cli
from bot.config import get_settings

for line in sys.stdin:
    request = json.loads(line)
    pid = os.fork()
    if pid == 0:
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        get_settings.cache_clear()
        log = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
        os.dup2(log, 1)
        os.dup2(log, 2)
        code = bot.cli.run(request["args"])
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    print(pid, flush=True)
    print(os.waitpid(pid, 0)[1], flush=True)
"""


class CliRun:
    """One `educonnect-bot` process forked by `ForkedCli`."""

    def __init__(self, pid: int, answers: queue.Queue[str], log: Path) -> None:
        self.pid = pid
        self._answers = answers
        self.log = log
        self.code: int | None = None

    def poll(self) -> int | None:
        """The exit code once the process has ended, else None."""
        if self.code is None:
            with contextlib.suppress(queue.Empty):
                self.code = os.waitstatus_to_exitcode(int(self._answers.get_nowait()))
        return self.code

    def wait(self, timeout: float = PROCESS_TIMEOUT) -> int:
        if self.code is None:
            status = int(self._answers.get(timeout=timeout))
            self.code = os.waitstatus_to_exitcode(status)
        return self.code

    def kill(self) -> bool:
        """kill -9; whether the process was still running (else it had finished, and well)."""
        running = self.poll() is None
        if running:
            os.kill(self.pid, signal.SIGKILL)
        code = self.wait(10)
        if not running:
            assert code == 0, self.log.read_text("utf-8", errors="replace")
        return running


class ForkedCli:
    """Runs `educonnect-bot ARGS` in processes forked from a warm interpreter, one at a time."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.server = subprocess.Popen(
            [sys.executable, "-c", _FORK_SERVER],
            cwd=workdir,
            env=child_env(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self._answers: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self._runs = 0

    def _read(self) -> None:
        assert self.server.stdout is not None
        for line in self.server.stdout:
            self._answers.put(line.strip())

    def start(self, database: Database, *args: str, **env: str) -> CliRun:
        """Start `educonnect-bot ARGS` on `database` (settings `env` beside it)."""
        assert self.server.stdin is not None
        self._runs += 1
        log = self.workdir / f"cli-{self._runs}.log"
        request = {
            "args": list(args),
            "cwd": str(self.workdir),
            "log": str(log),
            "env": child_env(DATABASE_URL=database.url, DATA_DIR=str(self.workdir / "data"), **env),
        }
        self.server.stdin.write(json.dumps(request) + "\n")
        self.server.stdin.flush()
        return CliRun(int(self._answers.get(timeout=120)), self._answers, log)

    def run(self, database: Database, *args: str, **env: str) -> None:
        """`educonnect-bot ARGS` to its end, which must be a success."""
        done = self.start(database, *args, **env)
        assert done.wait() == 0, done.log.read_text("utf-8", errors="replace")

    def close(self) -> None:
        # Idle between requests, it holds nothing: no need to wait for its interpreter to
        # tear down.
        self.server.kill()
        self.server.wait(10)


@pytest.fixture(scope="module")
def cli(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ForkedCli]:
    """One warm interpreter for every CLI process of this module (each request carries its
    own settings)."""
    forked = ForkedCli(tmp_path_factory.mktemp("cli"))
    yield forked
    forked.close()


def wait_for(condition: Callable[[], bool], process: CliRun) -> bool:
    """Poll `condition` until it holds (True) or the process has exited (False)."""
    deadline = time.monotonic() + PROCESS_TIMEOUT
    while not condition():
        if process.poll() is not None:
            return False
        assert time.monotonic() < deadline, "the process neither got there nor exited"
        time.sleep(0.01)
    return True


def assert_consistent(engine: Engine, where: str) -> None:
    assert check_invariants(engine) == [], where


# --- (a) An ONDE import by the CLI -------------------------------------------------------------


def roster_facts(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    """What an import wrote, without the ids: pupils and classes, guardians with their account,
    and who is linked to whom."""
    with Session(engine) as session:
        pupils = session.execute(
            select(PUPIL.c.last_name, PUPIL.c.first_name, PUPIL.c.birth_date, CLASS.c.label)
            .select_from(PUPIL)
            .outerjoin(CLASS, CLASS.c.id == PUPIL.c.class_id)
        ).all()
        accounts = session.execute(
            select(
                ACCOUNT.c.identifier, ACCOUNT.c.state, GUARDIAN.c.last_name, GUARDIAN.c.email
            ).join(GUARDIAN, GUARDIAN.c.id == ACCOUNT.c.guardian_id)
        ).all()
        links = session.execute(
            select(PUPIL.c.last_name, PUPIL.c.first_name, PUPIL.c.birth_date, ACCOUNT.c.identifier)
            .join(LINKS, LINKS.c.pupil_id == PUPIL.c.id)
            .join(ACCOUNT, ACCOUNT.c.guardian_id == LINKS.c.guardian_id)
        ).all()
    return {
        name: sorted(tuple(map(str, row)) for row in rows)
        for name, rows in (("pupils", pupils), ("accounts", accounts), ("links", links))
    }


def registered(database: Database, extraction: SchoolExtraction) -> int:
    with session_scope(database.engine) as session:
        school = add_school(session=session, uai=extraction.uai, name=extraction.name, actor="test")
        assert school.id is not None
        return school.id


@pytest.mark.parametrize("dialect", DIALECTS)
def test_an_import_killed_at_random_points_is_whole_or_absent_and_its_rerun_equals_a_clean_one(
    dialect: str, make_database: Callable[..., Database], cli: ForkedCli, tmp_path: Path
) -> None:
    rng = random.Random(f"{SEED}:import:{dialect}")
    extraction = generate_school(seed=SEED, pupils=1200, index=7)
    eleves, responsables = extraction.write(tmp_path / "onde")
    # The clean import, by the same CLI: what every rerun must equal, and how long it holds
    # the school's lock (the kill points are drawn within that time).
    clean = make_database(dialect, "clean")
    school_id = registered(clean, extraction)
    process = cli.start(clean, "import", extraction.uai, str(eleves), str(responsables))
    assert wait_for(lambda: clean.school_locked(school_id), process)
    started = time.monotonic()
    assert process.wait() == 0, process.log.read_text("utf-8")
    writing = time.monotonic() - started
    expected = roster_facts(clean.engine)
    assert len(expected["accounts"]) > 1000

    target = make_database(dialect, "target")
    school_id = registered(target, extraction)
    empty = roster_facts(target.engine)
    for number in range(1, KILLS + 1):
        delay = rng.uniform(0.05, 0.6) * writing
        process = cli.start(target, "import", extraction.uai, str(eleves), str(responsables))
        locked = wait_for(lambda: target.school_locked(school_id), process)
        time.sleep(delay if locked else 0)
        killed = process.kill()
        print(
            f"import[{dialect}] kill {number}: {delay:.2f} s after the lock, of {writing:.2f} s "
            f"({'killed' if killed else 'the import had finished'})"
        )
        assert_consistent(target.engine, f"after kill {number}")
        assert roster_facts(target.engine) in (empty, expected), "a half import"

    cli.run(target, "import", extraction.uai, str(eleves), str(responsables))
    assert roster_facts(target.engine) == expected
    assert_consistent(target.engine, "after the rerun")


# --- (b) A send by the CLI, to a real SMTP server ----------------------------------------------


def emailed_accounts(engine: Engine) -> dict[str, int]:
    """Usable address → account id, for the guardians an e-mail can reach."""
    with Session(engine) as session:
        rows = session.execute(
            select(GUARDIAN.c.email, ACCOUNT.c.id).join(
                ACCOUNT, ACCOUNT.c.guardian_id == GUARDIAN.c.id
            )
        ).all()
    found = {}
    for address, account_id in rows:
        usable = normalise_email(address) if address else None
        if usable:
            found[usable] = account_id
    return found


def outbox_rows(engine: Engine) -> int:
    with Session(engine) as session:
        return len(session.execute(select(OUTBOX.c.id)).all())


@pytest.mark.parametrize("dialect", DIALECTS)
def test_a_send_killed_at_random_points_loses_no_email_once_the_worker_restarts(
    dialect: str, make_database: Callable[..., Database], cli: ForkedCli, smtp: SmtpTestServer
) -> None:
    rng = random.Random(f"{SEED}:send:{dialect}")
    smtp.handler.delay = 0.01  # a mail server a little slow: the kill lands mid-batch
    database = make_database(dialect, "send")
    extraction = generate_school(seed=SEED, pupils=40, index=8)
    school_id = registered(database, extraction)
    with session_scope(database.engine) as session:
        import_roster(session=session, school_id=school_id, files=extraction.files, actor="test")
    addresses = emailed_accounts(database.engine)
    assert len(addresses) >= 30
    env = smtp_env(smtp)
    # First credentials, then new passwords twice: each run is killed once.
    runs = [["send", extraction.uai, "ecole", "--yes"]] + [
        ["send", extraction.uai, "ecole", "--reset", "--yes"]
    ] * (KILLS - 1)
    for number, args in enumerate(runs, 1):
        before_rows, before_mails = outbox_rows(database.engine), len(smtp.messages)
        target = rng.randint(0, len(addresses) - 1)
        process = cli.start(database, *args, **env)
        if target == 0:  # right after the e-mails are written to the outbox
            reached = wait_for(
                partial(lambda rows: outbox_rows(database.engine) > rows, before_rows), process
            )
        else:
            wanted = before_mails + target
            reached = wait_for(partial(lambda n: len(smtp.messages) >= n, wanted), process)
        killed = process.kill()
        print(
            f"send[{dialect}] kill {number}: after {target} e-mail(s) of the run "
            f"({'killed' if killed and reached else 'the send had finished'}, "
            f"{len(smtp.messages) - before_mails} accepted)"
        )
        assert_consistent(database.engine, f"after kill {number}")
        # The restart: a worker recovers what the dead sender left and sends the rest.
        cli.run(database, "worker", "--once", **env)
        assert_consistent(database.engine, f"after the worker, kill {number}")
        received = Counter(a for m in smtp.messages[before_mails:] for a in m.rcpt_tos)
        assert set(received) == set(addresses), f"run {number}: e-mails lost"
        # Sent twice at most: what the dead sender had sent but not yet recorded.
        assert sum(received.values()) - len(received) <= MAX_UNRECORDED

    # Each family's latest e-mail carries the password that works now.
    latest = {message.rcpt_tos[0]: message for message in smtp.messages}
    with Session(database.engine) as session:
        for address, account_id in addresses.items():
            account = session.get(Account, account_id)
            assert account is not None and account.state == AccountState.NOTIFIED
            text = plain_text(latest[address].parsed())
            words = {w for w in text.split() if len(w) == 8 and w.isalnum() and w.isupper()}
            assert any(verify_password(account.password_hash, w) for w in words), address


# --- (c) An activation on the portal of the bot process ----------------------------------------


@dataclass(frozen=True)
class Letter:
    account_id: int
    identifier: str
    password: str
    birth_date: str


def printed_letters(bot: BotProcess, count: int) -> list[Letter]:
    """The demo school imported and `count` letters printed: identifiers and passwords."""
    school = bot.seed_school()
    extraction = generate_school(seed=SEED, pupils=30, index=9)
    bot.service(import_roster, school_id=school.id, files=extraction.files, actor="test")
    with session_scope(bot.database()) as session:
        rows = session.execute(
            select(ACCOUNT.c.id, PUPIL.c.birth_date)
            .join(LINKS, LINKS.c.guardian_id == ACCOUNT.c.guardian_id)
            .join(PUPIL, PUPIL.c.id == LINKS.c.pupil_id)
            .where(PUPIL.c.birth_date.is_not(None))
            .order_by(ACCOUNT.c.id)
        ).all()
        born = dict(reversed(rows))
        chosen = sorted(born)[:count]
        issued = notify_accounts(session=session, account_ids=chosen, actor="test").issued
    return [
        Letter(
            c.account_id, c.identifier, c.password or "", born[c.account_id].strftime("%d/%m/%Y")
        )
        for c in issued
    ]


def fill_in_the_form(portal: str, letter: Letter, email: str) -> Callable[[], httpx.Response]:
    """Log in with the letter and open the form; returns the form's submission, to call."""
    browser = httpx.Client(follow_redirects=True, timeout=30)
    page = browser.get(f"{portal}/activation")
    csrf = CSRF.search(page.text)
    assert csrf, page.text
    form = browser.post(
        f"{portal}/activation",
        data={"csrf_token": csrf[1], "identifier": letter.identifier, "password": letter.password},
    )
    csrf = CSRF.search(form.text)
    assert form.status_code == 200 and csrf and "/activation/finaliser" in str(form.url), form.text

    def submit() -> httpx.Response:
        try:
            return browser.post(
                f"{portal}/activation/finaliser",
                data={
                    "csrf_token": csrf[1],
                    "new_password": NEW_PASSWORD,
                    "confirm_password": NEW_PASSWORD,
                    "email": email,
                    "birth_date": letter.birth_date,
                },
            )
        finally:
            browser.close()

    return submit


def confirm(link: str) -> Callable[[], httpx.Response]:
    """Open the confirmation link; returns the press of its button, to call."""
    browser = httpx.Client(follow_redirects=True, timeout=30)
    page = browser.get(link)
    csrf = CSRF.search(page.text)
    assert csrf, page.text

    def press() -> httpx.Response:
        try:
            return browser.post(link, data={"csrf_token": csrf[1]})
        finally:
            browser.close()

    return press


def killed_during(bot: BotProcess, request: Callable[[], httpx.Response], delay: float) -> None:
    """Send `request` and kill -9 the bot `delay` seconds later, whatever it was doing; then
    start it again."""
    outcome: list[Any] = []
    thread = threading.Thread(target=lambda: outcome.append(_attempt(request)))
    thread.start()
    time.sleep(delay)
    assert bot.process is not None
    bot.process.send_signal(signal.SIGKILL)
    bot.process.wait(10)
    thread.join(30)
    assert bot.stop() == -signal.SIGKILL
    bot.start()


def _attempt(request: Callable[[], httpx.Response]) -> Any:
    try:
        return request()
    except httpx.HTTPError as error:  # the connection died with the process
        return error


def account_state(bot: BotProcess, account_id: int) -> AccountState:
    with Session(bot.database()) as session:
        account = session.get(Account, account_id)
        assert account is not None
        return AccountState(account.state)


# On PostgreSQL, as a district's portal runs; the portal's activation is tested on both databases
# in tests/portal/.
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_an_activation_killed_at_random_points_happens_whole_or_not_at_all_and_can_be_redone(
    make_bot: Callable[..., BotProcess], bot_api: ThreadedBotApi, smtp: SmtpTestServer
) -> None:
    rng = random.Random(f"{SEED}:activation")
    port = free_port()
    portal = f"http://127.0.0.1:{port}"
    bot = make_bot(env=smtp_env(smtp) | {"PORTAL_BIND": f"127.0.0.1:{port}", "PORTAL_URL": portal})
    bot.start()
    letters = printed_letters(bot, KILLS)
    # Where each kill lands: while the form is sent (password hashed, account and e-mail
    # written), or while the confirmation link is followed.
    moments = ["form", "confirmation", "form"]
    for number, (letter, moment) in enumerate(zip(letters, moments, strict=True), 1):
        email = f"famille.{letter.account_id}@exemple.fr"
        if moment == "form":
            delay = rng.uniform(0.0, 0.6)
            killed_during(bot, fill_in_the_form(portal, letter, email), delay)
        else:
            response = fill_in_the_form(portal, letter, email)()
            assert "/activation/attente" in str(response.url), response.text
            delay = rng.uniform(0.0, 0.05)
            killed_during(bot, confirm(link_in(mails_to(smtp, email)[-1])), delay)
        state = account_state(bot, letter.account_id)
        print(f"activation kill {number}: {delay:.3f} s into the {moment} → {state.value}")
        assert_consistent(bot.database(), f"after kill {number}")
        # Whole or nothing: still notified (do it again), activating (its e-mail on its way),
        # or activated.
        if state == AccountState.NOTIFIED:
            response = fill_in_the_form(portal, letter, email)()
            assert "/activation/attente" in str(response.url), response.text
            state = account_state(bot, letter.account_id)
        if state == AccountState.ACTIVATING:
            confirmed = confirm(link_in(mails_to(smtp, email)[-1]))()
            assert confirmed.status_code == 200, confirmed.text
        assert account_state(bot, letter.account_id) == AccountState.ACTIVATED
        assert_consistent(bot.database(), f"after activation {number} was finished")
