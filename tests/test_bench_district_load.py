"""The district load run (`python -m bench district-load`): its accounting on fake call logs and
samples, and the quick run end to end — the bot on PostgreSQL through the Bot API emulator, an
SMTP server, every reply once and a report with every figure."""

from __future__ import annotations

from collections import Counter
from types import SimpleNamespace
from typing import Any

import pytest

from bench import district_load
from bench.district_load import QUICK
from bench.load_probes import account_mail, account_notifications, memory_over
from bench.results import Machine
from tests.postgres import PostgresServer

FAMILY, OTHER_SCHOOL_FAMILY = 101, 102
DIRECTORS = (201, 202)  # school 0
OTHER_DIRECTOR = 301  # school 1


def _notices(questions: list[tuple[int, float]], calls: list[Any]) -> Any:
    school_of = {FAMILY: 0, OTHER_SCHOOL_FAMILY: 1}
    directors = {0: list(DIRECTORS), 1: [OTHER_DIRECTOR]}
    filed = [(chat_id, school_of[chat_id], at) for chat_id, at in questions]
    return account_notifications(filed, directors, calls)


def _message(chat_id: int, at: float, text: str, request_id: int | None = None) -> Any:
    params: dict[str, Any] = {"chat_id": chat_id, "text": text}
    if request_id is not None:
        params["reply_markup"] = {
            "inline_keyboard": [[{"text": "📁", "callback_data": f"hd:end:{request_id}"}]]
        }
    return SimpleNamespace(method="sendMessage", status=200, params=params, time=at)


def _filed(reference: str = "D-2026-0001", at: float = 10.0) -> list[Any]:
    """The family asked at `at`: its « ✅ », then one notice per director of its school."""
    return [
        _message(FAMILY, at + 0.1, f"✅ Votre demande <b>{reference}</b> est envoyée"),
        _message(DIRECTORS[0], at + 0.2, f"🆘 Nouvelle demande {reference}", request_id=7),
        _message(DIRECTORS[1], at + 0.4, f"🆘 Nouvelle demande {reference}", request_id=7),
    ]


def test_a_question_notified_once_to_each_director_of_its_school_is_clean() -> None:
    result = _notices([(FAMILY, 10.0)], _filed())

    assert (result.questions, result.lost, result.duplicated) == (1, 0, 0)
    assert [round(ms) for ms in result.latencies_ms] == [200, 400]


def test_a_director_never_notified_is_lost_and_a_second_notice_duplicated() -> None:
    calls = [c for c in _filed() if c.params["chat_id"] != DIRECTORS[1]]
    calls.append(_message(DIRECTORS[0], 11.0, "🆘 Nouvelle demande D-2026-0001", request_id=7))

    result = _notices([(FAMILY, 10.0)], calls)

    assert (result.lost, result.duplicated) == (1, 1)


def test_a_notice_for_no_question_and_a_question_without_reference_are_counted() -> None:
    stray = _message(OTHER_DIRECTOR, 12.0, "🆘 Nouvelle demande D-2026-0009", request_id=9)
    questions = [(FAMILY, 10.0), (OTHER_SCHOOL_FAMILY, 10.0)]

    result = _notices(questions, [*_filed(), stray])

    # The other school's family never got its « ✅ »: its director's notice is lost, and the
    # notice that came matches no question of that school.
    assert (result.questions, result.lost, result.duplicated) == (2, 1, 1)


def test_e_mails_are_matched_to_the_expected_addresses_whatever_their_case() -> None:
    expected = Counter({"a@ecole.fr": 2, "b@ecole.fr": 1})

    mail = account_mail(1, expected, ["A@ecole.fr", "a@ecole.fr", "c@ecole.fr"])

    assert (mail.expected, mail.received, mail.missing, mail.extra) == (3, 3, 1, 1)


def test_memory_slope_is_per_minute_after_the_ramp_only() -> None:
    ramp = [(t, 300.0 - t) for t in range(0, 10)]  # freed after the start: not counted
    steady = [(10.0 + t, 200.0 + t / 120) for t in range(0, 60)]  # +0.5 MB over one minute

    memory = memory_over(ramp + steady, ready=150.0, since=10.0)

    assert memory.slope_mb_per_min == pytest.approx(0.5)
    assert memory.late_slope_mb_per_min == pytest.approx(0.5)
    assert memory.start_mb == pytest.approx(200.0, abs=0.1)
    assert memory.end_mb == pytest.approx(200.5, abs=0.1)
    assert memory.peak_mb == 300.0 and memory.flat and memory.samples == 60


def test_memory_growing_over_one_mb_a_minute_is_not_flat() -> None:
    samples = [(float(t), 200.0 + t / 45) for t in range(0, 150)]

    memory = memory_over(samples, ready=None, since=0.0)

    assert not memory.flat and memory.verdict == "❌ growing"


def test_under_two_minutes_after_the_warm_up_the_trend_is_not_judged() -> None:
    samples = [(float(t), 200.0) for t in range(0, 60)]

    assert memory_over(samples, ready=None, since=0.0).verdict.startswith("too short")


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_quick_run_replies_to_every_update_once_and_reports_every_figure() -> None:
    if PostgresServer().unavailable_reason:
        pytest.skip(PostgresServer().unavailable_reason or "")

    outcome = district_load.run(QUICK, write=False)

    bot, echo = outcome.bot, outcome.echo
    assert outcome.database == "PostgreSQL"
    assert bot.sent and echo.sent
    assert (bot.lost, bot.duplicated, echo.lost, echo.duplicated) == (0, 0, 0, 0)
    assert not bot.failures and not bot.log_errors, (bot.failures, bot.log_errors)
    assert outcome.notifications.questions > 0
    assert outcome.notifications.lost == outcome.notifications.duplicated == 0
    assert outcome.mail.schools == QUICK.schools and outcome.mail.expected > 0
    assert outcome.mail.received == outcome.mail.expected and outcome.mail.missing == 0
    assert outcome.clean
    memory = bot.memory
    assert memory is not None and memory.start_mb and memory.end_mb and memory.samples >= 2
    report = district_load.markdown(outcome, Machine.here())
    for figure in (
        "updates/s steady",
        "| family | `/etat` |",
        "| director | `/envoyer ✓` |",
        "help request notice",
        "| all | every update |",
        "echo bot p95",
        "0 lost and 0 duplicated replies",
        "e-mails accepted by the SMTP server",
        "after the warm-up",
        "at the end",
        "MB/min",
    ):
        assert figure in report, figure


def test_a_long_run_must_last_beyond_the_ramp(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        district_load.main(["--minutes", "0.25", "--no-write"])

    assert exited.value.code == 2 and "ramp" in capsys.readouterr().err
