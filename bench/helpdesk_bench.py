"""Benchmark of the issue « Families », help desk: 500 linked families filing a `/question` while
the 50 directors of their 10 schools close or answer each request, through the local Bot API
server, to one bot process as deployed.

Target: from the family's last message (its question) to each director's notification, p95
under 1 s beside the echo-bot floor; nothing lost or duplicated (one notification per director
of the school, one « ✅ » and one answer per family, references unique per school, one row per
request).

The harness is `bench.bot_load`'s: the emulator in a thread of this process, `python -m bot run`
as a subprocess, latencies read from the emulator's call log, the echo bot driven by the same
families on the same schedule as the floor.

    python -m bench helpdesk [--quick] [--no-write] [--ramp SECONDS]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import re
import shutil
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlmodel import col

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
from bench.district import seed_district
from bench.results import Machine, write_section
from bot.db import make_engine, session_scope
from bot.sandbox.botapi import ThreadedBotApi
from models import HelpRequest

TARGET_P95_MS = 1000.0
ANSWER_TIMEOUT = 180.0  # a family waits this long for the school's answer before it counts lost
QUIET = 1.0  # after the last answer: late or duplicated messages still get logged
REFERENCE = re.compile(r"D-\d{4}-\d{4}")
# The directors' notification is the message carrying the request's « close » button.
CLOSE_DATA = re.compile(r"hd:end:(\d+)")


@dataclass(frozen=True)
class Load:
    schools: int = 10
    families_per_school: int = 50
    directors_per_school: int = 5
    # Families start over this many seconds: 500 requests make ≈ 5,000 messages to chats, and
    # python-telegram-bot (like Telegram) sends at most 30 a second; 240 s keeps it under 70 %.
    ramp_seconds: float = 240.0
    typing_seconds: tuple[float, float] = (2.0, 8.0)  # between the bot's prompt and the answer
    think_seconds: tuple[float, float] = (1.0, 4.0)  # a director reads the request
    reply_share: float = 0.5  # the rest are closed
    seed: int = 2026

    @property
    def families(self) -> int:
        return self.schools * self.families_per_school

    @property
    def directors(self) -> int:
        return self.schools * self.directors_per_school


QUICK = Load(schools=2, families_per_school=5, directors_per_school=2, ramp_seconds=4.0)


# --- The people ------------------------------------------------------------------------------


@dataclass
class Family:
    """A simulated family linked to a guardian of `school`, and what it did."""

    user: Any  # a SandboxUser, used on the emulator's loop only
    school: int
    start: float  # seconds after the beginning of the run
    typing: float
    opened: float | None = None  # time.time() when « /question » was pushed
    asked: float | None = None  # time.time() when the question itself was pushed

    @property
    def chat_id(self) -> int:
        return int(self.user.id)


@dataclass
class Director:
    """A simulated director of `school` (its `index`-th), its inbox and its work."""

    user: Any
    school: int
    index: int
    work: asyncio.Queue[tuple[int, Any]] | None = None
    follow_ups: dict[str, asyncio.Queue[Any]] = field(default_factory=dict)
    failures: int = 0

    @property
    def chat_id(self) -> int:
        return int(self.user.id)

    def inbox(self, reference: str) -> asyncio.Queue[Any]:
        return self.follow_ups.setdefault(reference, asyncio.Queue())


@dataclass(frozen=True)
class Answer:
    """What a director did about a request, and when its last action was pushed."""

    kind: str  # « reply » or « close »
    at: float
    director: int


@dataclass(frozen=True)
class Plan:
    """Who answers request `request_id` and how: the same for every director who gets it."""

    director_index: int
    reply: bool
    think: float
    typing: float

    @classmethod
    def of(cls, request_id: int, load: Load) -> Plan:
        rng = random.Random(f"{load.seed}:request:{request_id}")
        return cls(
            director_index=rng.randrange(load.directors_per_school),
            reply=rng.random() < load.reply_share,
            think=rng.uniform(*load.think_seconds),
            typing=rng.uniform(*load.typing_seconds),
        )


def _make_people(api: Any, load: Load) -> tuple[list[Family], list[Director]]:
    """The families (arrivals spread over the ramp) and directors, as users of the emulator."""
    server = api.server
    rng = random.Random(f"{load.seed}:people")
    families = [
        Family(
            api.call(lambda n=n: server.new_user(f"Famille{n}")),
            school=n % load.schools,
            start=rng.uniform(0, load.ramp_seconds),
            typing=rng.uniform(*load.typing_seconds),
        )
        for n in range(load.families)
    ]
    directors = [
        Director(
            api.call(lambda n=n: server.new_user(f"Direction{n}", last_name="Test")),
            school=n % load.schools,
            index=n // load.schools,
        )
        for n in range(load.directors)
    ]
    return families, directors


# --- The driver, on the emulator's event loop ------------------------------------------------


async def _family(family: Family, *, echo: bool) -> None:
    """`/question`, the prompt, typing, the question, the « ✅ » and (not the echo) the answer."""
    await asyncio.sleep(family.start)
    user = family.user
    user.drain()
    try:
        family.opened = time.time()
        await user.send_text("/question")
        await user.next_message(timeout=REPLY_TIMEOUT)
        await asyncio.sleep(family.typing)
        family.asked = time.time()
        await user.send_text(f"Bonjour, mon enfant n'apparaît pas sur mon compte ({user.id}).")
        await user.next_message(timeout=REPLY_TIMEOUT)
        if not echo:
            await user.next_message(timeout=ANSWER_TIMEOUT)
    except TimeoutError:
        return  # counted as lost from the call log


def _request_of(message: Any) -> int | None:
    """The request id a director's notification is about (from its « close » button)."""
    for row in message.inline_keyboard:
        for button in row:
            matched = CLOSE_DATA.fullmatch(button.callback_data or "")
            if matched:
                return int(matched[1])
    return None


