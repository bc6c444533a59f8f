"""Benchmark of the issue « The bot »: 200 simulated directors and families sending commands
concurrently through the local Bot API server, to one bot process as deployed.

Target: p95 reply latency under 150 ms for `/etat` on a 1,000-guardian school, with no lost or
duplicated reply; report updates handled per second, p50/p95 latency and peak memory.

The Bot API emulator (`bot.sandbox.botapi`) runs in a thread of this process; the bot runs as
`python -m bot run`, exactly what `make run` starts, on a SQLite database seeded through the
operator's CLI (school, ONDE import) and the invitation service. Directors redeem their
invitation with `/start <code>` like real users. Latency is measured from the moment an update
is queued in the emulator to the moment the bot's last sendMessage of the reply reaches it
(the emulator's call log). Beside it, in the same run, a trivial echo bot built with
python-telegram-bot against the same emulator shows the floor of the round trip.

    python -m bench bot [--quick] [--no-write]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.results import ROOT, Machine, read_vm_hwm_mb, write_section
from bot.sandbox.onde_generator import generate_school

TARGET_P95_MS = 150.0
GUARDIANS = 1_000
REPLY_TIMEOUT = 30.0
QUIET = 0.5  # no message for this long: the reply is complete (calibration only)
START_TIMEOUT = 60.0

DIRECTOR_COMMANDS = ("/etat", "/classes", "/responsables CM1", "/aide", "/start")
FAMILY_COMMANDS = ("/start", "/aide", "/etat", "/classes")

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
    "PORTAL_URL",
    "PORTAL_BIND",
)


@dataclass(frozen=True)
class Load:
    directors: int = 100
    families: int = 100
    burst_rounds: int = 2  # saturation: commands per user, back to back
    paced_seconds: float = 25.0
    think_seconds: float = 15.0  # paced: mean pause between a reply and the next command
    idle_samples: int = 20
    seed: int = 2026


QUICK = Load(directors=10, families=10, burst_rounds=2, paced_seconds=4.0, idle_samples=5)


# --- Measurements ---------------------------------------------------------------------------


@dataclass
class Sent:
    """One update a simulated user sent, and what came back."""

    user_id: int
    role: str
    command: str  # the command word (« /responsables »), arguments left out
    pushed: float  # time.time() when the update was queued in the emulator
    expected: int  # messages that make a complete reply
    received: int = 0
    done: float | None = None  # time.time() of the reply's last message reaching the emulator

    @property
    def latency_ms(self) -> float | None:
        return None if self.done is None else (self.done - self.pushed) * 1000


@dataclass
class Phase:
    """One load phase of one bot: its updates, timings and reply accounting."""

    name: str
    sent: list[Sent] = field(default_factory=list)
    started: float = 0.0
    ended: float = 0.0
    lost: int = 0
    duplicated: int = 0

    @property
    def rate(self) -> float:
        return len(self.sent) / max(self.ended - self.started, 1e-9)

    def latencies(self, command: str | None = None) -> list[float]:
        return sorted(
            s.latency_ms
            for s in self.sent
            if s.latency_ms is not None and (command is None or s.command == command)
        )

    def percentile(self, q: float, command: str | None = None) -> float | None:
        return percentile(self.latencies(command), q)


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (1–99) of `values`, sorted or not; None when there are none."""
    if not values:
        return None
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def _word(command: str) -> str:
    return command.split()[0]


def account_replies(phase: Phase, calls: Sequence[Any], user_ids: set[int]) -> None:
    """Give each update the sendMessage calls that answered it (per chat, in order), and
    count replies lost (fewer messages than expected) or duplicated (more)."""
    by_chat: dict[int, list[float]] = defaultdict(list)
    for call in calls:
        if call.method != "sendMessage" or call.status != 200:
            continue
        try:
            chat_id = int(str(call.params.get("chat_id")).strip('"'))
        except ValueError:
            continue
        if chat_id in user_ids:
            by_chat[chat_id].append(call.time)
    sent_by_chat: dict[int, list[Sent]] = defaultdict(list)
    for sent in phase.sent:
        sent_by_chat[sent.user_id].append(sent)
    for chat_id, sents in sent_by_chat.items():
        times = by_chat.get(chat_id, [])
        position = 0
        for sent in sorted(sents, key=lambda s: s.pushed):
            mine = [t for t in times[position : position + sent.expected] if t >= sent.pushed]
            position += len(mine)
            sent.received = len(mine)
            if len(mine) == sent.expected:
                sent.done = mine[-1]
            else:
                phase.lost += 1
        phase.duplicated += max(0, len(times) - position)


