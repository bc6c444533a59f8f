"""The operator's command line (`educonnect-bot`, or `python -m bot`): schools, director
invitations, ONDE imports, statistics and schema upgrades.

Its text goes through `bot.i18n` like the bot's, in French: the operator's language does not
follow the shell's `LANG`, so scripts and documentation see the same words everywhere.
"""

from __future__ import annotations

import getpass
import json
import os
import re
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
