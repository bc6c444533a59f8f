"""The start-up benchmark's report (`python -m bench startup`): each way's median and its CPU
against the « before » way of the same run. Fake samples, no process: figures come from the
benchmark."""

from __future__ import annotations

from bench.results import Machine
from bench.startup_bench import WAYS, Sample, markdown

MACHINE = Machine(
    cores=2, python="3.11.7", system="Linux x86_64", date="2026-12-03", commit="abc", load="1"
)


def test_the_report_compares_every_way_with_the_one_before_in_the_same_run() -> None:
    samples = {
        WAYS[0].name: [Sample(2.0, 2.0), Sample(3.0, 3.0), Sample(2.4, 2.5)],
        WAYS[1].name: [Sample(2.0, 2.0), Sample(1.9, 1.9), Sample(2.2, 2.1)],
        WAYS[2].name: [Sample(1.2, 1.25), Sample(1.1, 1.0), Sample(1.4, 1.5)],
    }
    text = markdown(samples, MACHINE)
    assert "a process start costs 1.25 s of CPU, against 2.50 s before (50% less)" in text
    rows = [line for line in text.splitlines() if line.startswith(("| before", "| PDF", "| now"))]
    assert len(rows) == 3
    assert rows[0].endswith("| **2.50 s** | 100% |")
    assert rows[1].endswith("| **2.00 s** | 80% |")
    assert "| 3 | 1.20 s | 1.10 s | **1.25 s** | 50% |" in rows[2]
