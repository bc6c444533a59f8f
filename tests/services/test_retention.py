"""The purge: pupils archived and guardians deactivated for longer than the retention go, with
everything of theirs, in one transaction; the audit log stays without their personal data; an
enrolled pupil or an active guardian is never touched. On SQLite and PostgreSQL."""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, Table, select
from sqlmodel import Session, SQLModel

from bot.services.accounts.lifecycle import create_accounts
from bot.services.audit import record_event
from bot.services.retention import (
    PURGED,
    REMOVED_FAMILY,
    PurgeChangedError,
    RetentionTooShortError,
    plan_purge,
    purge,
)
from models import (
    Account,
    AuditEvent,
    FamilyChat,
    FamilyLinkCode,
    FamilyReminder,
    Guardian,
    HelpRequest,
    HelpRequestEvent,
    HelpTopic,
    OutboxMessage,
    OutboxStatus,
    PhoneCheck,
    PortalToken,
    PortalTokenPurpose,
    Pupil,
    PupilGuardian,
    School,
    SchoolClass,
)

NOW = datetime(2026, 12, 3, 8, 0, tzinfo=UTC)
LONG_AGO = timedelta(days=400)  # beyond one school year
LATELY = timedelta(days=100)  # within it
GONE_FAMILY_TELEGRAM = 6_100_000_001
ACTIVE_FAMILY_TELEGRAM = 6_100_000_002
DIRECTOR_TELEGRAM = 6_100_000_009


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    """A session on a clean database, SQLite and PostgreSQL."""
    with Session(engine, expire_on_commit=False) as session:
        yield session


@dataclass
class Families:
    """The school of the tests: who must go and who must stay."""

    school_id: int
    gone_pupils: list[int]  # archived long ago
    gone_guardian: int  # deactivated long ago, no child left
    gone_account: int
    kept_pupils: list[int]  # enrolled, or archived lately
    kept_guardians: list[int]  # active; deactivated lately; deactivated but with a child


def build_families(session: Session, *, now: datetime = NOW) -> Families:
    """A school with every case the purge must tell apart, committed:

    - Jules (archived long ago) and his mother Anne Vidal (deactivated long ago), with her
      chat, letter code, portal link, e-mails, reminder, phone check, help request and events;
    - Léo (archived long ago) whose father Paul Morel stays for Léa (enrolled);
    - Zoé (archived lately) and her mother (deactivated lately): kept;
    - Léa's other guardian, deactivated long ago by hand but still linked to her: kept.
    """
    long_ago, lately = now - LONG_AGO, now - LATELY
    school = School(uai="0751234X", name="École Jules Ferry")
    session.add(school)
    session.flush()
    assert school.id is not None
    school_id = school.id
    cm1 = SchoolClass(school_id=school_id, label="CM1", label_key="cm1", levels="CM1")
    session.add(cm1)
    session.flush()

    def pupil(first: str, archived: datetime | None) -> Pupil:
        return Pupil(
            school_id=school_id,
            class_id=cm1.id,
            first_name=first,
            last_name="Vidal",
            archived_at=archived,
            address="3 rue des Lilas",
        )

    jules, leo, lea, zoe = (
        pupil("Jules", long_ago),
        pupil("Léo", long_ago),
        pupil("Léa", None),
        pupil("Zoé", lately),
    )
    anne, paul, claire, marc = (
        Guardian(
            school_id=school.id,
            first_name=first,
            last_name=last,
            email=f"{first.lower()}@example.org",
            phone_mobile="06 12 34 56 78",
            mobile_e164="+33612345678",
        )
        for first, last in (
            ("Anne", "Vidal"),
            ("Paul", "Morel"),
            ("Claire", "Roy"),
            ("Marc", "Roy"),
        )
    )
    session.add_all([jules, leo, lea, zoe, anne, paul, claire, marc])
    session.flush()
    links = [(jules, anne), (leo, paul), (lea, paul), (zoe, claire), (lea, marc)]
    session.add_all(PupilGuardian(pupil_id=p.id, guardian_id=g.id) for p, g in links)  # type: ignore[arg-type]
    accounts = create_accounts(session, guardians=[anne, paul, claire, marc], actor="tests")
    by_guardian = {account.guardian_id: account for account in accounts}
    by_guardian[anne.id].deactivated_at = long_ago  # type: ignore[index]
    by_guardian[claire.id].deactivated_at = lately  # type: ignore[index]
    by_guardian[marc.id].deactivated_at = long_ago  # type: ignore[index]
    session.add_all(accounts)
    session.flush()
    for guardian, telegram in ((anne, GONE_FAMILY_TELEGRAM), (paul, ACTIVE_FAMILY_TELEGRAM)):
        _family_traces(session, school.id, guardian, by_guardian[guardian.id], telegram, now)  # type: ignore[index]
    # A number shared long ago that matched nobody, and one shared today.
    session.add(
        PhoneCheck(
            telegram_user_id=7, phone_e164="+33700000000", outcome="unknown", created_at=long_ago
        )
    )
    session.add(
        PhoneCheck(telegram_user_id=8, phone_e164="+33700000001", outcome="unknown", created_at=now)
    )
    session.commit()
    ids = _ids
    return Families(
        school_id=school.id,
        gone_pupils=ids(jules, leo),
        gone_guardian=ids(anne)[0],
        gone_account=by_guardian[anne.id].id,  # type: ignore[index,arg-type]
        kept_pupils=ids(lea, zoe),
        kept_guardians=ids(paul, claire, marc),
    )