# --- The driver, on the emulator's event loop -----------------------------------------------


async def _wait_replies(user: Any, count: int) -> bool:
    try:
        for _ in range(count):
            await user.next_message(timeout=REPLY_TIMEOUT)
    except TimeoutError:
        return False
    return True


async def _calibrate(user: Any, command: str) -> tuple[int, str]:
    """Send `command` alone; the number of messages of the reply (complete once the bot is
    quiet for QUIET seconds) and their text."""
    user.drain()
    await user.send_text(command)
    texts: list[str] = []
    timeout = REPLY_TIMEOUT
    while True:
        try:
            message = await user.next_message(timeout=timeout)
        except TimeoutError:
            return len(texts), "\n".join(texts)
        texts.append(message.content)
        timeout = QUIET


@dataclass
class Actor:
    user: Any  # a SandboxUser, used on the emulator's loop only
    role: str
    commands: tuple[str, ...]


async def _drive(
    actors: list[Actor],
    expected: dict[tuple[str, str], int],
    *,
    rounds: int | None = None,
    until: float | None = None,
    think: float = 0.0,
    seed: int,
    name: str,
) -> Phase:
    """Every actor sends commands (a random mix), waits for the complete reply each time,
    then thinks (exponential pause, mean `think`); `rounds` commands each, or until `until`."""
    phase = Phase(name)
    rng = random.Random(f"{seed}:{name}")
    plans = [random.Random(rng.random()) for _ in actors]

    async def pause(seconds: float) -> None:
        # A pause never runs past the end of the phase.
        if until is not None:
            seconds = min(seconds, until - time.time())
        if seconds > 0:
            await asyncio.sleep(seconds)

    async def act(actor: Actor, plan: random.Random) -> None:
        if think:
            # Arrivals spread over the first pause, not all at the same instant.
            await pause(plan.uniform(0, think))
        done = 0
        while (rounds is None or done < rounds) and (until is None or time.time() < until):
            command = plan.choice(actor.commands)
            count = expected[(actor.role, command)]
            sent = Sent(actor.user.id, actor.role, _word(command), time.time(), count)
            phase.sent.append(sent)
            await actor.user.send_text(command)
            if not await _wait_replies(actor.user, count):
                return
            done += 1
            if think:
                await pause(plan.expovariate(1 / think))

    for actor in actors:
        actor.user.drain()
    phase.started = time.time()
    await asyncio.gather(*(act(actor, plan) for actor, plan in zip(actors, plans, strict=True)))
    # A timed phase lasts until its deadline; a counted one until its last reply.
    phase.ended = until if until is not None else time.time()
    return phase


# --- The bot process ------------------------------------------------------------------------


def child_env(api: Any, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _FOREIGN_ENV}
    env.update(PYTHONUNBUFFERED="1", PYTHONPATH=str(ROOT), **api.env(), **extra)
    return env


class BotUnderTest:
    """`python -m bot run` (or the echo bot), its log, and its peak memory."""

    def __init__(self, api: Any, workdir: Path, command: list[str], env: dict[str, str]) -> None:
        self.api = api
        self.workdir = workdir
        self.command = command
        self.env = env
        self.log = workdir / f"{command[-1].strip('-')}.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.rss_ready_mb: float | None = None
        self.peak_mb: float | None = None

    def start(self) -> None:
        since = len(self.api.calls())
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                self.command,
                cwd=self.workdir,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            try:
                self.api.wait_for_call("getUpdates", timeout=0.5, since=since)
                break
            except TimeoutError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{self.command} did not start polling:\n{self.output()}")
        self.rss_ready_mb = read_vm_hwm_mb(self.process.pid)

    def sample_memory(self) -> None:
        if self.process is not None:
            self.peak_mb = read_vm_hwm_mb(self.process.pid) or self.peak_mb

    def stop(self) -> None:
        if self.process is None:
            return
        self.sample_memory()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self.process = None

    def output(self) -> str:
        return self.log.read_text("utf-8", errors="replace")[-4000:] if self.log.exists() else ""


