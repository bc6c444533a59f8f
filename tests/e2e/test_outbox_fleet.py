"""Issue 14, a fleet of senders: two `educonnect-bot worker` processes and the bot drain a
5,000-message outbox on one PostgreSQL to a real SMTP server while each worker is killed with
`kill -9` at a seeded random point and started again. Every message reaches the server, every
row is recorded ``sent`` once, every account is notified once, and the messages sent twice are
within the documented bound (`MAX_UNRECORDED` per kill).

The seed and the kill points are printed (`pytest -s`); OUTBOX_FLEET_SEED replays a run.
"""

from __future__ import annotations

import os
import random
import re
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import timedelta
from email.message import Message
from pathlib import Path
from typing import Any, cast

import pytest
from sqlalchemy import Engine, Table, func, insert, select
from sqlmodel import Session, col

from bot.db import make_engine, session_scope, upgrade_schema
from bot.jobs import MAX_UNRECORDED
from bot.services.accounts import CredentialKind
from bot.services.integrity import check_invariants
from bot.services.mail import OutgoingEmail, credentials_kind, enqueue_many
from models import (
    Account,
    AccountState,
    AuditEvent,
    Guardian,
    OutboxMessage,
    OutboxStatus,
    Pupil,
    PupilGuardian,
    School,
    SchoolClass,
    utcnow,
)
from tests.e2e.conftest import BotProcess, child_env, smtp_env
from tests.mailtools import MAIL_FROM, SmtpTestServer, free_port
from tests.postgres import PostgresServer

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.timeout(120)]

MESSAGES = int(os.environ.get("OUTBOX_FLEET_MESSAGES") or 5000)
BATCH = "fleet"


# --- Seeding -------------------------------------------------------------------------------


def _table(model: type) -> Table:
    return cast(Table, model.__table__)  # type: ignore[attr-defined]


def _inserted_ids(session: Session, model: type, rows: list[dict[str, Any]]) -> list[int]:
    table = _table(model)
    statement = insert(table).returning(table.c.id, sort_by_parameter_order=True)
    return list(session.execute(statement, rows).scalars())


def seed_outbox(engine: Engine, count: int) -> list[int]:
    """A school of `count` guardians, each with a child and an account whose first password is
    outstanding, and its credential e-mail in the outbox, all written in bulk (the builders and
    hashing 5,000 real passwords take minutes and prove nothing here). Returns the account ids."""
    now = utcnow()
    with session_scope(engine) as session:
        school = School(uai="0599999Z", name="École de la flotte", city="Lille")
        session.add(school)
        session.flush()
        assert school.id is not None
        klass = SchoolClass(school_id=school.id, label="CM1", label_key="cm1", levels="CM1")
        session.add(klass)
        session.flush()
        person = {"school_id": school.id, "created_at": now, "updated_at": now}
        pupils = _inserted_ids(
            session,
            Pupil,
            [
                person | {"class_id": klass.id, "first_name": "Enfant", "last_name": f"N{n}"}
                for n in range(count)
            ],
        )
        guardians = _inserted_ids(
            session,
            Guardian,
            [
                person | {"first_name": "Parent", "last_name": f"N{n}", "email": _address(n)}
                for n in range(count)
            ],
        )
        session.execute(
            insert(_table(PupilGuardian)),
            [{"pupil_id": p, "guardian_id": g} for p, g in zip(pupils, guardians, strict=True)],
        )
        accounts = _inserted_ids(
            session,
            Account,
            [
                {
                    "guardian_id": guardian,
                    "identifier": f"parent.n{n}",
                    "state": AccountState.NOT_NOTIFIED,
                    "password_hash": "$argon2id$v=19$m=65536,t=3,p=4$c2VlZA$ZmxlZXQ",
                    "provisional_expires_at": now + timedelta(days=30),
                    "created_at": now,
                }
                for n, guardian in enumerate(guardians)
            ],
        )
        emails = []
        for number, account_id in enumerate(accounts):
            # The legacy policy: the modern one spends seconds parsing 5,000 address headers.
            message = Message()
            message["To"] = _address(number)
            message["From"] = MAIL_FROM
            message["Subject"] = "Vos identifiants EduConnect"
            message.set_payload(f"Identifiant parent.n{number}\n")
            emails.append(
                OutgoingEmail(
                    message=message,
                    kind=credentials_kind(CredentialKind.FIRST),
                    account_id=account_id,
                    recipient=_address(number),
                )
            )
        enqueue_many(session=session, emails=emails, school_id=school.id, batch_id=BATCH)
    return accounts


