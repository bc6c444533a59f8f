"""`db check`: the invariants the data must satisfy at rest, checked on the database of the
settings; exit code 1 when any is broken (for monitoring and after an incident)."""

from __future__ import annotations

import typer

from bot.cli.database import open_database
from bot.cli.options import JsonOption
from bot.cli.output import print_json, stdout_console
from bot.cli.process import db_app
from bot.i18n import _, format_number, ngettext
from bot.services.integrity import INVARIANTS, Violation, check_invariants

# The ids shown per violation on the terminal (--json lists up to MAX_LISTED_IDS).
SHOWN_IDS = 10


def register() -> None:
    """Add `check` to the `db` group."""
    db_app.command(
        "check",
        help=_(
            "Check the invariants of the data (whole imports, accounts in a possible state, "
            "no e-mail lost, secrets hashed…); exit code 1 if any is broken."
        ),
    )(check_command)


def check_command(as_json: JsonOption = False) -> None:
    """Check the invariants of the data; exit code 1 if any is broken."""
    with open_database() as engine:
        violations = check_invariants(engine)
    if as_json:
        print_json(
            {
                "ok": not violations,
                "checks": len(INVARIANTS),
                "violations": [violation.to_dict() for violation in violations],
            }
        )
    else:
        _print_report(violations)
    if violations:
        raise typer.Exit(1)


def _ids_text(violation: Violation) -> str:
    shown = ", ".join(str(id_) for id_ in violation.ids[:SHOWN_IDS])
    if violation.count > SHOWN_IDS:
        shown += ", …"
    return ngettext(
        "{count} row of « {table} »: {ids}",
        "{count} rows of « {table} »: {ids}",
        violation.count,
    ).format(count=format_number(violation.count), table=violation.subject, ids=shown)


def _print_report(violations: list[Violation]) -> None:
    console = stdout_console()
    checks = format_number(len(INVARIANTS))
    if not violations:
        console.print(
            _("Database consistent: {checks} invariants checked, none broken.").format(
                checks=checks
            )
        )
        return
    console.print(
        ngettext(
            "{count} invariant broken (of {checks} checked):",
            "{count} invariants broken (of {checks} checked):",
            len(violations),
        ).format(count=format_number(len(violations)), checks=checks),
        style="bold",
    )
    for violation in violations:
        console.print()
        console.print(
            _("✗ {code} — {ids}").format(code=violation.code, ids=_ids_text(violation)),
            style="bold",
        )
        console.print("  " + violation.description)
        console.print("  " + _("What to do: {advice}").format(advice=violation.advice))