async def _watch(director: Director, load: Load) -> None:
    """Sort what the bot sends a director: its own requests to answer, and follow-ups."""
    assert director.work is not None
    while True:
        try:
            message = await director.user.next_message(timeout=3600)
        except TimeoutError:
            continue
        request_id = _request_of(message)
        if request_id is not None:
            if Plan.of(request_id, load).director_index == director.index:
                director.work.put_nowait((request_id, message))
            continue
        found = REFERENCE.search(message.content)
        if found:
            director.inbox(found[0]).put_nowait(message)


async def _answer(director: Director, load: Load, answers: dict[tuple[int, str], Answer]) -> None:
    """Close or reply to each request this director is the one to answer, one at a time."""
    assert director.work is not None
    while True:
        request_id, note = await director.work.get()
        try:
            reference = REFERENCE.search(note.content)
            assert reference is not None
            plan = Plan.of(request_id, load)
            inbox = director.inbox(reference[0])
            await asyncio.sleep(plan.think)
            if plan.reply:
                await director.user.press_data(note, f"hd:rep:{request_id}")
                await asyncio.wait_for(inbox.get(), REPLY_TIMEOUT)  # « type your answer »
                await asyncio.sleep(plan.typing)
                at = time.time()
                await director.user.send_text(f"Bonjour, voici la réponse à {reference[0]}.")
            else:
                at = time.time()
                await director.user.press_data(note, f"hd:end:{request_id}")
            answers[(director.school, reference[0])] = Answer(
                "reply" if plan.reply else "close", at, director.chat_id
            )
            await asyncio.wait_for(inbox.get(), REPLY_TIMEOUT)  # « recorded »
        except TimeoutError:
            director.failures += 1
        finally:
            director.work.task_done()


