"""The operator's command line (`educonnect-bot`, or `python -m bot`): schools, director
invitations, ONDE imports, statistics and schema upgrades.

Its text goes through `bot.i18n` like the bot's, in French: the operator's language does not
follow the shell's `LANG`, so scripts and documentation see the same words everywhere.
"""

from __future__ import annotations

import asyncio
import getpass
import json
import os
import re
import signal
import sys
import traceback
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy import Engine

from bot.config import Settings, get_settings
from bot.i18n import (
    DEFAULT_LANGUAGE,
    N_,
    _,
    format_date,
    format_number,
    format_percentage,
    format_time,
    ngettext,
    set_language,
)
from bot.services.errors import ServiceError
from bot.services.onde.report import RosterFileError

if TYPE_CHECKING:
    from bot.services.onde.report import ImportReport, LineIssue
    from bot.services.statistics import Counts, GroupCounts

PROG_NAME = "educonnect-bot"
ERROR_LOG = "educonnect-cli.log"
# Above this size an import shows a progress bar (on a terminal).
PROGRESS_THRESHOLD_BYTES = 512 * 1024
# The same labels as the bot's (bot.services.roster.STATE_LABELS), so the same translations.
LIGHTS = {
    "not_notified": ("🔴", N_("Not notified")),
    "notified": ("🟠", N_("Notified, not activated")),
    "activating": ("🟡", N_("Activation in progress")),
    "activated": ("🟢", N_("Activated")),
}

# Help texts are translated when this module is imported, in the default language (French).
app = typer.Typer(
    name=PROG_NAME,
    help=_("EduConnect assistant: administration of schools, directors and ONDE imports."),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
school_app = typer.Typer(help=_("Schools: add, list."), no_args_is_help=True)
director_app = typer.Typer(help=_("Directors: invite."), no_args_is_help=True)
db_app = typer.Typer(help=_("Database."), no_args_is_help=True)
app.add_typer(school_app, name="school")
app.add_typer(director_app, name="director")
app.add_typer(db_app, name="db")

JsonOption = Annotated[bool, typer.Option("--json", help=_("Print only JSON, for scripts."))]
UaiArgument = Annotated[str, typer.Argument(help=_("UAI of the school, for example 0751234X."))]


def _stdout() -> Console:
    # Markup off: school names and file names are shown as they are, brackets included.
    width = None if sys.stdout.isatty() else 120
    return Console(markup=False, highlight=False, width=width)


def _stderr() -> Console:
    return Console(stderr=True, markup=False, highlight=False)


def _print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2, default=str) + "\n")


