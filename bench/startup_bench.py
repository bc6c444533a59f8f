"""Benchmark of a process start (issue 14): what `educonnect-bot …` costs before it does
anything, the bot's start included (the command line imports the bot). Every worker, portal,
CLI and bot process pays it, and the test suite starts some 200 of them.

Three ways, interleaved in the same run, each a fresh interpreter running `--help`:
- « before »: the garbage collector running through the imports and the PDF libraries
  (fpdf2, fontTools, NumPy, Pillow, pypdf) imported with the letters' modules, as until
  commit `d4da29a`;
- « PDF libraries deferred »: the letters' modules load them with the first letter;
- « now »: `python -m bot`, the entry point, which also pauses the collector while it imports
  and freezes what the imports made.

    python -m bench startup [--runs 15] [--no-write] [--quick]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass

from bench.results import ROOT, Machine, write_section

_COMMAND_LINE = "import sys; sys.argv = ['educonnect-bot', '--help']; from bot.cli import main; "


@dataclass(frozen=True)
class Way:
    name: str
    argv: tuple[str, ...]


WAYS = (
    Way(
        "before: collector running, PDF libraries imported",
        ("-c", "import fpdf, pypdf; " + _COMMAND_LINE + "main()"),
    ),
    Way("PDF libraries deferred", ("-c", _COMMAND_LINE + "main()")),
    Way("now: `python -m bot` (collector paused, then frozen)", ("-m", "bot", "--help")),
)


@dataclass(frozen=True)
class Sample:
    wall: float
    cpu: float


def _start(way: Way) -> Sample:
    # Bytecode caches written and read, as a deployed package has them.
    env = {name: value for name, value in os.environ.items() if name != "PYTHONDONTWRITEBYTECODE"}
    before = os.times()
    began = time.perf_counter()
    subprocess.run(
        [sys.executable, *way.argv], cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL
    )
    wall = time.perf_counter() - began
    after = os.times()
    cpu = after.children_user - before.children_user
    cpu += after.children_system - before.children_system
    return Sample(wall, cpu)


def measure(runs: int) -> dict[str, list[Sample]]:
    """`runs` starts of each way, interleaved so that a busier moment costs them all alike."""
    for way in WAYS:
        _start(way)  # warm-up: caches written, files in the page cache
    samples: dict[str, list[Sample]] = {way.name: [] for way in WAYS}
    for done in range(1, runs + 1):
        for way in WAYS:
            samples[way.name].append(_start(way))
        print(f"startup: {done} of {runs} rounds of {len(WAYS)} starts", file=sys.stderr)
    return samples


def markdown(samples: dict[str, list[Sample]], machine: Machine) -> str:
    baseline = statistics.median(sample.cpu for sample in samples[WAYS[0].name])
    rows = []
    for way in WAYS:
        runs = samples[way.name]
        wall = statistics.median(sample.wall for sample in runs)
        cpu = statistics.median(sample.cpu for sample in runs)
        rows.append(
            f"| {way.name} | {len(runs)} | {wall:.2f} s | {min(s.wall for s in runs):.2f} s "
            f"| **{cpu:.2f} s** | {cpu / baseline:.0%} |"
        )
    now = statistics.median(sample.cpu for sample in samples[WAYS[-1].name])
    return "\n".join(
        [
            machine.markdown(),
            "",
            f"**Headline: a process start costs {now:.2f} s of CPU, against {baseline:.2f} s "
            f"before ({1 - now / baseline:.0%} less), measured side by side.**",
            "",
            "| way (`educonnect-bot --help`, fresh interpreter) | starts | wall, median "
            "| wall, best | CPU, median | CPU vs before |",
            "|---|---|---|---|---|---|",
            *rows,
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench startup", description=__doc__)
    parser.add_argument("--runs", type=int, default=15, help="starts of each way")
    parser.add_argument("--quick", action="store_true", help="two starts each; never writes")
    parser.add_argument("--no-write", action="store_true", help="leave bench/RESULTS.md alone")
    options, _rest = parser.parse_known_args(argv)
    machine = Machine.here()
    samples = measure(2 if options.quick else options.runs)
    text = markdown(samples, machine)
    print(text)
    if not options.quick and not options.no_write:
        write_section("startup", text)
        print("\nbench/RESULTS.md: startup section updated")
    return 0


if __name__ == "__main__":
    sys.exit(main())