async def _drive(
    families: list[Family], directors: list[Director], load: Load, *, echo: bool
) -> dict[tuple[int, str], Answer]:
    """Run every family to its end while the directors answer; what the directors did."""
    answers: dict[tuple[int, str], Answer] = {}
    helpers: list[asyncio.Task[None]] = []
    for director in directors:
        director.user.drain()
        director.work = asyncio.Queue()
        if not echo:
            helpers.append(asyncio.create_task(_watch(director, load)))
            helpers.append(asyncio.create_task(_answer(director, load, answers)))
    try:
        await asyncio.gather(*(_family(f, echo=echo) for f in families))
        for director in directors:
            if director.work is not None:
                await asyncio.wait_for(director.work.join(), ANSWER_TIMEOUT)
    finally:
        for helper in helpers:
            helper.cancel()
        await asyncio.gather(*helpers, return_exceptions=True)
    await asyncio.sleep(QUIET)
    return answers


# --- Accounting, from the emulator's call log ------------------------------------------------


@dataclass(frozen=True)
class Delivery:
    """One message the bot sent to a chat: when it reached the emulator, and what it says."""

    chat_id: int
    time: float
    reference: str | None
    request_id: int | None  # set on a director's notification


def deliveries(calls: Iterable[Any]) -> dict[int, list[Delivery]]:
    """The successful sendMessage calls of the log, per chat, in order."""
    found: dict[int, list[Delivery]] = defaultdict(list)
    for call in calls:
        if call.method != "sendMessage" or call.status != 200:
            continue
        try:
            chat_id = int(str(call.params.get("chat_id")).strip('"'))
        except ValueError:
            continue
        reference = REFERENCE.search(str(call.params.get("text", "")))
        request = CLOSE_DATA.search(str(call.params.get("reply_markup", "")))
        found[chat_id].append(
            Delivery(
                chat_id,
                call.time,
                reference[0] if reference else None,
                int(request[1]) if request else None,
            )
        )
    return found


@dataclass(frozen=True)
class Filed:
    """A family's question: its chat, its school, when it was pushed."""

    chat_id: int
    school: int
    asked: float | None


@dataclass
class Tally:
    """Latencies and the lost/duplicated accounting of one run of the EduConnect bot."""

    questions: int = 0
    notify_ms: list[float] = field(default_factory=list)
    all_notified_ms: list[float] = field(default_factory=list)  # the school's last director
    confirm_ms: list[float] = field(default_factory=list)
    answer_ms: list[float] = field(default_factory=list)
    replies: int = 0
    closes: int = 0
    lost: Counter[str] = field(default_factory=Counter)
    duplicated: Counter[str] = field(default_factory=Counter)
    references: dict[int, list[str]] = field(default_factory=lambda: defaultdict(list))

    @property
    def reused_references(self) -> int:
        return sum(len(refs) - len(set(refs)) for refs in self.references.values())

    @property
    def clean(self) -> bool:
        return not (sum(self.lost.values()) or sum(self.duplicated.values()))


def tally(
    filed: Sequence[Filed],
    directors: dict[int, list[int]],
    answers: dict[tuple[int, str], Answer],
    calls: Iterable[Any],
) -> Tally:
    """Match the log's messages to each question: one « ✅ » and one answer for the family, one
    notification per director of its school (`directors`: school → director chat ids)."""
    sent = deliveries(calls)
    result = Tally(questions=len(filed))
    notified: set[tuple[int, str]] = set()
    for question in filed:
        mine = [
            d
            for d in sent.get(question.chat_id, [])
            if question.asked is not None and d.time >= question.asked and d.reference
        ]
        if question.asked is None or not mine:
            result.lost["confirmation"] += 1
            continue
        reference = mine[0].reference
        assert reference is not None and question.asked is not None
        result.references[question.school].append(reference)
        answer = answers.get((question.school, reference))
        before = [d for d in mine if answer is None or d.time < answer.at]
        after = [d for d in mine if answer is not None and d.time >= answer.at]
        result.confirm_ms.append((before[0].time - question.asked) * 1000)
        result.duplicated["confirmation"] += len(before) - 1
        _count(result, "answer", len(after))
        if answer is not None and after:
            result.answer_ms.append((after[0].time - answer.at) * 1000)
            result.replies += answer.kind == "reply"
            result.closes += answer.kind == "close"
        notified.add((question.school, reference))
        firsts = []
        for chat_id in directors.get(question.school, []):
            notes = [d for d in sent.get(chat_id, []) if d.request_id and d.reference == reference]
            _count(result, "notification", len(notes))
            if notes:
                firsts.append((notes[0].time - question.asked) * 1000)
        result.notify_ms += firsts
        if firsts and len(firsts) == len(directors.get(question.school, [])):
            result.all_notified_ms.append(max(firsts))
    for school, chat_ids in directors.items():
        stray = [
            d
            for chat_id in chat_ids
            for d in sent.get(chat_id, [])
            if d.request_id and (school, d.reference) not in notified
        ]
        result.duplicated["notification"] += len(stray)
    return result


