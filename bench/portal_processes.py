"""Benchmark of issue 14 (« the portal in its own processes »): logins per second through
`educonnect-bot portal --workers N`, N = 1, 2 and 4, every process on one throwaway PostgreSQL,
from many concurrent clients, and the speed-up over one process.

Each N runs the real command (`python -m bot portal --workers N --bind 127.0.0.1:0`) as the
operator does, waits until its N workers have started, then times two closed loops from the
same clients: logins with a chosen password (argon2id m = 64 MiB, t = 3, p = 4: the CPU cost
of LSU day) and logins with a letter's provisional password (m = 19 MiB, t = 2, p = 1: cheaper,
so the HTTP stack and the GIL weigh more). Each client is an httpx client with its own cookie
jar and its own address (X-Forwarded-For, trusted from 127.0.0.1), that opens a new connection
per request as a reverse proxy does towards its upstream: the kernel then hands each connection
to whichever worker accepts first. The CPU time of each worker during each loop is read from
/proc, to show how evenly the work was spread; the clients' own CPU is reported too, since
they share the machine.

    python -m bench portal-processes [--processes 1,2,4] [--clients 16] [--duration 4]
        [--guardians 64] [--quick] [--no-write]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from bench.portal_bench import seed_database
from bench.portal_load import (
    Credentials,
    Level,
    browsers,
    closed_loop,
    health,
    login,
    percentile,
)
from bench.results import Machine, read_vm_hwm_mb, write_section
from bot.services.accounts import (
    CHOSEN_HASHER,
    PROVISIONAL_HASHER,
)

SECTION = "portal-processes"
CHOSEN = "login, chosen password"
PROVISIONAL = "login, provisional password"
PORTAL_URL = "http://portal.bench"
LISTENING = re.compile(r"http://127\.0\.0\.1:(\d+)")
# uvicorn's line when a worker's application is up (in every worker, one worker or N).
WORKER_READY = "Application startup complete."
START_TIMEOUT = 120.0
PORTAL_COMMAND = (sys.executable, "-m", "bot", "portal")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Options:
    processes: list[int]
    clients: int
    duration: float
    guardians: int


DEFAULT = Options(processes=[1, 2, 4], clients=16, duration=4.0, guardians=64)
QUICK = Options(processes=[1, 2], clients=4, duration=1.0, guardians=16)


# --- The database ----------------------------------------------------------------------------


def seed(url: str, guardians: int) -> Credentials:
    """One school of `guardians` families on `url`, every letter printed, every child born on
    BIRTH_DATE; half of them activated with NEW_PASSWORD, the other half kept provisional."""
    half = guardians // 2
    return seed_database(url, guardians=guardians, activated=half, provisional=guardians - half)


# --- The portal command ----------------------------------------------------------------------


def _cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of process `pid` so far; None once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def _children(pid: int, marker: bytes) -> list[int]:
    """The processes whose parent is `pid` and whose command line holds `marker`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            command = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if parent == pid and marker in command:
            found.append(int(entry.name))
    return sorted(found)