def _operator() -> str:
    """Who the audit log names for a CLI action."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # no login name in some containers
        return f"cli:uid{os.getuid()}"


@contextmanager
def _database() -> Iterator[Engine]:
    """The database of the settings, private data folder created, schema upgraded."""
    from bot.db import make_engine, upgrade_schema

    settings = get_settings()
    settings.ensure_data_dir()
    engine = make_engine(settings.sqlalchemy_url)
    try:
        upgrade_schema(engine)
        yield engine
    finally:
        engine.dispose()


def _local_time(moment: datetime, settings: Settings) -> str:
    return _("{date} at {time}").format(
        date=format_date(moment, tz=settings.tz, fmt="short"),
        time=format_time(moment, tz=settings.tz),
    )


def _percent(value: float) -> str:
    """A percentage given in [0, 100], with one decimal."""
    return format_percentage(value / 100, decimals=1)


def _megabytes(size: int) -> str:
    mib = 1024 * 1024
    value = size / mib if size % mib == 0 else size / 1_000_000
    return format_number(int(value) if value == int(value) else round(value, 1))


# --- schools ------------------------------------------------------------------------------


@school_app.command("add", help=_("Register a school."))
def school_add(
    uai: UaiArgument,
    name: Annotated[str, typer.Argument(help=_("Name of the school."))],
    city: Annotated[str | None, typer.Option("--city", help=_("Town of the school."))] = None,
    as_json: JsonOption = False,
) -> None:
    """Register a school."""
    from bot.db import session_scope
    from bot.services.schools import add_school

    with _database() as engine, session_scope(engine) as session:
        school = add_school(session=session, uai=uai, name=name, city=city, actor=_operator())
    if as_json:
        _print_json({"id": school.id, "uai": school.uai, "name": school.name, "city": school.city})
        return
    if school.city:
        added = _("School added: {uai} — {name} ({city}).")
    else:
        added = _("School added: {uai} — {name}.")
    _stdout().print(added.format(uai=school.uai, name=school.name, city=school.city))
    _stdout().print(
        _("Invite its director with: {command}").format(
            command=f"{PROG_NAME} director invite {school.uai}"
        )
    )


@school_app.command("list", help=_("List the registered schools."))
def school_list(as_json: JsonOption = False) -> None:
    """List the registered schools."""
    from bot.db import session_scope
    from bot.services.schools import list_schools

    with _database() as engine, session_scope(engine) as session:
        schools = list_schools(session)
    if as_json:
        _print_json([{"id": s.id, "uai": s.uai, "name": s.name, "city": s.city} for s in schools])
        return
    console = _stdout()
    if not schools:
        console.print(
            _("No school registered yet. Add one with: {program} school add UAI NAME").format(
                program=PROG_NAME
            )
        )
        return
    title = ngettext("{count} school", "{count} schools", len(schools)).format(
        count=format_number(len(schools))
    )
    table = Table("UAI", _("Name"), _("Town"), title=title)
    for school in schools:
        table.add_row(school.uai, school.name, school.city or "")
    console.print(table)


# --- directors ----------------------------------------------------------------------------


@director_app.command(
    "invite", help=_("Create a single-use invitation for the director of a school.")
)
def director_invite(
    uai: UaiArgument,
    days: Annotated[
        int, typer.Option("--days", min=1, max=90, help=_("How long it is valid, in days."))
    ] = 7,
    as_json: JsonOption = False,
) -> None:
    """Create a single-use invitation for the director of a school."""
    from bot.db import session_scope
    from bot.services.schools import create_invitation, get_school_by_uai

    settings = get_settings()
    with _database() as engine, session_scope(engine) as session:
        school = get_school_by_uai(session, uai)
        assert school.id is not None
        code, expires_at = create_invitation(
            session=session, school_id=school.id, actor=_operator(), ttl=timedelta(days=days)
        )
    start = f"/start {code}"
    if as_json:
        _print_json(
            {
                "school": {"uai": school.uai, "name": school.name},
                "code": code,
                "expires_at": expires_at.isoformat(),
                "start_command": start,
            }
        )
        return
    console = _stdout()
    console.print(_("Invitation for {school} ({uai})").format(school=school.name, uai=school.uai))
    console.print(_("Code: {code}").format(code=code))
    console.print(
        _("Valid once only, until {moment} (time zone {timezone}).").format(
            moment=_local_time(expires_at, settings), timezone=settings.timezone
        )
    )
    console.print(_("The director sends this message to the bot:"))
    console.print(start, style="bold")
    console.print(_("This code is shown only once: it is not stored in clear."))


# --- import -------------------------------------------------------------------------------


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
        ).format(path=shown, limit=_megabytes(max_bytes)),
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
    console = _stderr()
    if total_bytes < PROGRESS_THRESHOLD_BYTES or not console.is_terminal:
        yield None
        return
    from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn

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


@app.command("import", help=_("Import the ONDE extractions of a school."))
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
    from sqlmodel import Session

    from bot.db import session_scope
    from bot.services.onde.importer import import_roster
    from bot.services.onde.reader import MAX_FILE_BYTES
    from bot.services.schools import get_school_by_uai

    try:
        contents = [_read_roster_file(path, MAX_FILE_BYTES) for path in files]
        with _database() as engine:
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
                    actor=_operator(),
                    dry_run=dry_run,
                    progress=progress,
                )
                if dry_run:
                    session.rollback()
    except RosterFileError as error:
        if not as_json and error.issues:
            # The error line goes to stderr; the per-line reasons help fix the file.
            _print_issues(_stdout(), error.issues, title=_rejected_title(len(error.issues)))
        raise
    if as_json:
        _print_json({"school": school_json} | report.to_dict())
        return
    _print_import_report(_stdout(), report, school_label=school_label)


def _issue_dict(issue: LineIssue) -> dict[str, Any]:
    return {
        "file": issue.filename,
        "line": issue.line,
        "code": issue.code,
        "message": issue.message,
    }


def _rejected_title(count: int) -> str:
    return _("Rejected lines: {count}").format(count=format_number(count))


def _print_import_report(console: Console, report: ImportReport, *, school_label: str) -> None:
    from bot.services.onde.messages import CATEGORY_NAMES

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


@app.command("stats", help=_("Show the state of a school's accounts, per class and per level."))
def stats_command(uai: UaiArgument, as_json: JsonOption = False) -> None:
    """Show the state of a school's accounts, per class and per level."""
    from bot.db import session_scope
    from bot.services.schools import get_school_by_uai
    from bot.services.statistics import school_statistics

    with _database() as engine, session_scope(engine) as session:
        school = get_school_by_uai(session, uai)
        assert school.id is not None
        stats = school_statistics(session=session, school_id=school.id)
    if as_json:
        _print_json({"school": {"uai": school.uai, "name": school.name}} | stats.to_dict())
        return
    console = _stdout()
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
            accounts_percent=_percent(total.activated_accounts_percent),
            pupils_percent=_percent(total.pupils_with_activated_guardian_percent),
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
        _percent(counts.activated_accounts_percent),
        _percent(counts.pupils_with_activated_guardian_percent),
    ]