def _count(result: Tally, what: str, count: int) -> None:
    if count == 0:
        result.lost[what] += 1
    result.duplicated[what] += max(0, count - 1)


# --- Seeding ---------------------------------------------------------------------------------


@dataclass
class Seeded:
    pupils: int
    guardians: int
    codes: list[str]  # one invitation per director, in the order of `directors`
    seconds: float


def _seed(
    database_url: str, load: Load, families: list[Family], directors: list[Director]
) -> Seeded:
    """The district imported through the services, one invitation per director, and each
    family's chat linked to a guardian of its school (`bench.district.seed_district`)."""
    district = seed_district(
        database_url,
        seed=str(load.seed),
        pupils_per_school=load.families_per_school,
        directors={n: [d.chat_id for d in directors if d.school == n] for n in range(load.schools)},
        families={n: [f.chat_id for f in families if f.school == n] for n in range(load.schools)},
    )
    return Seeded(
        pupils=district.pupils,
        guardians=district.guardians,
        codes=[district.codes[d.chat_id] for d in directors],
        seconds=district.seconds,
    )


def _database_rows(database_url: str) -> tuple[int, int]:
    """Help requests in the database, and distinct (school, reference) pairs among them."""
    engine = make_engine(database_url)
    try:
        with session_scope(engine) as session:
            rows = session.execute(select(func.count()).select_from(HelpRequest)).scalar_one()
            pairs = session.execute(
                select(func.count()).select_from(
                    select(col(HelpRequest.school_id), col(HelpRequest.reference))
                    .distinct()
                    .subquery()
                )
            ).scalar_one()
    finally:
        engine.dispose()
    return int(rows), int(pairs)


# --- The two bots ----------------------------------------------------------------------------


@dataclass
class Outcome:
    """The whole run: the echo floor, the EduConnect bot's tally, the database's count."""

    load: Load
    echo: Phase
    tally: Tally
    onboarding: Phase
    seeded: Seeded
    rows: int
    distinct_references: int
    failures: int
    duration_s: float
    peak_mb: float | None

    @property
    def clean(self) -> bool:
        return (
            self.tally.clean
            and self.echo.lost == self.echo.duplicated == 0
            and self.onboarding.lost == self.onboarding.duplicated == 0
            and self.tally.reused_references == 0
            and self.failures == 0
            and self.rows == self.distinct_references == len(self.tally.confirm_ms)
        )


def _echo_floor(load: Load, workdir: Path) -> Phase:
    """The same families, on the same schedule, against the echo bot: its round trip."""
    with ThreadedBotApi(bot_username="educonnect_bench_bot") as api:
        families, _directors = _make_people(api, load)
        echo = BotUnderTest(
            api, workdir, [sys.executable, "-m", "bench.bot_load", "--echo-bot"], child_env(api)
        )
        echo.start()
        phase = Phase("echo bot")
        try:
            phase.started = time.time()
            api.run(_drive(families, [], load, echo=True), timeout=load.ramp_seconds + 600)
            phase.ended = time.time()
        finally:
            echo.stop()
        for family in families:
            for command, pushed in (("/question", family.opened), ("question", family.asked)):
                if pushed is not None:
                    phase.sent.append(Sent(family.chat_id, "family", command, pushed, 1))
        account_replies(phase, api.calls(), {f.chat_id for f in families})
    return phase


