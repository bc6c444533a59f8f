"""What a digest says: the lights and percentages as /etat, the change since the previous
digest, the days left, the classes furthest behind, the next actions, who was reminded, the
final check's list, and the chart's bars; on SQLite and PostgreSQL."""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime, timedelta
from io import BytesIO
from zoneinfo import ZoneInfo

import pytest
import time_machine
from PIL import Image
from sqlalchemy import Engine
from sqlmodel import Session

from bot.services.digests import (
    ActionKind,
    ClassProgress,
    DigestContent,
    SchoolNotFoundError,
    chart_data,
    digest_content,
    digest_contents,
    digest_snapshot,
    render_chart,
)
from bot.services.roster import school_statistics
from models import (
    Account,
    AccountState,
    DigestKind,
    DigestRun,
    FamilyReminder,
    Guardian,
    HelpRequest,
    HelpStatus,
    HelpTopic,
    Pupil,
    PupilGuardian,
    School,
    SchoolClass,
)

PARIS = ZoneInfo("Europe/Paris")
NOW = datetime(2027, 1, 11, 7, 0, tzinfo=UTC)  # Monday 08:00 in Paris
NOT_NOTIFIED = AccountState.NOT_NOTIFIED
NOTIFIED = AccountState.NOTIFIED
ACTIVATING = AccountState.ACTIVATING
ACTIVATED = AccountState.ACTIVATED


class SchoolBuilder:
    """A school built by hand: classes, pupils, guardians with their accounts."""

    _numbers = itertools.count(1)

    def __init__(self, session: Session, *, lsu_date: date | None = None) -> None:
        self.session = session
        number = next(self._numbers)
        self.school = School(uai=f"{number:07d}D", name="École Paul Bert", lsu_date=lsu_date)
        session.add(self.school)
        session.flush()
        assert self.school.id is not None
        self.id: int = self.school.id

    def klass(self, label: str, levels: str = "CM1") -> SchoolClass:
        school_class = SchoolClass(
            school_id=self.id, label=label, label_key=label.lower(), levels=levels
        )
        self.session.add(school_class)
        self.session.flush()
        return school_class

    def pupil(self, school_class: SchoolClass | None) -> Pupil:
        pupil = Pupil(
            school_id=self.id,
            class_id=school_class.id if school_class else None,
            last_name=f"ELEVE{next(self._numbers)}",
            first_name="Camille",
            level="CM1",
        )
        self.session.add(pupil)
        self.session.flush()
        return pupil

    def guardian(
        self,
        children: Sequence[Pupil],
        state: AccountState = NOT_NOTIFIED,
        *,
        email: bool = True,
        notified_days_ago: int | None = None,
        last_name: str | None = None,
        deactivated: bool = False,
    ) -> Account:
        number = next(self._numbers)
        guardian = Guardian(
            school_id=self.id,
            civility="Mme",
            last_name=last_name or f"Parent{number}",
            first_name="Alex",
            email=f"p{number}@example.org" if email else None,
        )
        self.session.add(guardian)
        self.session.flush()
        for child in children:
            self.session.add(PupilGuardian(pupil_id=child.id, guardian_id=guardian.id))  # type: ignore[arg-type]
        distributed = None
        if notified_days_ago is not None:
            distributed = NOW - timedelta(days=notified_days_ago)
        elif state is not NOT_NOTIFIED:
            distributed = NOW - timedelta(days=1)
        account = Account(
            guardian_id=guardian.id,  # type: ignore[arg-type]
            identifier=f"alex.parent{number}",
            state=state,
            distributed_at=distributed,
            deactivated_at=NOW if deactivated else None,
        )
        self.session.add(account)
        self.session.flush()
        return account

    def help_request(self, status: HelpStatus) -> None:
        number = next(self._numbers)
        self.session.add(
            HelpRequest(
                school_id=self.id,
                school_year=2026,
                number=number,
                reference=f"D-2026-{number:04d}",
                telegram_user_id=1000 + number,
                topic=HelpTopic.QUESTION,
                status=status,
            )
        )
        self.session.flush()


@pytest.fixture
def db(engine: Engine) -> Iterator[Session]:
    with Session(engine, expire_on_commit=False) as session:
        yield session


def content_of(db: Session, school: SchoolBuilder, **kwargs: object) -> DigestContent:
    db.commit()
    return digest_content(db, school_id=school.id, now=NOW, tz=PARIS, **kwargs)  # type: ignore[arg-type]


