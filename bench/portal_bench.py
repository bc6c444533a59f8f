"""Benchmark of the activation portal (issue « Activation portal »): logins and activations
against the real portal on loopback, from concurrent clients, beside — in the same run — the
health endpoint (no hash: the HTTP stack's ceiling) and bare argon2 verifications; then how
argon2's parameters trade security for the login figure.

The portal is served as the bot process serves it — `bot.portal.server.start_portal`, uvicorn
and the Starlette app in an asyncio loop — in a process of its own (`--serve`), over a SQLite
database seeded with one school. Each simulated family is an httpx client with its own
cookie jar that fetches the form (its CSRF token) and posts it, as a browser does. The
throttles stay on: like families behind a reverse proxy, every client has its own address
(X-Forwarded-For, trusted from 127.0.0.1), each failed login comes from a new one, and no
identifier gets more failures than the lockout allows; any 429 is reported.

The families, their phases and the closed loop that times them are in `bench.portal_load`;
this module serves the portal, seeds it, runs the phases, and writes the report.

    python -m bench.portal_bench [--guardians 200] [--concurrency 1,8,16,32]
        [--sweep 2,4] [--duration 1.5] [--tradeoff-clients 8] [--quick] [--no-write]
"""

from __future__ import annotations

import argparse
import asyncio
import email
import email.policy
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from bench.portal_load import (
    ACTIVATION,
    BIRTH_DATE,
    CHOSEN_LOGIN,
    FAILED_LOGINS,
    NEW_PASSWORD,
    Credentials,
    Level,
    logins_alone_and_loaded,
    main_phases,
    percentile,
)
from bench.results import ROOT, Machine, emit, peak_rss_mb, write_section

# The time a login can afford (issue 5).
TARGET_LOGIN_S = 0.250
CONFIRM_LINK = re.compile(r"/confirmer/[A-Za-z0-9_-]{43}")


@dataclass(frozen=True)
class Argon2Profile:
    """One argon2id parameter set of the trade-off table."""

    name: str
    memory_kib: int
    time_cost: int
    parallelism: int

    @property
    def label(self) -> str:
        return f"m = {self.memory_kib // 1024} MiB, t = {self.time_cost}, p = {self.parallelism}"

    def hasher(self) -> Any:
        from argon2 import PasswordHasher, Type

        return PasswordHasher(
            time_cost=self.time_cost,
            memory_cost=self.memory_kib,
            parallelism=self.parallelism,
            hash_len=32,
            salt_len=16,
            type=Type.ID,
        )


PROFILES = (
    Argon2Profile("chosen passwords today (RFC 9106 second recommendation)", 65536, 3, 4),
    Argon2Profile("same memory and passes, one lane", 65536, 3, 1),
    Argon2Profile("OWASP, 46 MiB option", 47104, 1, 1),
    Argon2Profile("OWASP minimum = provisional passwords today", 19456, 2, 1),
)


# --- The portal, in a process of its own -----------------------------------------------------


def _settings(data_dir: Path) -> Any:
    from bot.config import Settings

    return Settings(
        data_dir=data_dir,
        database_url=f"sqlite:///{(data_dir / 'educonnect.db').resolve()}",
        portal_bind="127.0.0.1:0",
        portal_url="http://127.0.0.1",
        mail_from="EduConnect <no-reply@ecole-bench.fr>",
        smtp_host=None,
    )


