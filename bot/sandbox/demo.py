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

from bot.i18n import N_, _, format_number
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
    # The label with the persona's role, translated when shown (see `label`).
    label_template: str

    @property
    def label(self) -> str:
        """« Claire Martin (directrice) »."""
        return _(self.label_template).format(first_name=self.first_name, last_name=self.last_name)


DIRECTOR = DemoPerson("Claire", "Martin", N_("{first_name} {last_name} (director)"))
FAMILY = DemoPerson("Léa", "Dubois", N_("{first_name} {last_name} (family)"))


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
    if len(candidates) == 1:
        not_found = _(
            "sample ONDE extractions not found ({files}) in {folder}: give their folder with "
            "--samples or the variable {variable}."
        )
    else:
        not_found = _(
            "sample ONDE extractions not found ({files}) in {folder} nor in {other_folder}: "
            "give their folder with --samples or the variable {variable}."
        )
    raise SandboxError(
        not_found.format(
            files=", ".join(SAMPLE_FILES),
            folder=candidates[0],
            other_folder=candidates[-1],
            variable=SAMPLES_ENV,
        )
    )


async def welcome_director(view: ChatView) -> None:
    """Make the director persona a director of the demo school, through the chat itself."""
    sandbox = view.sandbox
    director = sandbox.director
    already = await sandbox.run_service(
        directs_school, telegram_user_id=director.user.id, school_id=sandbox.school_id
    )
    if already:
        view.note(
            _("{persona} already runs {school}.").format(
                persona=director.label, school=sandbox.school_title
            )
        )
        return
    if not await _redeem_invitation(view):
        view.note(_("(the bot did not answer the invitation)"), "yellow")


async def _redeem_invitation(view: ChatView) -> bool:
    """The operator invites the director persona, who sends `/start <code>` to the bot."""
    sandbox = view.sandbox
    code = await sandbox.run_service(invite_director, school_id=sandbox.school_id)
    view.note(
        _(
            "The operator invites {name} to run {school} ({command}); she sends the code to "
            "the bot."
        ).format(
            name=f"{DIRECTOR.first_name} {DIRECTOR.last_name}",
            school=sandbox.school_title,
            command=f"educonnect-bot director invite {DEMO_UAI}",
        )
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
        print(_("Error: {message}").format(message=failure), file=sys.stderr)
        return 1
    return 0


async def _play(view: ChatView, *, samples: Path, database: Path) -> None:
    sandbox = view.sandbox
    director = sandbox.director
    view.note(
        _(
            "EduConnect sandbox demonstration (offline: no TELEGRAM_BOT_TOKEN). School: "
            "{school}, {city}. Demonstration database: {database}."
        ).format(school=sandbox.school_title, city=DEMO_CITY, database=database),
        "bold",
    )

    await _step(
        _redeem_invitation(view),
        _("the bot did not answer the invitation « /start » (see sandbox.log)."),
    )

    for name in SAMPLE_FILES:
        await _step(
            view.upload(samples / name, director),
            _("the bot did not answer the sending of {filename} (see sandbox.log).").format(
                filename=name
            ),
        )

    button = _import_button(view)
    if button is None:
        labels = ", ".join(f"« {b.text} »" for b in view.buttons(director))
        if labels:
            no_import = _(
                "after the two extractions were sent, the bot does not offer to import "
                "(buttons: {labels})."
            )
        else:
            no_import = _(
                "after the two extractions were sent, the bot does not offer to import "
                "(buttons: none)."
            )
        raise _DemoFailed(no_import.format(labels=labels))
    await _step(
        view.press(button, director),
        _("the bot did not answer the import confirmation (see sandbox.log)."),
    )

    summary = await sandbox.run_service(school_summary, school_id=sandbox.school_id)
    if summary.pupils == 0:
        raise _DemoFailed(_("the import recorded no pupil in the demonstration database."))

    for command in DEMO_COMMANDS:
        await _step(
            view.say(command, director),
            _("the bot did not answer « {command} » (see sandbox.log).").format(command=command),
        )

    view.note(
        _(
            "In the database: {classes} classes, {pupils} pupils, {accounts} guardian accounts "
            "for {school}. End of the demonstration; « make run » in a terminal opens the "
            "conversation."
        ).format(
            classes=format_number(summary.classes),
            pupils=format_number(summary.pupils),
            accounts=format_number(summary.accounts),
            school=sandbox.school_title,
        ),
        "bold",
    )


async def _step(action: Coroutine[Any, Any, bool], failure: str) -> None:
    """Run one step of the demo; `failure` is what to say if the bot does not answer."""
    if not await action:
        raise _DemoFailed(failure)


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
