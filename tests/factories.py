"""Test data builders: a school with its guardians and their accounts in one line."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

from sqlmodel import Session

from bot.services.accounts.lifecycle import create_accounts
from models import Account, Guardian, Pupil, PupilGuardian, School, SchoolClass

_FIRST_NAMES = ("Camille", "Éloïse", "Jean-Pierre", "Inès", "Noah", "Léa", "Yasmine", "Hugo")
_SURNAMES = ("Martin", "D'Almeida", "Nguyen", "Lefèvre", "Yıldız", "Gonçalves", "Strauß", "Lœuf")
_uai_numbers = itertools.count(1)


@dataclass
class SchoolWithGuardians:
    """A school with one class, one pupil per guardian, and every guardian's account."""

    school: School
    school_class: SchoolClass
    guardians: list[Guardian]
    accounts: list[Account]

    @property
    def account_ids(self) -> list[int]:
        return [account.id for account in self.accounts if account.id is not None]


def make_school_with_guardians(
    session: Session,
    n: int = 3,
    *,
    uai: str | None = None,
    class_label: str = "CM1",
    with_email: bool | Sequence[bool] = True,
    names: Sequence[tuple[str, str]] | None = None,
) -> SchoolWithGuardians:
    """Build (and flush, not commit) a school whose `n` guardians each have a child and a
    `not_notified` account. `with_email` is one flag for all or one per guardian; `names` are
    (first name, surname) pairs, else varied names with accents are made up."""
    school = School(uai=uai or f"{next(_uai_numbers):07d}X", name="École Jules Ferry")
    session.add(school)
    session.flush()
    assert school.id is not None
    school_class = SchoolClass(
        school_id=school.id, label=class_label, label_key=class_label.lower(), levels="CM1"
    )
    session.add(school_class)
    session.flush()
    emails = [with_email] * n if isinstance(with_email, bool) else list(with_email)
    people = (
        list(names)
        if names is not None
        else [
            (
                _FIRST_NAMES[i % len(_FIRST_NAMES)],
                _SURNAMES[(i // len(_FIRST_NAMES) + i) % len(_SURNAMES)],
            )
            for i in range(n)
        ]
    )
    pupils: list[Pupil] = []
    guardians: list[Guardian] = []
    for index, ((first_name, last_name), has_email) in enumerate(zip(people, emails, strict=True)):
        pupils.append(
            Pupil(
                school_id=school.id,
                class_id=school_class.id,
                first_name="Enfant",
                last_name=last_name,
                level="CM1",
            )
        )
        guardians.append(
            Guardian(
                school_id=school.id,
                first_name=first_name,
                last_name=last_name,
                email=f"parent{index}@example.org" if has_email else None,
            )
        )
    session.add_all([*pupils, *guardians])
    session.flush()
    session.add_all(
        PupilGuardian(pupil_id=pupil.id, guardian_id=guardian.id)  # type: ignore[arg-type]
        for pupil, guardian in zip(pupils, guardians, strict=True)
    )
    accounts = create_accounts(session=session, guardians=guardians, actor="tests")
    return SchoolWithGuardians(school, school_class, guardians, accounts)