def test_digest_counts_the_lights_and_both_percentages_as_etat(db: Session) -> None:
    school = SchoolBuilder(db, lsu_date=date(2027, 1, 15))
    ce1, cm2 = school.klass("CE1"), school.klass("CM2")
    a, b, c = school.pupil(ce1), school.pupil(ce1), school.pupil(cm2)
    school.guardian([a], ACTIVATED)
    school.guardian([a, c], NOTIFIED)
    school.guardian([b], NOT_NOTIFIED, email=False)
    school.guardian([c], ACTIVATING)
    school.guardian([c], ACTIVATED, deactivated=True)  # no longer counts
    school.help_request(HelpStatus.OPEN)
    school.help_request(HelpStatus.IN_PROGRESS)
    school.help_request(HelpStatus.CLOSED)

    content = content_of(db, school)

    total = content.total
    assert (total.label, total.accounts) == ("École Paul Bert", 4)
    assert (total.not_notified, total.notified, total.activating, total.activated) == (1, 1, 1, 1)
    assert content.activated_accounts_percent == 25.0
    assert content.pupils_with_activated_guardian_percent == pytest.approx(100 / 3)
    assert [(group.label, group.accounts, group.activated) for group in content.classes] == [
        ("CE1", 3, 1),
        ("CM2", 2, 0),
    ]
    assert content.open_requests == 2
    assert content.days_left == 4
    assert content.lsu_date == date(2027, 1, 15)
    assert [group.label for group in content.behind] == ["CM2", "CE1"]


def test_days_left_are_counted_in_the_local_time_zone(db: Session) -> None:
    school = SchoolBuilder(db, lsu_date=date(2027, 1, 15))
    db.commit()
    # 23:30 UTC on the 13th is already the 14th in Paris: one day left, not two.
    late_evening = datetime(2027, 1, 13, 23, 30, tzinfo=UTC)

    content = digest_content(db, school_id=school.id, now=late_evening, tz=PARIS)

    assert content.days_left == 1


def test_digest_uses_the_clock_when_no_moment_is_given(db: Session) -> None:
    school = SchoolBuilder(db, lsu_date=date(2027, 1, 15))
    db.commit()

    with time_machine.travel(datetime(2027, 1, 8, 7, 0, tzinfo=UTC), tick=False):
        content = digest_content(db, school_id=school.id, tz=PARIS)

    assert content.days_left == 7
    assert content.now == datetime(2027, 1, 8, 7, 0, tzinfo=UTC)


def test_next_actions_name_the_class_and_count_who_needs_them(db: Session) -> None:
    school = SchoolBuilder(db)
    ce1, cm2 = school.klass("CE1"), school.klass("CM2")
    for _ in range(3):
        school.guardian([school.pupil(ce1)], NOT_NOTIFIED, email=False)
    school.guardian([school.pupil(ce1)], NOT_NOTIFIED, email=True)
    for _ in range(2):
        school.guardian([school.pupil(cm2)], NOTIFIED, notified_days_ago=12)
    school.guardian([school.pupil(cm2)], NOTIFIED, notified_days_ago=2)  # too recent
    school.guardian([school.pupil(cm2)], ACTIVATING)
    school.guardian([school.pupil(cm2)], ACTIVATED)

    content = content_of(db, school)

    assert [(a.command, a.count, a.kind) for a in content.actions] == [
        ("/envoyer CE1", 1, ActionKind.EMAIL_NEVER_NOTIFIED),
        ("/pdf CE1", 3, ActionKind.PAPER_NEVER_NOTIFIED),
        ("/relancer CM2", 2, ActionKind.REMIND_STALE),
        ("/responsables CM2 en_cours", 1, ActionKind.CONFIRM_PENDING),
    ]
    assert content.actions[2].days == 7


def test_an_action_spread_over_many_classes_is_given_once_for_the_school(db: Session) -> None:
    school = SchoolBuilder(db)
    for label in ("CP", "CE1", "CE2", "CM1"):
        school.guardian([school.pupil(school.klass(label))], NOT_NOTIFIED, email=False)

    content = content_of(db, school)

    assert [(a.command, a.count) for a in content.actions] == [("/pdf ecole", 4)]


def test_behind_lists_at_most_five_classes_lowest_share_first(db: Session) -> None:
    school = SchoolBuilder(db)
    for index in range(7):
        pupil = school.pupil(school.klass(f"Classe {index}"))
        school.guardian([pupil], ACTIVATED)
        for _ in range(index):
            school.guardian([pupil], NOTIFIED)

    content = content_of(db, school)

    assert [group.label for group in content.behind] == [f"Classe {i}" for i in (6, 5, 4, 3, 2)]