# --- credentials: e-mails and paper letters -----------------------------------------------

if TYPE_CHECKING:
    from bot.services.distribution import DistributionPreview, PaperLetters
    from bot.services.outbox import BatchProgress
    from bot.services.roster import ResolvedScope

ClassesArgument = Annotated[
    list[str],
    typer.Argument(
        help=_("Classes (« CM1 », « CE2-CM1 »), levels (« niveau CM1 »), or « ecole »."),
        show_default=False,
    ),
]
ResetOption = Annotated[
    bool,
    typer.Option(
        "--reset",
        help=_(
            "Draw a new provisional password for accounts already notified (the previous one "
            "stops working at once). Without it they get a reminder: identifier only."
        ),
    ),
]
YesOption = Annotated[
    bool, typer.Option("--yes", "-y", help=_("Go ahead without asking for confirmation."))
]


def _scope_line(resolved: ResolvedScope) -> str:
    from bot.services.roster import ScopeKind

    numbers = {
        "pupils": format_number(resolved.pupils),
        "guardians": format_number(resolved.guardians),
    }
    if resolved.scope.kind is ScopeKind.CLASS:
        return _("Class {label} — pupils: {pupils}, guardians: {guardians}").format(
            label=resolved.scope.label, **numbers
        )
    if resolved.scope.kind is ScopeKind.LEVEL:
        return _("Level {level} ({classes}) — pupils: {pupils}, guardians: {guardians}").format(
            level=resolved.scope.label, classes=", ".join(resolved.classes), **numbers
        )
    return _("Whole school — pupils: {pupils}, guardians: {guardians}").format(**numbers)


def _preview_dict(preview: DistributionPreview) -> dict[str, Any]:
    return {
        "scopes": [
            {
                "kind": item.scope.kind.value,
                "label": item.scope.label,
                "pupils": item.pupils,
                "guardians": item.guardians,
            }
            for item in preview.scopes
        ],
        "pupils": preview.pupils,
        "guardians": preview.guardians,
        "planned": {kind.value: count for kind, count in preview.counts().items()},
        "skipped": {reason.value: count for reason, count in preview.skip_counts().items()},
        "already_queued": preview.already_queued,
        "accounts": [
            {
                "identifier": entry.identifier,
                "name": entry.name,
                "state": entry.state.value,
                "kind": entry.kind.value if entry.kind else None,
                "channel": entry.channel.value if entry.channel else None,
                "skipped": entry.skip.value if entry.skip else None,
            }
            for entry in preview.entries
        ],
    }


