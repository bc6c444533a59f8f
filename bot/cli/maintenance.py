"""`purge`, `backup` and `restore`: data kept no longer than one school year after a family
left, and the database saved and brought back (SQLite here; PostgreSQL with its own tools)."""

from __future__ import annotations

import sys
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table
from sqlalchemy.engine import URL, make_url

from bot.cli.database import open_database, operator_name
from bot.cli.options import PROG_NAME, JsonOption
from bot.cli.output import local_time, print_json, stdout_console
from bot.config import get_settings
from bot.db import session_scope
from bot.i18n import N_, _, format_number, ngettext
from bot.services.errors import ServiceError
from bot.services.retention import (
    DEFAULT_RETENTION,
    MINIMUM_RETENTION,
    PurgePlan,
    backup_sqlite,
    plan_purge,
    purge,
    restore_sqlite,
)
from models import utcnow

# What each count of a purge is, in the order of `PurgeCounts`.
KIND_LABELS = {
    "pupils": N_("Pupils who left the school"),
    "guardians": N_("Guardians without a child in the school"),
    "accounts": N_("Their accounts"),
    "links": N_("Links between pupils and guardians"),
    "family_chats": N_("Family chats linked to the bot"),
    "link_codes": N_("Letter codes"),
    "portal_links": N_("Portal links"),
    "outbox_messages": N_("E-mails of the outbox"),
    "reminders": N_("Automatic reminders"),
    "phone_checks": N_("Phone numbers shared with the bot"),
    "help_requests": N_("Help requests made anonymous (kept)"),
    "audit_events": N_("Audit events stripped of personal data (kept)"),
}

YesOption = Annotated[
    bool, typer.Option("--yes", "-y", help=_("Do it without asking (for cron and scripts)."))
]


def register(app: typer.Typer) -> None:
    """Add `purge`, `backup` and `restore` to the command line."""
    app.command(
        "purge",
        help=_(
            "Delete the pupils who left and the guardians without a child for longer than the "
            "retention (one school year: {days} days), with their accounts, codes, chats and "
            "e-mails; the audit log is kept without their personal data. Asks for "
            "confirmation on a terminal; elsewhere (cron) it needs --yes."
        ).format(days=DEFAULT_RETENTION.days),
    )(purge_command)
    app.command(
        "backup",
        help=_(
            "Copy the SQLite database to FILE, safely while the bot runs. For PostgreSQL, "
            "prints the pg_dump command to use."
        ),
    )(backup_command)
    app.command(
        "restore",
        help=_(
            "Replace the SQLite database by the backup FILE, after checking it; the current "
            "database is kept beside it (.before-restore-…). Stop the bot and the workers "
            "first."
        ),
    )(restore_command)


def purge_command(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help=_("Show what would be deleted, change nothing."))
    ] = False,
    older_than: Annotated[
        int,
        typer.Option(
            "--older-than",
            metavar="DAYS",
            help=_("The retention, in days (at least {minimum}).").format(
                minimum=MINIMUM_RETENTION.days
            ),
        ),
    ] = DEFAULT_RETENTION.days,
    yes: YesOption = False,
    as_json: JsonOption = False,
) -> None:
    """Delete the data of the families gone for longer than the retention."""
    retention = timedelta(days=older_than)
    with open_database() as engine:
        with session_scope(engine) as session:
            plan = plan_purge(session, now=utcnow(), retention=retention)
        if as_json and (dry_run or plan.empty or not yes):
            print_json(_plan_dict(plan, done=False))
        elif not as_json:
            _print_plan(plan)
        if dry_run or plan.empty:
            if not as_json:
                stdout_console().print(
                    _("Nothing to purge.") if plan.empty else _("Simulation: nothing was changed.")
                )
            return
        _confirm(plan, yes=yes)
        with session_scope(engine) as session:
            done = purge(
                session, now=plan.now, retention=retention, expected=plan, actor=operator_name()
            )
    if as_json:
        print_json(_plan_dict(done, done=True))
        return
    total = done.counts.total
    stdout_console().print(
        ngettext(
            "Purge done: {count} row deleted or stripped of personal data.",
            "Purge done: {count} rows deleted or stripped of personal data.",
            total,
        ).format(count=format_number(total))
    )


def _confirm(plan: PurgePlan, *, yes: bool) -> None:
    """Go on if `yes` or the operator agrees on a terminal; else stop, having changed nothing.
    Without a terminal (cron) and without --yes, refuse: a purge is never implicit."""
    if yes:
        return
    if not sys.stdin.isatty():
        raise ServiceError(_("nothing was done: add --yes to confirm without a terminal."))
    total = plan.counts.total
    question = ngettext(
        "Delete or strip {count} row for good?",
        "Delete or strip these {count} rows for good?",
        total,
    ).format(count=format_number(total))
    if not typer.confirm(question, default=False):
        stdout_console().print(_("Nothing was done."))
        raise typer.Exit(1)


