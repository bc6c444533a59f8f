"""The sandbox's demo school, its personas, and the scripted demo played when nobody is at the
terminal: the director redeems an invitation, sends the two ONDE extractions, imports them,
then asks for `/classes`, `/responsables CP A sans` and `/etat`.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlmodel import Session, col

from bot.services.errors import ServiceError
from bot.services.schools import UnknownSchoolError, add_school, create_invitation
from bot.services.schools import get_school_by_uai as _get_school_by_uai
from models import Director

if TYPE_CHECKING:
    from bot.sandbox.botapi import Button
    from bot.sandbox.terminal import ChatView

DEMO_UAI = "0590001A"
DEMO_SCHOOL_NAME = "École de démonstration Jules Ferry"
DEMO_CITY = "Lille"
ACTOR = "sandbox"
SAMPLE_FILES = ("eleves.csv", "responsables.csv")
SAMPLES_ENV = "EDUCONNECT_SAMPLES"
# The shared folder lies beside the repository: ../shared/samples/onde.
_REPOSITORY = Path(__file__).resolve().parents[2]
DEFAULT_SAMPLES = _REPOSITORY.parent / "shared" / "samples" / "onde"

DEMO_COMMANDS = ("/classes", "/responsables CP A sans", "/etat")


class SandboxError(ServiceError):
    """The sandbox cannot start or its demo cannot go on; the message says why."""


@dataclass(frozen=True)
class DemoPerson:
    """A persona of the sandbox: who the person at the terminal speaks as."""

    first_name: str
    last_name: str
    role: str

    @property
    def label(self) -> str:
        """« Claire Martin (directrice) »."""
        return f"{self.first_name} {self.last_name} ({self.role})"


DIRECTOR = DemoPerson("Claire", "Martin", "directrice")
FAMILY = DemoPerson("Léa", "Dubois", "famille")


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


def ensure_demo_school(*, session: Session) -> DemoSchool:
    """The demo school, registered first if the sandbox database does not have it yet."""
    try:
        school = _get_school_by_uai(session, DEMO_UAI)
    except UnknownSchoolError:
        school = add_school(
            session=session, uai=DEMO_UAI, name=DEMO_SCHOOL_NAME, city=DEMO_CITY, actor=ACTOR
        )
    assert school.id is not None
    return DemoSchool(id=school.id, uai=school.uai, name=school.name)


def invite_director(*, session: Session, school_id: int) -> str:
    """A fresh invitation code for the demo school, as the operator's CLI would make one."""
    code, _expires_at = create_invitation(session=session, school_id=school_id, actor=ACTOR)
    return code


def directs_school(*, session: Session, telegram_user_id: int, school_id: int) -> bool:
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


def school_summary(*, session: Session, school_id: int) -> SchoolSummary:
    """Counts of the school's classes, pupils and guardian accounts, from the database."""
    from bot.services.statistics import school_statistics

    stats = school_statistics(session=session, school_id=school_id)
    return SchoolSummary(
        classes=len(stats.classes), pupils=stats.total.pupils, accounts=stats.total.accounts
    )


def find_samples(explicit: Path | None, *, required: bool) -> Path | None:
    """The folder of the ONDE sample extractions: `explicit`, else $EDUCONNECT_SAMPLES, else
    ../shared/samples/onde beside the repository (or the working folder)."""
    candidates: list[Path] = []
    if explicit is not None:
        candidates = [explicit]
    elif os.environ.get(SAMPLES_ENV):
        candidates = [Path(os.environ[SAMPLES_ENV])]
    else:
        candidates = [DEFAULT_SAMPLES, Path("..") / "shared" / "samples" / "onde"]
    for candidate in candidates:
        folder = candidate.expanduser().resolve()
        if all((folder / name).is_file() for name in SAMPLE_FILES):
            return folder
    if not required:
        return None
    where = " ni ".join(str(c) for c in candidates)
    raise SandboxError(
        f"extractions ONDE d'exemple introuvables ({', '.join(SAMPLE_FILES)}) dans {where} : "
        f"indiquez leur dossier avec --samples ou la variable {SAMPLES_ENV}."
    )


