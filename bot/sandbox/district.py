"""The sandbox's district: the demo school and three small schools beside it, each registered
with a generated ONDE roster and caught at a different stage of its campaign, so that the
inspector persona's `/etat` has something to compare; and that persona's invitation, made as
the operator's `inspector invite` makes one.

The neighbours' accounts are moved along by hand (no letters, no e-mails, no passwords): nobody
at the terminal runs those schools, only their lights are shown.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select
from sqlmodel import Session, col

from bot.sandbox.onde_generator import DEMO_UAI, generate_school
from bot.sandbox.school import ACTOR, ensure_demo_school
from bot.services.roster import import_roster
from bot.services.scheduling import set_lsu_date
from bot.services.schools import (
    UnknownSchoolError,
    add_school,
    create_inspector_invitation,
    get_school_by_uai,
    inspected_schools,
)
from models import Account, AccountState, DistributionChannel, Guardian, utcnow

# The generator's seed for the neighbours' rosters: the same schools at every run.
DISTRICT_SEED = "sandbox-district"


@dataclass(frozen=True)
class Neighbour:
    """A school of the demo school's district, and how far its campaign has gone."""

    index: int
    """The generator's school number, which makes its UAI (0 is the demo school's)."""
    name: str
    pupils: int
    activated: float
    """Shares of its accounts activated, activating (waiting for the e-mail's confirmation)
    and notified; the rest have had nothing yet."""
    activating: float
    notified: float
    lsu_in_days: int
    """Its LSU date, so many days after the sandbox first registers it."""


NEIGHBOURS = (
    Neighbour(
        1, "École Jean Macé", 60, activated=0.7, activating=0.1, notified=0.15, lsu_in_days=38
    ),
    Neighbour(
        2, "École Louise Michel", 45, activated=0.3, activating=0.1, notified=0.4, lsu_in_days=24
    ),
    Neighbour(
        3, "École Victor Hugo", 75, activated=0.05, activating=0.0, notified=0.55, lsu_in_days=17
    ),
)


def _state(draw: float, neighbour: Neighbour) -> AccountState:
    if draw < neighbour.activated:
        return AccountState.ACTIVATED
    if draw < neighbour.activated + neighbour.activating:
        return AccountState.ACTIVATING
    if draw < neighbour.activated + neighbour.activating + neighbour.notified:
        return AccountState.NOTIFIED
    return AccountState.NOT_NOTIFIED


def _move_campaign_along(session: Session, *, school_id: int, neighbour: Neighbour) -> None:
    """Give the school's accounts the neighbour's shares of each light, drawn from a seed; the
    letters went out two to three weeks ago, the activations followed."""
    rng = random.Random(f"{DISTRICT_SEED}:{neighbour.index}")
    now = utcnow()
    accounts = (
        session.execute(
            select(Account)
            .join(Guardian, col(Guardian.id) == col(Account.guardian_id))
            .where(col(Guardian.school_id) == school_id)
            .order_by(col(Account.id))
        )
        .scalars()
        .all()
    )
    for account in accounts:
        state = _state(rng.random(), neighbour)
        if state is AccountState.NOT_NOTIFIED:
            continue
        account.state = state
        account.distributed_at = now - timedelta(days=rng.randint(14, 21))
        account.distribution_channel = DistributionChannel.EMAIL
        if state is AccountState.ACTIVATED:
            account.activated_at = account.distributed_at + timedelta(days=rng.randint(1, 10))
        session.add(account)


def _registered(session: Session, uai: str) -> bool:
    try:
        get_school_by_uai(session, uai)
    except UnknownSchoolError:
        return False
    return True


def ensure_district(session: Session) -> list[str]:
    """The UAIs of the inspector persona's district, the demo school's first; each neighbour
    is registered, its roster imported, its campaign moved along and its LSU date set the
    first time."""
    ensure_demo_school(session)
    uais = [DEMO_UAI]
    ines: set[str] = set()
    for neighbour in NEIGHBOURS:
        extraction = generate_school(
            seed=DISTRICT_SEED, pupils=neighbour.pupils, index=neighbour.index, ines=ines
        )
        uais.append(extraction.uai)
        if _registered(session, extraction.uai):
            continue
        school = add_school(
            session=session,
            uai=extraction.uai,
            name=neighbour.name,
            city=extraction.city,
            actor=ACTOR,
        )
        assert school.id is not None
        import_roster(session=session, school_id=school.id, files=extraction.files, actor=ACTOR)
        _move_campaign_along(session, school_id=school.id, neighbour=neighbour)
        today = utcnow().date()
        set_lsu_date(
            session,
            school_id=school.id,
            lsu_date=today + timedelta(days=neighbour.lsu_in_days),
            today=today,
            actor=ACTOR,
        )
    return uais


def invite_inspector(session: Session, *, uais: list[str]) -> str:
    """A fresh inspector invitation code for these schools, as `inspector invite` makes one."""
    return create_inspector_invitation(session, uais=uais, actor=ACTOR).code


def inspected_uais(session: Session, *, telegram_user_id: int) -> set[str]:
    """The UAIs of the schools this Telegram user follows as an inspector."""
    return {school.uai for school in inspected_schools(session, telegram_user_id=telegram_user_id)}