def _educonnect(load: Load, workdir: Path, echo: Phase) -> Outcome:
    """Seed the district, start the bot, onboard the directors, then the families' run."""
    with ThreadedBotApi(bot_username="educonnect_bench_bot") as api:
        families, directors = _make_people(api, load)
        data_dir = workdir / "data"
        data_dir.mkdir(parents=True, exist_ok=True)
        database_url = f"sqlite:///{data_dir / 'educonnect.db'}"
        seeded = _seed(database_url, load, families, directors)
        print(
            f"seeded {load.schools} schools ({seeded.pupils} pupils, {seeded.guardians} "
            f"guardians), {load.families} linked families and {load.directors} invitations in "
            f"{seeded.seconds:.1f} s",
            file=sys.stderr,
        )
        env = child_env(api, DATA_DIR=str(data_dir), DATABASE_URL=database_url)
        bot = BotUnderTest(api, workdir, [sys.executable, "-m", "bot", "run"], env)
        bot.start()
        try:
            expected: dict[tuple[str, str], int] = {}
            onboarding = onboard(
                api,
                [d.user for d in directors],
                seeded.codes,
                expected,
                {d.chat_id for d in directors},
            )
            since = len(api.calls())
            began = time.time()
            answers = api.run(
                _drive(families, directors, load, echo=False), timeout=load.ramp_seconds + 900
            )
            duration = time.time() - began
            bot.sample_memory()
        finally:
            bot.stop()
        by_school: dict[int, list[int]] = defaultdict(list)
        for director in directors:
            by_school[director.school].append(director.chat_id)
        filed = [Filed(f.chat_id, f.school, f.asked) for f in families]
        counted = tally(filed, by_school, answers, api.calls()[since:])
    rows, distinct = _database_rows(database_url)
    return Outcome(
        load=load,
        echo=echo,
        tally=counted,
        onboarding=onboarding,
        seeded=seeded,
        rows=rows,
        distinct_references=distinct,
        failures=sum(d.failures for d in directors),
        duration_s=duration,
        peak_mb=bot.peak_mb,
    )


def run(load: Load = Load(), *, write: bool = True) -> Outcome:
    """The echo floor, then the EduConnect bot; print the figures, refresh RESULTS.md."""
    machine = Machine.here()
    workdir = Path(tempfile.mkdtemp(prefix="educonnect-bench-helpdesk-"))
    try:
        echo = _echo_floor(load, workdir)
        print(f"  echo bot: {len(echo.sent)} updates, lost {echo.lost}", file=sys.stderr)
        outcome = _educonnect(load, workdir, echo)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print("\n".join(_lines(outcome)))
    if write:
        write_section("helpdesk", _markdown(outcome, machine))
    return outcome


# --- Reporting -------------------------------------------------------------------------------


def _row(label: str, values: Sequence[float]) -> str:
    return (
        f"| {label} | {len(values):,} | {ms(percentile(values, 50))} | "
        f"**{ms(percentile(values, 95))}** | {ms(max(values) if values else None)} |"
    )


def _mb(value: float | None) -> str:
    return "—" if value is None else f"{value:.0f} MB"


def _verdict(outcome: Outcome) -> tuple[float | None, bool]:
    p95 = percentile(outcome.tally.notify_ms, 95)
    return p95, p95 is not None and p95 < TARGET_P95_MS and outcome.clean


def _accounting(outcome: Outcome) -> str:
    t = outcome.tally
    lost = ", ".join(f"{k} {v}" for k, v in sorted(t.lost.items()) if v) or "none"
    duplicated = ", ".join(f"{k} {v}" for k, v in sorted(t.duplicated.items()) if v) or "none"
    return (
        f"{t.questions:,} questions, {len(t.confirm_ms):,} « ✅ » confirmations, "
        f"{len(t.notify_ms):,} director notifications (expected "
        f"{len(t.confirm_ms) * outcome.load.directors_per_school:,}), {len(t.answer_ms):,} answers "
        f"to families ({t.replies} replies, {t.closes} closes); lost: {lost}; duplicated: "
        f"{duplicated}; director actions that got no answer: {outcome.failures}; references "
        f"reused within a school: {t.reused_references}; database: "
        f"{outcome.rows} help requests, {outcome.distinct_references} distinct (school, "
        f"reference); echo bot: {outcome.echo.lost} lost, {outcome.echo.duplicated} duplicated; "
        f"directors' onboarding: {outcome.onboarding.lost} lost, "
        f"{outcome.onboarding.duplicated} duplicated."
    )


