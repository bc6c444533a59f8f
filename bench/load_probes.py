"""What the district load run measures beside the replies: the directors' notices of help
requests, an SMTP server that remembers each recipient, the bot's resident memory sampled
every second, and the errors in its log."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.helpdesk_bench import CLOSE_DATA, deliveries
from tests.mailtools import free_port

FLAT_MB_PER_MIN = 1.0
# Under two minutes after the warm-up, a few batches of e-mails make the whole trend.
VERDICT_SAMPLES = 120
FLAT_WHY = (
    "« Flat » means a least-squares slope under 1 MB/min after the warm-up (the ramp, where "
    "every user sends a first command, and the first school's /envoyer, whose argon2id workers "
    "take 19 MiB each that the allocator keeps for the next batches). At the steady rate of "
    "≈ 6 updates/s (≈ 400 a minute), 1 MB/min is 2.5 KB kept per update: less than one "
    "update's objects, so anything kept per update (an entry never deleted from user_data, a "
    "cached reply, a task never collected) shows above it; the echo bot, which keeps nothing, "
    "gives the noise."
)
SAMPLE_SECONDS = 1.0

# --- Help requests: the directors' notices -------------------------------------------------


def is_notification(message: Any) -> bool:
    """A director's notice of a new help request (it carries the request's « close » button):
    it comes whenever a family asks, never as a reply to the director."""
    return any(
        CLOSE_DATA.fullmatch(button.callback_data or "")
        for row in message.inline_keyboard
        for button in row
    )


def is_notification_call(call: Any) -> bool:
    """The same, as a call of the emulator's log."""
    return call.method == "sendMessage" and bool(
        CLOSE_DATA.search(str(call.params.get("reply_markup", "")))
    )


@dataclass
class Notifications:
    """Help requests filed during the run, and their notices to the directors of the school."""

    questions: int = 0
    latencies_ms: list[float] = field(default_factory=list)  # question → each director
    lost: int = 0
    duplicated: int = 0


def account_notifications(
    questions: Sequence[tuple[int, int, float]],
    directors: dict[int, list[int]],
    calls: Sequence[Any],
) -> Notifications:
    """`questions`: (family chat, school, when the question was pushed); `directors`: school →
    its directors' chats. The reply to each question (its « ✅ ») names the request's reference;
    each director of the school must get exactly one notice of it, and none of anything else."""
    sent = deliveries(calls)
    result = Notifications(questions=len(questions))
    expected: set[tuple[int, str | None]] = set()
    for chat_id, school, pushed in questions:
        reference = next((d.reference for d in sent.get(chat_id, []) if d.time >= pushed), None)
        if reference is None:
            result.lost += len(directors[school])
            continue
        expected.add((school, reference))
        for director in directors[school]:
            notes = [d for d in sent.get(director, []) if d.request_id and d.reference == reference]
            result.lost += not notes
            result.duplicated += max(0, len(notes) - 1)
            if notes:
                result.latencies_ms.append((notes[0].time - pushed) * 1000)
    result.duplicated += sum(
        1
        for school, chat_ids in directors.items()
        for chat_id in chat_ids
        for d in sent.get(chat_id, [])
        if d.request_id and (school, d.reference) not in expected
    )
    return result


# --- The SMTP server ---------------------------------------------------

# aiosmtpd in its own interpreter (it must not compete with the emulator for this process's
# GIL), accepting everything; each « dump » line on stdin is answered with the recipients so far.
_SMTP_SINK = """
import json, sys, threading
from aiosmtpd.controller import Controller
lock, recipients = threading.Lock(), []
class Sink:
    async def handle_DATA(self, server, session, envelope):
        with lock:
            recipients.extend(envelope.rcpt_tos)
        return "250 2.0.0 OK"
controller = Controller(Sink(), hostname="127.0.0.1", port=int(sys.argv[1]))
controller.start()
print("ready", flush=True)
for line in sys.stdin:
    with lock:
        print(json.dumps(recipients), flush=True)
controller.stop()
"""


