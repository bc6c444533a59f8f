"""Every ONDE variant, imported end to end, leaves the registry as the plain file does."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select

from bot.db import session_scope
from bot.services.roster.onde.importer import import_roster
from models import Guardian, Pupil, PupilGuardian, School, SchoolClass
from tests.services.onde.builder import Options, guardians_csv, pupils_csv, small_school

VARIANTS = {
    "iso-8859-1": Options(encoding="latin-1"),
    "utf-8 with BOM": Options(encoding="utf-8", bom=True),
    "every field quoted": Options(quote_all=True),
    "iso dates": Options(date_format="%Y-%m-%d"),
    "older header": Options(old_header=True),
    "header case and spaces": Options(header_style="spaced"),
    "sex as H/F": Options(sex_letters="HF"),
    "footer line": Options(footer="Nombre de lignes : 8"),
    "child group listed once in the header": Options(header_child_groups=1),
    "no INE nor class identifier": Options(with_ine=False, with_class_id=False),
    "LF and no final line break": Options(line_break="\n", final_line_break=False),
}


def _import(engine: Engine, uai: str, options: Options, roster: tuple[list, list]) -> int:
    pupils, guardians = roster
    with session_scope(engine) as session:
        school = School(uai=uai, name=uai)
        session.add(school)
        session.flush()
        assert school.id is not None
        report = import_roster(
            session=session,
            school_id=school.id,
            files=[
                ("r.csv", guardians_csv(guardians, options)),
                ("e.csv", pupils_csv(pupils, options)),
            ],
            actor="test",
        )
    assert [(i.line, i.code) for i in report.issues] == [(6, "invalid_email")]
    return school.id


def _registry(engine: Engine, school_id: int, with_ine: bool) -> dict[str, Any]:
    with Session(engine) as session:
        classes = {
            c.id: (c.label, c.label_key, c.levels)
            for c in session.exec(select(SchoolClass).where(SchoolClass.school_id == school_id))
        }
        pupils = {
            p.id: (
                p.last_name,
                p.first_name,
                p.birth_date,
                p.sex,
                p.level,
                p.address,
                classes[p.class_id][0] if p.class_id else None,
                p.ine if with_ine else None,
            )
            for p in session.exec(select(Pupil).where(Pupil.school_id == school_id))
        }
        links: dict[int, set[Any]] = {}
        for link in session.exec(select(PupilGuardian)):
            if link.pupil_id in pupils:
                links.setdefault(link.guardian_id, set()).add(pupils[link.pupil_id])
        guardians = sorted(
            (g.civility, g.last_name, g.first_name, g.email, g.address, frozenset(links[g.id or 0]))
            for g in session.exec(select(Guardian).where(Guardian.school_id == school_id))
        )
    return {
        "classes": sorted(classes.values()),
        "pupils": sorted(pupils.values()),
        "guardians": guardians,
    }


@pytest.mark.parametrize("options", VARIANTS.values(), ids=VARIANTS.keys())
def test_variant_imports_like_the_plain_file(engine: Engine, options: Options) -> None:
    roster = small_school()
    plain = _import(engine, "0750001A", Options(), roster)
    variant = _import(engine, "0750002B", options, roster)
    assert _registry(engine, variant, options.with_ine) == _registry(
        engine, plain, options.with_ine
    )


def test_progress_is_reported_up_to_the_total(engine: Engine) -> None:
    pupils, guardians = small_school()
    calls: list[tuple[int, int]] = []
    with session_scope(engine) as session:
        school = School(uai="0750003C", name="x")
        session.add(school)
        session.flush()
        assert school.id is not None
        import_roster(
            session=session,
            school_id=school.id,
            files=[("e.csv", pupils_csv(pupils)), ("r.csv", guardians_csv(guardians))],
            actor="test",
            progress=lambda done, total: calls.append((done, total)),
        )
    assert calls[-1][0] == calls[-1][1] > 0
    assert [done for done, _ in calls] == sorted(done for done, _ in calls)