def _table(outcome: Outcome) -> list[str]:
    t = outcome.tally
    return [
        "| bot | from → to | n | p50 | p95 | max |",
        "|---|---|---|---|---|---|",
        _row(
            "EduConnect | question → each director's notification (target p95 < 1 s)", t.notify_ms
        ),
        _row(
            "EduConnect | question → the last director of the school notified",
            t.all_notified_ms,
        ),
        _row("EduConnect | question → the family's « ✅ »", t.confirm_ms),
        _row(
            "EduConnect | director's answer (reply sent, « close » tapped) → the family",
            t.answer_ms,
        ),
        _row("echo bot | question → its echo (the floor)", outcome.echo.latencies("question")),
    ]


def _lines(outcome: Outcome) -> list[str]:
    p95, met = _verdict(outcome)
    return [
        *_table(outcome),
        "",
        f"notification p95 {ms(p95)} (target < {TARGET_P95_MS:.0f} ms): "
        + ("met" if met else "missed"),
        _accounting(outcome),
    ]


def _markdown(outcome: Outcome, machine: Machine) -> str:
    load, t = outcome.load, outcome.tally
    p95, met = _verdict(outcome)
    echo95 = outcome.echo.percentile(95, "question")
    return "\n".join(
        [
            machine.markdown(),
            "",
            f"**Headline: {load.families} families filing a `/question` over "
            f"{load.ramp_seconds:.0f} s while {load.directors} directors answer: question → "
            f"each director's notification p50 {ms(percentile(t.notify_ms, 50))}, p95 "
            f"{ms(p95)} against < {TARGET_P95_MS:.0f} ms ({'✅ met' if met else '❌ missed'}; "
            f"echo-bot floor p95 {ms(echo95)}); "
            + ("nothing lost or duplicated" if outcome.clean else "❌ losses or duplicates")
            + f"; bot peak RSS {_mb(outcome.peak_mb)}.**",
            "",
            f"District: {load.schools} schools ({outcome.seeded.pupils} pupils, "
            f"{outcome.seeded.guardians} guardians, generated and imported with `import_roster`), "
            f"{load.directors_per_school} directors per school (each redeemed an invitation with "
            f"`/start <code>`), {load.families_per_school} families per school, each chat linked "
            f"to a guardian (`FamilyChat`). Each family starts at a random moment of the "
            f"{load.ramp_seconds:.0f} s ramp, sends `/question`, types for "
            f"{load.typing_seconds[0]:.0f}–{load.typing_seconds[1]:.0f} s, sends its question and "
            "waits for the school's answer. For each request one director of the school (drawn "
            f"at random) waits {load.think_seconds[0]:.0f}–{load.think_seconds[1]:.0f} s, then "
            f"closes it or ({load.reply_share:.0%}) taps « Reply » and types an answer. The run "
            f"lasted {outcome.duration_s:.0f} s. The echo bot got the same families on the same "
            "schedule.",
            "",
            *_table(outcome),
            "",
            "Accounting: " + _accounting(outcome),
        ]
    )


# --- Entry point -----------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench helpdesk", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="2 schools, 10 families, 4 s ramp")
    parser.add_argument("--no-write", action="store_true", help="leave RESULTS.md alone")
    parser.add_argument("--ramp", type=float, help="seconds over which the families start")
    options, _rest = parser.parse_known_args(argv)
    load = QUICK if options.quick else Load()
    if options.ramp is not None:
        if options.ramp < 0:
            parser.error("--ramp must be zero or more seconds")
        load = replace(load, ramp_seconds=options.ramp)
    outcome = run(load, write=not options.no_write and not options.quick)
    return 0 if outcome.clean else 1


if __name__ == "__main__":
    sys.exit(main())
