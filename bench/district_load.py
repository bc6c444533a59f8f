"""Benchmark of issue 14, « Load »: 500 families and 50 directors of 10 schools through the local
Bot API server, to one bot process on PostgreSQL; one director per school sends `/envoyer` for
the whole school, mailed by the bot's outbox sender to a real SMTP server. The echo bot gets
the same people on the same schedule.

Checks: every update gets its complete reply exactly once, each help request one notice per
director of its school, each school one e-mail per guardian with an address; reports updates/s,
p50/p95/max per command and the bot's memory (VmRSS every second) after the warm-up, at the end,
and its slope. The harness is `bench.bot_load`'s (the emulator in a thread of this process,
`python -m bot run` as a subprocess, latencies from the emulator's call log).

    python -m bench district-load [--full | --minutes N | --quick] [--no-write]

The default run (60 s) refreshes the « district_load » section of RESULTS.md; `--full` (5
minutes) and `--minutes N` (for the memory trend) the « district_load_long » one.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from bench.bot_load import (
    REPLY_TIMEOUT,
    BotUnderTest,
    Phase,
    Sent,
    account_replies,
    child_env,
    ms,
    onboard,
    percentile,
)
from bench.district import SeededDistrict, seed_district
from bench.load_probes import (
    FLAT_WHY,
    SAMPLE_SECONDS,
    Mail,
    Memory,
    Notifications,
    RssSampler,
    SmtpRecorder,
    account_mail,
    account_notifications,
    is_notification,
    is_notification_call,
    log_errors,
    megabytes,
    memory_over,
    memory_text,
)
from bench.results import Machine, write_section
from bot.sandbox.botapi import ThreadedBotApi
from bot.services.helpdesk import MAX_REQUESTS_PER_DAY
from handlers.distribution.state import SEND
from tests.mailtools import free_port
from tests.postgres import PostgresServer

# A whole school's e-mails: passwords drawn and hashed (argon2id), the outbox sent, the summary.
SUMMARY_TIMEOUT = 180.0
CALIBRATION_QUIET = 0.4  # no message for this long: a calibrated reply is complete

QUESTION = "question"  # the family's typed question, after /question's prompt
ENVOYER = "/envoyer ecole"
CONFIRM = "/envoyer ✓"  # the press on [Envoyer] → the summary once every e-mail is sent
FAMILY_MIX = (("/etat", 3), ("/aide", 2), ("/identifiant", 2), ("/motdepasse", 1), ("/question", 1))
DIRECTOR_MIX = (("/etat", 4), ("/classes", 2), ("/responsables CM1", 2), ("/aide", 1))


@dataclass(frozen=True)
class Load:
    schools: int = 10
    directors_per_school: int = 5
    families_per_school: int = 50
    pupils_per_school: int = 80
    # Ramp: each user's first command at a random moment, and the first school's /envoyer (new
    # chats, caches, connections and the hashing pool warm up); steady: each user pauses
    # between a reply and its next command (exponential), the other schools send one by one.
    ramp_seconds: float = 30.0
    steady_seconds: float = 30.0
    echo_steady_seconds: float = 30.0  # the echo floor needs no more
    family_think: float = 120.0
    director_think: float = 30.0
    seed: int = 2026

    @property
    def families(self) -> int:
        return self.schools * self.families_per_school

    @property
    def directors(self) -> int:
        return self.schools * self.directors_per_school


DEFAULT = Load()
FULL = replace(DEFAULT, steady_seconds=275.0)
QUICK = Load(
    schools=2,
    directors_per_school=2,
    families_per_school=8,
    pupils_per_school=24,
    ramp_seconds=1.0,
    steady_seconds=3.0,
    echo_steady_seconds=1.0,
    family_think=3.0,
    director_think=2.0,
)


# --- The people and the district --------------------------------------------------------------


# Chat ids are fixed before any emulator runs: the database is seeded while the echo bot runs.
FAMILY_IDS, DIRECTOR_IDS = 710_000_000, 720_000_000


@dataclass(frozen=True)
class Person:
    """A simulated family or director of school `school`, its schedule and (once seated in an
    emulator) its chat."""

    role: str  # « family » or « director »
    school: int
    index: int  # among the users of its role
    first: float  # seconds after the start: its first command (within the ramp)
    sends_at: float | None = None  # a director's /envoyer of the whole school, if any
    user: Any = None  # a SandboxUser, used on the emulator's loop only

    @property
    def chat_id(self) -> int:
        return (FAMILY_IDS if self.role == "family" else DIRECTOR_IDS) + self.index


def make_people(load: Load) -> list[Person]:
    """The families and directors; one director per school sends /envoyer: the first school's
    during the ramp, the others one after the other across the steady part."""
    rng = random.Random(f"{load.seed}:people")
    people = [
        Person("family", n % load.schools, n, rng.uniform(0, load.ramp_seconds))
        for n in range(load.families)
    ]
    gap = load.steady_seconds / max(load.schools - 1, 1)
    for n in range(load.directors):
        school = n % load.schools
        sends_at: float | None = load.ramp_seconds + gap * (school - 0.5)
        if n >= load.schools:
            sends_at = None
        elif school == 0:
            sends_at = load.ramp_seconds / 4
        people.append(Person("director", school, n, rng.uniform(0, load.ramp_seconds), sends_at))
    return people


def seat(api: Any, people: list[Person]) -> list[Person]:
    """The same people as users of this emulator, with their fixed chat ids."""
    server = api.server

    def user(person: Person) -> Any:
        family = person.role == "family"
        name = f"{'Famille' if family else 'Direction'}{person.index}"
        return server.new_user(name, last_name=None if family else "Test", user_id=person.chat_id)

    return [replace(p, user=api.call(lambda p=p: user(p))) for p in people]


def seed(database_url: str, load: Load, people: list[Person]) -> SeededDistrict:
    """The schools imported through the services, an invitation per director, each family's
    chat linked to a guardian of its school (as a letter's code or a phone number leaves it)."""
    chats = {
        role: {
            number: [p.chat_id for p in people if p.school == number and p.role == role]
            for number in range(load.schools)
        }
        for role in ("director", "family")
    }
    return seed_district(
        database_url,
        seed=str(load.seed),
        pupils_per_school=load.pupils_per_school,
        directors=chats["director"],
        families=chats["family"],
    )


# --- The driver, on the emulator's event loop -------------------------------------------------


@dataclass
class Run:
    """One bot's run: who, how many messages each reply takes, and what was sent when."""

    name: str
    people: list[Person]
    load: Load
    echo: bool
    expected: dict[tuple[str, str], int] = field(default_factory=dict)
    started: float = 0.0
    sent: list[Sent] = field(default_factory=list)
    failures: Counter[str] = field(default_factory=Counter)  # flows that got no complete reply
    # Help requests filed today by each family's chat: the bot takes MAX_REQUESTS_PER_DAY.
    filed: Counter[int] = field(default_factory=Counter)
    summaries: dict[int, float] = field(default_factory=dict)  # school → its summary's time
    lost: int = 0
    duplicated: int = 0
    memory: Memory | None = None
    log_errors: list[str] = field(default_factory=list)
    log_warnings: list[str] = field(default_factory=list)

    @property
    def warm_end(self) -> float:
        """The end of the warm-up: the ramp, and the first /envoyer until its summary."""
        # The first batch allocates the hashing pool's memory (argon2id: 19 MiB per worker
        # thread), which the allocator keeps for the next ones: warm-up, not growth.
        return max(self.ramp_end, min(self.summaries.values(), default=self.ramp_end))

    @property
    def ramp_end(self) -> float:
        return self.started + self.load.ramp_seconds

    @property
    def until(self) -> float:
        steady = self.load.echo_steady_seconds if self.echo else self.load.steady_seconds
        return self.ramp_end + steady

    def steady(self) -> list[Sent]:
        """The updates after the ramp (a flow begun before the end finishes after it)."""
        return [s for s in self.sent if s.pushed >= self.ramp_end]

    @property
    def rate(self) -> float:
        """Updates per second pushed during the steady part."""
        pushed = sum(1 for s in self.sent if self.ramp_end <= s.pushed < self.until)
        return pushed / max(self.until - self.ramp_end, 1e-9)


def _key(person: Person, command: str) -> tuple[str, str]:
    # A director's reply depends on its school (its classes, its guardians); a family's does not.
    return (f"director:{person.school}" if person.role == "director" else "family", command)


def _send_data(message: Any) -> str | None:
    for row in message.inline_keyboard:
        for button in row:
            if (button.callback_data or "").startswith(SEND):
                return str(button.callback_data)
    return None


async def _replies(user: Any, count: int, timeout: float) -> list[Any] | None:
    """The next `count` messages of the chat that are not notifications; None on timeout."""
    got: list[Any] = []
    deadline = time.monotonic() + timeout
    while len(got) < count:
        try:
            message = await user.next_message(timeout=max(0.0, deadline - time.monotonic()))
        except TimeoutError:
            return None
        if not is_notification(message):
            got.append(message)
    return got


async def _step(run: Run, person: Person, command: str, text: str) -> list[Any] | None:
    count = 1 if run.echo else run.expected[_key(person, command)]
    run.sent.append(Sent(person.chat_id, person.role, command, time.time(), count))
    await person.user.send_text(text)
    replies = await _replies(person.user, count, REPLY_TIMEOUT)
    if replies is None:
        run.failures[command] += 1
    return replies


async def _question(run: Run, person: Person, plan: random.Random) -> list[Any] | None:
    """/question, its prompt, a few seconds of typing, the question, its « ✅ »."""
    if await _step(run, person, "/question", "/question") is None:
        return None
    await asyncio.sleep(plan.uniform(1.0, 3.0))
    text = f"Bonjour, il manque un enfant sur mon compte (famille {person.index})."
    run.filed[person.chat_id] += 1
    return await _step(run, person, QUESTION, text)


async def _envoyer(run: Run, person: Person) -> None:
    """`/envoyer ecole`, the preview, [Envoyer], the progress message and the summary."""
    if run.echo:
        await _step(run, person, ENVOYER, ENVOYER)
        return
    user = person.user
    preview = Sent(person.chat_id, person.role, ENVOYER, time.time(), 1)
    run.sent.append(preview)
    await user.send_text(ENVOYER)
    messages: list[Any] = []
    while not messages or _send_data(messages[-1]) is None:
        replies = await _replies(user, 1, REPLY_TIMEOUT)
        if replies is None:
            run.failures[ENVOYER] += 1
            preview.expected = max(len(messages), 1)
            return
        messages += replies
    # The preview's length depends on the school: it ends with the message holding [Envoyer].
    preview.expected = len(messages)
    data = _send_data(messages[-1])
    assert data is not None
    run.sent.append(Sent(person.chat_id, person.role, CONFIRM, time.time(), 2))
    await user.press_data(messages[-1], data)
    done = await _replies(user, 2, SUMMARY_TIMEOUT)  # « ⏳ Preparing… », then the summary
    if done is None:
        run.failures[CONFIRM] += 1
    else:
        run.summaries[person.school] = time.time()


async def _act(run: Run, person: Person) -> None:
    """One user until the end of the run: a first command in the ramp, then command, think."""
    load = run.load
    plan = random.Random(f"{load.seed}:{person.role}:{person.index}")
    mix = FAMILY_MIX if person.role == "family" else DIRECTOR_MIX
    think = load.family_think if person.role == "family" else load.director_think
    sends_at = None if person.sends_at is None else run.started + person.sends_at
    await asyncio.sleep(max(0.0, run.started + person.first - time.time()))
    while time.time() < run.until:
        if sends_at is not None and time.time() >= sends_at:
            sends_at = None
            await _envoyer(run, person)
        else:
            command = plan.choices([c for c, _ in mix], [w for _, w in mix])[0]
            if command == "/question" and run.filed[person.chat_id] >= MAX_REQUESTS_PER_DAY:
                command = "/etat"  # the day's requests are filed: the family follows them
            if command == "/question":
                answered = await _question(run, person, plan)
            else:
                answered = await _step(run, person, command, command)
            if answered is None:
                return  # counted as a failure; a late reply would be taken for the next one
        # Pauses start at the end of the ramp: the steady rate holds from its first second.
        wake = max(time.time(), run.ramp_end) + plan.expovariate(1 / think)
        if sends_at is not None:
            wake = min(wake, sends_at)
        await asyncio.sleep(max(0.0, min(wake, run.until) - time.time()))
    if sends_at is not None:  # each school sends once, even when the replies came late
        await _envoyer(run, person)


async def _drive(run: Run) -> None:
    for person in run.people:
        person.user.drain()
    run.started = time.time()
    await asyncio.gather(*(_act(run, person) for person in run.people))
    await asyncio.sleep(1.0)  # late or duplicated messages still reach the log


async def _count_reply(person: Person, text: str) -> int:
    """Send `text` alone; how many messages (notifications aside) make its reply."""
    person.user.drain()
    await person.user.send_text(text)
    count, timeout = 0, REPLY_TIMEOUT
    while True:
        try:
            message = await person.user.next_message(timeout=timeout)
        except TimeoutError:
            break
        count += not is_notification(message)
        timeout = CALIBRATION_QUIET
    if count == 0:
        raise RuntimeError(f"the bot did not answer {text!r}")
    return count


async def _calibrate(run: Run) -> None:
    """Ask each command once, alone in its chat: the families' commands (each by another
    family, /question then its question by one) and the directors' in every school."""

    async def ask(person: Person, commands: Sequence[tuple[str, str]]) -> None:
        for command, text in commands:
            run.expected[_key(person, command)] = await _count_reply(person, text)
            if command == QUESTION:
                run.filed[person.chat_id] += 1

    families = [p for p in run.people if p.role == "family"]
    words = [c for c, _weight in FAMILY_MIX if c != "/question"]
    jobs = [ask(f, [(c, c)]) for f, c in zip(families, words, strict=False)]
    asking = [("/question", "/question"), (QUESTION, "Bonjour, ceci est un essai.")]
    jobs.append(ask(families[len(words)], asking))
    for school in range(run.load.schools):
        directors = [p for p in run.people if p.role == "director" and p.school == school]
        for n, director in enumerate(directors):
            mine = [(c, c) for c, _weight in DIRECTOR_MIX[n :: len(directors)]]
            jobs.append(ask(director, mine))
    await asyncio.gather(*jobs)


# --- Accounting, from the emulator's call log --------------------------------------------------


def _account(run: Run, calls: Sequence[Any]) -> Notifications:
    """Match replies to updates (notifications aside), then the notifications themselves."""
    phase = Phase(run.name, sent=run.sent)
    replies = [c for c in calls if not is_notification_call(c)]
    account_replies(phase, replies, {p.chat_id for p in run.people})
    run.lost, run.duplicated = phase.lost, phase.duplicated
    school_of = {p.chat_id: p.school for p in run.people}
    questions = [
        (s.user_id, school_of[s.user_id], s.pushed) for s in run.sent if s.command == QUESTION
    ]
    directors: dict[int, list[int]] = defaultdict(list)
    for person in (p for p in run.people if p.role == "director"):
        directors[person.school].append(person.chat_id)
    return account_notifications(questions, directors, calls)


# --- The two bots -------------------------------------------------------------------------------


def _echo_run(load: Load, workdir: Path, people: list[Person]) -> Run:
    """The same people on the same schedule against the echo bot (one message per update)."""
    with ThreadedBotApi(bot_username="educonnect_bench_bot") as api:
        run = Run("echo bot", seat(api, people), load, echo=True)
        command = [sys.executable, "-m", "bench.bot_load", "--echo-bot"]
        echo = BotUnderTest(api, workdir, command, child_env(api))
        echo.start()
        assert echo.process is not None
        try:
            with RssSampler(echo.process.pid) as sampler:
                api.run(_drive(run), timeout=load.ramp_seconds + load.steady_seconds + 300)
        finally:
            echo.stop()
        run.memory = memory_over(sampler.samples, echo.rss_ready_mb, run.warm_end)
        _account(run, api.calls())
    return run


@dataclass
class Outcome:
    load: Load
    database: str
    district: SeededDistrict
    echo: Run
    bot: Run
    onboarding: Phase
    notifications: Notifications
    mail: Mail

    @property
    def clean(self) -> bool:
        return (
            all(r.lost == r.duplicated == 0 and not r.failures for r in (self.echo, self.bot))
            and self.onboarding.lost == self.onboarding.duplicated == 0
            and self.notifications.lost == self.notifications.duplicated == 0
            and self.mail.missing == self.mail.extra == 0
            and self.mail.schools == self.load.schools
            and not self.bot.log_errors
        )


def _database(postgres: PostgresServer, workdir: Path) -> tuple[str, str]:
    """A PostgreSQL database as a district deploys it; SQLite (and why) if it cannot start."""
    reason = postgres.unavailable_reason
    if reason is None:
        try:
            postgres.start()
            return postgres.create_database("district"), "PostgreSQL"
        except (OSError, subprocess.CalledProcessError) as error:
            reason = f"the throwaway server did not start ({error})"
    print(f"PostgreSQL unavailable, SQLite instead: {reason}", file=sys.stderr)
    return f"sqlite:///{workdir / 'data' / 'educonnect.db'}", f"SQLite ({reason})"


def _prepare(
    load: Load, workdir: Path, postgres: PostgresServer, people: list[Person]
) -> tuple[str, str, SeededDistrict]:
    """The database, seeded: its URL, what it is, the district in it."""
    database_url, database = _database(postgres, workdir)
    district = seed(database_url, load, people)
    print(
        f"seeded {load.schools} schools ({district.pupils} pupils, {district.guardians} "
        f"guardians) on {database.split(' ')[0]}, {load.families} linked families, "
        f"{load.directors} invitations in {district.seconds:.1f} s",
        file=sys.stderr,
    )
    return database_url, database, district


def _educonnect_run(
    load: Load, workdir: Path, people: list[Person], prepared: tuple[str, str, SeededDistrict]
) -> tuple[Run, Phase, Notifications, Mail]:
    """Start the bot on the seeded database, onboard the directors, calibrate, then the run."""
    database_url, _database_name, district = prepared
    with SmtpRecorder() as smtp, ThreadedBotApi(bot_username="educonnect_bench_bot") as api:
        run = Run("EduConnect", seat(api, people), load, echo=False)
        portal = free_port()
        env = child_env(
            api,
            DATA_DIR=str(workdir / "data"),
            DATABASE_URL=database_url,
            PORTAL_BIND=f"127.0.0.1:{portal}",
            PORTAL_URL=f"http://127.0.0.1:{portal}",
            **smtp.env(),
        )
        bot = BotUnderTest(api, workdir, [sys.executable, "-m", "bot", "run"], env)
        onboarding, notifications = _measure(api, bot, run, district)
        expected: Counter[str] = sum(
            (district.emails[school] for school in run.summaries), Counter()
        )
        mail = account_mail(len(run.summaries), expected, smtp.recipients())
    return run, onboarding, notifications, mail


def _measure(
    api: Any, bot: BotUnderTest, run: Run, district: SeededDistrict
) -> tuple[Phase, Notifications]:
    """Start the bot, its memory sampled until it stops; every director redeems an invitation,
    each command is calibrated, then the run itself; the replies and notices accounted."""
    directors = [p for p in run.people if p.role == "director"]
    bot.start()
    assert bot.process is not None
    try:
        with RssSampler(bot.process.pid) as sampler:
            onboarding = onboard(
                api,
                [d.user for d in directors],
                [district.codes[d.chat_id] for d in directors],
                {},
                {d.chat_id for d in directors},
            )
            api.run(_calibrate(run), timeout=120)
            since = len(api.calls())
            load = run.load
            api.run(_drive(run), timeout=load.ramp_seconds + load.steady_seconds + 600)
    finally:
        bot.stop()
    run.memory = memory_over(sampler.samples, bot.rss_ready_mb, run.warm_end)
    run.log_errors, run.log_warnings = log_errors(bot.log)
    return onboarding, _account(run, api.calls()[since:])


# --- Reporting ----------------------------------------------------------------------------------


def _commands(run: Run) -> list[tuple[str, str]]:
    seen = {(sent.role, sent.command) for sent in run.sent}
    return sorted(seen, key=lambda rc: (rc[0] != "family", rc[1]))


def _latencies(run: Run, role: str, command: str) -> list[float]:
    return sorted(
        s.latency_ms
        for s in run.steady()
        if s.latency_ms is not None and s.role == role and s.command == command
    )


def _table(outcome: Outcome) -> list[str]:
    bot, echo = outcome.bot, outcome.echo
    lines = [
        "| who | command | n | p50 | p95 | max | echo bot p50 | echo bot p95 |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for role, command in _commands(bot):
        values = _latencies(bot, role, command)
        floor = _latencies(echo, role, command)
        lines.append(
            f"| {role} | `{command}` | {len(values):,} | {ms(percentile(values, 50))} | "
            f"**{ms(percentile(values, 95))}** | {ms(max(values) if values else None)} | "
            f"{ms(percentile(floor, 50))} | {ms(percentile(floor, 95))} |"
        )
    notes = outcome.notifications.latencies_ms
    lines.append(
        f"| director | help request notice (question → each director) | {len(notes):,} | "
        f"{ms(percentile(notes, 50))} | **{ms(percentile(notes, 95))}** | "
        f"{ms(max(notes) if notes else None)} | — | — |"
    )
    every = [s.latency_ms for s in bot.steady() if s.latency_ms is not None]
    floor = [s.latency_ms for s in echo.steady() if s.latency_ms is not None]
    lines.append(
        f"| all | every update | {len(every):,} | {ms(percentile(every, 50))} | "
        f"**{ms(percentile(every, 95))}** | {ms(max(every) if every else None)} | "
        f"{ms(percentile(floor, 50))} | {ms(percentile(floor, 95))} |"
    )
    return lines


def _accounting(outcome: Outcome) -> str:
    bot, echo, n, mail = outcome.bot, outcome.echo, outcome.notifications, outcome.mail
    failures = ", ".join(f"{k} {v}" for k, v in sorted(bot.failures.items())) or "none"
    return (
        f"EduConnect: {len(bot.sent):,} updates ({bot.rate:.1f}/s steady), {bot.lost} lost and "
        f"{bot.duplicated} duplicated replies, flows left without a complete reply: {failures}; "
        f"{n.questions} help requests, {len(n.latencies_ms)} director notices, {n.lost} lost and "
        f"{n.duplicated} duplicated; /envoyer of {mail.schools} of {outcome.load.schools} "
        f"whole schools: {mail.received:,} e-mails accepted by the SMTP server for "
        f"{mail.expected:,} guardians with an address ({mail.missing} missing, {mail.extra} "
        f"extra); errors in the bot's log: {len(bot.log_errors)} (warnings: "
        f"{len(bot.log_warnings)}); directors' onboarding {outcome.onboarding.lost} lost, "
        f"{outcome.onboarding.duplicated} duplicated. Echo bot: "
        f"{len(echo.sent):,} updates ({echo.rate:.1f}/s steady), {echo.lost} lost, "
        f"{echo.duplicated} duplicated."
    )


def report_lines(outcome: Outcome) -> list[str]:
    """What the terminal shows: the table, the accounting, the memory of both bots."""
    return [
        *_table(outcome),
        "",
        _accounting(outcome),
        f"EduConnect memory (VmRSS): {memory_text(outcome.bot.memory)}",
        f"echo bot memory (VmRSS): {memory_text(outcome.echo.memory)}",
        *(f"bot log: {line}" for line in outcome.bot.log_errors[:10]),
        *(f"bot log: {line}" for line in outcome.bot.log_warnings[:5]),
    ]


def _headline(outcome: Outcome) -> str:
    load, bot, memory = outcome.load, outcome.bot, outcome.bot.memory
    every = [s.latency_ms for s in bot.steady() if s.latency_ms is not None]
    trend = "**"
    if memory is not None and memory.slope_mb_per_min is not None:
        trend = f" ({memory.verdict}, {memory.slope_mb_per_min:+.2f} MB/min)**"
    return (
        f"**Headline: {load.families} families and {load.directors} directors of "
        f"{load.schools} schools for {load.ramp_seconds + load.steady_seconds:.0f} s on "
        f"{outcome.database}: {bot.rate:.1f} updates/s steady (echo bot "
        f"{outcome.echo.rate:.1f}/s on the same schedule), every update p50 "
        f"{ms(percentile(every, 50))} / p95 {ms(percentile(every, 95))}; "
        + ("nothing lost or duplicated" if outcome.clean else "❌ losses, duplicates or errors")
        + f"; {outcome.mail.received:,} e-mails for {outcome.mail.schools} whole schools; "
        f"bot memory {megabytes(memory.start_mb if memory else None)} after the warm-up → "
        f"{megabytes(memory.end_mb if memory else None)} at the end" + trend
    )


def _scenario(outcome: Outcome) -> str:
    load, district = outcome.load, outcome.district
    return (
        f"District: {load.schools} schools ({district.pupils:,} pupils, "
        f"{district.guardians:,} guardians, generated and imported with `import_roster`); "
        f"{load.directors_per_school} directors per school (each redeemed an invitation with "
        f"`/start <code>`); {load.families_per_school} families per school, each chat linked "
        f"to a guardian. **Ramp** ({load.ramp_seconds:.0f} s): each user's first command at a "
        "random moment, and the first school's whole `/envoyer`. **Steady** "
        f"({load.steady_seconds:.0f} s): families pause {load.family_think:.0f} s on average "
        "(exponential) between a reply and their next command, directors "
        f"{load.director_think:.0f} s; the other schools' `/envoyer` one after the other. "
        "Families: "
        + ", ".join(f"`{c}` ×{w}" for c, w in FAMILY_MIX)
        + " (`question` is the question typed after its prompt: its « ✅ » comes with a notice "
        f"to each director of the school; a family files at most {MAX_REQUESTS_PER_DAY} a day, "
        "as the bot allows, then sends `/etat` instead); directors: "
        + ", ".join(f"`{c}` ×{w}" for c, w in DIRECTOR_MIX)
        + f", and one director per school `{ENVOYER}` then [Envoyer] (`/envoyer ✓`: from the "
        "press to the summary, once the bot drew and hashed the passwords and its outbox "
        "sender had every e-mail accepted by an SMTP server running in its own process). "
        "Latencies: after the ramp, from the update queued in the emulator to the reply's last "
        "message. The echo bot (one message per update, no buttons) got the same people on "
        f"the same schedule, {load.echo_steady_seconds:.0f} s steady."
    )


def markdown(outcome: Outcome, machine: Machine, *, title: str | None = None) -> str:
    """The RESULTS.md section: headline, scenario, latencies, accounting, memory."""
    return "\n".join(
        [
            *([title, ""] if title else []),
            machine.markdown(),
            "",
            _headline(outcome),
            "",
            _scenario(outcome),
            "",
            *_table(outcome),
            "",
            "Accounting: " + _accounting(outcome),
            "",
            f"Memory of the bot process (VmRSS every {SAMPLE_SECONDS:.0f} s): "
            + memory_text(outcome.bot.memory)
            + f". Echo bot: {memory_text(outcome.echo.memory)}. {FLAT_WHY}",
        ]
    )


# --- Entry point --------------------------------------------------------------------------------


def run(load: Load = DEFAULT, *, write: bool = True, long_run: bool = False) -> Outcome:
    """The echo floor, then the EduConnect bot; print the figures, refresh RESULTS.md (a long
    run its own section)."""
    machine = Machine.here()
    workdir = Path(tempfile.mkdtemp(prefix="educonnect-bench-district-"))
    (workdir / "data").mkdir()
    postgres = PostgresServer()
    people = make_people(load)
    try:
        with ThreadPoolExecutor(max_workers=1) as pool:
            # The database is seeded during the echo bot's ramp, whose figures are not kept
            # (in --quick, during its whole run).
            preparing = pool.submit(_prepare, load, workdir, postgres, people)
            echo = _echo_run(load, workdir, people)
            print(f"  echo bot: {len(echo.sent)} updates, lost {echo.lost}", file=sys.stderr)
            prepared = preparing.result()
        bot, onboarding, notifications, mail = _educonnect_run(load, workdir, people, prepared)
    finally:
        postgres.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    outcome = Outcome(load, prepared[1], prepared[2], echo, bot, onboarding, notifications, mail)
    print("\n".join(report_lines(outcome)))
    minutes = (load.ramp_seconds + load.steady_seconds) / 60
    title = f"### The long run ({minutes:g} minutes): the memory trend" if long_run else None
    if write:
        section = "district_load_long" if long_run else "district_load"
        write_section(section, markdown(outcome, machine, title=title))
    return outcome


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench district-load", description=__doc__)
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--full", action="store_true", help="5 minutes (the issue's run)")
    size.add_argument("--minutes", type=float, help="this many minutes (ramp included)")
    size.add_argument("--quick", action="store_true", help="2 small schools, ≈ 6 s")
    parser.add_argument("--no-write", action="store_true", help="leave RESULTS.md alone")
    options, _rest = parser.parse_known_args(argv)
    load = FULL if options.full else QUICK if options.quick else DEFAULT
    if options.minutes is not None:
        if options.minutes * 60 <= DEFAULT.ramp_seconds:
            parser.error(f"--minutes must leave time after the {DEFAULT.ramp_seconds:g} s ramp")
        load = replace(DEFAULT, steady_seconds=options.minutes * 60 - DEFAULT.ramp_seconds)
    long_run = options.full or options.minutes is not None
    outcome = run(load, write=not options.no_write and not options.quick, long_run=long_run)
    return 0 if outcome.clean else 1


if __name__ == "__main__":
    sys.exit(main())