def test_delta_is_the_change_since_the_previous_digest_sent(db: Session) -> None:
    school = SchoolBuilder(db)
    klass = school.klass("CE1")
    accounts = [school.guardian([school.pupil(klass)], NOTIFIED) for _ in range(3)]
    monday = NOW - timedelta(days=7)
    db.commit()
    before = digest_content(db, school_id=school.id, now=monday, tz=PARIS)
    db.add(
        DigestRun(
            school_id=school.id,
            kind=DigestKind.WEEKLY,
            due_at=monday,
            claimed_at=monday,
            sent_at=monday,
            snapshot=digest_snapshot(before),
        )
    )
    # Claimed, not sent yet: not « the previous digest ».
    db.add(DigestRun(school_id=school.id, kind=DigestKind.WEEKLY, due_at=NOW, claimed_at=NOW))
    for account in accounts[:2]:
        account.state = ACTIVATED
    school.guardian([school.pupil(klass)], NOT_NOTIFIED)

    content = content_of(db, school)

    assert content.previous_sent_at == monday
    assert content.delta == {"not_notified": 1, "notified": -2, "activating": 0, "activated": 2}


def test_first_digest_has_no_delta(db: Session) -> None:
    school = SchoolBuilder(db)
    school.guardian([school.pupil(school.klass("CE1"))], NOTIFIED)

    content = content_of(db, school)

    assert content.previous_sent_at is None
    assert content.delta == {}


def test_snapshot_keeps_the_states_and_percentages_as_json(db: Session) -> None:
    school = SchoolBuilder(db, lsu_date=date(2027, 1, 15))
    klass = school.klass("CE1")
    school.guardian([school.pupil(klass)], ACTIVATED)
    school.guardian([school.pupil(klass)], NOTIFIED)

    snapshot = digest_snapshot(content_of(db, school))

    assert snapshot["states"] == {
        "not_notified": 0,
        "notified": 1,
        "activating": 0,
        "activated": 1,
    }
    assert snapshot["activated_accounts_percent"] == 50.0
    assert snapshot["lsu_date"] == "2027-01-15"
    assert snapshot["at"] == NOW.isoformat()


def test_reminded_lists_the_guardians_reminded_since_the_previous_digest(db: Session) -> None:
    school = SchoolBuilder(db)
    klass = school.klass("CE1")
    old = school.guardian([school.pupil(klass)], NOTIFIED, last_name="Ancien")
    new = school.guardian([school.pupil(klass)], NOTIFIED, last_name="Durand")
    twice = school.guardian([school.pupil(klass)], ACTIVATING, last_name="Bernard")
    monday = NOW - timedelta(days=7)
    db.add(
        DigestRun(
            school_id=school.id,
            kind=DigestKind.WEEKLY,
            due_at=monday,
            claimed_at=monday,
            sent_at=monday,
        )
    )
    for account, days_ago in ((old, 8), (new, 3), (twice, 5), (twice, 1)):
        db.add(
            FamilyReminder(
                school_id=school.id,
                account_id=account.id,  # type: ignore[arg-type]
                sent_at=NOW - timedelta(days=days_ago),
                channels=["email"],
            )
        )

    content = content_of(db, school)

    assert content.reminded == ("Mme Alex BERNARD", "Mme Alex DURAND")


def test_final_list_names_every_guardian_not_green_by_class(db: Session) -> None:
    school = SchoolBuilder(db)
    ce1, cm2 = school.klass("CE1"), school.klass("CM2")
    a, b = school.pupil(ce1), school.pupil(cm2)
    school.guardian([a, b], NOTIFIED, last_name="Martin")  # in both classes
    school.guardian([a], ACTIVATED, last_name="Vert")
    school.guardian([b], NOT_NOTIFIED, last_name="Dupont")
    school.guardian([b], ACTIVATING, last_name="Leroy", deactivated=True)
    school.guardian([school.pupil(None)], ACTIVATING, last_name="Sansclasse")

    content = content_of(db, school, with_missing=True)

    assert content.missing == (
        ("CE1", ("Mme Alex MARTIN",)),
        ("CM2", ("Mme Alex DUPONT", "Mme Alex MARTIN")),
        ("", ("Mme Alex SANSCLASSE",)),
    )
    assert content.missing_lights[1] == ("CM2", ("🔴 Mme Alex DUPONT", "🟠 Mme Alex MARTIN"))
    assert content.missing_count == 4
    assert content_of(db, school).missing == ()


