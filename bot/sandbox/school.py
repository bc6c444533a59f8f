"""The sandbox's demo school: registering it, its personas, the ONDE files its director sends
(generated, or another folder), and what the database holds about it once imported.
"""

from __future__ import annotations

import csv
import io
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlmodel import Session, col

from bot.i18n import N_, _
from bot.sandbox.onde_generator import (
    DEMO_CITY,
    DEMO_SCHOOL_NAME,
    DEMO_UAI,
    SchoolExtraction,
    demo_school,
)
from bot.services.accounts import normalise_phone
from bot.services.errors import ServiceError
from bot.services.roster import school_statistics
from bot.services.schools import UnknownSchoolError, add_school, create_invitation
from bot.services.schools import get_school_by_uai as _get_school_by_uai
from models import Director

ACTOR = "sandbox"
SAMPLE_FILES = ("eleves.csv", "responsables.csv")
# Other extractions to send instead of the demo school's (`--samples` wins over it).
SAMPLES_ENV = "EDUCONNECT_SAMPLES"
# Where the demo school's files are written, under the data folder, for the director to send.
SAMPLES_FOLDER = "sandbox-samples"


class SandboxError(ServiceError):
    """The sandbox cannot start or its demo cannot go on; the message says why."""


@dataclass(frozen=True)
class DemoPerson:
    """A persona of the sandbox: who the person at the terminal speaks as."""

    first_name: str
    last_name: str
    # The label with the persona's role, translated when shown (see `label`).
    label_template: str

    @property
    def label(self) -> str:
        """« Claire Martin (directrice) »."""
        return _(self.label_template).format(first_name=self.first_name, last_name=self.last_name)


DIRECTOR = DemoPerson("Claire", "Martin", N_("{first_name} {last_name} (director)"))
FAMILY = DemoPerson("Léa", "Dubois", N_("{first_name} {last_name} (family)"))
INSPECTOR = DemoPerson("Nadia", "Benali", N_("{first_name} {last_name} (district inspector)"))


@dataclass(frozen=True)
class DemoPhone:
    """The mobile number the family persona's Telegram account has: a demo-school guardian's."""

    telegram_number: str
    """As Telegram shares it: E.164 without the « + » (« 33612345678 »)."""
    guardian: str
    """Whose number it is in the school's file: « Sandrine PETIT »."""


def demo_family_phone(extraction: SchoolExtraction | None = None) -> DemoPhone | None:
    """The mobile of the first guardian of the demo school (else of `extraction`) who is alone
    to have it, so that sharing it links one account without asking « which one are you? ».

    Read from the school's Responsables file at each start: it follows the generator's data.
    """
    data = (extraction or demo_school()).guardians_csv
    rows = list(csv.reader(io.StringIO(data.decode("cp1252")), delimiter=";"))
    if not rows:
        return None
    header = rows[0]
    try:
        mobile, last, first = (
            header.index(title)
            for title in ("Téléphone portable", "Nom responsable", "Prénom responsable")
        )
    except ValueError:
        return None
    guardians = [
        (normalise_phone(row[mobile]), row[first], row[last])
        for row in rows[1:]
        if len(row) > max(mobile, last, first)
    ]
    counts = Counter(number for number, _first, _last in guardians if number)
    for number, first_name, last_name in guardians:
        if number and counts[number] == 1:
            return DemoPhone(number.removeprefix("+"), f"{first_name} {last_name.upper()}")
    return None


@dataclass(frozen=True)
class DemoSchool:
    """The demo school as the sandbox shows it."""

    id: int
    uai: str
    name: str

    @property
    def title(self) -> str:
        """« École de démonstration Jules Ferry (0590001A) »."""
        return f"{self.name} ({self.uai})"


def ensure_demo_school(session: Session) -> DemoSchool:
    """The demo school, registered first if the sandbox database does not have it yet."""
    try:
        school = _get_school_by_uai(session, DEMO_UAI)
    except UnknownSchoolError:
        school = add_school(
            session=session, uai=DEMO_UAI, name=DEMO_SCHOOL_NAME, city=DEMO_CITY, actor=ACTOR
        )
    assert school.id is not None
    return DemoSchool(id=school.id, uai=school.uai, name=school.name)


def invite_director(session: Session, *, school_id: int) -> str:
    """A fresh invitation code for the demo school, as the operator's CLI would make one."""
    code, _expires_at = create_invitation(session=session, school_id=school_id, actor=ACTOR)
    return code


def directs_school(session: Session, *, telegram_user_id: int, school_id: int) -> bool:
    """Whether this Telegram user already directs the school."""
    found = session.execute(
        select(col(Director.id)).where(
            col(Director.telegram_user_id) == telegram_user_id,
            col(Director.school_id) == school_id,
        )
    ).first()
    return found is not None


@dataclass(frozen=True)
class SchoolSummary:
    """What the database holds for the demo school after the import."""

    classes: int
    pupils: int
    accounts: int


def school_summary(session: Session, *, school_id: int) -> SchoolSummary:
    """Counts of the school's classes, pupils and guardian accounts, from the database."""
    stats = school_statistics(session=session, school_id=school_id)
    return SchoolSummary(
        classes=len(stats.classes), pupils=stats.total.pupils, accounts=stats.total.accounts
    )


def find_samples(explicit: Path | None, *, data_dir: Path, required: bool) -> Path | None:
    """The folder of the two ONDE extractions the director sends: `explicit`, else
    $EDUCONNECT_SAMPLES, else the demo school's, written afresh into DATA_DIR/sandbox-samples.

    A folder given without both files is an error when `required` (the scripted demo needs
    them), else None (the chat goes on without them).
    """
    given = explicit
    if given is None and os.environ.get(SAMPLES_ENV):
        given = Path(os.environ[SAMPLES_ENV])
    if given is None:
        folder = data_dir / SAMPLES_FOLDER
        demo_school().write(folder)
        return folder
    folder = given.expanduser().resolve()
    if all((folder / name).is_file() for name in SAMPLE_FILES):
        return folder
    if not required:
        return None
    not_found = _(
        "sample ONDE extractions not found ({files}) in {folder}: give their folder with "
        "--samples or the variable {variable}."
    )
    raise SandboxError(
        not_found.format(files=", ".join(SAMPLE_FILES), folder=folder, variable=SAMPLES_ENV)
    )