def _print_preview(console: Console, preview: DistributionPreview, *, title: str) -> None:
    from bot.services.distribution import KIND_LABELS, SKIP_LABELS

    console.print(title, style="bold")
    for item in preview.scopes:
        console.print("  " + _scope_line(item))
    if len(preview.scopes) > 1:
        console.print(
            "  "
            + _("Together — pupils: {pupils}, guardians: {guardians}").format(
                pupils=format_number(preview.pupils), guardians=format_number(preview.guardians)
            )
        )
    table = Table(_("Will receive"), _("Guardians"), title_justify="left")
    for kind, count in preview.counts().items():
        table.add_row(_(KIND_LABELS[kind]), format_number(count))
    if preview.counts():
        console.print(table)
    skipped = preview.skipped
    if skipped:
        listing = Table(
            _("Guardian"),
            _("Identifier"),
            _("Why nothing is sent"),
            title=_("Skipped: {count}").format(count=format_number(len(skipped))),
            title_justify="left",
        )
        for entry in skipped:
            assert entry.skip is not None
            listing.add_row(entry.name, entry.identifier, _(SKIP_LABELS[entry.skip]))
        console.print(listing)
    if preview.already_queued:
        console.print(
            _(
                "{count} of them still have an earlier e-mail waiting to be sent: it will be "
                "replaced by the new one."
            ).format(count=format_number(preview.already_queued))
        )


def _confirm(question: str, *, yes: bool) -> None:
    """Go on if `yes` or the operator agrees; else stop, having changed nothing."""
    if yes:
        return
    if not sys.stdin.isatty():
        raise ServiceError(_("nothing was done: add --yes to confirm without a terminal."))
    if not typer.confirm(question, default=False):
        _stdout().print(_("Nothing was done."))
        raise typer.Exit(1)


def _plan_scopes(function: Callable[..., Any], **kwargs: Any) -> Any:
    """Call a planning function, turning an unknown class into a sentence naming the known
    ones (the chat shows them as buttons)."""
    from bot.services.roster import UnknownClassError

    try:
        return function(**kwargs)
    except UnknownClassError as error:
        raise ServiceError(
            _("unknown class « {text} ». Classes: {classes}. Levels: {levels}.").format(
                text=error.text,
                classes=", ".join(info.label for info in error.classes) or "—",
                levels=", ".join(error.levels) or "—",
            )
        ) from error


async def _drain_batch(
    engine: Engine, settings: Settings, batch_id: str, show: Callable[[BatchProgress], None]
) -> BatchProgress:
    """Send the outbox in this process until the batch is done, or only retries are left."""
    from bot.db import session_scope
    from bot.services.outbox import OutboxSender, batch_progress

    def progress() -> BatchProgress:
        with session_scope(engine) as session:
            return batch_progress(session=session, batch_id=batch_id)

    sender = OutboxSender.from_settings(settings, engine, name="cli")
    while True:
        task = asyncio.create_task(sender.drain_once())
        while not task.done():
            await asyncio.wait({task}, timeout=0.25)
            show(await asyncio.to_thread(progress))
        task.result()
        current = await asyncio.to_thread(progress)
        show(current)
        # Done, or what is left waits for a retry later (the bot or a worker sends it).
        if current.done or (current.sending == 0 and current.pending <= current.retrying):
            return current
        # Rows another sender holds: wait for it, or for its claims to be recovered.
        await sender.recover()
        await asyncio.sleep(0.5)


@contextmanager
def _progress_bar(label: str) -> Iterator[Callable[[int, int], None]]:
    """A callback (done, total) drawing a bar on a terminal's stderr, else doing nothing."""
    console = _stderr()
    if not console.is_terminal:
        yield lambda done, total: None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    with Progress(
        TextColumn(label), BarColumn(), MofNCompleteColumn(), console=console, transient=True
    ) as bar:
        task = bar.add_task(label, total=None)
        yield lambda done, total: bar.update(task, completed=done, total=total)


def _failure_dicts(progress: BatchProgress) -> list[dict[str, Any]]:
    return [
        {
            "identifier": failure.identifier,
            "name": failure.guardian_name,
            "address": failure.to_address,
            "reason": failure.reason,
            "kind": failure.kind.value,
        }
        for failure in progress.failures
    ]