def test_chart_data_has_one_bar_per_class_stacked_by_state(db: Session) -> None:
    school = SchoolBuilder(db)
    ce1, cm2 = school.klass("CE1"), school.klass("CM2")
    school.guardian([school.pupil(ce1)], ACTIVATED)
    school.guardian([school.pupil(ce1)], NOTIFIED)
    school.guardian([school.pupil(cm2)], NOT_NOTIFIED)
    school.guardian([school.pupil(cm2)], ACTIVATING)
    school.guardian([school.pupil(cm2)], ACTIVATING)

    data = chart_data(content_of(db, school))

    assert data.labels == ("CE1", "CM2")
    assert [series.state for series in data.series] == list(AccountState)
    assert data.values(NOT_NOTIFIED) == (0, 1)
    assert data.values(NOTIFIED) == (1, 0)
    assert data.values(ACTIVATING) == (0, 2)
    assert data.values(ACTIVATED) == (1, 0)
    assert data.activated_percent == (50.0, 0.0)
    assert [series.colour for series in data.series] == [
        "#d93025",
        "#f28b00",
        "#f9c80e",
        "#1e8e3e",
    ]


def test_chart_of_a_school_without_classes_is_one_bar_for_the_school(db: Session) -> None:
    school = SchoolBuilder(db)
    school.guardian([school.pupil(None)], NOTIFIED)

    data = chart_data(content_of(db, school))

    assert data.labels == ("École Paul Bert",)
    assert data.values(NOTIFIED) == (1,)


def test_chart_is_a_png_that_grows_with_the_number_of_classes(db: Session) -> None:
    small, large = SchoolBuilder(db), SchoolBuilder(db)
    small.guardian([small.pupil(small.klass("CE1"))], ACTIVATED)
    for index in range(30):
        klass = large.klass(f"CM{index} Mme Dupont-Lajoie de la Fontaine")
        large.guardian([large.pupil(klass)], ACTIVATED if index % 2 else NOTIFIED)

    small_png = render_chart(content_of(db, small), title="École — LSU 15 janvier 2027")
    large_png = render_chart(content_of(db, large), title="École — LSU 15 janvier 2027")

    for png in (small_png, large_png):
        assert png.startswith(b"\x89PNG\r\n\x1a\n")
    small_image, large_image = Image.open(BytesIO(small_png)), Image.open(BytesIO(large_png))
    assert small_image.format == large_image.format == "PNG"
    assert large_image.width == small_image.width
    # About 37 px per bar at 110 dpi: 30 labels do not overlap.
    assert large_image.height >= small_image.height + 29 * 30


def random_school(db: Session, seed: int) -> SchoolBuilder:
    """A school with guardians in every state, several children, some without a class."""
    rnd = random.Random(seed)
    school = SchoolBuilder(db)
    classes = [school.klass(label) for label in ("CP", "CE1", "CE2", "CM1", "CM2")]
    pupils = [school.pupil(rnd.choice([*classes, None])) for _ in range(40)]
    for _ in range(60):
        school.guardian(
            rnd.sample(pupils, rnd.choice((1, 1, 2))),
            rnd.choice(list(AccountState)),
            email=rnd.random() < 0.7,
            notified_days_ago=rnd.randint(0, 20),
            deactivated=rnd.random() < 0.05,
        )
    school.help_request(HelpStatus.OPEN)
    return school


def test_digest_counts_are_those_of_the_statistics_of_etat(db: Session) -> None:
    school = random_school(db, 1)

    content = content_of(db, school)

    stats = school_statistics(db, school_id=school.id)
    assert content.total == ClassProgress.of("École Paul Bert", None, stats.total)
    assert content.classes == tuple(
        ClassProgress.of(group.label, group.class_id, group) for group in stats.classes
    )


def test_digests_of_many_schools_at_once_are_each_schools_own(db: Session) -> None:
    schools = [random_school(db, seed) for seed in (2, 3, 4)]
    db.commit()
    ids = [school.id for school in schools]

    together = digest_contents(db, school_ids=[*ids, 999_999], now=NOW, tz=PARIS, with_missing=True)

    alone = [digest_content(db, school_id=i, now=NOW, tz=PARIS, with_missing=True) for i in ids]
    assert together == alone


def test_digest_of_an_unknown_school_is_refused(db: Session) -> None:
    with pytest.raises(SchoolNotFoundError):
        digest_content(db, school_id=999_999, now=NOW, tz=PARIS)
