"""`import` and `stats`: a school's ONDE extractions read from files and imported (or
simulated), and the state of its accounts per class and per level."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn
from rich.table import Table
from sqlmodel import Session

from bot.cli.database import open_database, operator_name
from bot.cli.options import JsonOption, UaiArgument
from bot.cli.output import megabytes, percent, print_json, stderr_console, stdout_console
from bot.db import session_scope
from bot.i18n import N_, _, format_number
from bot.services.roster import (
    CATEGORY_NAMES,
    MAX_FILE_BYTES,
    Counts,
    GroupCounts,
    ImportReport,
    LineIssue,
    RosterFileError,
    import_roster,
    school_statistics,
)
from bot.services.schools import get_school_by_uai

# Above this size an import shows a progress bar (on a terminal).
PROGRESS_THRESHOLD_BYTES = 512 * 1024
# The same labels as the bot's (bot.services.roster.states.STATE_LABELS), so the same translations.
LIGHTS = {
    "not_notified": ("🔴", N_("Not notified")),
    "notified": ("🟠", N_("Notified, not activated")),
    "activating": ("🟡", N_("Activation in progress")),
    "activated": ("🟢", N_("Activated")),
}


def register(app: typer.Typer) -> None:
    """Add `import` and `stats` to the command line."""
    app.command("import", help=_("Import the ONDE extractions of a school."))(import_command)
    app.command("stats", help=_("Show the state of a school's accounts, per class and per level."))(
        stats_command
    )


def _read_roster_file(path: Path, max_bytes: int) -> tuple[str, bytes]:
    """The name and content of one extraction, or a RosterFileError saying why not."""
    shown = str(path)
    if not path.exists():
        raise RosterFileError(
            _("File not found: « {path} ».").format(path=shown), filename=path.name
        )
    if path.is_dir():
        raise RosterFileError(
            _("« {path} » is a folder, not a file.").format(path=shown), filename=path.name
        )
    too_big = RosterFileError(
        _(
            "The file « {path} » is over the maximum size of {limit} MB: it is not the ONDE "
            "extraction of one school — nothing was imported."
        ).format(path=shown, limit=megabytes(max_bytes)),
        filename=path.name,
    )
    try:
        if path.stat().st_size > max_bytes:
            raise too_big
        with path.open("rb") as handle:
            # One byte more than allowed tells a file that grew (or a device) from a full one.
            content = handle.read(max_bytes + 1)
    except PermissionError as error:
        raise RosterFileError(
            _("Cannot read « {path} »: access denied.").format(path=shown), filename=path.name
        ) from error
    except OSError as error:
        reason = error.strerror or type(error).__name__
        raise RosterFileError(
            _("Cannot read « {path} »: {reason}.").format(path=shown, reason=reason),
            filename=path.name,
        ) from error
    if len(content) > max_bytes:
        raise too_big
    if not content.strip():
        raise RosterFileError(
            _("The file « {filename} » is empty — nothing was imported.").format(filename=shown),
            filename=path.name,
        )
    return path.name, content


@contextmanager
def _import_progress(total_bytes: int) -> Iterator[Callable[..., None] | None]:
    """A progress callback drawing a bar on the terminal for large files, else None."""
    console = stderr_console()
    if total_bytes < PROGRESS_THRESHOLD_BYTES or not console.is_terminal:
        yield None
        return
    with Progress(
        TextColumn(_("Import")),
        BarColumn(),
        TaskProgressColumn(),
        console=console,
        transient=True,
    ) as bar:
        task = bar.add_task("import", total=None)

        def advance(done: int, total: int | None = None, *_: Any) -> None:
            bar.update(task, completed=done, total=total)

        yield advance


def import_command(
    uai: UaiArgument,
    files: Annotated[
        list[Path],
        typer.Argument(
            help=_("ONDE extractions (CSVExtraction.csv): « Élèves » and/or « Responsables »."),
            show_default=False,
        ),
    ],
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help=_("Simulate: check everything without saving anything.")),
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Import the ONDE extractions of a school."""
    try:
        contents = [_read_roster_file(path, MAX_FILE_BYTES) for path in files]
        with open_database() as engine:
            # A dry run never commits, whatever happens inside the import.
            scope = Session(engine, expire_on_commit=False) if dry_run else session_scope(engine)
            total_bytes = sum(len(content) for _, content in contents)
            with scope as session, _import_progress(total_bytes) as progress:
                school = get_school_by_uai(session, uai)
                assert school.id is not None
                school_json = {"uai": school.uai, "name": school.name}
                school_label = f"{school.name} ({school.uai})"
                report = import_roster(
                    session=session,
                    school_id=school.id,
                    files=contents,
                    actor=operator_name(),
                    dry_run=dry_run,
                    progress=progress,
                )
                if dry_run:
                    session.rollback()
    except RosterFileError as error:
        if not as_json and error.issues:
            # The error line goes to stderr; the per-line reasons help fix the file.
            _print_issues(stdout_console(), error.issues, title=_rejected_title(len(error.issues)))
        raise
    if as_json:
        print_json({"school": school_json} | report.to_dict())
        return
    _print_import_report(stdout_console(), report, school_label=school_label)


