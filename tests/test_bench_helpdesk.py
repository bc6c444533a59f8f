"""The help-desk benchmark's accounting (`python -m bench helpdesk`): from the emulator's call log,
each question gets one « ✅ », one notification per director of its school and one answer, and
anything missing or extra is counted. Fake call logs, no bot: figures come from the benchmark."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from bench.helpdesk_bench import QUICK, Answer, Filed, Plan, tally

FAMILY, OTHER_FAMILY = 101, 102
DIRECTORS = {0: [201, 202]}


def _message(chat_id: int, at: float, text: str, request_id: int | None = None) -> Any:
    params: dict[str, Any] = {"chat_id": chat_id, "text": text}
    if request_id is not None:
        buttons = [[{"text": "💬", "callback_data": f"hd:rep:{request_id}"}]]
        buttons.append([{"text": "📁", "callback_data": f"hd:end:{request_id}"}])
        params["reply_markup"] = {"inline_keyboard": buttons}
    return SimpleNamespace(method="sendMessage", status=200, params=params, time=at)


def _one_request(reference: str = "D-2026-0001") -> list[Any]:
    """The family asked at t=10; the bot confirmed, notified both directors; answered at t=20."""
    return [
        _message(FAMILY, 9.0, "Type your question"),
        _message(FAMILY, 10.1, f"✅ Your request <b>{reference}</b> has been sent"),
        _message(201, 10.2, f"🆘 New help request\n{reference}", request_id=7),
        _message(202, 10.3, f"🆘 New help request\n{reference}", request_id=7),
        _message(201, 20.1, f"Recorded on request {reference}"),
        _message(FAMILY, 20.05, f"📬 Your request {reference}"),
    ]


ANSWERED = {(0, "D-2026-0001"): Answer("close", 20.0, 201)}


def test_a_request_confirmed_notified_to_each_director_and_answered_is_clean() -> None:
    result = tally([Filed(FAMILY, 0, 10.0)], DIRECTORS, ANSWERED, _one_request())

    assert result.clean and result.reused_references == 0
    assert [round(x) for x in result.notify_ms] == [200, 300]
    assert [round(x) for x in result.all_notified_ms] == [300]
    assert [round(x) for x in result.confirm_ms] == [100]
    assert [round(x) for x in result.answer_ms] == [50]
    assert result.closes == 1


def test_a_director_without_the_notification_counts_as_lost() -> None:
    calls = [c for c in _one_request() if c.params["chat_id"] != 202]

    result = tally([Filed(FAMILY, 0, 10.0)], DIRECTORS, ANSWERED, calls)

    assert result.lost["notification"] == 1 and not result.clean


def test_a_second_confirmation_or_notification_counts_as_duplicated() -> None:
    calls = [
        *_one_request(),
        _message(FAMILY, 10.4, "✅ Your request <b>D-2026-0001</b> has been sent"),
        _message(202, 10.5, "🆘 New help request\nD-2026-0001", request_id=7),
    ]

    result = tally([Filed(FAMILY, 0, 10.0)], DIRECTORS, ANSWERED, calls)

    assert result.duplicated["confirmation"] == 1
    assert result.duplicated["notification"] == 1


def test_a_request_nobody_answered_counts_as_a_lost_answer() -> None:
    calls = [c for c in _one_request() if c.time < 20]

    result = tally([Filed(FAMILY, 0, 10.0)], DIRECTORS, {}, calls)

    assert result.lost["answer"] == 1 and result.lost["confirmation"] == 0


def test_a_notification_for_no_family_counts_as_duplicated() -> None:
    calls = [*_one_request(), _message(201, 11.0, "🆘 D-2026-0099", request_id=9)]

    result = tally([Filed(FAMILY, 0, 10.0)], DIRECTORS, ANSWERED, calls)

    assert result.duplicated["notification"] == 1


def test_a_reference_given_twice_in_one_school_is_reported() -> None:
    second = [
        _message(OTHER_FAMILY, 12.1, "✅ Your request <b>D-2026-0001</b> has been sent"),
        _message(OTHER_FAMILY, 20.5, "📬 Your request D-2026-0001"),
    ]
    filed = [Filed(FAMILY, 0, 10.0), Filed(OTHER_FAMILY, 0, 12.0)]

    result = tally(filed, DIRECTORS, ANSWERED, [*_one_request(), *second])

    assert result.reused_references == 1


def test_a_family_that_never_asked_counts_as_a_lost_confirmation() -> None:
    result = tally([Filed(FAMILY, 0, None)], DIRECTORS, {}, [])

    assert result.lost["confirmation"] == 1


def test_every_director_agrees_on_who_answers_a_request() -> None:
    plans = {request_id: Plan.of(request_id, QUICK) for request_id in range(200)}

    assert plans == {request_id: Plan.of(request_id, QUICK) for request_id in range(200)}
    assert {p.director_index for p in plans.values()} == set(range(QUICK.directors_per_school))
    assert {p.reply for p in plans.values()} == {True, False}
