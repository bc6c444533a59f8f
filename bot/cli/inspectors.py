"""`inspector invite`, `inspector list` and `inspector remove`: the district's inspector (IEN)
follows a list of schools, read-only, from Telegram."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

import typer
from rich.table import Table

from bot.cli.database import open_database, operator_name
from bot.cli.options import PROG_NAME, JsonOption
from bot.cli.output import local_time, print_json, stdout_console
from bot.config import get_settings
from bot.db import session_scope
from bot.i18n import _, format_number, ngettext
from bot.services.schools import (
    create_inspector_invitation,
    list_inspectors,
    remove_inspector,
)

inspector_app = typer.Typer(
    help=_("Inspectors: invite for a list of schools, list, remove."), no_args_is_help=True
)

UaisArgument = Annotated[
    list[str], typer.Argument(help=_("UAI of each school of the district, for example 0751234X."))
]


def register(app: typer.Typer) -> None:
    """Add the `inspector` group to the command line."""
    app.add_typer(inspector_app, name="inspector")


@inspector_app.command(
    "invite", help=_("Create a single-use invitation for the inspector of a list of schools.")
)
def inspector_invite(
    uais: UaisArgument,
    days: Annotated[
        int, typer.Option("--days", min=1, max=90, help=_("How long it is valid, in days."))
    ] = 7,
    as_json: JsonOption = False,
) -> None:
    """Create a single-use invitation for the inspector of a list of schools."""
    settings = get_settings()
    with open_database() as engine, session_scope(engine) as session:
        invite = create_inspector_invitation(
            session, uais=uais, actor=operator_name(), ttl=timedelta(days=days)
        )
    start = f"/start {invite.code}"
    if as_json:
        print_json(
            {
                "schools": [{"uai": s.uai, "name": s.name} for s in invite.schools],
                "code": invite.code,
                "expires_at": invite.expires_at.isoformat(),
                "start_command": start,
            }
        )
        return
    console = stdout_console()
    console.print(
        ngettext(
            "Invitation for the inspector of {count} school:",
            "Invitation for the inspector of {count} schools:",
            len(invite.schools),
        ).format(count=format_number(len(invite.schools)))
    )
    for school in invite.schools:
        console.print(f"  {school.uai} — {school.name}", highlight=False)
    console.print(_("Code: {code}").format(code=invite.code))
    console.print(
        _("Valid once only, until {moment} (time zone {timezone}).").format(
            moment=local_time(invite.expires_at, settings), timezone=settings.timezone
        )
    )
    console.print(_("The inspector sends this message to the bot:"))
    console.print(start, style="bold")
    console.print(_("This code is shown only once: it is not stored in clear."))


@inspector_app.command("list", help=_("List the inspectors and the schools they follow."))
def inspector_list(as_json: JsonOption = False) -> None:
    """List the inspectors and the schools they follow."""
    settings = get_settings()
    with open_database() as engine, session_scope(engine) as session:
        inspectors = list_inspectors(session)
    if as_json:
        print_json(
            [
                {
                    "telegram_user_id": entry.telegram_user_id,
                    "name": entry.display_name,
                    "since": entry.since.isoformat(),
                    "schools": [{"uai": s.uai, "name": s.name} for s in entry.schools],
                }
                for entry in inspectors
            ]
        )
        return
    console = stdout_console()
    if not inspectors:
        console.print(
            _("No inspector yet. Invite one with: {program} inspector invite UAI [UAI …]").format(
                program=PROG_NAME
            )
        )
        return
    table = Table(_("Telegram id"), _("Name"), _("Since"), _("Schools"))
    for entry in inspectors:
        table.add_row(
            str(entry.telegram_user_id),
            entry.display_name or "",
            local_time(entry.since, settings),
            "\n".join(f"{s.uai} {s.name}" for s in entry.schools),
        )
    console.print(table)


@inspector_app.command(
    "remove", help=_("Stop an inspector following some schools (all of them without a UAI).")
)
def inspector_remove(
    telegram_id: Annotated[int, typer.Argument(help=_("The inspector's Telegram id."))],
    uais: Annotated[
        list[str] | None, typer.Argument(help=_("UAI of the schools to remove (default: all)."))
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Stop an inspector following some schools, or all of them."""
    with open_database() as engine, session_scope(engine) as session:
        removed = remove_inspector(
            session, telegram_user_id=telegram_id, uais=uais or [], actor=operator_name()
        )
    if as_json:
        print_json({"telegram_user_id": telegram_id, "removed": removed})
        return
    if removed == 0:
        stdout_console().print(
            _("No inspector with the Telegram id {telegram_id} follows these schools.").format(
                telegram_id=telegram_id
            )
        )
        return
    stdout_console().print(
        ngettext(
            "The inspector {telegram_id} no longer follows {count} school.",
            "The inspector {telegram_id} no longer follows {count} schools.",
            removed,
        ).format(telegram_id=telegram_id, count=format_number(removed))
    )