def issue_dict(issue: LineIssue) -> dict[str, Any]:
    """A rejected or warned line, as the JSON of `import` and of its error shows it."""
    return {
        "file": issue.filename,
        "line": issue.line,
        "code": issue.code,
        "message": issue.message,
    }


def _rejected_title(count: int) -> str:
    return _("Rejected lines: {count}").format(count=format_number(count))


def _print_import_report(console: Console, report: ImportReport, *, school_label: str) -> None:
    if report.dry_run:
        console.print(_("Import simulation — {school}").format(school=school_label))
    else:
        console.print(_("Import — {school}").format(school=school_label))
    for filename, kind in report.files.items():
        console.print(
            _("  {filename}: « {category} » extraction").format(
                filename=filename, category=CATEGORY_NAMES.get(kind, kind)
            )
        )
    table = Table(
        "",
        _("Added"),
        _("Updated"),
        _("Unchanged"),
        _("Archived / deactivated"),
        title=_("Summary"),
    )
    for label, counts in (
        (_("Pupils"), report.pupils),
        (_("Guardians"), report.guardians),
        (_("Classes"), report.classes),
    ):
        table.add_row(
            label,
            str(counts.added),
            str(counts.updated),
            str(counts.unchanged),
            str(counts.retired),
        )
    console.print(table)
    console.print(
        _("Accounts created: {count}").format(count=format_number(report.accounts_created))
    )
    if report.accounts_reactivated:
        console.print(
            _("Accounts reactivated: {count}").format(
                count=format_number(report.accounts_reactivated)
            )
        )
    if report.accounts_deactivated:
        console.print(
            _("Accounts deactivated (guardians with no enrolled child): {count}").format(
                count=format_number(report.accounts_deactivated)
            )
        )
    _print_issues(console, report.rejected, title=_rejected_title(len(report.rejected)))
    _print_issues(
        console,
        report.warnings,
        title=_("Lines imported with a warning: {count}").format(
            count=format_number(len(report.warnings))
        ),
    )
    if report.dry_run:
        console.print(_("Simulation: nothing was changed."), style="bold")
    else:
        console.print(_("Import saved."), style="bold")


def _print_issues(console: Console, issues: Sequence[LineIssue], *, title: str) -> None:
    if not issues:
        console.print(title)
        return
    table = Table(_("File"), _("Line"), _("Reason"), title=title, title_justify="left")
    for issue in issues:
        # The line is in its own column: a message that starts with it (« Ligne 10 : », in
        # whatever language) need not repeat it.
        prefix = re.compile(rf"^\w+\s+{issue.line}\s*:\s*")
        reason = prefix.sub("", issue.message, count=1)
        table.add_row(issue.filename, str(issue.line), reason)
    console.print(table)


# --- statistics ---------------------------------------------------------------------------


def stats_command(uai: UaiArgument, as_json: JsonOption = False) -> None:
    """Show the state of a school's accounts, per class and per level."""
    with open_database() as engine, session_scope(engine) as session:
        school = get_school_by_uai(session, uai)
        assert school.id is not None
        stats = school_statistics(session=session, school_id=school.id)
    if as_json:
        print_json({"school": {"uai": school.uai, "name": school.name}} | stats.to_dict())
        return
    console = stdout_console()
    total = stats.total
    console.print(f"{school.name} ({school.uai})", style="bold")
    lights = "   ".join(
        f"{LIGHTS[state.value][0]} {count}" for state, count in total.by_state().items()
    )
    console.print(
        _("Guardian accounts: {count}   {lights}").format(
            count=format_number(total.accounts), lights=lights
        )
    )
    console.print(
        _(
            "Guardian accounts activated: {accounts_percent} — pupils with at least one guardian "
            "whose account is activated: {pupils_percent} ({covered} of {pupils})"
        ).format(
            accounts_percent=percent(total.activated_accounts_percent),
            pupils_percent=percent(total.pupils_with_activated_guardian_percent),
            covered=format_number(total.pupils_with_activated_guardian),
            pupils=format_number(total.pupils),
        )
    )
    if stats.classes:
        console.print(_stats_table(_("By class"), _("Class"), stats.classes))
    if stats.levels:
        console.print(_stats_table(_("By level"), _("Level"), stats.levels))
    console.print(" · ".join(f"{light} {_(label)}" for light, label in LIGHTS.values()))
    console.print(_("A guardian whose children are in several classes counts in each of them."))


def _stats_table(title: str, first_column: str, groups: Sequence[GroupCounts]) -> Table:
    table = Table(title=title, title_justify="left")
    table.add_column(first_column)
    for header in (_("Pupils"), _("Accounts"), *(light for light, _label in LIGHTS.values())):
        table.add_column(header, justify="right")
    table.add_column(_("% activated"), justify="right")
    table.add_column(_("% pupils covered"), justify="right")
    for group in groups:
        table.add_row(group.label, *_stats_cells(group))
    return table


def _stats_cells(counts: Counts) -> list[str]:
    return [
        format_number(counts.pupils),
        format_number(counts.accounts),
        *(format_number(count) for count in counts.by_state().values()),
        percent(counts.activated_accounts_percent),
        percent(counts.pupils_with_activated_guardian_percent),
    ]
