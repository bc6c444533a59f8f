"""`school add|list`, `director invite|list|remove` and `invitation list|revoke`: registering
schools, inviting their directors, removing one, and revoking an invitation not used yet."""

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
from bot.services.schools import (
    add_school,
    create_invitation,
    get_school_by_uai,
    list_directors,
    list_invitations,
    list_schools,
    remove_director,
    revoke_invitation,
)

school_app = typer.Typer(help=_("Schools: add, list."), no_args_is_help=True)
director_app = typer.Typer(help=_("Directors: invite, list, remove."), no_args_is_help=True)
invitation_app = typer.Typer(
    help=_("Director invitations not used yet: list, revoke."), no_args_is_help=True
)

TelegramIdArgument = Annotated[int, typer.Argument(help=_("The director's Telegram id."))]


def register(app: typer.Typer) -> None:
    """Add the `school`, `director` and `invitation` groups to the command line."""
    app.add_typer(school_app, name="school")
    app.add_typer(director_app, name="director")
    app.add_typer(invitation_app, name="invitation")


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


@director_app.command("list", help=_("List the directors of a school."))
def director_list(uai: UaiArgument, as_json: JsonOption = False) -> None:
    """List the directors of a school, with their Telegram ids (what `director remove` takes)."""
    settings = get_settings()
    with open_database() as engine, session_scope(engine) as session:
        directors = list_directors(session, uai=uai)
    if as_json:
        print_json(
            [
                {
                    "telegram_user_id": entry.telegram_user_id,
                    "name": entry.display_name,
                    "since": entry.since.isoformat(),
                }
                for entry in directors
            ]
        )
        return
    console = stdout_console()
    if not directors:
        console.print(
            _("No director for this school. Invite one with: {command}").format(
                command=f"{PROG_NAME} director invite {uai.strip().upper()}"
            )
        )
        return
    table = Table(_("Telegram id"), _("Name"), _("Since"))
    for entry in directors:
        table.add_row(
            str(entry.telegram_user_id), entry.display_name or "", local_time(entry.since, settings)
        )
    console.print(table)


@director_app.command(
    "remove", help=_("Remove a director from a school: their next message is refused.")
)
def director_remove(
    uai: UaiArgument, telegram_id: TelegramIdArgument, as_json: JsonOption = False
) -> None:
    """Remove a director from one school (their other schools stay theirs)."""
    with open_database() as engine, session_scope(engine) as session:
        school = get_school_by_uai(session, uai)
        removed = remove_director(
            session, uai=school.uai, telegram_user_id=telegram_id, actor=operator_name()
        )
    if as_json:
        print_json({"uai": school.uai, "telegram_user_id": telegram_id, "removed": removed})
        return
    if removed:
        text = _(
            "{telegram_id} no longer directs {school} ({uai}): the bot refuses their next "
            "message and resets their menu."
        )
    else:
        text = _("{telegram_id} does not direct {school} ({uai}): nothing to remove.")
    stdout_console().print(
        text.format(telegram_id=telegram_id, school=school.name, uai=school.uai), highlight=False
    )


@invitation_app.command(
    "list", help=_("List the director invitations still valid (never their code).")
)
def invitation_list(
    uai: Annotated[
        str | None, typer.Argument(help=_("UAI of one school (default: every school)."))
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """List the director invitations not used, expired or revoked yet, by id."""
    settings = get_settings()
    with open_database() as engine, session_scope(engine) as session:
        pending = list_invitations(session, uai=uai)
    if as_json:
        print_json(
            [
                {
                    "id": entry.id,
                    "uai": entry.uai,
                    "school": entry.school_name,
                    "created_at": entry.created_at.isoformat(),
                    "expires_at": entry.expires_at.isoformat(),
                }
                for entry in pending
            ]
        )
        return
    console = stdout_console()
    if not pending:
        console.print(_("No invitation is waiting to be used."))
        return
    table = Table("Id", "UAI", _("School"), _("Created"), _("Expires"))
    for entry in pending:
        table.add_row(
            str(entry.id),
            entry.uai,
            entry.school_name,
            local_time(entry.created_at, settings),
            local_time(entry.expires_at, settings),
        )
    console.print(table)


@invitation_app.command("revoke", help=_("Revoke a director invitation not used yet."))
def invitation_revoke(
    invitation_id: Annotated[
        int, typer.Argument(help=_("The invitation's id (« invitation list » shows it)."))
    ],
    as_json: JsonOption = False,
) -> None:
    """Make a director invitation stop working before it is used."""
    with open_database() as engine, session_scope(engine) as session:
        revoked = revoke_invitation(session, invitation_id=invitation_id, actor=operator_name())
    if as_json:
        print_json({"id": invitation_id, "revoked": revoked})
        return
    if revoked:
        text = _("Invitation {id} revoked: the bot refuses its code.")
    else:
        text = _("Invitation {id} was already used or revoked: nothing to revoke.")
    stdout_console().print(text.format(id=invitation_id), highlight=False)