class PortalCommand:
    """`python -m bot portal --workers N` on a free port of 127.0.0.1, its log kept."""

    def __init__(self, workers: int, database_url: str, data_dir: Path) -> None:
        self.workers = workers
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PORTAL_", "DATA"))}
        env.update(DATA_DIR=str(data_dir), DATABASE_URL=database_url, PORTAL_URL=PORTAL_URL)
        # The clients' own addresses (X-Forwarded-For) are believed from this host only.
        env["FORWARDED_ALLOW_IPS"] = "127.0.0.1"
        self.process = subprocess.Popen(
            [*PORTAL_COMMAND, "--workers", str(workers), "--bind", "127.0.0.1:0"],
            cwd=data_dir,  # no .env there
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.url = ""

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.append(line)

    @property
    def log(self) -> str:
        return "".join(self.lines)

    def wait_ready(self) -> float:
        """Until every worker has started and /health answers; the seconds it took."""
        started = time.perf_counter()
        deadline = started + START_TIMEOUT
        while time.perf_counter() < deadline:
            if self.process.poll() is not None:
                break
            found = LISTENING.search(self.log)
            if found and self.log.count(WORKER_READY) >= self.workers:
                self.url = f"http://127.0.0.1:{found[1]}"
                with contextlib.suppress(httpx.TransportError):
                    if httpx.get(f"{self.url}/health", timeout=10).status_code == 200:
                        return time.perf_counter() - started
            time.sleep(0.05)
        self.kill()
        raise RuntimeError(f"the portal ({self.workers} processes) did not start:\n{self.log}")

    def serving_pids(self) -> list[int]:
        """The processes that serve requests: the command itself for one worker, else its
        spawned workers."""
        if self.workers == 1:
            return [self.process.pid]
        return _children(self.process.pid, b"spawn_main")

    def cpu(self) -> dict[int, float]:
        return {pid: _cpu_seconds(pid) or 0.0 for pid in self.serving_pids()}

    def peak_rss_mb(self) -> list[float]:
        return [read_vm_hwm_mb(pid) or 0.0 for pid in self.serving_pids()]

    def stop(self) -> int:
        """SIGTERM, as a service manager stops it; its exit code."""
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(60)
        finally:
            self.kill()

    def kill(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)
        with contextlib.suppress(OSError):
            os.killpg(self.process.pid, signal.SIGKILL)  # a worker left behind


# --- One number of processes -----------------------------------------------------------------


@dataclass
class Phase:
    """One closed loop against one number of processes, with who spent the CPU."""

    level: Level
    worker_cpu_s: list[float]
    client_cpu_s: float
    # Every core's busy time meanwhile (/proc/stat): what is neither the workers nor the
    # clients is PostgreSQL, the command's parent and whatever else ran on the machine.
    machine_cpu_s: float = 0.0

    @property
    def rest_cpu_s(self) -> float:
        return max(0.0, self.machine_cpu_s - sum(self.worker_cpu_s) - self.client_cpu_s)


@dataclass
class ProcessRun:
    """What N portal processes did."""

    processes: int
    start_s: float
    phases: dict[str, Phase] = field(default_factory=dict)
    peak_rss_mb: list[float] = field(default_factory=list)
    exit_code: int | None = None


def families(base_url: str, count: int) -> AbstractAsyncContextManager[list[httpx.AsyncClient]]:
    """`count` browsers, each with its cookie jar and its address, opening a new connection
    per request (as a reverse proxy towards its upstream, unless told to keep them)."""
    return browsers(base_url, count, limits=httpx.Limits(max_keepalive_connections=0))


async def _phases(
    command: PortalCommand, credentials: Credentials, options: Options
) -> dict[str, Phase]:
    activated = itertools.cycle(credentials.activated)
    provisional = itertools.cycle(credentials.provisional)
    attempts = (
        (CHOSEN, login(lambda: next(activated))),
        (PROVISIONAL, login(lambda: next(provisional), activation=True)),
    )
    phases: dict[str, Phase] = {}
    async with families(command.url, options.clients) as clients:
        # Warm-up, untimed: every worker's templates, pool and decoy hashes.
        await asyncio.gather(*(health(client) for client in clients))
        for _name, attempt in attempts:
            await asyncio.gather(*(attempt(client) for client in clients))
        for name, attempt in attempts:
            before, client_before, machine_before = command.cpu(), _own_cpu(), machine_cpu()
            level = await closed_loop(clients, name, options.clients, options.duration, attempt)
            after, client_after, machine_after = command.cpu(), _own_cpu(), machine_cpu()
            worker_cpu = [after[pid] - before.get(pid, 0.0) for pid in sorted(after)]
            phases[name] = Phase(
                level, worker_cpu, client_after - client_before, machine_after - machine_before
            )
            _print_phase(command.workers, phases[name])
    return phases


def _own_cpu() -> float:
    times = os.times()
    return times.user + times.system


def machine_cpu(stat: str | None = None) -> float:
    """Seconds every core of the machine has been busy so far (all but idle and iowait in
    the first line of /proc/stat)."""
    text = stat if stat is not None else Path("/proc/stat").read_text()
    ticks = [int(value) for value in text.splitlines()[0].split()[1:]]
    idle = ticks[3] + (ticks[4] if len(ticks) > 4 else 0)
    return (sum(ticks[:8]) - idle) / CLOCK_TICKS


def _print_phase(processes: int, phase: Phase) -> None:
    level = phase.level
    print(
        f"  {processes} process{'es' if processes > 1 else ''}  {level.phase:<28} "
        f"{level.rate:6.1f}/s  p50 {percentile(level.totals, 0.5) * 1000:5.0f} ms  "
        f"p95 {percentile(level.totals, 0.95) * 1000:5.0f} ms  workers' CPU "
        + " + ".join(f"{cpu:.1f}" for cpu in phase.worker_cpu_s)
        + f" s  unexpected {sum(level.unexpected.values())}",
        flush=True,
    )


def run_processes(
    workers: int, url: str, data_dir: Path, credentials: Credentials, options: Options
) -> ProcessRun:
    """Start the command with `workers` processes, time the phases, stop it."""
    command = PortalCommand(workers, url, data_dir)
    try:
        result = ProcessRun(workers, command.wait_ready())
        result.phases = asyncio.run(_phases(command, credentials, options))
        result.peak_rss_mb = command.peak_rss_mb()
        result.exit_code = command.stop()
    finally:
        command.kill()
    if result.exit_code != 0:
        print(command.log, file=sys.stderr)
    return result


# --- The run ---------------------------------------------------------------------------------


def run(options: Options) -> tuple[list[ProcessRun], str | None, float]:
    """Every number of processes against one throwaway PostgreSQL: the runs, why PostgreSQL
    was not available (then no run), and the seconds the seeding took."""
    from tests.postgres import PostgresServer

    server = PostgresServer()
    runs: list[ProcessRun] = []
    seed_s = 0.0
    try:
        note = server.unavailable_reason
        if note is None:
            try:
                server.start()
            except (OSError, subprocess.CalledProcessError) as error:
                note = f"the throwaway server did not start ({error})"
        if note is None:
            url = server.create_database("portal_processes")
            started = time.perf_counter()
            credentials = seed(url, options.guardians)
            seed_s = time.perf_counter() - started
            print(f"seeded {options.guardians} families in {seed_s:.1f} s", flush=True)
            with tempfile.TemporaryDirectory(prefix="portal-processes-") as folder:
                for workers in options.processes:
                    runs.append(run_processes(workers, url, Path(folder), credentials, options))
        return runs, note, seed_s
    finally:
        server.stop()


# --- Report ----------------------------------------------------------------------------------


def speed_up(runs: Sequence[ProcessRun], phase: str, processes: int) -> float | None:
    """Logins/s with `processes` processes over logins/s with one (None without both)."""
    rates = {run.processes: run.phases[phase].level.rate for run in runs if phase in run.phases}
    if 1 not in rates or processes not in rates or rates[1] == 0:
        return None
    return rates[processes] / rates[1]


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


def table(runs: Sequence[ProcessRun]) -> list[str]:
    """One row per number of processes and kind of login."""
    rows = [
        "| processes | login | logins/s | p50 | p95 | speed-up vs 1 | each worker's CPU "
        "during the loop | clients' CPU | rest of the machine | unexpected |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for phase in (CHOSEN, PROVISIONAL):
        for result in runs:
            if phase not in result.phases:
                continue
            item = result.phases[phase]
            level = item.level
            factor = speed_up(runs, phase, result.processes)
            rows.append(
                f"| {result.processes} | {phase.removeprefix('login, ')} | {level.rate:.1f} | "
                f"{_ms(percentile(level.totals, 0.5))} | **{_ms(percentile(level.totals, 0.95))}**"
                f" | {f'×{factor:.2f}' if factor is not None else '—'} | "
                + " + ".join(f"{cpu:.1f} s" for cpu in item.worker_cpu_s)
                + f" | {item.client_cpu_s:.1f} s | {item.rest_cpu_s:.1f} s | "
                f"{sum(level.unexpected.values()) or '—'} |"
            )
    return rows


def headline(runs: Sequence[ProcessRun], cores: int) -> str:
    """The figures in one paragraph, with what the machine allows."""
    parts = []
    for phase, label in ((CHOSEN, "chosen password"), (PROVISIONAL, "provisional password")):
        figures = []
        for result in runs:
            if phase in result.phases:
                factor = speed_up(runs, phase, result.processes)
                times = f" (×{factor:.2f})" if factor is not None and result.processes > 1 else ""
                figures.append(
                    f"{result.phases[phase].level.rate:.1f}/s with {result.processes}{times}"
                )
        parts.append(f"logins with a {label}: " + ", ".join(figures))
    unexpected = sum(
        sum(item.level.unexpected.values()) for result in runs for item in result.phases.values()
    )
    clean = all(result.exit_code == 0 for result in runs)
    return (
        f"**Headline, on {cores} core{'s' if cores != 1 else ''}: "
        + "; ".join(parts)
        + f". {unexpected} unexpected answers; every command stopped by SIGTERM "
        + ("exited 0" if clean else "did NOT exit 0: see the log")
        + ".**"
    )


def explanation(cores: int) -> str:
    """Why the figures are what they are (written once, true whatever the run measured)."""
    return (
        f"Reading: the clients, PostgreSQL and every portal process share the same {cores} "
        f"cores. A chosen password's check (argon2id with {CHOSEN_HASHER.parallelism} lanes) "
        "already runs on several threads, and the processes of one machine share its cores "
        "for those checks (each runs cores ÷ processes at once, at least one), so one process "
        "already keeps every core busy: more processes cannot add logins per second on the "
        "same cores, they add memory, context switches and, beyond one per core, more checks "
        "at once than cores. Processes pay off with more cores (or machines) than one process "
        "can use, and where Python itself (one core per process) is the limit: the cheaper "
        f"provisional logins (argon2id {PROVISIONAL_HASHER.memory_cost // 1024} MiB, one "
        "lane) and the HTTP stack. Connections go to whichever worker accepts first, so the "
        "workers' CPU column shows how evenly the kernel spread them; the rest of the "
        "machine is PostgreSQL, the command's parent and any other work (when large, the "
        "portal shared its cores with something else)."
    )


# Beyond this share of the cores' time, what ran beside the portal and its clients during a
# loop was more than PostgreSQL's own part (≈ 10 % here): other work shared the machine.
REST_SHARE_LIMIT = 0.3


def busy_warning(load: float, cores: int, runs: Sequence[ProcessRun] = ()) -> str | None:
    """A warning when other work kept the cores busy before the run (load average over one
    minute above the number of cores) or during a loop (the rest of the machine above
    REST_SHARE_LIMIT of the cores' time): the figures then measure that contention too."""
    shares = [
        (phase.rest_cpu_s / (phase.level.seconds * cores), run.processes, name)
        for run in runs
        for name, phase in run.phases.items()
        if phase.level.seconds > 0
    ]
    worst = max(shares, default=(0.0, 0, ""))
    if load <= cores and worst[0] <= REST_SHARE_LIMIT:
        return None
    if load > cores:
        why = f"the machine was busy before the run (load average {load:.1f} on {cores} cores)"
    else:
        share, processes, name = worst
        why = (
            f"other work took {share:.0%} of the cores' time during a loop ({name}, "
            f"{processes} process{'es' if processes > 1 else ''})"
        )
    return (
        f"⚠ Not a quiet machine: {why}. These figures measure that contention as much as the "
        "portal; run it again on a quiet machine before comparing."
    )


def markdown(
    runs: Sequence[ProcessRun],
    note: str | None,
    seed_s: float,
    options: Options,
    *,
    machine: str,
    command: str,
    load_before: float = 0.0,
) -> str:
    if note is not None:
        return f"{machine}\n\nPostgreSQL unavailable, nothing measured: {note}."
    setup = (
        f"Command: `{command}`. One school of "
        f"{options.guardians} families on one throwaway PostgreSQL (seeded in {seed_s:.1f} s), "
        f"half of them activated; {options.clients} clients in a closed loop for "
        f"{options.duration:g} s per kind of login and number of processes (attempts in flight "
        "at the end are finished and counted); latency is the timed POST of a login, its form "
        "fetched before, untimed. Workers' start (to every worker serving): "
        + ", ".join(f"{r.processes}: {r.start_s:.1f} s" for r in runs)
        + "; peak RSS of each serving process: "
        + "; ".join(
            f"{r.processes}: " + " + ".join(f"{mb:.0f}" for mb in r.peak_rss_mb) + " MB"
            for r in runs
        )
        + "."
    )
    cores = len(os.sched_getaffinity(0))
    warning = busy_warning(load_before, cores, runs)
    parts = [machine, headline(runs, cores), *([warning] if warning else []), setup]
    return "\n\n".join([*parts, "\n".join(table(runs)), explanation(cores)])


def _levels(text: str) -> list[int]:
    return sorted({int(part) for part in text.split(",") if part.strip()})


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(
        prog="python -m bench portal-processes", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--processes", default="1,2,4", help="numbers of portal processes")
    parser.add_argument("--clients", type=int, default=DEFAULT.clients)
    parser.add_argument("--duration", type=float, default=DEFAULT.duration, help="seconds")
    parser.add_argument("--guardians", type=int, default=DEFAULT.guardians)
    parser.add_argument("--quick", action="store_true", help="tiny sizes; never writes")
    parser.add_argument("--no-write", action="store_true", help="leave bench/RESULTS.md alone")
    parsed, _rest = parser.parse_known_args(args)
    options = QUICK
    if not parsed.quick:
        options = Options(
            processes=_levels(parsed.processes),
            clients=parsed.clients,
            duration=parsed.duration,
            guardians=parsed.guardians,
        )
    if 1 not in options.processes or min(options.processes) < 1 or options.guardians < 4:
        parser.error("--processes must include 1 (the reference), --guardians at least 4")
    machine, load_before = Machine.here(), os.getloadavg()[0]
    runs, note, seed_s = run(options)
    command = " ".join(["python -m bench portal-processes", *args])
    text = markdown(
        runs,
        note,
        seed_s,
        options,
        machine=machine.markdown(),
        command=command,
        load_before=load_before,
    )
    print(text)
    if not (parsed.quick or parsed.no_write):
        write_section(SECTION, text)
        print(f"\nbench/RESULTS.md: {SECTION} section updated")
    failed = note is None and any(r.exit_code != 0 for r in runs)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