def _plan_dict(plan: PurgePlan, *, done: bool) -> dict[str, Any]:
    return {
        "done": done,
        "retention_days": plan.retention_days,
        "cutoff": plan.cutoff.isoformat(),
        "counts": plan.counts.as_dict(),
        "schools": [
            {
                "uai": school.uai,
                "name": school.name,
                "pupils": school.pupils,
                "guardians": school.guardians,
                "help_requests": school.help_requests,
            }
            for school in plan.schools
        ],
    }


def _print_plan(plan: PurgePlan) -> None:
    console = stdout_console()
    console.print(
        _("Retention: {days} days — what left the school before {cutoff} goes.").format(
            days=format_number(plan.retention_days), cutoff=local_time(plan.cutoff, get_settings())
        )
    )
    if plan.empty:
        return
    kinds = Table(_("What"), _("Rows"), title=_("The purge"))
    for kind, count in plan.counts.as_dict().items():
        if count:
            kinds.add_row(_(KIND_LABELS[kind]), format_number(count))
    console.print(kinds)
    if plan.schools:
        schools = Table("UAI", _("School"), _("Pupils"), _("Guardians"), _("Help requests"))
        for school in plan.schools:
            schools.add_row(
                school.uai,
                school.name,
                format_number(school.pupils),
                format_number(school.guardians),
                format_number(school.help_requests),
            )
        console.print(schools)


# --- Backup and restore -----------------------------------------------------------------------


FileArgument = Annotated[Path, typer.Argument(help=_("The backup file."), metavar="FILE")]


def _sqlite_path(url: URL) -> Path | None:
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return None
    return Path(url.database)


def _libpq_url(url: URL) -> str:
    """The address pg_dump and pg_restore take: no driver, no password (PGPASSWORD or
    ~/.pgpass give it), quoted for a shell."""
    plain = URL.create(
        "postgresql",
        username=url.username,
        host=url.host,
        port=url.port,
        database=url.database,
        query=url.query,
    )
    return "'" + plain.render_as_string(hide_password=False).replace("'", "'\\''") + "'"


def _postgresql_refusal(url: URL, command: str) -> ServiceError:
    if command == "backup":
        tool = "pg_dump --format=custom --no-owner --file=FILE " + _libpq_url(url)
    else:
        tool = (
            "pg_restore --clean --if-exists --no-owner --dbname="
            + _libpq_url(url)
            + f" FILE && {PROG_NAME} db upgrade"
        )
    return ServiceError(
        _(
            "the database is PostgreSQL: use its own tool, with the password in PGPASSWORD or "
            "~/.pgpass (see docs/OPERATIONS.md): {command}"
        ).format(command=tool)
    )


def backup_command(file: FileArgument, as_json: JsonOption = False) -> None:
    """Copy the database to FILE, safely while the bot runs."""
    settings = get_settings()
    url = make_url(settings.sqlalchemy_url)
    database = _sqlite_path(url)
    if database is None:
        raise _postgresql_refusal(url, "backup")
    saved = backup_sqlite(database, file)
    if as_json:
        print_json({"file": str(saved.path), "revision": saved.revision, "bytes": saved.size})
        return
    stdout_console().print(
        _("Backup written: {file} ({size} bytes, schema {revision}).").format(
            file=saved.path, size=format_number(saved.size), revision=saved.revision
        )
    )


def restore_command(
    file: FileArgument, yes: YesOption = False, as_json: JsonOption = False
) -> None:
    """Replace the database by a backup, after checking it."""
    settings = get_settings()
    url = make_url(settings.sqlalchemy_url)
    database = _sqlite_path(url)
    if database is None:
        raise _postgresql_refusal(url, "restore")
    if not yes:
        if not sys.stdin.isatty():
            raise ServiceError(_("nothing was done: add --yes to confirm without a terminal."))
        question = _(
            "Replace the database {database} by {file}? The bot and the workers must be stopped."
        ).format(database=database, file=file)
        if not typer.confirm(question, default=False):
            stdout_console().print(_("Nothing was done."))
            raise typer.Exit(1)
    settings.ensure_data_dir()
    restored, kept = restore_sqlite(database, file, now=utcnow())
    with open_database():  # upgrades the schema of an older backup
        pass
    if as_json:
        print_json(
            {
                "restored": str(restored.path),
                "revision": restored.revision,
                "previous_database": str(kept) if kept else None,
            }
        )
        return
    console = stdout_console()
    console.print(
        _("Database restored from {file} (schema {revision}, upgraded if older).").format(
            file=restored.path, revision=restored.revision
        )
    )
    if kept:
        console.print(_("The previous database is kept in {path}.").format(path=kept))