def _ids(*rows: Any) -> list[int]:
    return [row.id for row in rows]


def _family_traces(
    session: Session,
    school_id: int,
    guardian: Guardian,
    account: Account,
    telegram: int,
    now: datetime,
) -> None:
    """What a family leaves behind: a linked chat, codes, links, mails, a reminder, a phone
    check, a help request with its history, and audit events naming it."""
    assert account.id is not None and guardian.id is not None
    session.add(
        FamilyChat(
            telegram_user_id=telegram, guardian_id=guardian.id, linked_at=now - timedelta(days=400)
        )
    )
    session.add(
        FamilyLinkCode(
            account_id=account.id,
            code_hash=f"code{account.id}",
            expires_at=now - timedelta(days=400),
        )
    )
    session.add(
        PortalToken(
            account_id=account.id,
            purpose=PortalTokenPurpose.ACTIVATION,
            token_hash=f"token{account.id}",
            email=guardian.email,
            expires_at=now - timedelta(days=400),
        )
    )
    session.add(
        OutboxMessage(
            school_id=school_id,
            account_id=account.id,
            kind="credentials_first",
            to_address=guardian.email or "",
            message_id=f"<m{account.id}@educonnect>",
            status=OutboxStatus.SENT,
        )
    )
    session.add(FamilyReminder(school_id=school_id, account_id=account.id, channels=["email"]))
    session.add(
        PhoneCheck(
            telegram_user_id=telegram,
            phone_e164=guardian.mobile_e164,
            outcome="linked",
            chosen_guardian_id=guardian.id,
            created_at=now - timedelta(days=1),
        )
    )
    request = HelpRequest(
        school_id=school_id,
        school_year=2025,
        number=account.id,
        reference=f"D-2025-{account.id:04d}",
        telegram_user_id=telegram,
        topic=HelpTopic.QUESTION,
        guardian_id=guardian.id,
        declared_guardian=f"{guardian.first_name} {guardian.last_name}",
        declared_child="Jules",
        message="Mon fils a changé d'école, mon numéro est le 06 12 34 56 78",
    )
    session.add(request)
    session.flush()
    assert request.id is not None
    session.add(
        HelpRequestEvent(
            request_id=request.id, actor=f"family:{telegram}", action="filed", text=request.message
        )
    )
    session.add(
        HelpRequestEvent(
            request_id=request.id, actor=f"telegram:{DIRECTOR_TELEGRAM}", action="closed"
        )
    )
    record_event(
        session,
        actor=f"telegram:{telegram}",
        action="family.chat_linked",
        school_id=school_id,
        account_id=account.id,
        telegram_user_id=telegram,
        already_linked=False,
    )
    record_event(
        session,
        actor=f"family:{telegram}",
        action="guardian.language_chosen",
        guardian_ids=[guardian.id],
        language="ar",
    )
    record_event(
        session,
        actor=f"telegram:{DIRECTOR_TELEGRAM}",
        action="account.renotified",
        school_id=school_id,
        account_id=account.id,
        channel="email",
    )