def _address(number: int) -> str:
    return f"famille{number}@example.org"


_MESSAGE_ID = re.compile(rb"^Message-ID:\s*(\S+)", re.MULTILINE | re.IGNORECASE)


def message_id_of(data: bytes) -> str:
    """The Message-ID of a received message (found, not parsed: 5,000 parses take long)."""
    found = _MESSAGE_ID.search(data)
    assert found is not None, data[:500]
    return found.group(1).decode()


# --- The fleet -----------------------------------------------------------------------------


class Worker:
    """`python -m bot worker`, restartable, its output kept for a failing test's report."""

    def __init__(self, name: str, env: dict[str, str], workdir: Path) -> None:
        self.name = name
        self.env = env
        self.workdir = workdir
        self.process: subprocess.Popen[bytes] | None = None
        self.logs: list[Path] = []

    def start(self) -> None:
        log_path = self.workdir / f"{self.name}-{len(self.logs) + 1}.log"
        self.logs.append(log_path)
        with log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "bot", "worker"],
                cwd=self.workdir,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    @property
    def worker_prefix(self) -> str:
        """How its claims are named in `claimed_by` (« host:pid: »)."""
        assert self.process is not None
        return f"{socket.gethostname()}:{self.process.pid}:"

    def wait_until_sending(self, timeout: float = 60) -> None:
        """Until the process last started runs its sender (a SIGTERM before that, during the
        imports, would end it with -15: nothing is lost, but it is not the clean stop)."""
        _wait_for(
            lambda: "outbox sender" in self.logs[-1].read_text("utf-8", errors="replace"),
            f"{self.name} did not start its sender",
            timeout=timeout,
        )

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> int:
        """SIGTERM, as a service manager stops it; its exit code."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        return int(self.process.returncode)

    @property
    def output(self) -> str:
        return "\n".join(
            f"--- {path.name} ---\n{path.read_text('utf-8', errors='replace')}"
            for path in self.logs
        )


def _wait_for(
    condition: Callable[[], bool], what: str, timeout: float = 30, every: float = 0.05
) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(every)


def _claimed_by(engine: Engine, prefix: str) -> int:
    with Session(engine) as session:
        return int(
            session.execute(
                select(func.count())
                .select_from(OutboxMessage)
                .where(
                    col(OutboxMessage.status) == OutboxStatus.SENDING,
                    col(OutboxMessage.claimed_by).startswith(prefix),
                )
            ).scalar_one()
        )


def _statuses(engine: Engine) -> Counter[str]:
    with Session(engine) as session:
        return Counter(
            {
                str(status): int(count)
                for status, count in session.execute(
                    select(col(OutboxMessage.status), func.count()).group_by(OutboxMessage.status)
                )
            }
        )


@pytest.fixture
def fleet_database(postgres_server: PostgresServer, postgres_template: str) -> Iterator[str]:
    """A fresh database on the test PostgreSQL, copied from the migrated template."""
    name = f"fleet_{os.environ.get('PYTEST_XDIST_WORKER', 'main')}_{os.getpid()}"
    url = postgres_server.create_database(name, template=postgres_template)
    yield url


def test_two_workers_and_the_bot_killed_and_restarted_send_each_message_once(
    fleet_database: str,
    bot_factory: Callable[..., BotProcess],
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    seed = int(os.environ.get("OUTBOX_FLEET_SEED") or random.randrange(1_000_000))
    print(f"\noutbox fleet: seed {seed} (OUTBOX_FLEET_SEED={seed} replays it)")
    chance = random.Random(seed)
    engine = make_engine(fleet_database)
    upgrade_schema(engine)
    started = time.monotonic()
    account_ids = seed_outbox(engine, MESSAGES)
    print(f"outbox fleet: {MESSAGES} messages seeded in {time.monotonic() - started:.1f} s")

    workers: list[Worker] = []
    with SmtpTestServer() as server:
        env = child_env(
            DATABASE_URL=fleet_database, DATA_DIR=str(tmp_path / "data"), **smtp_env(server)
        )
        workers = [Worker(f"worker{n}", env, tmp_path) for n in (1, 2)]
        portal = f"127.0.0.1:{free_port()}"
        bot = bot_factory(
            database_url=fleet_database,
            env=smtp_env(server) | {"PORTAL_BIND": portal, "PORTAL_URL": f"http://{portal}"},
        )
        try:
            started = time.monotonic()
            for worker in workers:
                worker.start()
            first_pids = [worker.process.pid for worker in workers if worker.process]
            bot.start()
            bot_pid = bot.process.pid if bot.process else None
            # Kill points: each worker at a random share of the outbox, the second after the
            # first, both well before the end so that they are sending when killed.
            points = sorted(chance.uniform(0.1, 0.7) for _ in workers)
            victims = chance.sample(workers, len(workers))
            for victim, share in zip(victims, points, strict=True):
                target = int(MESSAGES * share)
                _wait_for(
                    lambda target=target: len(server.messages) >= target,  # type: ignore[misc]
                    f"the fleet stalled before {target} messages",
                )
                prefix = victim.worker_prefix
                _wait_for(
                    lambda prefix=prefix: _claimed_by(engine, prefix) > 0,  # type: ignore[misc]
                    f"{victim.name} held no claim to be killed with",
                    timeout=10,
                )
                victim.kill()
                print(
                    f"outbox fleet: {victim.name} killed at {len(server.messages)} messages "
                    f"received ({share:.0%} of the outbox)"
                )
                victim.start()
            _wait_for(
                lambda: _statuses(engine) == Counter({"sent": MESSAGES}),
                f"the outbox did not drain: {_statuses(engine)}",
                timeout=60,
                every=0.5,  # a query over the whole outbox: not too often
            )
            elapsed = time.monotonic() - started
            print(f"outbox fleet: drained in {elapsed:.1f} s")
            for worker in workers:
                worker.wait_until_sending()
                assert worker.stop() == 0, worker.output[-5000:]
        except BaseException:
            for worker in workers:
                request.node.add_report_section("call", worker.name, worker.output[-20000:])
            raise
        finally:
            for worker in workers:
                if worker.process is not None and worker.process.poll() is None:
                    worker.process.kill()
                    worker.process.wait(10)
        received = Counter(message_id_of(message.data) for message in server.messages)

    # Every message reached the server; the ones sent twice are within the bound.
    assert len(received) == MESSAGES
    duplicates = sum(count - 1 for count in received.values())
    print(f"outbox fleet: {duplicates} message(s) sent twice (bound {2 * MAX_UNRECORDED})")
    assert duplicates <= MAX_UNRECORDED * len(workers)
    with Session(engine) as session:
        outbox = session.scalars(select(OutboxMessage)).all()
        assert len(outbox) == MESSAGES
        assert all(row.status == OutboxStatus.SENT and row.body is None for row in outbox)
        assert {row.message_id for row in outbox} == set(received)
        # The work was shared: the bot and both workers (before their kill) each sent some.
        pids = Counter(str(row.claimed_by).split(":")[1] for row in outbox)
        print(f"outbox fleet: rows recorded per process id: {dict(pids)}")
        for pid in (bot_pid, *first_pids):
            assert pids[str(pid)] > 0, f"process {pid} sent nothing: {pids}"
        states = Counter(
            session.scalars(
                select(col(Account.state)).where(col(Account.id).in_(account_ids))
            ).all()
        )
        assert states == Counter({AccountState.NOTIFIED: MESSAGES})
        notified = Counter(
            session.scalars(
                select(col(AuditEvent.account_id)).where(
                    col(AuditEvent.action).in_(["account.notified", "account.renotified"])
                )
            ).all()
        )
        assert notified == Counter(account_ids), "an account was notified twice or never"
    assert check_invariants(engine) == []
    engine.dispose()