async def _serve(spec: dict[str, Any]) -> None:
    """The child: serve the portal as the bot process does until stdin closes."""
    from bot.db import make_engine
    from bot.portal.server import start_portal
    from bot.services.accounts import passwords

    if spec.get("profile"):
        # Chosen passwords hashed and verified (decoys too) at this profile, with no rehash.
        passwords.CHOSEN_HASHER = Argon2Profile(**spec["profile"]).hasher()
    settings = _settings(Path(spec["data_dir"]))
    engine = make_engine(settings.sqlalchemy_url)
    running = await start_portal(settings, engine)
    if running is None:
        raise RuntimeError("the portal did not start")
    print(f"port {running.port}", flush=True)
    closed = asyncio.Event()
    loop = asyncio.get_running_loop()
    # Not a thread of the loop's default executor: the portal's requests use those.
    loop.add_reader(sys.stdin.fileno(), closed.set)
    await closed.wait()
    loop.remove_reader(sys.stdin.fileno())
    await running.stop()
    engine.dispose()
    times = os.times()
    emit({"peak_rss_mb": peak_rss_mb(), "cpu_s": times.user + times.system})


class PortalProcess:
    """`python -m bench.portal_bench --serve …`: the portal on a free port of 127.0.0.1."""

    def __init__(self, data_dir: Path, profile: Argon2Profile | None = None) -> None:
        self.spec: dict[str, Any] = {"data_dir": str(data_dir)}
        if profile is not None:
            self.spec["profile"] = profile.__dict__
        self.port = 0
        self.stats: dict[str, Any] = {}
        self._process: subprocess.Popen[str] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> PortalProcess:
        self._process = subprocess.Popen(
            [sys.executable, "-m", "bench.portal_bench", "--serve", json.dumps(self.spec)],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self._process.stdout is not None
        first = self._process.stdout.readline().split()
        if first[:1] != ["port"]:
            self._process.kill()
            raise RuntimeError("the portal process did not start")
        self.port = int(first[1])
        return self

    def __exit__(self, *exc: object) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        try:
            out, _ = process.communicate("", timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            out, _ = process.communicate()
        for line in out.splitlines():
            if line.startswith("BENCH-RESULT "):
                self.stats = json.loads(line.split(" ", 1)[1])


# --- Data ------------------------------------------------------------------------------------


def seed(data_dir: Path, *, guardians: int, activated: int, provisional: int) -> Credentials:
    """`seed_database` on the portal's database in `data_dir`."""
    return seed_database(
        _settings(data_dir).sqlalchemy_url,
        guardians=guardians,
        activated=activated,
        provisional=provisional,
    )


def seed_database(url: str, *, guardians: int, activated: int, provisional: int) -> Credentials:
    """One school of `guardians` families on `url`, every child born on BIRTH_DATE, every
    letter printed; `activated` of them activated (chosen password NEW_PASSWORD),
    `provisional` kept for the login phases, the others for the activation flows."""
    from sqlmodel import update

    from bench.mail_bench import build_school
    from bot.db import make_engine, session_scope, upgrade_schema
    from bot.services.accounts import (
        begin_activation,
        confirm_activation,
        hash_chosen_password,
        lifecycle,
        notify_accounts,
    )
    from models import Pupil

    engine = make_engine(url)
    upgrade_schema(engine)
    with session_scope(engine) as session:
        _school_id, account_ids = build_school(session, guardians)
        session.exec(update(Pupil).values(birth_date=BIRTH_DATE))
        batch = notify_accounts(session=session, account_ids=account_ids, actor="bench")
    issued = [(credential.identifier, credential.password or "") for credential in batch.issued]
    with session_scope(engine) as session:
        # Activated through the account service; their password hashed once and shared (a
        # shared salt changes nothing to the time a verification takes).
        shared = hash_chosen_password(NEW_PASSWORD)
        # Patched where `begin_activation` looks it up.
        original = lifecycle.hash_chosen_password
        lifecycle.hash_chosen_password = lambda _password: shared  # type: ignore[assignment]
        try:
            for credential in batch.issued[:activated]:
                begin_activation(
                    session=session,
                    account_id=credential.account_id,
                    new_password=NEW_PASSWORD,
                    email=f"activated{credential.account_id}@famille.example.org",
                    actor="bench",
                )
                confirm_activation(session=session, account_id=credential.account_id, actor="bench")
        finally:
            lifecycle.hash_chosen_password = original
    engine.dispose()
    return Credentials(
        activated=[(identifier, NEW_PASSWORD) for identifier, _ in issued[:activated]],
        provisional=issued[activated : activated + provisional],
        to_activate=issued[activated + provisional :],
    )


def set_chosen_hashes(data_dir: Path, profile: Argon2Profile) -> None:
    """Re-hash the activated accounts' password at `profile` (one hash, shared)."""
    from sqlmodel import col, update

    from bot.db import make_engine, session_scope
    from models import Account, AccountState

    digest = profile.hasher().hash(NEW_PASSWORD)
    engine = make_engine(_settings(data_dir).sqlalchemy_url)
    with session_scope(engine) as session:
        session.exec(
            update(Account)
            .where(col(Account.state) == AccountState.ACTIVATED)
            .values(password_hash=digest)
        )
    engine.dispose()


class Outbox:
    """Reads the confirmation link each activation e-mails (the family's mailbox)."""

    def __init__(self, data_dir: Path) -> None:
        from bot.db import make_engine

        self.engine = make_engine(_settings(data_dir).sqlalchemy_url)

    def confirmation_path(self, identifier: str) -> str:
        from sqlmodel import Session, col, select

        from models import Account, OutboxMessage

        with Session(self.engine) as session:
            body = session.exec(
                select(OutboxMessage.body)
                .join(Account, col(Account.id) == col(OutboxMessage.account_id))
                .where(
                    col(Account.identifier) == identifier,
                    col(OutboxMessage.kind) == "activation_confirmation",
                )
                .order_by(col(OutboxMessage.id).desc())
            ).first()
        assert body is not None, f"no confirmation e-mail for {identifier}"
        message = email.message_from_bytes(body, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        part = message.get_body(preferencelist=("plain",))
        assert part is not None
        match = CONFIRM_LINK.search(str(part.get_content()))
        assert match is not None
        return match[0]

    def activated(self) -> int:
        from sqlmodel import Session, col, func, select

        from models import Account, AccountState

        with Session(self.engine) as session:
            return int(
                session.exec(
                    select(func.count())
                    .select_from(Account)
                    .where(col(Account.state) == AccountState.ACTIVATED)
                ).one()
            )

    def close(self) -> None:
        self.engine.dispose()


# --- Argon2 alone ---------------------------------------------------------------------------


def bare_verify(profile: Argon2Profile, *, seconds: float) -> tuple[float, float]:
    """(median time of one verification alone, verifications/s from one thread per core),
    each measured for about `seconds` (at least 3 verifications)."""
    hasher = profile.hasher()
    digest = hasher.hash(NEW_PASSWORD)

    def verify() -> None:
        hasher.verify(digest, NEW_PASSWORD)

    alone: list[float] = []
    deadline = time.perf_counter() + seconds
    while len(alone) < 3 or time.perf_counter() < deadline:
        started = time.perf_counter()
        verify()
        alone.append(time.perf_counter() - started)
    cores = len(os.sched_getaffinity(0))
    counts = [0] * cores
    started = time.perf_counter()
    deadline = started + seconds

    def verify_until(index: int) -> None:
        while counts[index] < 3 or time.perf_counter() < deadline:
            verify()
            counts[index] += 1

    threads = [threading.Thread(target=verify_until, args=(index,)) for index in range(cores)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return percentile(alone, 0.5), sum(counts) / (time.perf_counter() - started)


# --- The run ---------------------------------------------------------------------------------


@dataclass
class Options:
    guardians: int
    activated: int
    provisional: int
    concurrency: list[int]
    sweep: list[int]
    duration: float
    profiles: Sequence[Argon2Profile]
    tradeoff_concurrency: int
    verify_seconds: float


@dataclass
class TradeOff:
    profile: Argon2Profile
    verify_s: float
    verifies_per_s: float
    alone: Level | None = None
    loaded: Level | None = None


def run(options: Options) -> dict[str, Any]:
    from bot.services.accounts import CHOSEN_HASHER, PROVISIONAL_HASHER

    result: dict[str, Any] = {
        "options": options,
        "chosen": (CHOSEN_HASHER.memory_cost, CHOSEN_HASHER.time_cost, CHOSEN_HASHER.parallelism),
        "provisional": (
            PROVISIONAL_HASHER.memory_cost,
            PROVISIONAL_HASHER.time_cost,
            PROVISIONAL_HASHER.parallelism,
        ),
    }
    with tempfile.TemporaryDirectory(prefix="portal-bench-") as folder:
        data_dir = Path(folder)
        started = time.perf_counter()
        credentials = seed(
            data_dir,
            guardians=options.guardians,
            activated=options.activated,
            provisional=options.provisional,
        )
        result["seed_s"] = time.perf_counter() - started
        print(f"seeded {options.guardians} families in {result['seed_s']:.1f} s", flush=True)
        outbox = Outbox(data_dir)
        try:
            with PortalProcess(data_dir) as portal:
                levels = asyncio.run(
                    main_phases(
                        portal.url,
                        credentials,
                        outbox.confirmation_path,
                        concurrency=options.concurrency,
                        sweep=options.sweep,
                        duration=options.duration,
                    )
                )
            result["levels"] = levels
            result["server"] = portal.stats
            result["activated_after"] = outbox.activated()
        finally:
            outbox.close()
        result["flows_done"] = sum(
            level.done for level in levels if level.phase.startswith("activation")
        )
        tradeoffs = []
        for profile in options.profiles:
            verify_s, per_s = bare_verify(profile, seconds=options.verify_seconds)
            tradeoff = TradeOff(profile, verify_s, per_s)
            set_chosen_hashes(data_dir, profile)
            with PortalProcess(data_dir, profile) as portal:
                tradeoff.alone, tradeoff.loaded = asyncio.run(
                    logins_alone_and_loaded(
                        portal.url,
                        credentials,
                        clients=options.tradeoff_concurrency,
                        duration=options.duration,
                    )
                )
            print(
                f"  {profile.label:<30} verify {verify_s * 1000:5.0f} ms, "
                f"{per_s:5.1f}/s on every core",
                flush=True,
            )
            tradeoffs.append(tradeoff)
        result["tradeoffs"] = tradeoffs
    result["load_after"] = " / ".join(f"{value:.2f}" for value in os.getloadavg())
    return result


# --- Report ----------------------------------------------------------------------------------


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


def _profile_label(parameters: tuple[int, int, int]) -> str:
    memory, time_cost, parallelism = parameters
    return f"m = {memory // 1024} MiB, t = {time_cost}, p = {parallelism}"


def sustained(levels: Sequence[Level], phase: str) -> tuple[int, float]:
    """The highest concurrency whose p95 stays under the target (0 if none), and its rate."""
    best, rate = 0, 0.0
    for level in sorted((lv for lv in levels if lv.phase == phase), key=lambda lv: lv.concurrency):
        if percentile(level.totals, 0.95) >= TARGET_LOGIN_S:
            break
        best, rate = level.concurrency, level.rate
    return best, rate


def markdown(result: dict[str, Any], machine: Machine, command: str) -> str:
    options: Options = result["options"]
    return "\n\n".join(
        [
            machine.markdown(),
            _headline(result),
            _setup(result, command),
            "\n".join(_levels_table(result["levels"])),
            _probe_line(result),
            "Trade-off: each parameter set verified in this process (alone, then from one "
            "thread per core, ≈ 1 s each), then the portal restarted with chosen passwords "
            "hashed at it (and its decoys too):",
            "\n".join(_tradeoff_table(result["tradeoffs"], options.tradeoff_concurrency)),
        ]
    )


def _level(levels: Sequence[Level], phase: str, concurrency: int) -> Level | None:
    return next((lv for lv in levels if lv.phase == phase and lv.concurrency == concurrency), None)


def _headline(result: dict[str, Any]) -> str:
    options: Options = result["options"]
    levels: list[Level] = result["levels"]
    alone = _level(levels, CHOSEN_LOGIN, 1)
    top = max(options.concurrency)
    loaded = _level(levels, CHOSEN_LOGIN, top)
    best, best_rate = sustained(levels, CHOSEN_LOGIN)
    peak_rate = max((lv.rate for lv in levels if lv.phase == CHOSEN_LOGIN), default=0.0)
    failed_alone = _level(levels, FAILED_LOGINS, 1)
    failure_p50 = {
        kind: percentile([sample.total for sample in samples], 0.5)
        for kind, samples in (failed_alone.kinds() if failed_alone else {}).items()
    }
    health_top = _level(levels, "health (no hash)", top)
    unexpected = sum(sum(lv.unexpected.values()) for lv in levels)
    alone_p95 = percentile(alone.totals, 0.95) if alone else 0.0
    return (
        f"**Headline: a login with a chosen password ({_profile_label(result['chosen'])}) "
        f"takes {_ms(percentile(alone.totals, 0.5) if alone else 0)} alone, p95 "
        f"{_ms(alone_p95)} against < {_ms(TARGET_LOGIN_S)} "
        f"({'✅ met' if alone and alone_p95 < TARGET_LOGIN_S else '❌ missed'}); "
        + (
            f"the portal sustains {best} concurrent login{'s' if best != 1 else ''} "
            f"({best_rate:.1f}/s) before p95 crosses {_ms(TARGET_LOGIN_S)}"
            if best
            else f"p95 is over {_ms(TARGET_LOGIN_S)} from one client on"
        )
        + f", and saturates at {peak_rate:.1f} logins/s "
        f"(p95 {_ms(percentile(loaded.totals, 0.95)) if loaded else '—'} with {top} clients). "
        f"The HTTP stack alone (/health) serves "
        f"{health_top.rate if health_top else 0:.0f} requests/s. A failed login takes the same "
        f"time whatever the identifier (p50 alone: "
        + ", ".join(f"{kind} {_ms(value)}" for kind, value in failure_p50.items())
        + f"). {result['flows_done']} activations completed, "
        f"{unexpected} unexpected answers.**"
    )


def _levels_table(levels: Sequence[Level]) -> list[str]:
    """One row per phase and level (per kind, for the failed logins)."""
    rows = [
        "| what | clients | done | per second | p50 | p95 | requests' p95 | unexpected |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for lv in levels:
        flow = lv.phase == ACTIVATION
        parts = lv.kinds().items() if lv.phase == FAILED_LOGINS else [(lv.phase, lv.samples)]
        for name, samples in parts:
            totals = [sample.total for sample in samples]
            requests = [latency for sample in samples for latency in sample.latencies]
            wrong = sum(not sample.ok for sample in samples)
            rows.append(
                f"| {name} | {lv.concurrency} | {len(samples)} | "
                f"{len(samples) / lv.seconds:.1f} | {_ms(percentile(totals, 0.5))} | "
                f"**{_ms(percentile(totals, 0.95))}** | "
                f"{_ms(percentile(requests, 0.95)) if flow else '—'} | {wrong or '—'} |"
            )
    return rows


def _probe_line(result: dict[str, Any]) -> str:
    """/health meanwhile, at the highest level of chosen-password logins."""
    options: Options = result["options"]
    top = max(options.concurrency)
    loaded = _level(result["levels"], CHOSEN_LOGIN, top)
    probe = loaded.probe if loaded else []
    return (
        f"While {top} clients logged in, /health answered in p50 "
        f"{_ms(percentile(probe, 0.5))}, p95 {_ms(percentile(probe, 0.95))} "
        f"({len(probe)} probes): argon2 runs in worker threads, never on the event loop."
    )


def _tradeoff_table(tradeoffs: Sequence[TradeOff], clients: int) -> list[str]:
    """One row per argon2 parameter set: bare verifications, then logins through the portal."""
    trade = [
        f"| argon2id parameters | | verify alone (median) | verifies/s, every core | "
        f"login alone p50 / p95 | login p95, {clients} clients | "
        f"logins/s, {clients} clients |",
        "|---|---|---|---|---|---|---|",
    ]
    for tradeoff in tradeoffs:
        one, many = tradeoff.alone, tradeoff.loaded
        trade.append(
            f"| {tradeoff.profile.label} | {tradeoff.profile.name} | "
            f"{_ms(tradeoff.verify_s)} | {tradeoff.verifies_per_s:.1f} | "
            f"{_ms(percentile(one.totals, 0.5)) if one else '—'} / "
            f"{_ms(percentile(one.totals, 0.95)) if one else '—'} | "
            f"{_ms(percentile(many.totals, 0.95)) if many else '—'} | "
            f"{many.rate if many else 0:.1f} |"
        )
    return trade


def _setup(result: dict[str, Any], command: str) -> str:
    """How the run was made: the command, the school, the clocks, the portal's own figures."""
    options: Options = result["options"]
    server = result.get("server", {})
    return (
        f"Command: `{command}`. School: {options.guardians} families, every letter printed "
        f"({_profile_label(result['provisional'])} for provisional passwords), "
        f"{options.activated} accounts activated beforehand, {options.provisional} kept for the "
        f"provisional logins, the others for the activation flows (seeded in "
        f"{result['seed_s']:.1f} s). Each phase runs {options.duration:g} s per level with "
        f"closed-loop clients (attempts in flight at the end are finished and counted); "
        f"latency is the timed POST of a login (its form fetched before, untimed) or all 6 "
        f"requests of an activation (its e-mail read from the outbox between them). The portal "
        f"process: peak RSS {server.get('peak_rss_mb', 0):.0f} MB, "
        f"{server.get('cpu_s', 0):.0f} s of CPU. Load average after the run: "
        f"{result['load_after']}."
    )


def _levels(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part.strip()]


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["--serve"]:
        asyncio.run(_serve(json.loads(args[1])))
        return 0
    parser = argparse.ArgumentParser(prog="python -m bench.portal_bench", description=__doc__)
    parser.add_argument("--guardians", type=int, default=200)
    parser.add_argument("--concurrency", default="1,8,16,32", help="clients, for every phase")
    parser.add_argument("--sweep", default="2,4", help="more levels for the successful login")
    parser.add_argument("--duration", type=float, default=1.5, help="seconds per level")
    parser.add_argument("--tradeoff-clients", type=int, default=8)
    parser.add_argument("--quick", action="store_true", help="tiny sizes; never writes")
    parser.add_argument("--no-write", action="store_true", help="leave bench/RESULTS.md alone")
    options, _rest = parser.parse_known_args(args)
    if options.quick:
        settings = Options(
            guardians=40,
            activated=6,
            provisional=6,
            concurrency=[1, 4],
            sweep=[],
            duration=0.5,
            profiles=PROFILES[::3],
            tradeoff_concurrency=2,
            verify_seconds=0.3,
        )
    else:
        concurrency = _levels(options.concurrency)
        settings = Options(
            guardians=options.guardians,
            activated=max(concurrency),
            provisional=max(concurrency),
            concurrency=concurrency,
            sweep=_levels(options.sweep),
            duration=options.duration,
            profiles=PROFILES,
            tradeoff_concurrency=options.tradeoff_clients,
            verify_seconds=1.0,
        )
    if settings.guardians < settings.activated + settings.provisional + 8:
        parser.error("--guardians is too small for these concurrency levels")
    machine = Machine.here()
    result = run(settings)
    command = "python -m bench portal " + " ".join(args) if args else "python -m bench portal"
    text = markdown(result, machine, command.strip())
    print(text)
    if not (options.quick or options.no_write):
        write_section("portal", text)
        print("\nbench/RESULTS.md: portal section updated")
    return 0


if __name__ == "__main__":
    sys.exit(main())
