"""The first step `send` and `letters` share: the classes of a school planned, the plan
shown, the operator's confirmation; and their progress bar and common options."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table
from sqlalchemy import Engine

from bot.cli.output import print_json, stderr_console, stdout_console
from bot.db import session_scope
from bot.i18n import _, format_number
from bot.services.distribution import KIND_LABELS, SKIP_LABELS, DistributionPreview
from bot.services.errors import ServiceError
from bot.services.roster import ResolvedScope, ScopeKind, UnknownClassError
from bot.services.schools import get_school_by_uai

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
        stdout_console().print(_("Nothing was done."))
        raise typer.Exit(1)


def _plan_scopes(function: Callable[..., Any], **kwargs: Any) -> Any:
    """Call a planning function, turning an unknown class into a sentence naming the known
    ones (the chat shows them as buttons)."""
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


def plan_and_confirm(
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
    console = stdout_console()
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
            print_json(result | not_done)
        else:
            console.print(nobody)
        return None
    if as_json and not yes:
        print_json(result | not_done)
    _confirm(question(count), yes=yes)
    return school_id, preview, result


@contextmanager
def progress_bar(label: str) -> Iterator[Callable[[int, int], None]]:
    """A callback (done, total) drawing a bar on a terminal's stderr, else doing nothing."""
    console = stderr_console()
    if not console.is_terminal:
        yield lambda done, total: None
        return
    with Progress(
        TextColumn(label), BarColumn(), MofNCompleteColumn(), console=console, transient=True
    ) as bar:
        task = bar.add_task(label, total=None)
        yield lambda done, total: bar.update(task, completed=done, total=total)