class SmtpRecorder:
    """A local SMTP server in a process of its own that remembers every recipient."""

    def __init__(self) -> None:
        self.port = free_port()
        self._process: subprocess.Popen[str] | None = None

    def recipients(self) -> list[str]:
        assert self._process is not None and self._process.stdin and self._process.stdout
        self._process.stdin.write("dump\n")
        self._process.stdin.flush()
        found: list[str] = json.loads(self._process.stdout.readline())
        return found

    def env(self) -> dict[str, str]:
        return {
            "SMTP_HOST": "127.0.0.1",
            "SMTP_PORT": str(self.port),
            "SMTP_SECURITY": "none",
            "MAIL_FROM": "EduConnect <no-reply@ecoles-bench.fr>",
        }

    def __enter__(self) -> SmtpRecorder:
        self._process = subprocess.Popen(
            [sys.executable, "-c", _SMTP_SINK, str(self.port)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self._process.stdout is not None
        if self._process.stdout.readline().strip() != "ready":
            raise RuntimeError("the SMTP server did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        process, self._process = self._process, None
        if process is not None and process.stdin is not None:
            process.stdin.close()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def vm_rss_mb(pid: int) -> float | None:
    """Resident memory of process `pid` now (VmRSS), in MB; None once it is gone."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return None


class RssSampler:
    """VmRSS of one process every `SAMPLE_SECONDS`, in a thread: (time.time(), MB) pairs."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.samples: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            value = vm_rss_mb(self.pid)
            if value is None:
                return
            self.samples.append((time.time(), value))
            self._stop.wait(SAMPLE_SECONDS)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)


@dataclass(frozen=True)
class Memory:
    """The bot's memory over the steady part: at its start, at its end, and the trend."""

    ready_mb: float | None  # once polling
    start_mb: float | None  # median of the first 5 s after the warm-up
    end_mb: float | None  # median of the last 5 s
    peak_mb: float | None
    slope_mb_per_min: float | None  # least squares over every sample after the warm-up
    late_slope_mb_per_min: float | None  # the same over the second half: growth that levels off
    samples: int

    @property
    def flat(self) -> bool:
        return self.slope_mb_per_min is not None and self.slope_mb_per_min < FLAT_MB_PER_MIN

    @property
    def verdict(self) -> str:
        """« flat », « growing », or why a trend cannot be told from so few samples."""
        if self.samples < VERDICT_SAMPLES:
            return f"too short to judge a trend ({self.samples} s after warm-up): see the long run"
        return "flat" if self.flat else "❌ growing"


def _slope_per_min(samples: Sequence[tuple[float, float]]) -> float | None:
    if len(samples) < 2:
        return None
    fit = statistics.linear_regression([t for t, _ in samples], [mb for _, mb in samples])
    return fit.slope * 60


def memory_over(
    samples: Sequence[tuple[float, float]], ready: float | None, since: float
) -> Memory:
    """Summarise the VmRSS samples taken from `since` (the end of the warm-up) on."""
    peak = max((mb for _, mb in samples), default=None)
    steady = [(t, mb) for t, mb in samples if t >= since]
    if len(steady) < 2:
        return Memory(ready, None, None, peak, None, None, 0)
    first, last = steady[0][0], steady[-1][0]
    start = statistics.median(mb for t, mb in steady if t < first + 5)
    end = statistics.median(mb for t, mb in steady if t > last - 5)
    late = [(t, mb) for t, mb in steady if t >= (first + last) / 2]
    return Memory(
        ready, start, end, peak, _slope_per_min(steady), _slope_per_min(late), len(steady)
    )


def log_errors(log: Path) -> tuple[list[str], list[str]]:
    """The lines of the bot's log that tell of an error or an exception, and the warnings."""
    if not log.exists():
        return [], []
    lines = log.read_text("utf-8", errors="replace").splitlines()
    errors = [line for line in lines if any(m in line for m in _ERROR_MARKS)]
    return errors, [line for line in lines if " WARNING " in line]


_ERROR_MARKS = ("Traceback", " ERROR ", " CRITICAL ")


@dataclass(frozen=True)
class Mail:
    """The e-mails of the schools sent: expected (one per guardian with an address) and got."""

    schools: int
    expected: int
    received: int
    missing: int
    extra: int


def account_mail(schools: int, expected: Counter[str], recipients: Sequence[str]) -> Mail:
    """Compare the addresses the SMTP server accepted with those expected (one e-mail each)."""
    received = Counter(address.casefold() for address in recipients)
    return Mail(
        schools=schools,
        expected=sum(expected.values()),
        received=len(recipients),
        missing=sum((expected - received).values()),
        extra=sum((received - expected).values()),
    )


def megabytes(value: float | None) -> str:
    """« 249 MB », or « — » when not measured."""
    return "—" if value is None else f"{value:.0f} MB"


def memory_text(memory: Memory | None) -> str:
    """The memory figures and their verdict, in one sentence for RESULTS.md."""
    if memory is None or memory.slope_mb_per_min is None:
        return "not measured"
    return (
        f"{megabytes(memory.ready_mb)} once polling, "
        f"{megabytes(memory.start_mb)} after the warm-up, "
        f"{megabytes(memory.end_mb)} at the end, peak {megabytes(memory.peak_mb)}; slope "
        f"{memory.slope_mb_per_min:+.2f} MB/min over {memory.samples} samples "
        f"({memory.verdict}; flat: < {FLAT_MB_PER_MIN:g} MB/min), "
        f"{memory.late_slope_mb_per_min or 0:+.2f} "
        "MB/min over their second half"
    )
