"""`educonnect-bot run`: the real bot stops cleanly on SIGTERM, a wrong token is one clear
line, and without a token the offline sandbox plays its demo or chats at the terminal."""

from __future__ import annotations

import contextlib
import os
import pty
import re
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from bot.sandbox.botapi import ApiCall, ThreadedBotApi, parse_formatted_text
from bot.sandbox.terminal import render_formatted
from tests.e2e.conftest import (
    REPLY_TIMEOUT,
    SCHOOL_NAME,
    UAI,
    BotProcess,
    child_env,
    replies,
)

pytestmark = pytest.mark.timeout(120)
# Tests that start processes; `-m "not slow"` leaves them out of a quick run.
slow = pytest.mark.slow


def sandbox_env(tmp_path: Path) -> dict[str, str]:
    """The sandbox in its own data folder, with the demo school's generated files (no other
    extractions named in the environment)."""
    return child_env(DATA_DIR=str(tmp_path / "data"), EDUCONNECT_SAMPLES="")


def sandbox(
    tmp_path: Path,
    *args: str,
    stdin: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """`python -m bot run ARGS` without a token: the sandbox, in its own data folder."""
    return subprocess.run(
        [sys.executable, "-m", "bot", "run", *args],
        cwd=tmp_path,
        env=sandbox_env(tmp_path),
        input=stdin,
        stdin=subprocess.DEVNULL if stdin is None else None,
        capture_output=True,
        text=True,
        timeout=100,
        check=False,
    )


# --- the real bot ---------------------------------------------------------------------------


@slow
def test_sigterm_stops_the_bot_cleanly_and_loses_no_update(
    bot: BotProcess, bot_api: ThreadedBotApi
) -> None:
    visitor = bot_api.new_user("Paul")
    visitor.send_text("/aide")
    assert replies(visitor)

    # SIGTERM just as an update reaches the bot: it is either handled before the process ends
    # or left unconfirmed for the next start, never lost and never handled twice.
    visitor.send_text("/aide")
    last_update_id = bot_api.call(lambda: bot_api.server.updates[-1]["update_id"])

    def delivered(call: ApiCall) -> bool:
        return any(u["update_id"] == last_update_id for u in call.result or [])

    bot_api.wait_for_call("getUpdates", delivered, timeout=10)
    assert bot.stop() == 0, bot.output
    handled_before_exit = len(visitor.bot_messages) == 2
    # The last call confirms what was fetched, without waiting (no long poll at exit).
    last_poll = bot_api.calls("getUpdates")[-1]
    assert float(last_poll.params.get("timeout", 0)) == 0
    assert bot_api.pending_update_count == (0 if handled_before_exit else 1)
    if handled_before_exit:
        assert last_poll.params["offset"] == last_update_id + 1

    bot.start()
    if not handled_before_exit:
        visitor.wait_for(lambda m: True, timeout=REPLY_TIMEOUT)
    visitor.expect_no_message(within=1.0)
    assert len(visitor.bot_messages) == 2
    assert bot.stop() == 0


@slow
def test_a_wrong_token_is_one_clear_line(
    bot_factory: Callable[..., BotProcess], bot_api: ThreadedBotApi
) -> None:
    wrong = bot_factory(env={"TELEGRAM_BOT_TOKEN": "123456:not-the-right-token"})
    wrong.start(wait=False)
    assert wrong.process is not None
    assert wrong.process.wait(60) == 1
    errors = [line for line in wrong.output.splitlines() if line.startswith("Erreur")]
    assert len(errors) == 1 and "TELEGRAM_BOT_TOKEN" in errors[0], wrong.output
    assert "not-the-right-token" not in wrong.output


# --- the sandbox ----------------------------------------------------------------------------


@slow
def test_the_sandbox_demo_imports_the_demo_school_and_exits_0(
    tmp_path: Path, samples_dir: Path
) -> None:
    result = sandbox(tmp_path)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    transcript = result.stdout
    assert SCHOOL_NAME in transcript and UAI in transcript
    for step in ("/start ", "eleves.csv", "responsables.csv", "/classes", "/responsables CP A"):
        assert step in transcript
    assert "/etat" in transcript
    summary = re.search(r"(\d+) classes, (\d+) élèves, (\d+) comptes responsables", transcript)
    assert summary is not None, transcript[-2000:]
    assert summary.groups() == ("8", "180", "226")
    # Class labels of the demo school appear in the bot's answers to /classes and /responsables.
    assert "CP A" in transcript and "GS M. Petit" in transcript and "CE2-CM1" in transcript
    # Last, the district's inspector is invited for the demo school and three others, and her
    # /etat shows the four schools and sends the chart.
    unwrapped = transcript.replace("\n", "")
    assert "inspector invite 0590001A 0590002B 0590003C 0590004D" in unwrapped
    behind_first = (
        f"{SCHOOL_NAME} (0590001A)",  # imported, but no letter sent yet
        "École Victor Hugo (0590004D)",
        "École Louise Michel (0590003C)",
        "École Jean Macé (0590002B)",
    )
    for number, school in enumerate(behind_first, 1):
        assert f"{number}. {school}" in unwrapped, transcript[-4000:]
    assert (tmp_path / "data" / "sandbox-downloads" / "district.png").exists()
    assert (tmp_path / "data" / "sandbox-demo.db").exists()
    # The files it sent are the demo school's, generated into the data folder.
    for name in ("eleves.csv", "responsables.csv"):
        sent = tmp_path / "data" / "sandbox-samples" / name
        assert sent.read_bytes() == (samples_dir / name).read_bytes()


@slow
def test_the_sandbox_demo_fails_clearly_when_the_samples_given_are_missing(
    tmp_path: Path,
) -> None:
    result = sandbox(tmp_path, "--samples", str(tmp_path / "nowhere"))
    assert result.returncode == 1
    assert result.stderr.startswith("Erreur : ") and "--samples" in result.stderr
    assert "nowhere" in result.stderr


@slow
def test_the_terminal_chat_switches_persona_presses_buttons_and_saves_documents(
    tmp_path: Path,
) -> None:
    script = "\n".join(
        [
            "/aide",
            ":famille",
            "/classes",
            ":directeur",
            ":exemples",
            "1",
            "/export",
            ":quitter",
        ]
    )
    result = sandbox(tmp_path, "--chat", stdin=script + "\n")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout
    # The director persona redeemed an invitation through the chat before the prompt.
    assert "/start " in out and SCHOOL_NAME in out
    assert "Léa Dubois (famille) : /classes" in out
    # Inline buttons are numbered; "1" pressed the first one.
    assert re.search(r"\[1\] \S", out), out[-3000:]
    assert "appuie sur [" in out
    # The export was saved under the data folder, and its path printed.
    downloads = tmp_path / "data" / "sandbox-downloads"
    saved = sorted(downloads.iterdir()) if downloads.exists() else []
    assert saved, out[-3000:]
    assert str(saved[0]) in out.replace("\n", "")

    # Running again keeps the sandbox database: the director is still the director.
    again = sandbox(tmp_path, "--chat", stdin="/classes\n")
    assert again.returncode == 0, again.stderr
    assert "/start " not in again.stdout
    assert "GS M. Petit" in again.stdout


def test_html_is_rendered_for_the_terminal() -> None:
    text, entities = parse_formatted_text(
        "<b>Classe CP A</b> — <i>23 élèves</i> 🟢 <code>/pdf CP</code> "
        '<a href="https://example.org/aide">aide</a>',
        "HTML",
    )
    rendered = render_formatted(text, entities)
    assert rendered.plain == "Classe CP A — 23 élèves 🟢 /pdf CP aide <https://example.org/aide>"
    styles = {(rendered.plain[s.start : s.end], str(s.style)) for s in rendered.spans}
    assert ("Classe CP A", "bold") in styles
    assert ("23 élèves", "italic") in styles
    assert ("/pdf CP", "cyan") in styles


@slow
@pytest.mark.parametrize("stop", ["ctrl-c", "ctrl-d"])
def test_the_terminal_chat_on_a_terminal_ends_cleanly(tmp_path: Path, stop: str) -> None:
    """On a terminal the sandbox chats; Ctrl-C (SIGINT from the terminal) or Ctrl-D ends it
    with exit code 0."""
    leader, follower = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "bot", "run"],
        cwd=tmp_path,
        env=sandbox_env(tmp_path),
        stdin=follower,
        stdout=follower,
        stderr=follower,
    )
    os.close(follower)
    screen = bytearray()

    def read_until(marker: bytes, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while marker not in screen:
            assert time.monotonic() < deadline, screen.decode(errors="replace")[-2000:]
            ready, _, _ = select.select([leader], [], [], 0.2)
            if ready:
                with contextlib.suppress(OSError):
                    screen.extend(os.read(leader, 65536))

    try:
        read_until(b"directeur> ")
        os.write(leader, b"/aide\n")
        read_until(b"/classes")
        if stop == "ctrl-c":
            process.send_signal(signal.SIGINT)
        else:
            os.write(leader, b"\x04")
        assert process.wait(30) == 0, screen.decode(errors="replace")[-2000:]
    finally:
        if process.poll() is None:
            process.kill()
        os.close(leader)
