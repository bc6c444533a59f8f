"""Importing again: the same files change nothing; a newer extraction updates names, classes and
addresses without losing identifiers, account states or history (docs/PRODUCT.md)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import Engine, update
from sqlmodel import Session, col, select

from bot.db import session_scope
from bot.services.roster.onde.report import RosterFileError
from models import Account, AccountState, AuditEvent, DistributionChannel
from tests.services.onde import views
from tests.services.onde.builder import (
    ChildSpec,
    GuardianSpec,
    PupilSpec,
    guardians_csv,
    pupils_csv,
    replace,
    small_school,
)
from tests.services.onde.conftest import ImportRunner, snapshot

FIRST_DAY = datetime(2026, 9, 1, 7, 0, tzinfo=UTC)
LATER = datetime(2026, 11, 2, 7, 0, tzinfo=UTC)


def files(pupils: list[PupilSpec], guardians: list[GuardianSpec]) -> list[tuple[str, bytes]]:
    return [("eleves.csv", pupils_csv(pupils)), ("responsables.csv", guardians_csv(guardians))]


def child(pupil: PupilSpec) -> ChildSpec:
    return ChildSpec(pupil.last_name, pupil.first_name, pupil.class_label)


def set_states(engine: Engine, school_id: int) -> dict[str, tuple[object, ...]]:
    """Give some accounts a history, as distribution and activation would; returns it."""
    with session_scope(engine) as session:
        accounts = {
            (g.first_name, g.last_name): g.account_id for g in views.guardians(engine, school_id)
        }
        session.exec(
            update(Account)
            .where(col(Account.id) == accounts[("Claire", "MARTIN")])
            .values(
                state=AccountState.ACTIVATED,
                password_hash="$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA",
                distributed_at=FIRST_DAY + timedelta(days=1),
                distribution_channel=DistributionChannel.EMAIL,
                activated_at=FIRST_DAY + timedelta(days=3),
            )
        )
        session.exec(
            update(Account)
            .where(
                col(Account.id).in_([accounts[("Sophie", "PETIT")], accounts[("Anh", "NGUYEN")]])
            )
            .values(
                state=AccountState.NOTIFIED,
                password_hash="$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA",
                distributed_at=FIRST_DAY + timedelta(days=1),
                distribution_channel=DistributionChannel.PAPER,
                provisional_expires_at=FIRST_DAY + timedelta(days=92),
            )
        )
    with Session(engine) as session:
        return {
            a.identifier: (
                a.id,
                a.guardian_id,
                a.state,
                a.password_hash,
                a.distributed_at,
                a.distribution_channel,
                a.activated_at,
                a.provisional_expires_at,
                a.created_at,
            )
            for a in session.exec(select(Account))
        }


def audit_actions(engine: Engine) -> list[tuple[str, int | None]]:
    with Session(engine) as session:
        events = session.exec(select(AuditEvent).order_by(col(AuditEvent.id)))
        return [(e.action, e.account_id) for e in events]


def without_audit(tables: dict[str, object]) -> dict[str, object]:
    dump = tables.get("__dump__")
    kept = {name: rows for name, rows in tables.items() if name not in ("auditevent", "__dump__")}
    if isinstance(dump, str):
        kept["__dump__"] = [line for line in dump.splitlines() if "auditevent" not in line.lower()]
    return kept


def test_reimport_changes_nothing(engine: Engine, school_id: int, run_import: ImportRunner) -> None:
    pupils, guardians = small_school()
    run_import(files(pupils, guardians), now=FIRST_DAY)
    before = snapshot(engine)

    report = run_import(files(pupils, guardians), now=LATER)

    assert without_audit(snapshot(engine)) == without_audit(before)  # updated_at not bumped
    assert (report.pupils.added, report.pupils.updated, report.pupils.retired) == (0, 0, 0)
    assert report.pupils.unchanged == len(pupils)
    assert report.guardians.unchanged == len(guardians)
    assert (report.guardians.added, report.guardians.updated, report.guardians.retired) == (0, 0, 0)
    assert report.classes.unchanged == 3 and report.classes.added == report.classes.updated == 0
    assert report.accounts_created == report.links_added == report.links_removed == 0
    with Session(engine) as session:
        last = session.exec(select(AuditEvent).order_by(col(AuditEvent.id).desc())).first()
    assert last is not None and last.action == "roster.imported"
    assert last.details["pupils"] == {"added": 0, "updated": 0, "unchanged": 6, "retired": 0}
    assert last.details["accounts_created"] == 0


def test_reimport_in_another_encoding_changes_nothing(
    engine: Engine, school_id: int, run_import: ImportRunner
) -> None:
    from tests.services.onde.builder import Options

    pupils, guardians = small_school()
    run_import(files(pupils, guardians))
    before = without_audit(snapshot(engine))
    options = Options(encoding="utf-8", bom=True, quote_all=True, date_format="%Y-%m-%d")
    run_import(
        [("b.csv", guardians_csv(guardians, options)), ("a.csv", pupils_csv(pupils, options))]
    )
    assert without_audit(snapshot(engine)) == before


def test_reimport_keeps_account_states(
    engine: Engine, school_id: int, run_import: ImportRunner
) -> None:
    pupils, guardians = small_school()
    lea, hugo, emma, noe, _lina, jade = pupils
    run_import(files(pupils, guardians), now=FIRST_DAY)
    history = set_states(engine, school_id)
    events_before = audit_actions(engine)
    ids_before = {(g.first_name, g.last_name): g for g in views.guardians(engine, school_id)}
    pupils_before = {
        (p.first_name, p.last_name): p for p in views.pupils(engine, school_id).values()
    }

    # The newer extraction: Hugo changes class, Noé's family moves, Lina left (and with her
    # Anh NGUYEN), Sophie PETIT took another name, Marc ROUX is gone, Tom LEFEBVRE arrives.
    moved_hugo = replace(hugo, class_label="CM1-CM2 M. Blanc", level="CM2")
    moved_noe = replace(noe, address="12 rue Neuve", postcode="69003", city="Lyon")
    new_pupils = [lea, moved_hugo, emma, moved_noe, jade]
    claire, paul, sophie, karim, julie, _anh, _marc, ines = guardians
    new_guardians = [
        replace(claire, children=(child(lea), child(moved_hugo))),
        replace(paul, children=(child(lea), child(moved_hugo))),
        replace(sophie, last_name="PETIT-LAMBERT"),
        replace(karim, address="12 rue Neuve", postcode="69003", city="Lyon"),
        julie,
        ines,
        GuardianSpec("LEFEBVRE", "Tom", (child(jade),), civility="M.", address="9 quai Bas"),
    ]
    report = run_import(files(new_pupils, new_guardians), now=LATER)

    # Accounts: identifiers, states, hashes and dates untouched.
    with Session(engine) as session:
        after = {
            a.identifier: (
                a.id,
                a.guardian_id,
                a.state,
                a.password_hash,
                a.distributed_at,
                a.distribution_channel,
                a.activated_at,
                a.provisional_expires_at,
                a.created_at,
            )
            for a in session.exec(select(Account))
        }
    assert {k: v for k, v in after.items() if k in history} == history
    assert set(after) - set(history) == {"tom.lefebvre"}

    guardians_after = views.guardians(engine, school_id)
    renamed = views.find_guardian(guardians_after, "Sophie", "PETIT-LAMBERT")
    assert renamed.id == ids_before[("Sophie", "PETIT")].id
    assert renamed.identifier == "sophie.petit"  # identifiers are never changed
    assert renamed.state == "notified"
    claire_after = views.find_guardian(guardians_after, "Claire", "MARTIN")
    assert claire_after.state == "activated" and not claire_after.deactivated
    karim_after = views.find_guardian(guardians_after, "Karim", "DURAND")
    assert karim_after.address == "12 rue Neuve"

    # Departures: archived and deactivated, never deleted.
    by_id = views.pupils(engine, school_id)
    lina_after = views.find_pupil(by_id, "Lina", "NGUYEN")
    assert lina_after.archived and lina_after.id == pupils_before[("Lina", "NGUYEN")].id
    anh = views.find_guardian(guardians_after, "Anh", "NGUYEN")
    marc = views.find_guardian(guardians_after, "Marc", "ROUX")
    for gone in (anh, marc):
        assert gone.deactivated and gone.children == frozenset()
    assert anh.state == "notified"  # the state is kept for history
    tom = views.find_guardian(guardians_after, "Tom", "LEFEBVRE")
    assert tom.state == "not_notified" and not tom.deactivated
    assert views.children_names(tom, by_id) == {("Jade", "ROUX")}

    # Classes: Hugo's new class, the emptied CM2 archived (not deleted).
    hugo_after = views.find_pupil(by_id, "Hugo", "MARTIN")
    assert hugo_after.class_label == "CM1-CM2 M. Blanc"
    assert hugo_after.id == pupils_before[("Hugo", "MARTIN")].id
    classes = views.classes(engine, school_id)
    assert classes["CM2"].archived_at is not None
    assert classes["CM1-CM2 M. Blanc"].levels == "CM2"
    assert views.find_pupil(by_id, "Noé", "DURAND").address == "12 rue Neuve"

    # History: the earlier events are all there, plus one per deactivated account.
    events = audit_actions(engine)
    assert events[: len(events_before)] == events_before
    assert sorted(events[len(events_before) :]) == sorted(
        [
            ("account.deactivated", anh.account_id),
            ("account.deactivated", marc.account_id),
            ("roster.imported", None),
        ]
    )

    assert (report.pupils.added, report.pupils.updated, report.pupils.retired) == (0, 2, 1)
    assert report.pupils.unchanged == 3
    assert (report.guardians.added, report.guardians.retired) == (1, 2)
    assert report.guardians.updated == 2  # Sophie renamed, Karim moved
    assert report.accounts_created == 1 and report.accounts_deactivated == 2
    assert (report.classes.added, report.classes.retired) == (1, 1)


def test_guardian_who_comes_back_is_reactivated_with_the_same_identifier(
    engine: Engine, school_id: int, run_import: ImportRunner
) -> None:
    pupils, guardians = small_school()
    run_import(files(pupils, guardians), now=FIRST_DAY)
    set_states(engine, school_id)
    anh = views.find_guardian(views.guardians(engine, school_id), "Anh", "NGUYEN")
    lina = next(p for p in pupils if p.first_name == "Lina")

    without_lina = [p for p in pupils if p is not lina]
    run_import(files(without_lina, [g for g in guardians if g.first_name != "Anh"]), now=LATER)
    report = run_import(files(pupils, guardians), now=LATER + timedelta(days=1))

    back = views.find_guardian(views.guardians(engine, school_id), "Anh", "NGUYEN")
    assert (back.id, back.account_id, back.identifier) == (anh.id, anh.account_id, anh.identifier)
    assert not back.deactivated and back.state == "notified"
    by_id = views.pupils(engine, school_id)
    assert views.children_names(back, by_id) == {("Lina", "NGUYEN")}
    assert not views.find_pupil(by_id, "Lina", "NGUYEN").archived
    assert report.accounts_reactivated == 1 and report.accounts_created == 0
    assert report.pupils.updated == 1  # Lina, back from the archive
    assert audit_actions(engine)[-2:] == [
        ("account.reactivated", anh.account_id),
        ("roster.imported", None),
    ]


def test_pupils_file_alone_archives_departures_and_keeps_guardians(
    engine: Engine, school_id: int, run_import: ImportRunner
) -> None:
    pupils, guardians = small_school()
    run_import(files(pupils, guardians))
    before = views.guardians(engine, school_id)

    report = run_import([("eleves.csv", pupils_csv([p for p in pupils if p.first_name != "Lina"]))])

    after = views.guardians(engine, school_id)
    assert [(g.id, g.identifier) for g in after] == [(g.id, g.identifier) for g in before]
    anh = views.find_guardian(after, "Anh", "NGUYEN")
    assert anh.deactivated and anh.children == frozenset()
    assert [g for g in after if g.deactivated] == [anh]
    assert report.pupils.retired == 1 and report.guardians.retired == 1
    assert report.links_removed == 1 and report.files == {"eleves.csv": "pupils"}


def test_guardians_file_alone_links_against_the_current_pupils(
    engine: Engine, school_id: int, run_import: ImportRunner
) -> None:
    pupils, guardians = small_school()
    run_import([("eleves.csv", pupils_csv(pupils))])
    report = run_import([("responsables.csv", guardians_csv(guardians))])
    assert report.guardians.added == len(guardians) and report.rejected == []
    by_id = views.pupils(engine, school_id)
    claire = views.find_guardian(views.guardians(engine, school_id), "Claire", "MARTIN")
    assert views.children_names(claire, by_id) == {("Léa", "MARTIN"), ("Hugo", "MARTIN")}

    # Archived pupils are no one's children any more.
    run_import([("eleves.csv", pupils_csv([p for p in pupils if p.first_name != "Hugo"]))])
    report = run_import([("responsables.csv", guardians_csv(guardians))])
    warned = {(w.line, w.code) for w in report.warnings}
    assert warned >= {(2, "unknown_child"), (3, "unknown_child")}


def test_guardians_file_for_a_school_without_pupils_is_refused(
    engine: Engine, school_id: int, run_import: ImportRunner
) -> None:
    _, guardians = small_school()
    with pytest.raises(RosterFileError, match="importez d'abord l'extraction Élèves"):
        run_import([("responsables.csv", guardians_csv(guardians))])


def test_a_rejected_line_keeps_the_pupil_as_they_were(
    engine: Engine, school_id: int, run_import: ImportRunner
) -> None:
    pupils, guardians = small_school()
    run_import(files(pupils, guardians))
    before = snapshot(engine)
    # A typo in ONDE: Lina's birth date is now wrong. She must not be archived for it.
    data = pupils_csv(pupils).replace(b"01/12/2016", b"31/12/216")
    report = run_import([("eleves.csv", data), ("responsables.csv", guardians_csv(guardians))])
    assert [(i.code, i.line) for i in report.rejected] == [("invalid_birth_date", 6)]
    assert report.pupils.retired == 0 and report.guardians.retired == 0
    assert without_audit(snapshot(engine)) == without_audit(before)


def test_a_class_renamed_in_onde_keeps_its_record(
    engine: Engine, school_id: int, run_import: ImportRunner
) -> None:
    pupils, guardians = small_school()
    numbered = [replace(p, class_id=str(1000 + len(p.class_label))) for p in pupils]
    run_import(files(numbered, guardians))
    gs_before = views.classes(engine, school_id)["GS"]

    def rename(label: str) -> str:
        return "GS M. Petit" if label == "GS" else label

    renamed = [replace(p, class_label=rename(p.class_label)) for p in numbered]
    renamed_children = [
        replace(
            g, children=tuple(replace(c, class_label=rename(c.class_label)) for c in g.children)
        )
        for g in guardians
    ]
    report = run_import(files(renamed, renamed_children))
    classes = views.classes(engine, school_id)
    assert classes["GS M. Petit"].id == gs_before.id and "GS" not in classes
    assert (report.classes.updated, report.classes.added, report.classes.retired) == (1, 0, 0)


def test_a_pupil_without_ine_is_matched_by_names_and_birth_date(
    engine: Engine, school_id: int, run_import: ImportRunner
) -> None:
    pupils, guardians = small_school()
    no_ine = [replace(p, ine=None) for p in pupils]
    run_import(files(no_ine, guardians))
    ids = set(views.pupils(engine, school_id))
    # The next extraction carries INEs: same pupils, INE recorded.
    report = run_import(files(pupils, guardians))
    by_id = views.pupils(engine, school_id)
    assert set(by_id) == ids
    assert {p.ine for p in by_id.values()} == {p.ine for p in pupils}
    assert report.pupils.updated == len(pupils) and report.pupils.added == 0


def test_a_pupil_file_without_ine_column_keeps_the_known_ine(
    engine: Engine, school_id: int, run_import: ImportRunner
) -> None:
    from tests.services.onde.builder import Options

    pupils, guardians = small_school()
    run_import(files(pupils, guardians))
    before = without_audit(snapshot(engine))
    report = run_import([("eleves.csv", pupils_csv(pupils, Options(with_ine=False)))])
    assert report.pupils.unchanged == len(pupils)
    assert without_audit(snapshot(engine)) == before


def test_birth_date_corrected_in_onde_is_updated(
    engine: Engine, school_id: int, run_import: ImportRunner
) -> None:
    # docs/PRODUCT.md: « child's birth date refused at activation → fix it in ONDE, re-import ».
    pupils, guardians = small_school()
    run_import(files(pupils, guardians))
    fixed = [
        replace(p, birth_date=date(2018, 3, 15)) if p.first_name == "Léa" else p for p in pupils
    ]
    report = run_import(files(fixed, guardians))
    assert report.pupils.updated == 1
    lea = views.find_pupil(views.pupils(engine, school_id), "Léa", "MARTIN")
    assert lea.birth_date == date(2018, 3, 15)


def test_guardian_whose_children_all_changed_keeps_the_account(
    engine: Engine, school_id: int, run_import: ImportRunner
) -> None:
    pupils, guardians = small_school()
    run_import(files(pupils, guardians))
    ines = views.find_guardian(views.guardians(engine, school_id), "Inès", "ROUX")
    # Jade left; her little brother Tom arrived; only Inès ROUX is listed for him.
    tom = PupilSpec("ROUX", "Tom", date(2023, 5, 5), "PS", "PS", address="9 quai Bas")
    new_pupils = [p for p in pupils if p.first_name != "Jade"] + [tom]
    new_guardians = [g for g in guardians if g.last_name != "ROUX"]
    new_guardians.append(replace(guardians[-1], children=(child(tom),)))
    report = run_import(files(new_pupils, new_guardians))

    after = views.find_guardian(views.guardians(engine, school_id), "Inès", "ROUX")
    assert (after.id, after.identifier, after.deactivated) == (ines.id, ines.identifier, False)
    assert views.children_names(after, views.pupils(engine, school_id)) == {("Tom", "ROUX")}
    assert report.guardians.retired == 1  # Marc ROUX only
    assert report.accounts_created == 0


def test_now_must_be_timezone_aware(
    engine: Engine, school_id: int, run_import: ImportRunner
) -> None:
    pupils, guardians = small_school()
    with pytest.raises(ValueError, match="timezone-aware"):
        run_import(files(pupils, guardians), now=datetime(2026, 9, 1))
