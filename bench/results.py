"""What every benchmark shares: the machine it ran on, child processes that report their own
peak memory, and the generated sections of `bench/RESULTS.md`.

Each benchmark owns one block of RESULTS.md between two markers and rewrites only that block;
the notes around it are written by hand and left alone.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
_RESULT_PREFIX = "BENCH-RESULT "


@dataclass(frozen=True)
class Machine:
    """Where and when the figures were measured."""

    cores: int
    python: str
    system: str
    date: str
    commit: str
    load: str

    @classmethod
    def here(cls) -> Machine:
        return cls(
            cores=len(os.sched_getaffinity(0)),
            python=platform.python_version(),
            system=f"{platform.system()} {platform.machine()}",
            date=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            commit=_commit(),
            load=" / ".join(f"{value:.2f}" for value in os.getloadavg()),
        )

    def markdown(self) -> str:
        return (
            f"Measured {self.date} on {self.cores} cores ({self.system}), Python {self.python}, "
            f"commit `{self.commit}`; load average before the run (1/5/15 min): {self.load}."
        )


def _commit() -> str:
    def git(*args: str) -> str:
        # Read-only: no optional locks, so a benchmark never touches the index.
        result = subprocess.run(
            ["git", "--no-optional-locks", *args],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
        return result.stdout.strip() if result.returncode == 0 else ""

    commit = git("rev-parse", "--short=12", "HEAD") or "unknown"
    if git("status", "--porcelain", "--untracked-files=no"):
        commit += " + uncommitted changes"
    return commit


def peak_rss_mb() -> float:
    """This process's peak resident memory so far (VmHWM), in MB."""
    return read_vm_hwm_mb(os.getpid()) or 0.0


def current_rss_mb() -> float:
    """This process's resident memory now (VmRSS), in MB."""
    return _status_field(os.getpid(), "VmRSS") or 0.0


def read_vm_hwm_mb(pid: int) -> float | None:
    """Peak resident memory of process `pid` (VmHWM in /proc), in MB; None once it is gone."""
    return _status_field(pid, "VmHWM")


def _status_field(pid: int, name: str) -> float | None:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith(f"{name}:"):
            return int(line.split()[1]) / 1024
    return None


# --- Child processes ------------------------------------------------------------------------


def emit(result: dict[str, Any]) -> None:
    """Print a child process's result where `run_child` finds it."""
    sys.stdout.write(_RESULT_PREFIX + json.dumps(result, default=str) + "\n")
    sys.stdout.flush()


def run_child(module: str, spec: dict[str, Any], *, timeout: float) -> dict[str, Any]:
    """Run `python -m module --child SPEC` in a fresh process and return what it emitted, so
    that one phase's memory never counts in another's."""
    process = subprocess.run(
        [sys.executable, "-m", module, "--child", json.dumps(spec)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    for line in process.stdout.splitlines():
        if line.startswith(_RESULT_PREFIX):
            result: dict[str, Any] = json.loads(line[len(_RESULT_PREFIX) :])
            return result
    raise RuntimeError(
        f"{module} child failed (exit {process.returncode}):\n{process.stderr[-4000:]}"
    )


# --- RESULTS.md -----------------------------------------------------------------------------


def write_section(name: str, markdown: str) -> None:
    """Replace the generated block `name` of RESULTS.md (between its markers) with `markdown`."""
    start, end = f"<!-- bench:{name}:start -->", f"<!-- bench:{name}:end -->"
    block = f"{start}\n{markdown.strip()}\n{end}"
    text = RESULTS.read_text("utf-8") if RESULTS.exists() else "# Benchmark results\n"
    if start in text and end in text:
        before, rest = text.split(start, 1)
        _, after = rest.split(end, 1)
        text = before + block + after
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    RESULTS.write_text(text, "utf-8")


def seconds(value: float) -> str:
    return f"{value:.2f} s"


def verdict(value: float, target: float) -> str:
    return "✅ met" if value < target else "❌ missed"
