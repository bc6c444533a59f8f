"""The digest as a director reads it: the lights, both percentages, the change since the
previous digest, the days left, the classes behind, the open requests, the next actions as
commands, who was reminded, « late », and the final check's complete list."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from bot.i18n import use_language
from bot.jobs.digest_message import MESSAGE_LIMIT, compose_digest
from bot.sandbox.botapi.formatting import parse_formatted_text
from bot.services.digests import ActionKind, ClassProgress, DigestContent, NextAction
from models import DigestKind

PARIS = ZoneInfo("Europe/Paris")
NOW = datetime(2027, 1, 11, 7, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def english() -> Iterator[None]:
    # The message ids are English; the French catalog gets the new ones with `make i18n`.
    with use_language("en"):
        yield


def progress(label: str, class_id: int | None, *states: int) -> ClassProgress:
    not_notified, notified, activating, activated = states
    accounts = sum(states)
    return ClassProgress(
        label=label,
        class_id=class_id,
        accounts=accounts,
        not_notified=not_notified,
        notified=notified,
        activating=activating,
        activated=activated,
        activated_percent=100 * activated / accounts if accounts else 0.0,
        pupils=accounts,
        pupils_with_activated_guardian=activated,
    )


def content(**changes: object) -> DigestContent:
    ce1, cm2 = progress("CE1", 1, 9, 2, 1, 8), progress("CM2", 2, 0, 12, 3, 5)
    base = DigestContent(
        school_id=1,
        school_name="École <Paul> & Bert",
        uai="0751234X",
        lsu_date=date(2027, 1, 15),
        days_left=4,
        total=progress("École <Paul> & Bert", None, 9, 14, 4, 13),
        activated_accounts_percent=32.5,
        pupils_with_activated_guardian_percent=32.5,
        previous_sent_at=datetime(2027, 1, 4, 7, 0, tzinfo=UTC),
        delta={"not_notified": -3, "notified": -11, "activating": 0, "activated": 14},
        classes=(ce1, cm2),
        behind=(cm2, ce1),
        open_requests=2,
        actions=(
            NextAction("/pdf CE1", 9, ActionKind.PAPER_NEVER_NOTIFIED, "CE1"),
            NextAction("/relancer CM2", 12, ActionKind.REMIND_STALE, "CM2", days=10),
        ),
        reminded=("Mme Alex DURAND", "M. Noé <B>"),
        now=NOW,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def plain_text(html_text: str) -> str:
    """The text Telegram would show; raises as Telegram would on bad HTML."""
    assert len(html_text) <= MESSAGE_LIMIT
    plain, _entities = parse_formatted_text(html_text, "HTML")
    return plain


def test_digest_says_the_lights_percentages_change_and_days_left() -> None:
    message = compose_digest(content(), kind=DigestKind.WEEKLY, late=False, tz=PARIS)

    text = plain_text(message.text)
    assert text.startswith("Weekly digest — École <Paul> & Bert\n")
    assert "go online on January 15, 2027: 4 days left." in text
    assert "🔴 Not notified: 9" in text
    assert "🟢 Activated: 13" in text
    assert "Guardian accounts activated: 32% (13 of 40)" in text
    assert "Pupils with at least one guardian whose account is activated: 32% (13 of 40)" in text
    assert "📈 +14 activated since Monday 4 January" in text
    assert "Other changes since Monday 4 January: 🔴 −3 · 🟠 −11" in text
    assert "(late)" not in text


def test_digest_lists_classes_behind_requests_actions_and_who_was_reminded() -> None:
    message = compose_digest(content(), kind=DigestKind.DAILY, late=False, tz=PARIS)

    text = plain_text(message.text)
    assert "CM2: 25% activated — 🔴 0 · 🟠 12 · 🟡 3 · 🟢 5" in text
    assert "2 help requests from families are waiting for an answer: /demandes" in text
    assert "/pdf CE1 — 9 guardians without an e-mail address never notified" in text
    assert "/relancer CM2 — 12 guardians notified more than 10 days ago" in text
    assert "2 guardians got an automatic reminder: Mme Alex DURAND, M. Noé <B>" in text
    # Plain commands: Telegram makes them tappable.
    assert "<code>/pdf" not in message.text


def test_a_late_digest_says_so() -> None:
    message = compose_digest(content(), kind=DigestKind.WEEKLY, late=True, tz=PARIS)

    assert plain_text(message.text).startswith("Weekly digest — École <Paul> & Bert (late)")


def test_a_digest_comes_with_its_chart() -> None:
    message = compose_digest(content(), kind=DigestKind.MANUAL, late=False, tz=PARIS)

    assert message.chart_png is not None
    assert message.chart_png.startswith(b"\x89PNG\r\n\x1a\n")
    assert message.document is None


def test_a_school_without_accounts_gets_no_chart_and_the_import_hint() -> None:
    empty = progress("École", None, 0, 0, 0, 0)
    message = compose_digest(
        content(total=empty, classes=(), behind=(), actions=(), delta={}, reminded=()),
        kind=DigestKind.WEEKLY,
        late=False,
        tz=PARIS,
    )

    assert message.chart_png is None
    assert "send me the ONDE extractions" in plain_text(message.text)


def test_without_an_lsu_date_the_digest_says_how_to_set_it() -> None:
    message = compose_digest(
        content(lsu_date=None, days_left=None), kind=DigestKind.WEEKLY, late=False, tz=PARIS
    )

    assert "No LSU date set yet: set it with /lsu" in plain_text(message.text)


def test_very_many_reminded_guardians_are_counted_not_all_named() -> None:
    names = tuple(f"Mme Prénom NOM-{index}" for index in range(400))
    message = compose_digest(content(reminded=names), kind=DigestKind.WEEKLY, late=False, tz=PARIS)

    text = plain_text(message.text)
    assert "400 guardians got an automatic reminder" in text
    assert "NOM-19" in text and "NOM-20," not in text
    assert "and 380 others" in text


def test_final_check_lists_every_guardian_not_green_in_the_message_when_it_fits() -> None:
    missing = (("CE1", ("Mme Alex MARTIN",)), ("", ("M. Noé PETIT",)))
    lights = (("CE1", ("🟠 Mme Alex MARTIN",)), ("", ("🟡 M. Noé PETIT",)))
    message = compose_digest(
        content(missing=missing, missing_lights=lights),
        kind=DigestKind.FINAL,
        late=False,
        tz=PARIS,
    )

    text = plain_text(message.text)
    assert text.startswith("Final check before the LSU — École <Paul> & Bert")
    assert "2 guardians not activated yet, by class:" in text
    assert "CE1 (1)\n🟠 Mme Alex MARTIN" in text
    assert "Pupils without a class (1)\n🟡 M. Noé PETIT" in text
    assert message.document is None


def test_a_final_list_longer_than_a_message_is_sent_whole_as_a_document() -> None:
    missing = tuple(
        (f"Classe {index}", tuple(f"Mme Prénom NOM-{index}-{n}" for n in range(20)))
        for index in range(15)
    )
    message = compose_digest(content(missing=missing), kind=DigestKind.FINAL, late=False, tz=PARIS)

    text = plain_text(message.text)
    assert "The complete list of the 300 guardians not activated yet" in text
    assert message.document is not None
    filename, data = message.document
    assert filename == "not-activated-0751234X.txt"
    document = data.decode("utf-8")
    assert document.count("Mme Prénom NOM-") == 300
    assert "Classe 14 (20)\nMme Prénom NOM-14-0\n" in document


def test_final_check_of_a_green_school_says_it_is_ready() -> None:
    message = compose_digest(content(missing=()), kind=DigestKind.FINAL, late=False, tz=PARIS)

    assert "the school is ready for the LSU" in plain_text(message.text)


def test_french_digest_uses_the_official_state_labels() -> None:
    with use_language("fr"):
        message = compose_digest(content(), kind=DigestKind.WEEKLY, late=False, tz=PARIS)

    text = plain_text(message.text)
    assert "🔴 Non notifié : 9" in text or "🔴 Non notifié: 9" in text
    assert "lundi 4 janvier" in text


def test_a_digest_without_change_since_the_previous_one_says_so() -> None:
    still = {"not_notified": 0, "notified": 0, "activating": 0, "activated": 0}
    message = compose_digest(content(delta=still), kind=DigestKind.WEEKLY, late=False, tz=PARIS)

    text = plain_text(message.text)
    assert "No change since Monday 4 January." in text
    assert "activated since" not in text


def test_the_first_digest_has_no_change_line() -> None:
    message = compose_digest(
        content(previous_sent_at=None, delta={}), kind=DigestKind.WEEKLY, late=False, tz=PARIS
    )

    assert "since" not in plain_text(message.text)
