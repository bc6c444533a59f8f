"""Synthetic ONDE extractions at district scale, for the benchmarks: the generator lives in the
package (`bot.sandbox.onde_generator`), shared with the sandbox's demo school and the tests;
`seed_district` puts a generated district in a database through the services, with its
directors' invitations and its families' chats, as the load benchmarks start from.

    python -m bench generate --schools 80 --pupils 250 --out /tmp/district
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlmodel import Session, col

from bot.db import make_engine, session_scope, upgrade_schema
from bot.sandbox.onde_generator import (
    GUARDIAN_HEADER,
    PUPIL_HEADER,
    SchoolExtraction,
    generate_district,
    generate_school,
)
from bot.services.accounts import normalise_email
from bot.services.roster import import_roster
from bot.services.schools import add_school, create_invitation
from models import Account, FamilyChat, Guardian, utcnow

__all__ = [
    "GUARDIAN_HEADER",
    "PUPIL_HEADER",
    "SchoolExtraction",
    "SeededDistrict",
    "generate_district",
    "generate_school",
    "import_school",
    "register_school",
    "seed_district",
]


def register_school(session: Session, extraction: SchoolExtraction) -> int:
    """Register a generated school, as `educonnect-bot school add` does; its id."""
    school = add_school(
        session=session,
        uai=extraction.uai,
        name=extraction.name,
        city=extraction.city,
        actor="bench",
    )
    assert school.id is not None
    return school.id


def import_school(session: Session, extraction: SchoolExtraction) -> int:
    """Register a generated school and import its ONDE files, as a director's upload does
    (before any clock starts); its id."""
    school_id = register_school(session, extraction)
    import_roster(session=session, school_id=school_id, files=extraction.files, actor="bench")
    return school_id


@dataclass(frozen=True)
class SeededDistrict:
    pupils: int
    guardians: int
    codes: dict[int, str]  # director chat id → invitation code
    emails: dict[int, Counter[str]]  # school number → its guardians' valid addresses
    seconds: float


def seed_district(
    database_url: str,
    *,
    seed: str,
    pupils_per_school: int,
    directors: Mapping[int, Sequence[int]],
    families: Mapping[int, Sequence[int]],
) -> SeededDistrict:
    """One generated school per key of `directors` imported through the services, an
    invitation for each of its directors' chats, and each of its families' chats linked to a
    guardian (a `FamilyChat`, as a letter's code or a verified phone number leaves it)."""
    began = time.perf_counter()
    district = generate_district(
        seed=seed, schools=len(directors), pupils_per_school=pupils_per_school
    )
    engine = make_engine(database_url)
    upgrade_schema(engine)
    codes: dict[int, str] = {}
    emails: dict[int, Counter[str]] = {}
    try:
        for number, extraction in enumerate(district):
            with session_scope(engine) as session:
                school_id = import_school(session, extraction)
                for chat_id in directors[number]:
                    codes[chat_id], _expires = create_invitation(
                        session=session, school_id=school_id, actor="bench"
                    )
                emails[number] = _link_families(session, school_id, families.get(number, ()))
    finally:
        engine.dispose()
    return SeededDistrict(
        pupils=sum(x.pupils for x in district),
        guardians=sum(x.guardians for x in district),
        codes=codes,
        emails=emails,
        seconds=time.perf_counter() - began,
    )


def _link_families(session: Session, school_id: int, chat_ids: Sequence[int]) -> Counter[str]:
    """Link each chat to an account of the school; the school's valid guardian addresses."""
    rows = session.execute(
        select(col(Account.guardian_id), col(Guardian.email))
        .join(Guardian, col(Guardian.id) == col(Account.guardian_id))
        .where(col(Guardian.school_id) == school_id)
        .order_by(col(Account.guardian_id))
    ).all()
    if len(rows) < len(chat_ids):
        raise RuntimeError(f"school {school_id} has only {len(rows)} accounts")
    now = utcnow()
    for chat_id, (guardian_id, _email) in zip(chat_ids, rows, strict=False):
        session.add(FamilyChat(telegram_user_id=chat_id, guardian_id=guardian_id, linked_at=now))
    addresses = (normalise_email(email) if email else None for _id, email in rows)
    return Counter(a.casefold() for a in addresses if a)
