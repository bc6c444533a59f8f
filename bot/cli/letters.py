"""`letters`: credential letters printed to files for the guardians of classes — the plan
confirmed, the letters made with nothing written, the files written, then recorded as delivered."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from sqlalchemy import Engine

from bot.cli.database import open_database, operator_name
from bot.cli.distribution import (
    ClassesArgument,
    ResetOption,
    YesOption,
    plan_and_confirm,
    progress_bar,
)
from bot.cli.options import JsonOption, UaiArgument
from bot.cli.output import print_json, stdout_console
from bot.config import Settings, get_settings
from bot.db import session_scope
from bot.i18n import _, format_number, ngettext
from bot.services.accounts import known_bot_username
from bot.services.distribution import (
    DistributionPreview,
    PaperLetters,
    draft_paper_letters,
    plan_paper_letters,
    record_paper_letters,
)
from bot.services.errors import ServiceError
from bot.services.letters import zip_letters


def register(app: typer.Typer) -> None:
    """Add `letters` to the command line."""
    app.command(
        "letters",
        help=_(
            "Print credential letters (PDF, one page per guardian) for the guardians of classes "
            "without an e-mail address (everyone with --tous), and record them as notified on "
            "paper."
        )
        + "\n\n"
        + _(
            "The files are not encrypted — they are for your own printer — and only you can read "
            "them (mode 600): they carry passwords. Delete them once printed."
        ),
    )(letters_command)


@dataclass(frozen=True)
class _LetterFiles:
    """Where the letters go: a combined PDF, a folder of one PDF per guardian, a ZIP of those."""

    output: Path | None
    folder: Path | None
    archive: Path | None

    def check(self) -> None:
        """Refuse, before anything is done, when there is nowhere (or no folder) to write."""
        if self.output is None and self.folder is None and self.archive is None:
            raise ServiceError(
                _(
                    "say where to write the letters: -o file.pdf, --individual FOLDER or "
                    "--zip file.zip."
                )
            )
        for target in (self.output, self.archive):
            if target is not None and not target.parent.is_dir():
                raise ServiceError(
                    _("the folder « {folder} » does not exist.").format(folder=target.parent)
                )

    def write(self, paper: PaperLetters) -> list[str]:
        """Write the combined PDF and/or the individual documents; the paths written."""
        written: list[str] = []
        if self.output is not None:
            _write_private(self.output, paper.pdf)
            written.append(str(self.output))
        if self.folder is not None or self.archive is not None:
            documents = paper.individual_documents()
            if self.folder is not None:
                self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
                for name, content in documents:
                    _write_private(self.folder / name, content)
                written.append(str(self.folder))
            if self.archive is not None:
                _write_private(self.archive, zip_letters(documents))
                written.append(str(self.archive))
        return written

    def remove(self, paper: PaperLetters) -> None:
        """Delete the files `write` wrote (in a folder, only the letters' own)."""
        for path in (self.output, self.archive):
            if path is not None:
                path.unlink(missing_ok=True)
        if self.folder is not None:
            for letter in paper.files:
                (self.folder / letter.filename).unlink(missing_ok=True)


def letters_command(
    uai: UaiArgument,
    classes: ClassesArgument,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help=_("The combined PDF to write, for printing.")),
    ] = None,
    everyone: Annotated[
        bool,
        typer.Option("--tous", help=_("Everyone in the classes, e-mail address or not.")),
    ] = False,
    individual: Annotated[
        Path | None,
        typer.Option(
            "--individual",
            help=_("A folder to write one PDF per guardian into."),
            show_default=False,
        ),
    ] = None,
    archive: Annotated[
        Path | None,
        typer.Option("--zip", help=_("A ZIP file of one PDF per guardian."), show_default=False),
    ] = None,
    reset: ResetOption = False,
    yes: YesOption = False,
    as_json: JsonOption = False,
) -> None:
    """Print credential letters for the guardians of classes."""
    files = _LetterFiles(output=output, folder=individual, archive=archive)
    files.check()
    settings = get_settings()
    console = stdout_console()
    with open_database() as engine:
        planned = _plan_letters(
            engine,
            uai=uai,
            classes=classes,
            everyone=everyone,
            reset=reset,
            as_json=as_json,
            yes=yes,
        )
        if planned is None:
            return
        school_id, preview, result = planned
        paper, written = _make_letters(
            engine,
            settings,
            files,
            school_id=school_id,
            preview=preview,
            everyone=everyone,
            reset=reset,
        )
    if as_json:
        print_json(
            result
            | {
                "letters": paper.count,
                "kinds": {kind.value: n for kind, n in paper.counts().items()},
                "files": written,
            }
        )
        return
    _print_letters(console, paper, written)


def _plan_letters(
    engine: Engine,
    *,
    uai: str,
    classes: Sequence[str],
    everyone: bool,
    reset: bool,
    as_json: bool,
    yes: bool,
) -> tuple[int, DistributionPreview, dict[str, Any]] | None:
    """The letters of the classes planned, shown and confirmed (see `plan_and_confirm`)."""
    return plan_and_confirm(
        engine,
        plan_paper_letters,
        uai=uai,
        classes=classes,
        title=_("Paper letters — {school}"),
        nobody=_("No letter to print."),
        not_done={"letters": 0, "files": []},
        question=lambda count: ngettext(
            "Print {count} letter and record it as delivered?",
            "Print {count} letters and record them as delivered?",
            count,
        ).format(count=format_number(count)),
        as_json=as_json,
        yes=yes,
        include_all=everyone,
        reset=reset,
    )


def _make_letters(
    engine: Engine,
    settings: Settings,
    files: _LetterFiles,
    *,
    school_id: int,
    preview: DistributionPreview,
    everyone: bool,
    reset: bool,
) -> tuple[PaperLetters, list[str]]:
    """Make the planned letters, write their files, then record them; the letters recorded
    and the paths written. The files are removed again if the letters cannot be recorded."""
    with progress_bar(_("Letters")) as advance, session_scope(engine) as session:
        # Made with nothing written: the bot and its outbox keep writing meanwhile.
        draft = draft_paper_letters(
            session=session,
            school_id=school_id,
            preview_or_account_ids=preview,
            include_all=everyone,
            reset=reset,
            actor=operator_name(),
            bot_username=known_bot_username(session=session),
            portal_url=settings.portal_url,
            progress=advance,
        )
    assert draft.paper is not None
    # Before recording: if a file cannot be written, nothing is recorded.
    written = files.write(draft.paper)
    try:
        with session_scope(engine) as session:
            paper = record_paper_letters(session=session, draft=draft)
    except BaseException:
        # Nothing recorded (an account changed while the letters were made, or the
        # database failed): these letters are not valid.
        files.remove(draft.paper)
        raise
    return paper, written


def _print_letters(console: Console, paper: PaperLetters, written: list[str]) -> None:
    """What was printed and written, and the reminder to delete the files."""
    console.print(
        ngettext(
            "{count} letter printed, recorded as delivered on paper.",
            "{count} letters printed, recorded as delivered on paper.",
            paper.count,
        ).format(count=format_number(paper.count))
    )
    for path in written:
        console.print(_("Written: {path}").format(path=path))
    console.print(_("These files carry passwords and are not encrypted: delete them once printed."))


def _write_private(path: Path, data: bytes) -> None:
    """Write `data` to `path`, readable by its owner only (0600), even if it existed."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        os.fchmod(handle.fileno(), 0o600)
        handle.write(data)
