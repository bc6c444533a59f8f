"""Read the registry back in the shape the tests reason about (names, not ids)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from models import Account, Guardian, Pupil, PupilGuardian, SchoolClass


@dataclass(frozen=True)
class PupilView:
    id: int
    last_name: str
    first_name: str
    birth_date: date | None
    level: str | None
    class_label: str | None
    address: str | None
    ine: str | None
    archived: bool
    updated_at: datetime


@dataclass(frozen=True)
class GuardianView:
    id: int
    last_name: str
    first_name: str
    email: str | None
    address: str | None
    account_id: int
    identifier: str
    state: str
    deactivated: bool
    children: frozenset[int]  # pupil ids
    updated_at: datetime


def pupils(engine: Engine, school_id: int) -> dict[int, PupilView]:
    with Session(engine) as session:
        classes = {c.id: c for c in session.exec(select(SchoolClass))}
        rows = session.exec(select(Pupil).where(Pupil.school_id == school_id))
        return {
            p.id: PupilView(
                id=p.id,
                last_name=p.last_name,
                first_name=p.first_name,
                birth_date=p.birth_date,
                level=p.level,
                class_label=classes[p.class_id].label if p.class_id else None,
                address=p.address,
                ine=p.ine,
                archived=p.archived_at is not None,
                updated_at=p.updated_at,
            )
            for p in rows
            if p.id is not None
        }


def guardians(engine: Engine, school_id: int) -> list[GuardianView]:
    with Session(engine) as session:
        links: dict[int, set[int]] = {}
        for link in session.exec(select(PupilGuardian)):
            links.setdefault(link.guardian_id, set()).add(link.pupil_id)
        rows = session.exec(
            select(Guardian, Account)
            .join(Account, col(Account.guardian_id) == Guardian.id)
            .where(Guardian.school_id == school_id)
            .order_by(col(Guardian.id))
        ).all()
        return [
            GuardianView(
                id=guardian.id or 0,
                last_name=guardian.last_name,
                first_name=guardian.first_name,
                email=guardian.email,
                address=guardian.address,
                account_id=account.id or 0,
                identifier=account.identifier,
                state=str(account.state),
                deactivated=account.deactivated_at is not None,
                children=frozenset(links.get(guardian.id or 0, ())),
                updated_at=guardian.updated_at,
            )
            for guardian, account in rows
        ]


def classes(engine: Engine, school_id: int) -> dict[str, SchoolClass]:
    with Session(engine) as session:
        rows = session.exec(select(SchoolClass).where(SchoolClass.school_id == school_id))
        return {c.label: c for c in rows}


def children_names(guardian: GuardianView, by_id: dict[int, PupilView]) -> set[tuple[str, str]]:
    return {(by_id[p].first_name, by_id[p].last_name) for p in guardian.children}


def find_guardian(views: list[GuardianView], first_name: str, last_name: str) -> GuardianView:
    found = [g for g in views if g.first_name == first_name and g.last_name == last_name]
    assert len(found) == 1, f"{len(found)} guardians named {first_name} {last_name}"
    return found[0]


def find_pupil(by_id: dict[int, PupilView], first_name: str, last_name: str) -> PupilView:
    found = [p for p in by_id.values() if p.first_name == first_name and p.last_name == last_name]
    assert len(found) == 1, f"{len(found)} pupils named {first_name} {last_name}"
    return found[0]
