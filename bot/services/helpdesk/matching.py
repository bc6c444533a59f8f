"""Which guardian record a help request is about: the chat's linked account, else the guardians
the family's shared number belongs to, else the names the family typed (guardian, child, class).
When the names are not enough to tell, the candidates are kept for the director to choose.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from anyascii import anyascii
from sqlalchemy import select
from sqlmodel import Session, col

from models import FamilyChat, Guardian, PhoneCheck, Pupil, PupilGuardian, SchoolClass

# More candidates than this is no match at all: the director searches the list themselves.
MAX_CANDIDATES = 5

_WORD = re.compile(r"[a-z0-9]+")


def words(text: str | None) -> frozenset[str]:
    """The words of a name as compared: accents, case, hyphens and apostrophes ignored."""
    if not text:
        return frozenset()
    return frozenset(_WORD.findall(anyascii(text).lower()))


@dataclass(frozen=True, slots=True)
class Match:
    """The record found (`guardian_id`, and how), or the candidates when unsure."""

    guardian_id: int | None = None
    matched_by: str | None = None
    candidates: tuple[int, ...] = ()


def linked_guardian_in(session: Session, *, telegram_user_id: int, school_id: int) -> int | None:
    """The guardian of `school_id` this chat is linked to (the latest link), if any."""
    return session.execute(
        select(col(FamilyChat.guardian_id))
        .join(Guardian, col(Guardian.id) == col(FamilyChat.guardian_id))
        .where(
            col(FamilyChat.telegram_user_id) == telegram_user_id,
            col(Guardian.school_id) == school_id,
        )
        .order_by(col(FamilyChat.linked_at).desc(), col(FamilyChat.id).desc())
        .limit(1)
    ).scalar_one_or_none()


def _phone_candidates(session: Session, telegram_user_id: int, school_id: int) -> list[int]:
    """Guardians of the school who own the number this chat shared last (its own, verified)."""
    number = session.execute(
        select(col(PhoneCheck.phone_e164))
        .where(
            col(PhoneCheck.telegram_user_id) == telegram_user_id,
            col(PhoneCheck.phone_e164).is_not(None),
            col(PhoneCheck.outcome) != "refused",
        )
        .order_by(col(PhoneCheck.created_at).desc(), col(PhoneCheck.id).desc())
        .limit(1)
    ).scalar_one_or_none()
    if number is None:
        return []
    return list(
        session.execute(
            select(col(Guardian.id))
            .where(col(Guardian.school_id) == school_id, col(Guardian.mobile_e164) == number)
            .order_by(col(Guardian.id))
        ).scalars()
    )


def _named_like(declared: frozenset[str], first: str, last: str, usage: str | None) -> bool:
    """Whether the declared words name this person: their first name and one of their names."""
    if not declared:
        return False
    first_words = words(first)
    names = [words(last), words(usage)]
    return first_words <= declared and any(name and name <= declared for name in names)


def _children(
    session: Session, school_id: int, guardian_ids: Sequence[int] | None
) -> dict[int, list[tuple[frozenset[str], str, str]]]:
    """Each guardian's enrolled children: (name words, first-name key, class label)."""
    statement = (
        select(
            col(PupilGuardian.guardian_id),
            col(Pupil.first_name),
            col(Pupil.last_name),
            col(Pupil.usage_name),
            col(SchoolClass.label),
        )
        .join(Pupil, col(Pupil.id) == col(PupilGuardian.pupil_id))
        .outerjoin(SchoolClass, col(SchoolClass.id) == col(Pupil.class_id))
        .where(col(Pupil.school_id) == school_id, col(Pupil.archived_at).is_(None))
    )
    if guardian_ids is not None:
        statement = statement.where(col(PupilGuardian.guardian_id).in_(guardian_ids))
    found: dict[int, list[tuple[frozenset[str], str, str]]] = {}
    for guardian_id, first, last, usage, label in session.execute(statement):
        name = words(first) | words(last) | words(usage)
        found.setdefault(guardian_id, []).append(
            (name, " ".join(sorted(words(first))), label or "")
        )
    return found


def _child_fits(
    children: Iterable[tuple[frozenset[str], str, str]],
    child: frozenset[str],
    klass: frozenset[str],
) -> bool:
    for name, first_key, label in children:
        if child and not (set(first_key.split()) <= child and child <= name):
            continue
        if klass and not klass <= words(label):
            continue
        return True
    return False


def _by_names(
    session: Session,
    school_id: int,
    guardian_name: str | None,
    child_name: str | None,
    class_label: str | None,
) -> Match:
    declared, child, klass = words(guardian_name), words(child_name), words(class_label)
    people = session.execute(
        select(
            col(Guardian.id),
            col(Guardian.first_name),
            col(Guardian.last_name),
            col(Guardian.usage_name),
        ).where(col(Guardian.school_id) == school_id)
    ).all()
    named = [row[0] for row in people if _named_like(declared, row[1], row[2], row[3])]
    if named and (child or klass):
        children = _children(session, school_id, named)
        fitting = [g for g in named if _child_fits(children.get(g, ()), child, klass)]
        named = fitting or named
    elif not named and child:
        # The guardian's name did not match (a typo, a married name): the child may tell.
        children = _children(session, school_id, None)
        named = sorted(g for g, rows in children.items() if _child_fits(rows, child, klass))
    if len(named) == 1:
        return Match(guardian_id=named[0], matched_by="names")
    if 1 < len(named) <= MAX_CANDIDATES:
        return Match(candidates=tuple(sorted(named)))
    return Match()


def match_guardian(
    session: Session,
    *,
    school_id: int,
    telegram_user_id: int,
    guardian_name: str | None,
    child_name: str | None,
    class_label: str | None,
) -> Match:
    """The guardian record a request is about, or the candidates when unsure (maybe none)."""
    linked = linked_guardian_in(session, telegram_user_id=telegram_user_id, school_id=school_id)
    if linked is not None:
        return Match(guardian_id=linked, matched_by="linked")
    phone = _phone_candidates(session, telegram_user_id, school_id)
    if len(phone) == 1:
        return Match(guardian_id=phone[0], matched_by="phone")
    by_names = _by_names(session, school_id, guardian_name, child_name, class_label)
    if by_names.guardian_id is not None and (not phone or by_names.guardian_id in phone):
        return by_names
    if phone:
        return Match(candidates=tuple(phone[:MAX_CANDIDATES]))
    return by_names