async def welcome_director(view: ChatView) -> None:
    """Make the director persona a director of the demo school, through the chat itself."""
    sandbox = view.sandbox
    director = sandbox.director
    already = await sandbox.run_service(
        directs_school, telegram_user_id=director.user.id, school_id=sandbox.school_id
    )
    if already:
        view.note(f"{director.label} dirige déjà {sandbox.school_title}.")
        return
    if not await _redeem_invitation(view):
        view.note("(le bot n'a pas répondu à l'invitation)", "yellow")


async def _redeem_invitation(view: ChatView) -> bool:
    """The operator invites the director persona, who sends `/start <code>` to the bot."""
    sandbox = view.sandbox
    code = await sandbox.run_service(invite_director, school_id=sandbox.school_id)
    view.note(
        f"L'opérateur invite {DIRECTOR.first_name} {DIRECTOR.last_name} à diriger "
        f"{sandbox.school_title} (educonnect-bot director invite {DEMO_UAI}) ; elle envoie le "
        "code au bot."
    )
    return await view.say(f"/start {code}", sandbox.director)


class _DemoFailed(Exception):
    pass


async def play_demo(view: ChatView, *, samples: Path, database: Path) -> int:
    """Play the scripted demo and print its transcript; 0 if every step got its answer."""
    try:
        await _play(view, samples=samples, database=database)
    except _DemoFailed as failure:
        view.console.file.flush()
        print(f"Erreur : {failure}", file=sys.stderr)
        return 1
    return 0


async def _play(view: ChatView, *, samples: Path, database: Path) -> None:
    sandbox = view.sandbox
    director = sandbox.director
    view.note(
        f"Démonstration du bac à sable EduConnect (hors ligne : aucun TELEGRAM_BOT_TOKEN). "
        f"École : {sandbox.school_title}, {DEMO_CITY}. Base de démonstration : {database}.",
        "bold",
    )

    await _step(_redeem_invitation(view), "l'invitation « /start »")

    for name in SAMPLE_FILES:
        await _step(view.upload(samples / name, director), f"l'envoi de {name}")

    button = _import_button(view)
    if button is None:
        labels = ", ".join(f"« {b.text} »" for b in view.buttons(director)) or "aucun"
        raise _DemoFailed(
            f"après l'envoi des deux extractions, le bot ne propose pas d'importer "
            f"(boutons : {labels})."
        )
    await _step(view.press(button, director), "la confirmation de l'import")

    summary = await sandbox.run_service(school_summary, school_id=sandbox.school_id)
    if summary.pupils == 0:
        raise _DemoFailed("l'import n'a enregistré aucun élève dans la base de démonstration.")

    for command in DEMO_COMMANDS:
        await _step(view.say(command, director), f"« {command} »")

    view.note(
        f"Dans la base : {summary.classes} classes, {summary.pupils} élèves, "
        f"{summary.accounts} comptes responsables pour {sandbox.school_title}. "
        f"Fin de la démonstration ; « make run » dans un terminal ouvre la conversation.",
        "bold",
    )


async def _step(action: Coroutine[Any, Any, bool], what: str) -> None:
    if not await action:
        raise _DemoFailed(f"le bot n'a pas répondu à {what} (voir sandbox.log).")


def _is_cancel(button: Button) -> bool:
    words = f"{button.text} {button.callback_data or ''}".casefold()
    return any(word in words for word in ("annul", "cancel"))


def _import_button(view: ChatView) -> Button | None:
    """The button that confirms the import: by its label, else by its callback data."""
    buttons = [b for b in view.buttons(view.sandbox.director) if not _is_cancel(b)]
    for button in buttons:
        if "import" in button.text.casefold():
            return button
    for button in buttons:
        data = (button.callback_data or "").casefold()
        if any(word in data for word in ("confirm", "import", "apply", "yes", "ok")):
            return button
    return None