def echo_bot() -> None:
    """The baseline: python-telegram-bot with the same settings as ours (sequential updates,
    rate limiter, HTML), answering every message with its text — no database, no handlers."""
    import html

    from telegram import Update
    from telegram.ext import AIORateLimiter, ApplicationBuilder, Defaults, MessageHandler, filters

    async def echo(update: Update, _context: Any) -> None:
        if update.effective_message and update.effective_message.text:
            await update.effective_message.reply_text(html.escape(update.effective_message.text))

    application = (
        ApplicationBuilder()
        .token(os.environ["TELEGRAM_BOT_TOKEN"])
        .base_url(os.environ["TELEGRAM_BASE_URL"])
        .base_file_url(os.environ["TELEGRAM_BASE_FILE_URL"])
        .rate_limiter(AIORateLimiter(max_retries=5))
        .defaults(Defaults(parse_mode="HTML"))
        .concurrent_updates(False)
        .build()
    )
    application.add_handler(MessageHandler(filters.ALL, echo))
    application.run_polling(allowed_updates=Update.ALL_TYPES)


# --- Seeding --------------------------------------------------------------------------------


@dataclass
class Seeded:
    database_url: str
    uai: str
    pupils: int
    guardians: int
    classes: int
    codes: list[str]


def _cli(env: dict[str, str], workdir: Path, *args: str) -> Any:
    result = subprocess.run(
        [sys.executable, "-m", "bot", *args, "--json"],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"python -m bot {' '.join(args)} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout)


def _school_with_guardians(guardians: int, seed: int) -> Any:
    """The generated school whose Responsables file has at least `guardians` guardians."""
    pupils = int(guardians / 1.5)
    while True:
        school = generate_school(seed=seed, pupils=pupils, index=0)
        if school.guardians >= guardians:
            return school
        pupils += 5


def _seed(env: dict[str, str], workdir: Path, directors: int, seed: int) -> Seeded:
    """A 1,000-guardian school imported through the operator's CLI, and one invitation per
    director (the first through the CLI, the others through the same service, for speed)."""
    from bot.db import make_engine, session_scope
    from bot.services.schools import create_invitation

    school = _school_with_guardians(GUARDIANS, seed)
    pupils_file, guardians_file = school.write(workdir / "onde")
    added = _cli(env, workdir, "school", "add", school.uai, school.name, "--city", school.city)
    report = _cli(env, workdir, "import", school.uai, str(pupils_file), str(guardians_file))
    codes = [_cli(env, workdir, "director", "invite", school.uai)["code"]]
    engine = make_engine(env["DATABASE_URL"])
    with session_scope(engine) as session:
        for _ in range(directors - 1):
            code, _expires = create_invitation(
                session=session, school_id=int(added["id"]), actor="bench"
            )
            codes.append(code)
    engine.dispose()
    return Seeded(
        database_url=env["DATABASE_URL"],
        uai=school.uai,
        pupils=report["pupils"]["in_file"],
        guardians=report["guardians"]["in_file"],
        classes=report["classes"]["in_file"],
        codes=codes,
    )


def _check_directors(seeded: Seeded, user_ids: list[int]) -> None:
    """Every simulated director directs the seeded school (else /etat would be a refusal)."""
    from bot.db import make_engine, session_scope
    from bot.services.schools import directed_schools

    engine = make_engine(seeded.database_url)
    try:
        with session_scope(engine) as session:
            missing = [
                user_id
                for user_id in user_ids
                if seeded.uai
                not in {s.uai for s in directed_schools(session=session, telegram_user_id=user_id)}
            ]
    finally:
        engine.dispose()
    if missing:
        raise RuntimeError(f"{len(missing)} simulated directors did not become directors")


# --- One bot under load ----------------------------------------------------------------------


@dataclass
class BotResult:
    name: str
    phases: list[Phase]
    expected: dict[tuple[str, str], int]
    rss_ready_mb: float | None
    peak_mb: float | None


def _measure_bot(
    api: Any,
    bot: BotUnderTest,
    load: Load,
    *,
    name: str,
    codes: list[str] | None,
    seeded: Seeded | None = None,
) -> BotResult:
    """Start `bot`, onboard the directors, calibrate, then idle, saturation and paced phases.

    With `codes`, the directors redeem them first; `seeded` is then checked: every director
    must direct the school, and `/etat` must show its report (not a refusal)."""
    directors, families = _make_users(api, load)
    user_ids = {u.id for u in directors + families}
    bot.start()
    phases: list[Phase] = []
    expected: dict[tuple[str, str], int] = {}
    try:
        if codes is not None:
            onboarding = onboard(api, directors, codes, expected, user_ids)
            phases.append(onboarding)
            _progress(name, onboarding)
            if seeded is not None:
                _check_directors(seeded, [u.id for u in directors])
        _calibrate_commands(
            api, directors[0], families[0], expected, echo=codes is None, seeded=seeded
        )
        for phase in _load_phases(api, bot, load, directors, families, expected, user_ids):
            phases.append(phase)
            _progress(name, phase)
    finally:
        bot.stop()
    return BotResult(name, phases, expected, bot.rss_ready_mb, bot.peak_mb)


def _make_users(api: Any, load: Load) -> tuple[list[Any], list[Any]]:
    """The simulated directors and families, as users of the emulator."""
    server = api.server
    rng = random.Random(load.seed)
    directors = [
        api.call(lambda n=n: server.new_user(f"Directrice{n}", last_name="Test"))
        for n in range(load.directors)
    ]
    families = [
        api.call(lambda n=n: server.new_user(rng.choice(("Léa", "Karim", "Inès")) + str(n)))
        for n in range(load.families)
    ]
    return directors, families


def onboard(
    api: Any,
    directors: list[Any],
    codes: list[str],
    expected: dict[tuple[str, str], int],
    user_ids: set[int],
) -> Phase:
    """Every director redeems their invitation with `/start <code>`, all at once."""
    server = api.server
    # The first director alone tells how many messages a welcome takes.
    first = f"/start {codes[0]}"
    expected[("director", "/start <code>")], _ = api.run(_calibrate(directors[0], first))

    async def onboard() -> Phase:
        phase = Phase("onboarding")
        count = expected[("director", "/start <code>")]

        async def join(user: Any, code: str) -> None:
            user.drain()
            sent = Sent(user.id, "director", "/start <code>", time.time(), count)
            phase.sent.append(sent)
            await user.send_text(f"/start {code}")
            await _wait_replies(user, count)

        phase.started = time.time()
        await asyncio.gather(*(join(u, c) for u, c in zip(directors[1:], codes[1:], strict=True)))
        phase.ended = time.time()
        return phase

    since = len(server.calls)
    onboarding = api.run(onboard(), timeout=300)
    api.run(asyncio.sleep(QUIET))
    account_replies(onboarding, api.call(lambda start=since: server.calls[start:]), user_ids)
    return onboarding


def _calibrate_commands(
    api: Any,
    director: Any,
    family: Any,
    expected: dict[tuple[str, str], int],
    *,
    echo: bool,
    seeded: Seeded | None,
) -> None:
    """How many messages each command's reply takes, asked once of the bot (into `expected`)."""
    for role, commands, user in (
        ("director", DIRECTOR_COMMANDS, director),
        ("family", FAMILY_COMMANDS, family),
    ):
        for command in commands:
            if echo:
                # The echo bot answers everything with one message: no need to ask it.
                expected[(role, command)] = 1
                continue
            expected[(role, command)], text = api.run(_calibrate(user, command))
            # The load must measure the school's report, not a refusal.
            is_report = seeded is None or seeded.uai in text
            if (role, command) == ("director", "/etat") and not is_report:
                raise RuntimeError(f"/etat did not show the school's report: {text!r}")


def _load_phases(
    api: Any,
    bot: BotUnderTest,
    load: Load,
    directors: list[Any],
    families: list[Any],
    expected: dict[tuple[str, str], int],
    user_ids: set[int],
) -> Iterator[Phase]:
    """The idle, saturation and paced phases, one after the other, each accounted as it ends."""
    server = api.server
    actors = [Actor(u, "director", DIRECTOR_COMMANDS) for u in directors] + [
        Actor(u, "family", FAMILY_COMMANDS) for u in families
    ]
    idle_actor = [Actor(directors[0], "director", ("/etat",))]
    runs: list[tuple[str, list[Actor], dict[str, Any]]] = [
        ("idle: one director, /etat", idle_actor, {"rounds": load.idle_samples}),
        ("saturation", actors, {"rounds": load.burst_rounds}),
        ("paced", actors, {"think": load.think_seconds, "paced": load.paced_seconds}),
    ]
    for label, who, options in runs:
        since = len(server.calls)
        paced = options.pop("paced", None)
        if paced is not None:
            options["until"] = time.time() + paced
        phase = api.run(_drive(who, expected, seed=load.seed, name=label, **options), timeout=600)
        api.run(asyncio.sleep(QUIET))
        bot.sample_memory()
        account_replies(phase, api.call(lambda start=since: server.calls[start:]), user_ids)
        yield phase


def _progress(name: str, phase: Phase) -> None:
    p50, p95 = phase.percentile(50), phase.percentile(95)
    print(
        f"  {name:<9} {phase.name:<27} {len(phase.sent):>5} updates {phase.rate:7.1f}/s  "
        f"p50 {ms(p50)}  p95 {ms(p95)}  lost {phase.lost}  duplicated {phase.duplicated}",
        file=sys.stderr,
        flush=True,
    )


def ms(value: float | None) -> str:
    return "—" if value is None else f"{value:.0f} ms"


# --- Orchestration --------------------------------------------------------------------------


def run(load: Load = Load(), *, write: bool = True) -> list[BotResult]:
    """Measure the echo bot, then the EduConnect bot; print the table, refresh RESULTS.md."""
    machine = Machine.here()
    workdir = Path(tempfile.mkdtemp(prefix="educonnect-bench-bot-"))
    results, seeded = _run_bots(load, workdir)
    _print_table(results)
    if write:
        write_section("bot", _markdown(results, machine, load, seeded))
    return results


def _run_bots(load: Load, workdir: Path) -> tuple[list[BotResult], Seeded]:
    from bot.sandbox.botapi import ThreadedBotApi

    results: list[BotResult] = []
    try:
        with ThreadedBotApi(bot_username="educonnect_bench_bot") as api:
            echo_env = child_env(api)
            echo = BotUnderTest(
                api, workdir, [sys.executable, "-m", "bench.bot_load", "--echo-bot"], echo_env
            )
            results.append(_measure_bot(api, echo, load, name="echo bot", codes=None))
            api.clear_calls()

        with ThreadedBotApi(bot_username="educonnect_bench_bot") as api:
            data_dir = workdir / "data"
            env = child_env(
                api,
                DATA_DIR=str(data_dir),
                DATABASE_URL=f"sqlite:///{data_dir / 'educonnect.db'}",
            )
            began = time.perf_counter()
            seeded = _seed(env, workdir, load.directors, load.seed)
            print(
                f"seeded {seeded.pupils} pupils, {seeded.guardians} guardians, "
                f"{seeded.classes} classes and {len(seeded.codes)} invitations through the CLI in "
                f"{time.perf_counter() - began:.1f} s",
                file=sys.stderr,
            )
            bot = BotUnderTest(api, workdir, [sys.executable, "-m", "bot", "run"], env)
            results.append(
                _measure_bot(api, bot, load, name="EduConnect", codes=seeded.codes, seeded=seeded)
            )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return results, seeded


# --- Reporting ------------------------------------------------------------------------------


def _print_table(results: list[BotResult]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="The bot under load (issue « The bot »)")
    for column in (
        "bot", "phase", "updates", "updates/s", "p50", "p95", "/etat p50", "/etat p95",
        "lost", "dup.", "peak RSS",
    ):  # fmt: skip
        table.add_column(column)
    for result in results:
        for phase in result.phases:
            table.add_row(
                result.name,
                phase.name,
                str(len(phase.sent)),
                f"{phase.rate:.1f}",
                ms(phase.percentile(50)),
                ms(phase.percentile(95)),
                ms(phase.percentile(50, "/etat")),
                ms(phase.percentile(95, "/etat")),
                str(phase.lost),
                str(phase.duplicated),
                f"{result.peak_mb:.0f} MB" if result.peak_mb else "—",
            )
    Console(width=None if sys.stdout.isatty() else 140).print(table)


def _find_phase(results: list[BotResult], bot: str, phase: str) -> Phase | None:
    for result in results:
        for candidate in result.phases:
            if result.name == bot and candidate.name.startswith(phase):
                return candidate
    return None


def _headline(results: list[BotResult], load: Load) -> str:
    paced = _find_phase(results, "EduConnect", "paced")
    saturation = _find_phase(results, "EduConnect", "saturation")
    echo = _find_phase(results, "echo bot", "saturation")
    ours = next((r for r in results if r.name == "EduConnect"), None)
    if paced is None or saturation is None or ours is None:
        return ""
    etat95 = paced.percentile(95, "/etat")
    met = etat95 is not None and etat95 < TARGET_P95_MS
    lost = sum(p.lost for r in results for p in r.phases)
    duplicated = sum(p.duplicated for r in results for p in r.phases)
    return (
        f"**Headline: {load.directors + load.families} users at {paced.rate:.1f} updates/s "
        f"(paced): `/etat` p95 {ms(etat95)} against < {TARGET_P95_MS:.0f} ms "
        f"({'✅ met' if met else '❌ missed'}), all commands p50 {ms(paced.percentile(50))} / "
        f"p95 {ms(paced.percentile(95))}; {lost} lost and {duplicated} duplicated replies in "
        f"the whole run; bot peak RSS {_mb(ours.peak_mb)}. Throughput at saturation "
        f"{saturation.rate:.1f} updates/s"
        + (f" (echo bot: {echo.rate:.1f}/s)" if echo else "")
        + ".**"
    )


def _markdown(results: list[BotResult], machine: Machine, load: Load, seeded: Seeded) -> str:
    lines = [
        machine.markdown(),
        "",
        _headline(results, load),
        "",
        f"School: {seeded.pupils} pupils, **{seeded.guardians} guardians**, {seeded.classes} "
        f"classes (generated, imported with `python -m bot import`); {load.directors} directors "
        f"of that school (each redeemed an invitation with `/start <code>`) and {load.families} "
        "families. Directors send a random mix of "
        + ", ".join(f"`{c}`" for c in DIRECTOR_COMMANDS)
        + "; families "
        + ", ".join(f"`{c}`" for c in FAMILY_COMMANDS)
        + " (the director commands get a polite refusal). Phases: **idle** = one director "
        f"sends `/etat` {load.idle_samples} times in a row, alone; **saturation** = all "
        f"{load.directors + load.families} users at once, each sending {load.burst_rounds} "
        "commands back to back (a new one as soon as the reply is complete); **paced** = all "
        f"users for {load.paced_seconds:.0f} s, each pausing {load.think_seconds:.0f} s on "
        "average (exponential) between a reply and the next command. The target is read on "
        "the idle and paced lines; saturation measures the queue (see the notes).",
        "",
        "| bot | phase | updates | updates/s | p50 | p95 | `/etat` n | `/etat` p50 | "
        "`/etat` p95 (target < 150 ms) | lost | duplicated |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for result in results:
        for phase in result.phases:
            etat95 = phase.percentile(95, "/etat")
            verdict = ""
            if result.name == "EduConnect" and etat95 is not None and phase.name != "saturation":
                verdict = " ✅" if etat95 < TARGET_P95_MS else " ❌"
            lines.append(
                f"| {result.name} | {phase.name} | {len(phase.sent)} | {phase.rate:.1f} | "
                f"{ms(phase.percentile(50))} | {ms(phase.percentile(95))} | "
                f"{len(phase.latencies('/etat'))} | {ms(phase.percentile(50, '/etat'))} | "
                f"**{ms(etat95)}**{verdict} | {phase.lost} | {phase.duplicated} |"
            )
    lines += [
        "",
        "| bot | RSS once polling | peak RSS (VmHWM) | messages per reply |",
        "|---|---|---|---|",
    ]
    for result in results:
        counts = Counter(result.expected.values())
        shape = "; ".join(
            f"{n} message{'s' if n > 1 else ''}: {k} of the {len(result.expected)} commands"
            for n, k in sorted(counts.items())
        )
        lines.append(
            f"| {result.name} | {_mb(result.rss_ready_mb)} | {_mb(result.peak_mb)} | {shape} |"
        )
    return "\n".join(lines)


def _mb(value: float | None) -> str:
    return "—" if value is None else f"{value:.0f} MB"


# --- Entry points ---------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench bot", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="10 + 10 users, short phases")
    parser.add_argument("--no-write", action="store_true", help="leave RESULTS.md alone")
    parser.add_argument("--echo-bot", action="store_true", help=argparse.SUPPRESS)
    options, _rest = parser.parse_known_args(argv)
    if options.echo_bot:
        echo_bot()
        return 0
    results = run(
        QUICK if options.quick else Load(),
        write=not options.no_write and not options.quick,
    )
    failed = any(phase.lost or phase.duplicated for r in results for phase in r.phases)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