def _snapshot(session: Session, model: type[SQLModel], **where: Any) -> list[dict[str, Any]]:
    table: Table = model.__table__  # type: ignore[attr-defined]
    query = select(table).order_by(*table.primary_key.columns)
    for name, values in where.items():
        query = query.where(table.c[name].in_(values))
    return [dict(row._mapping) for row in session.execute(query)]


def _kept_rows(session: Session, families: Families) -> dict[str, list[dict[str, Any]]]:
    """Every row of the families who stay."""
    guardians = families.kept_guardians
    accounts = [row["id"] for row in _snapshot(session, Account, guardian_id=guardians)]
    return {
        "pupils": _snapshot(session, Pupil, id=families.kept_pupils),
        "guardians": _snapshot(session, Guardian, id=guardians),
        "accounts": _snapshot(session, Account, id=accounts),
        # Léo's link to Paul goes with Léo; Paul's link to Léa stays.
        "links": _snapshot(session, PupilGuardian, pupil_id=families.kept_pupils),
        "chats": _snapshot(session, FamilyChat, guardian_id=guardians),
        "codes": _snapshot(session, FamilyLinkCode, account_id=accounts),
        "tokens": _snapshot(session, PortalToken, account_id=accounts),
        "outbox": _snapshot(session, OutboxMessage, account_id=accounts),
        "reminders": _snapshot(session, FamilyReminder, account_id=accounts),
        "requests": _snapshot(session, HelpRequest, guardian_id=guardians),
        "events": _snapshot(session, AuditEvent, account_id=accounts),
    }


def test_the_plan_counts_per_kind_and_per_school_what_goes(session: Session) -> None:
    build_families(session)

    plan = plan_purge(session, now=NOW)

    assert plan.cutoff == NOW - timedelta(days=365)
    assert plan.counts.as_dict() == {
        "pupils": 2,  # Jules and Léo
        "guardians": 1,  # Anne only
        "accounts": 1,
        "links": 2,  # Jules–Anne, Léo–Paul
        "family_chats": 1,
        "link_codes": 1,
        "portal_links": 1,
        "outbox_messages": 1,
        "reminders": 1,
        "phone_checks": 2,  # Anne's choice, and the number shared long ago
        "help_requests": 1,
        "audit_events": 4,  # account.created, chat_linked, renotified + language_chosen
    }
    [school] = plan.schools
    assert (school.uai, school.pupils, school.guardians, school.help_requests) == (
        "0751234X",
        2,
        1,
        1,
    )


def test_purge_deletes_what_the_plan_said_and_never_touches_who_stays(session: Session) -> None:
    families = build_families(session)
    kept_before = _kept_rows(session, families)
    plan = plan_purge(session, now=NOW)
    session.rollback()

    done = purge(session, now=NOW, actor="cli:test", expected=plan)
    session.commit()

    assert done.counts == plan.counts
    assert _kept_rows(session, families) == kept_before
    assert not _snapshot(session, Pupil, id=families.gone_pupils)
    assert not _snapshot(session, Guardian, id=[families.gone_guardian])
    assert not _snapshot(session, Account, id=[families.gone_account])
    assert not _snapshot(session, PupilGuardian, pupil_id=families.gone_pupils)
    assert not _snapshot(session, FamilyChat, telegram_user_id=[GONE_FAMILY_TELEGRAM])
    assert not _snapshot(session, OutboxMessage, to_address=["anne@example.org"])
    assert [row["phone_e164"] for row in _snapshot(session, PhoneCheck)] == [
        "+33612345678",  # Paul's, yesterday
        "+33700000001",  # today's
    ]
    # Nothing left to purge: a second run finds nothing.
    assert plan_purge(session, now=NOW).empty


