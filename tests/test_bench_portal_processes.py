"""The portal-processes benchmark's own arithmetic and bookkeeping (`python -m bench
portal-processes`): speed-ups over one process, the report's rows and headline, and the /proc
readings of CPU time and spawned workers. Fake runs, no portal: figures come from the benchmark."""

from __future__ import annotations

import os
import subprocess
import sys

from bench.portal_load import Level, Sample
from bench.portal_processes import (
    CHOSEN,
    PROVISIONAL,
    QUICK,
    Phase,
    ProcessRun,
    _children,
    _cpu_seconds,
    busy_warning,
    headline,
    machine_cpu,
    markdown,
    speed_up,
    table,
)


def _phase(name: str, logins: int, seconds: float, *, latency: float = 0.1) -> Phase:
    samples = [Sample([latency], [303], [303]) for _ in range(logins)]
    level = Level(name, 4, seconds, samples)
    return Phase(level, worker_cpu_s=[1.5, 0.5], client_cpu_s=0.2, machine_cpu_s=3.0)


def _runs() -> list[ProcessRun]:
    """One process: 10 chosen-password logins/s, 50 provisional; two: 15 and 45."""
    runs = []
    for processes, chosen, provisional in ((1, 20, 100), (2, 30, 90)):
        phases = {
            CHOSEN: _phase(CHOSEN, chosen, 2.0),
            PROVISIONAL: _phase(PROVISIONAL, provisional, 2.0),
        }
        runs.append(ProcessRun(processes, 2.0, phases, exit_code=0))
    return runs


def test_the_speed_up_is_logins_per_second_over_those_of_one_process() -> None:
    runs = _runs()
    assert speed_up(runs, CHOSEN, 2) == 1.5
    assert speed_up(runs, PROVISIONAL, 2) == 0.9
    assert speed_up(runs, CHOSEN, 1) == 1.0
    assert speed_up(runs[1:], CHOSEN, 2) is None  # no reference run


def test_the_table_has_one_row_per_number_of_processes_and_kind_of_login() -> None:
    rows = table(_runs())
    assert len(rows) == 2 + 4
    assert rows[2].startswith("| 1 | chosen password | 10.0 | 100 ms | **100 ms** | ×1.00 |")
    assert "| 2 | chosen password | 15.0 |" in rows[3] and "×1.50" in rows[3]
    assert "1.5 s + 0.5 s" in rows[3]


def test_the_headline_gives_each_rate_and_says_whether_every_command_exited_0() -> None:
    runs = _runs()
    text = headline(runs, cores=2)
    assert "10.0/s with 1, 15.0/s with 2 (×1.50)" in text
    assert "50.0/s with 1, 45.0/s with 2 (×0.90)" in text
    assert "exited 0" in text
    runs[1].exit_code = -9
    assert "did NOT exit 0" in headline(runs, cores=2)


def test_without_postgresql_the_report_says_why_and_measures_nothing() -> None:
    text = markdown([], "no initdb", 0.0, QUICK, machine="Measured here.", command="bench")
    assert text == "Measured here.\n\nPostgreSQL unavailable, nothing measured: no initdb."


def test_cpu_time_and_spawned_children_are_read_from_proc() -> None:
    assert (_cpu_seconds(os.getpid()) or 0) > 0
    marker = "import time; time.sleep(30)  # portal-processes test"
    child = subprocess.Popen([sys.executable, "-c", marker])
    try:
        assert _children(os.getpid(), marker.encode()) == [child.pid]
        assert _children(os.getpid(), b"no such marker") == []
    finally:
        child.kill()
        child.wait()
    assert _cpu_seconds(child.pid) is None


def test_a_machine_busy_before_the_run_is_said_in_the_report() -> None:
    assert busy_warning(1.5, cores=2) is None
    warning = busy_warning(8.2, cores=2)
    assert warning is not None and "load average 8.2 on 2 cores" in warning
    report = markdown(
        _runs(), None, 1.0, QUICK, machine="Measured.", command="bench", load_before=8.2
    )
    assert warning in report


def test_other_work_during_a_loop_is_said_in_the_report() -> None:
    runs = _runs()
    # 0.8 s of 4 core-seconds: 20 %, PostgreSQL's share on a quiet machine.
    assert busy_warning(0.5, cores=2, runs=runs) is None
    runs[1].phases[CHOSEN].machine_cpu_s = 5.0  # 2.8 s beside the portal: 70 %
    warning = busy_warning(0.5, cores=2, runs=runs)
    assert warning is not None
    assert "other work took 70% of the cores' time" in warning and "2 processes" in warning


def test_the_machine_s_busy_time_leaves_out_idle_and_iowait() -> None:
    ticks = os.sysconf("SC_CLK_TCK")
    # user nice system idle iowait irq softirq steal guest guest_nice
    line = f"cpu  {ticks} 0 {ticks} {50 * ticks} {7 * ticks} 0 0 0 0 0\ncpu0 1 2 3 4"
    assert machine_cpu(line) == 2.0
    assert machine_cpu() > 0


def test_the_rest_of_the_machine_is_what_neither_workers_nor_clients_used() -> None:
    rows = table(_runs())
    assert "| 0.2 s | 0.8 s |" in rows[2]  # 3.0 s busy - (1.5 + 0.5) workers - 0.2 clients