def _print_send_summary(console: Console, progress: BatchProgress) -> None:
    console.print(
        _("Sent: {sent} — failed: {failed} — waiting for a retry: {waiting}").format(
            sent=format_number(progress.sent),
            failed=format_number(progress.failed),
            waiting=format_number(progress.pending + progress.sending),
        )
    )
    if progress.failures:
        table = Table(
            _("Guardian"), _("Identifier"), _("Address"), _("Reason"), title_justify="left"
        )
        for failure in progress.failures:
            table.add_row(
                failure.guardian_name or "",
                failure.identifier or "",
                failure.to_address,
                failure.reason,
            )
        console.print(table)
    if progress.pending:
        console.print(
            _(
                "The server asked to try again later ({reason}): the bot, or « {program} worker », "
                "sends them automatically."
            ).format(reason=progress.last_retry_reason or "—", program=PROG_NAME)
        )


def _plan_and_confirm(
    engine: Engine,
    planner: Callable[..., DistributionPreview],
    *,
    uai: str,
    classes: Sequence[str],
    title: str,
    nobody: str,
    not_done: dict[str, Any],
    question: Callable[[int], str],
    as_json: bool,
    yes: bool,
    **options: Any,
) -> tuple[int, DistributionPreview, dict[str, Any]] | None:
    """`send` and `letters`, first step: plan the classes of the school, show the plan (`title`
    names the school with « {school} »), ask `question(count)` unless `yes`. Returns the school
    id, the plan and its JSON, or None when nobody is concerned (said, with `not_done` added to
    the JSON). With --json and without --yes, the plan is printed before the question."""
    from bot.db import session_scope
    from bot.services.schools import get_school_by_uai

    console = _stdout()
    with session_scope(engine) as session:
        school = get_school_by_uai(session, uai)
        assert school.id is not None
        school_id, school_json = school.id, {"uai": school.uai, "name": school.name}
        school_label = f"{school.name} ({school.uai})"
        preview = _plan_scopes(
            planner, session=session, school_id=school_id, scope_tokens=classes, **options
        )
    result: dict[str, Any] = {"school": school_json, "plan": _preview_dict(preview)}
    if not as_json:
        _print_preview(console, preview, title=title.format(school=school_label))
    count = len(preview.planned)
    if not count:
        if as_json:
            _print_json(result | not_done)
        else:
            console.print(nobody)
        return None
    if as_json and not yes:
        _print_json(result | not_done)
    _confirm(question(count), yes=yes)
    return school_id, preview, result