def test_the_audit_log_keeps_the_actions_and_dates_without_personal_data(
    session: Session,
) -> None:
    families = build_families(session)
    before = {
        row["id"]: row
        for row in _snapshot(session, AuditEvent)
        if row["account_id"] == families.gone_account
        or families.gone_guardian in row["details"].get("guardian_ids", [])
    }

    purge(session, now=NOW, actor="cli:test")
    session.commit()

    after = {row["id"]: row for row in _snapshot(session, AuditEvent, id=list(before))}
    assert after.keys() == before.keys()  # none deleted
    for event_id, row in after.items():
        old = before[event_id]
        assert (row["action"], row["at"], row["school_id"]) == (
            old["action"],
            old["at"],
            old["school_id"],
        )
        assert row["account_id"] is None  # the account row is gone: its id moved into details
        assert row["details"]["personal_data_removed"] is True
        for key in ("identifier", "telegram_user_id"):
            assert key not in row["details"]
        text = repr(row)
        assert str(GONE_FAMILY_TELEGRAM) not in text and "vidal" not in text.lower()
    by_action = {row["action"]: row for row in after.values()}
    assert by_action["family.chat_linked"]["actor"] == REMOVED_FAMILY
    assert by_action["guardian.language_chosen"]["actor"] == REMOVED_FAMILY
    assert by_action["guardian.language_chosen"]["details"]["language"] == "ar"
    renotified = by_action["account.renotified"]
    assert renotified["actor"] == f"telegram:{DIRECTOR_TELEGRAM}"  # the director stays named
    assert renotified["details"]["purged_account_id"] == families.gone_account
    assert renotified["details"]["channel"] == "email"
    # The purge itself is audited with counts only.
    purged = [row for row in _snapshot(session, AuditEvent) if row["action"] == PURGED]
    assert {row["school_id"] for row in purged} == {families.school_id, None}
    overall = next(row for row in purged if row["school_id"] is None)
    assert overall["details"]["counts"]["pupils"] == 2


def test_help_requests_of_purged_families_keep_their_reference_without_their_words(
    session: Session,
) -> None:
    families = build_families(session)

    purge(session, now=NOW, actor="cli:test")
    session.commit()

    requests = {row["reference"]: row for row in _snapshot(session, HelpRequest)}
    gone = requests[f"D-2025-{families.gone_account:04d}"]
    assert gone["guardian_id"] is None and gone["telegram_user_id"] == 0
    assert gone["message"] is None and gone["declared_guardian"] is None
    events = _snapshot(session, HelpRequestEvent, request_id=[gone["id"]])
    assert [(e["actor"], e["text"]) for e in events] == [
        (REMOVED_FAMILY, None),
        (f"telegram:{DIRECTOR_TELEGRAM}", None),
    ]
    kept = [row for row in requests.values() if row["id"] != gone["id"]]
    assert [row["telegram_user_id"] for row in kept] == [ACTIVE_FAMILY_TELEGRAM]


def test_a_purge_refuses_when_a_family_came_back_since_the_plan(session: Session) -> None:
    families = build_families(session)
    plan = plan_purge(session, now=NOW)
    session.rollback()
    # An import meanwhile lists Anne again: her account is reactivated.
    account = session.get(Account, families.gone_account)
    assert account is not None
    account.deactivated_at = None
    session.add(account)
    session.commit()

    with pytest.raises(PurgeChangedError):
        purge(session, now=NOW, actor="cli:test", expected=plan)
    session.rollback()

    assert _snapshot(session, Guardian, id=[families.gone_guardian])
    assert len(_snapshot(session, Pupil, id=families.gone_pupils)) == 2


