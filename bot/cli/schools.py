"""`school add`, `school list` and `director invite`: registering schools and inviting their
directors."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

import typer
from rich.table import Table

from bot.cli.database import open_database, operator_name
from bot.cli.options import PROG_NAME, JsonOption, UaiArgument
from bot.cli.output import local_time, print_json, stdout_console
from bot.config import get_settings
from bot.db import session_scope
from bot.i18n import _, format_number, ngettext
from bot.services.schools import add_school, create_invitation, get_school_by_uai, list_schools

school_app = typer.Typer(help=_("Schools: add, list."), no_args_is_help=True)
director_app = typer.Typer(help=_("Directors: invite."), no_args_is_help=True)


def register(app: typer.Typer) -> None:
    """Add the `school` and `director` groups to the command line."""
    app.add_typer(school_app, name="school")
    app.add_typer(director_app, name="director")


@school_app.command("add", help=_("Register a school."))
def school_add(
    uai: UaiArgument,
    name: Annotated[str, typer.Argument(help=_("Name of the school."))],
    city: Annotated[str | None, typer.Option("--city", help=_("Town of the school."))] = None,
    as_json: JsonOption = False,
) -> None:
    """Register a school."""
    with open_database() as engine, session_scope(engine) as session:
        school = add_school(session=session, uai=uai, name=name, city=city, actor=operator_name())
    if as_json:
        print_json({"id": school.id, "uai": school.uai, "name": school.name, "city": school.city})
        return
    if school.city:
        added = _("School added: {uai} — {name} ({city}).")
    else:
        added = _("School added: {uai} — {name}.")
    stdout_console().print(added.format(uai=school.uai, name=school.name, city=school.city))
    stdout_console().print(
        _("Invite its director with: {command}").format(
            command=f"{PROG_NAME} director invite {school.uai}"
        )
    )


@school_app.command("list", help=_("List the registered schools."))
def school_list(as_json: JsonOption = False) -> None:
    """List the registered schools."""
    with open_database() as engine, session_scope(engine) as session:
        schools = list_schools(session)
    if as_json:
        print_json([{"id": s.id, "uai": s.uai, "name": s.name, "city": s.city} for s in schools])
        return
    console = stdout_console()
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
    settings = get_settings()
    with open_database() as engine, session_scope(engine) as session:
        school = get_school_by_uai(session, uai)
        assert school.id is not None
        code, expires_at = create_invitation(
            session=session, school_id=school.id, actor=operator_name(), ttl=timedelta(days=days)
        )
    start = f"/start {code}"
    if as_json:
        print_json(
            {
                "school": {"uai": school.uai, "name": school.name},
                "code": code,
                "expires_at": expires_at.isoformat(),
                "start_command": start,
            }
        )
        return
    console = stdout_console()
    console.print(_("Invitation for {school} ({uai})").format(school=school.name, uai=school.uai))
    console.print(_("Code: {code}").format(code=code))
    console.print(
        _("Valid once only, until {moment} (time zone {timezone}).").format(
            moment=local_time(expires_at, settings), timezone=settings.timezone
        )
    )
    console.print(_("The director sends this message to the bot:"))
    console.print(start, style="bold")
    console.print(_("This code is shown only once: it is not stored in clear."))