@app.command(
    "send",
    help=_(
        "Send credentials by e-mail to the guardians of classes who have an address: shows "
        "who gets what, asks for confirmation, then sends (first distribution, reminder, or "
        "new password with --reset)."
    ),
)
def send_command(
    uai: UaiArgument,
    classes: ClassesArgument,
    reset: ResetOption = False,
    yes: YesOption = False,
    no_wait: Annotated[
        bool,
        typer.Option(
            "--no-wait",
            help=_(
                "Only put the e-mails in the outbox: the running bot, or « educonnect-bot "
                "worker », sends them."
            ),
        ),
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Send credentials by e-mail to the guardians of classes who have an address."""
    from bot.db import session_scope
    from bot.services.distribution import plan_email_distribution, start_email_distribution
    from bot.services.family import known_bot_username

    settings = get_settings()
    console = _stdout()
    with _database() as engine:
        planned = _plan_and_confirm(
            engine,
            plan_email_distribution,
            uai=uai,
            classes=classes,
            title=_("E-mails — {school}"),
            nobody=_("Nobody to send an e-mail to."),
            not_done={"batch_id": None},
            question=lambda count: ngettext(
                "Send {count} e-mail?", "Send {count} e-mails?", count
            ).format(count=format_number(count)),
            as_json=as_json,
            yes=yes,
            reset=reset,
        )
        if planned is None:
            return
        school_id, preview, result = planned
        count = len(preview.planned)
        with session_scope(engine) as session:
            batch_id = start_email_distribution(
                session=session,
                school_id=school_id,
                preview_or_account_ids=preview,
                reset=reset,
                actor=_operator(),
                bot_username=known_bot_username(session=session),
                portal_url=settings.portal_url,
                mail_from=settings.mail_from,
            )
        result["batch_id"] = batch_id
        if no_wait:
            if as_json:
                _print_json(result | {"queued": count})
                return
            console.print(
                ngettext(
                    "{count} e-mail is in the outbox (batch {batch}): the bot or « {program} "
                    "worker » sends it.",
                    "{count} e-mails are in the outbox (batch {batch}): the bot or « {program} "
                    "worker » sends them.",
                    count,
                ).format(count=format_number(count), batch=batch_id, program=PROG_NAME)
            )
            return
        with _progress_bar(_("Sending")) as advance:

            def show(progress: BatchProgress) -> None:
                advance(progress.sent + progress.failed + progress.cancelled, progress.total)

            progress = asyncio.run(_drain_batch(engine, settings, batch_id, show))
    if as_json:
        _print_json(
            result
            | {
                "sent": progress.sent,
                "failed": _failure_dicts(progress),
                "waiting": progress.pending + progress.sending,
                "cancelled": progress.cancelled,
            }
        )
        return
    _print_send_summary(console, progress)


def _write_private(path: Path, data: bytes) -> None:
    """Write `data` to `path`, readable by its owner only (0600), even if it existed."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        os.fchmod(handle.fileno(), 0o600)
        handle.write(data)


def _write_letters(
    paper: PaperLetters, *, output: Path | None, folder: Path | None, archive: Path | None
) -> list[str]:
    """Write the combined PDF and/or the individual documents; the paths written."""
    from bot.services.letters import zip_letters

    written: list[str] = []
    if output is not None:
        _write_private(output, paper.pdf)
        written.append(str(output))
    if folder is not None or archive is not None:
        documents = paper.individual_documents()
        if folder is not None:
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            for name, content in documents:
                _write_private(folder / name, content)
            written.append(str(folder))
        if archive is not None:
            _write_private(archive, zip_letters(documents))
            written.append(str(archive))
    return written


def _remove_letters(
    paper: PaperLetters, *, output: Path | None, folder: Path | None, archive: Path | None
) -> None:
    """Delete the files `_write_letters` wrote (in a folder, only the letters' own)."""
    for path in (output, archive):
        if path is not None:
            path.unlink(missing_ok=True)
    if folder is not None:
        for letter in paper.files:
            (folder / letter.filename).unlink(missing_ok=True)


@app.command(
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
)
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
    from bot.db import session_scope
    from bot.services.distribution import (
        draft_paper_letters,
        plan_paper_letters,
        record_paper_letters,
    )
    from bot.services.family import known_bot_username

    if output is None and individual is None and archive is None:
        raise ServiceError(
            _("say where to write the letters: -o file.pdf, --individual FOLDER or --zip file.zip.")
        )
    for target in (output, archive):
        if target is not None and not target.parent.is_dir():
            raise ServiceError(
                _("the folder « {folder} » does not exist.").format(folder=target.parent)
            )
    settings = get_settings()
    console = _stdout()
    with _database() as engine:
        planned = _plan_and_confirm(
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
        if planned is None:
            return
        school_id, preview, result = planned
        with _progress_bar(_("Letters")) as advance, session_scope(engine) as session:
            # Made with nothing written: the bot and its outbox keep writing meanwhile.
            draft = draft_paper_letters(
                session=session,
                school_id=school_id,
                preview_or_account_ids=preview,
                include_all=everyone,
                reset=reset,
                actor=_operator(),
                bot_username=known_bot_username(session=session),
                portal_url=settings.portal_url,
                progress=advance,
            )
        assert draft.paper is not None
        # Before recording: if a file cannot be written, nothing is recorded.
        written = _write_letters(draft.paper, output=output, folder=individual, archive=archive)
        try:
            with session_scope(engine) as session:
                paper = record_paper_letters(session=session, draft=draft)
        except BaseException:
            # Nothing recorded (an account changed while the letters were made, or the
            # database failed): these letters are not valid.
            _remove_letters(draft.paper, output=output, folder=individual, archive=archive)
            raise
    if as_json:
        _print_json(
            result
            | {
                "letters": paper.count,
                "kinds": {kind.value: n for kind, n in paper.counts().items()},
                "files": written,
            }
        )
        return
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


# --- database -----------------------------------------------------------------------------


@db_app.command("upgrade", help=_("Upgrade the database schema."))
def db_upgrade(as_json: JsonOption = False) -> None:
    """Upgrade the database schema."""
    from alembic.migration import MigrationContext

    with _database() as engine, engine.connect() as connection:
        revision = MigrationContext.configure(connection).get_current_revision()
        dialect = engine.dialect.name
    if as_json:
        _print_json({"revision": revision, "database": dialect})
        return
    _stdout().print(
        _("Database up to date ({dialect}, revision {revision}).").format(
            dialect=dialect, revision=revision
        )
    )


# --- running the bot ----------------------------------------------------------------------


@app.command(
    "run",
    help=_("Run the Telegram bot (with TELEGRAM_BOT_TOKEN), else the offline sandbox.")
    + "\n\n"
    + _(
        "The sandbox never uses DATABASE_URL: its database is DATA_DIR/sandbox.db for the "
        "conversation (kept from one run to the next) and DATA_DIR/sandbox-demo.db for the "
        "demonstration (created afresh each time)."
    ),
)
def run_command(
    sandbox: Annotated[
        bool,
        typer.Option("--sandbox", help=_("Start the offline sandbox even if a token is set.")),
    ] = False,
    demo: Annotated[
        bool | None,
        typer.Option(
            "--demo/--chat",
            help=_(
                "Sandbox (even with a token): a scripted demonstration, or a conversation in "
                "the terminal (by default: the conversation if the input is a terminal, else "
                "the demonstration)."
            ),
            show_default=False,
        ),
    ] = None,
    samples: Annotated[
        Path | None,
        typer.Option(
            "--samples",
            help=_(
                "Sandbox: folder of the sample ONDE extractions (default: "
                "$EDUCONNECT_SAMPLES, else ../shared/samples/onde)."
            ),
        ),
    ] = None,
    reset: Annotated[
        bool, typer.Option("--reset", help=_("Sandbox: start again from an empty database."))
    ] = False,
) -> None:
    """Run the Telegram bot (with TELEGRAM_BOT_TOKEN), else the offline sandbox."""
    from bot.runner import run as run_bot

    code = run_bot(get_settings(), sandbox=sandbox, demo=demo, samples=samples, reset=reset)
    if code:
        raise typer.Exit(code)


# --- the outbox worker --------------------------------------------------------------------

if TYPE_CHECKING:
    from bot.services.outbox import OutboxSender


@app.command(
    "worker",
    help=_(
        "Send the e-mails waiting in the outbox, without the bot, until Ctrl-C. Several "
        "workers, on several machines, can share one PostgreSQL database."
    ),
)
def worker_command(
    once: Annotated[
        bool, typer.Option("--once", help=_("Send what is due now, then stop."))
    ] = False,
) -> None:
    """Send the e-mails waiting in the outbox, without the bot."""
    from bot.runner import configure_logging
    from bot.services.outbox import OutboxSender

    settings = get_settings()
    with _database() as engine:
        configure_logging(settings)  # after the schema upgrade: Alembic's lines are noise here
        sender = OutboxSender.from_settings(settings, engine, name="worker")
        _stderr().print(
            _("Outbox worker {worker}: the e-mails go to {destination}.").format(
                worker=sender.worker_id, destination=sender.transport.description
            )
        )
        if once:
            sent = asyncio.run(_send_due(sender))
            _stdout().print(
                ngettext("{count} e-mail sent.", "{count} e-mails sent.", sent).format(
                    count=format_number(sent)
                )
            )
            return
        asyncio.run(_run_worker(sender))
    _stderr().print(_("Outbox worker stopped."))


async def _send_due(sender: OutboxSender) -> int:
    await sender.recover()
    return await sender.drain_once()


async def _run_worker(sender: OutboxSender) -> None:
    """Run the sender until SIGINT or SIGTERM, then let the message in flight finish."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await sender.run_forever(stop)


# --- entry point --------------------------------------------------------------------------


def _fail(message: str, *, as_json: bool = False, **details: Any) -> None:
    """One line on stderr, whatever the message carries; with --json, the same as JSON."""
    line = " ".join(message.split())
    sys.stderr.write(_("Error: {message}").format(message=line) + "\n")
    if as_json:
        _print_json({"error": line, **details})


def _log_unexpected() -> Path | None:
    """Append the current exception's traceback to the log in the data folder."""
    try:
        folder = get_settings().ensure_data_dir()
        path = folder / ERROR_LOG
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        with os.fdopen(fd, "a", encoding="utf-8") as log:
            log.write(f"--- {datetime.now().astimezone().isoformat()} {sys.argv!r}\n")
            log.write(traceback.format_exc())
        return path
    except Exception:  # the log is best effort: never hide the original error behind it
        return None


def _usage_message(error: typer.TyperException) -> str:
    kind = type(error).__name__
    param_name = getattr(getattr(error, "param", None), "name", None)
    if kind == "MissingParameter" and param_name:
        message = _("the argument {name} is missing").format(name=str(param_name).upper())
    elif kind == "NoSuchOption":
        message = _("unknown option: {option}").format(option=getattr(error, "option_name", "?"))
    else:
        message = error.format_message()  # click's own words, in English
    return _("{message} (see « {program} --help »)").format(message=message, program=PROG_NAME)


def run(argv: Sequence[str] | None = None) -> int:
    """Run one command and return its exit code; every error becomes one line on stderr."""
    from pydantic import ValidationError
    from sqlalchemy.exc import ArgumentError, OperationalError

    set_language(DEFAULT_LANGUAGE)
    args = list(argv) if argv is not None else sys.argv[1:]
    as_json = "--json" in args
    command = typer.main.get_command(app)
    try:
        result = command.main(args=args, prog_name=PROG_NAME, standalone_mode=False)
    except typer.TyperException as error:  # click's usage errors, vendored by typer
        if type(error).__name__ == "NoArgsIsHelpError":
            return 2  # the help has just been shown: that is the answer
        _fail(_usage_message(error), as_json=as_json)
        return int(getattr(error, "exit_code", 2))
    except typer.Abort:
        _fail(_("interrupted."), as_json=as_json)
        return 130
    except RosterFileError as error:
        issues = [_issue_dict(issue) for issue in error.issues]
        _fail(str(error), as_json=as_json, rejected=issues)
        return 1
    except ServiceError as error:
        _fail(str(error), as_json=as_json)
        return 1
    except ValidationError as error:
        problems = "; ".join(
            _("{setting}: {problem}").format(
                setting=".".join(str(p) for p in item["loc"]).upper(), problem=item["msg"]
            )
            for item in error.errors()
        )
        _fail(_("invalid configuration — {problems}").format(problems=problems), as_json=as_json)
        return 1
    except ArgumentError as error:
        _fail(
            _("DATABASE_URL is not a valid database address: {error}").format(error=error),
            as_json=as_json,
        )
        return 1
    except OperationalError as error:
        reason = str(error.orig).strip().splitlines()[0] if error.orig else _("unknown error")
        _fail(_("the database cannot be reached: {reason}").format(reason=reason), as_json=as_json)
        return 1
    except OSError as error:
        where = f" ({error.filename})" if error.filename else ""
        _fail(f"{error.strerror or error}{where}", as_json=as_json)
        return 1
    except Exception as error:
        log = _log_unexpected()
        kind = type(error).__name__
        if log:
            unexpected = _("unexpected error ({kind}); the details are in {log}.")
        else:
            unexpected = _("unexpected error ({kind}).")
        _fail(unexpected.format(kind=kind, log=log), as_json=as_json)
        return 1
    return result if isinstance(result, int) else 0


def main() -> None:
    """The console script `educonnect-bot`."""
    sys.exit(run())