def test_a_shorter_retention_takes_the_recent_departures_too(session: Session) -> None:
    families = build_families(session)

    plan = plan_purge(session, now=NOW, retention=timedelta(days=90))

    assert plan.counts.pupils == 3  # Zoé too
    assert plan.counts.guardians == 2  # Claire too; Marc is still linked to Léa
    assert families.kept_guardians[2] not in plan.guardian_ids


def test_a_retention_under_30_days_is_refused(sqlite_engine: Engine) -> None:
    with Session(sqlite_engine) as session, pytest.raises(RetentionTooShortError, match="30"):
        plan_purge(session, now=NOW, retention=timedelta(days=29))


def test_across_a_random_school_only_the_long_gone_go(sqlite_engine: Engine) -> None:
    """300 pupils and 300 guardians, linked at random, enrolled or archived, active or
    deactivated at random dates: exactly the pupils archived before the cutoff and the
    guardians deactivated before it with no child who stays are deleted; every other row is
    untouched."""
    rng = random.Random(20261203)
    dates = [None, NOW - timedelta(days=30), NOW - timedelta(days=364), NOW - timedelta(days=366)]
    with Session(sqlite_engine, expire_on_commit=False) as session:
        school = School(uai="0751234X", name="École Jules Ferry")
        session.add(school)
        session.flush()
        assert school.id is not None
        pupils = [
            Pupil(
                school_id=school.id,
                first_name=f"Élève {i}",
                last_name="Martin",
                archived_at=rng.choice(dates),
            )
            for i in range(300)
        ]
        guardians = [
            Guardian(school_id=school.id, first_name=f"Parent {i}", last_name="Martin")
            for i in range(300)
        ]
        session.add_all([*pupils, *guardians])
        session.flush()
        pairs = {(rng.choice(pupils).id, guardian.id) for guardian in guardians for _ in range(2)}
        session.add_all(PupilGuardian(pupil_id=p, guardian_id=g) for p, g in pairs)  # type: ignore[arg-type]
        accounts = create_accounts(session, guardians=guardians, actor="tests")
        for account in accounts:
            account.deactivated_at = rng.choice(dates)
        session.add_all(accounts)
        session.commit()
        cutoff = NOW - timedelta(days=365)
        gone_pupils = {p.id for p in pupils if p.archived_at is not None and p.archived_at < cutoff}
        staying_pupils = {p.id for p in pupils} - gone_pupils
        deactivated = {
            a.guardian_id for a in accounts if a.deactivated_at and a.deactivated_at < cutoff
        }
        gone_guardians = {
            g for g in deactivated if not any(gg == g and p in staying_pupils for p, gg in pairs)
        }
        staying_guardians = {g.id for g in guardians} - gone_guardians
        kept = {
            "pupils": _snapshot(session, Pupil, id=list(staying_pupils)),
            "guardians": _snapshot(session, Guardian, id=list(staying_guardians)),
            "accounts": _snapshot(session, Account, guardian_id=list(staying_guardians)),
            "links": [
                row
                for row in _snapshot(session, PupilGuardian)
                if row["pupil_id"] in staying_pupils and row["guardian_id"] in staying_guardians
            ],
        }

        done = purge(session, now=NOW, actor="cli:test")
        session.commit()

        assert set(done.pupil_ids) == gone_pupils and set(done.guardian_ids) == gone_guardians
        assert 0 < len(gone_pupils) < 300 and 0 < len(gone_guardians) < 300
        assert {row["id"] for row in _snapshot(session, Pupil)} == staying_pupils
        assert {row["id"] for row in _snapshot(session, Guardian)} == staying_guardians
        assert kept == {
            "pupils": _snapshot(session, Pupil, id=list(staying_pupils)),
            "guardians": _snapshot(session, Guardian, id=list(staying_guardians)),
            "accounts": _snapshot(session, Account, guardian_id=list(staying_guardians)),
            "links": _snapshot(session, PupilGuardian),
        }
