"""The operator's command line (`educonnect-bot`, or `python -m bot`): schools, director
invitations, ONDE imports, statistics, credentials by e-mail or on paper, running the bot and
its outbox worker, and schema upgrades.

Its text goes through `bot.i18n` like the bot's, in French: the operator's language does not
follow the shell's `LANG`, so scripts and documentation see the same words everywhere. Each
domain's commands live in their own module and are added to `app` here, in the order `--help`
lists them.
"""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

import typer
from pydantic import ValidationError
from sqlalchemy.exc import ArgumentError, OperationalError

from bot.cli import inspectors, integrity, letters, maintenance, process, roster, schools, sending
from bot.cli.options import PROG_NAME
from bot.cli.output import fail
from bot.config import get_settings
from bot.i18n import DEFAULT_LANGUAGE, _, set_language
from bot.services.errors import ServiceError
from bot.services.roster import RosterFileError

ERROR_LOG = "educonnect-cli.log"

# Help texts are translated when the modules are imported, in the default language (French).
app = typer.Typer(
    name=PROG_NAME,
    help=_("EduConnect assistant: administration of schools, directors and ONDE imports."),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
# `--help` lists the commands in this order, then the groups (school, director, db).
schools.register(app)
inspectors.register(app)
roster.register(app)
sending.register(app)
letters.register(app)
process.register(app)
maintenance.register(app)
integrity.register()


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
    """A usage error in one sentence, the common ones in French, pointing to --help."""
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
    set_language(DEFAULT_LANGUAGE)
    args = list(argv) if argv is not None else sys.argv[1:]
    as_json = "--json" in args
    command = typer.main.get_command(app)
    try:
        result = command.main(args=args, prog_name=PROG_NAME, standalone_mode=False)
    except typer.TyperException as error:  # click's usage errors, vendored by typer
        if type(error).__name__ == "NoArgsIsHelpError":
            return 2  # the help has just been shown: that is the answer
        fail(_usage_message(error), as_json=as_json)
        return int(getattr(error, "exit_code", 2))
    except typer.Abort:
        fail(_("interrupted."), as_json=as_json)
        return 130
    except RosterFileError as error:
        issues = [roster.issue_dict(issue) for issue in error.issues]
        fail(str(error), as_json=as_json, rejected=issues)
        return 1
    except ServiceError as error:
        fail(str(error), as_json=as_json)
        return 1
    except ValidationError as error:
        problems = "; ".join(
            _("{setting}: {problem}").format(
                setting=".".join(str(p) for p in item["loc"]).upper(), problem=item["msg"]
            )
            for item in error.errors()
        )
        fail(_("invalid configuration — {problems}").format(problems=problems), as_json=as_json)
        return 1
    except ArgumentError as error:
        fail(
            _("DATABASE_URL is not a valid database address: {error}").format(error=error),
            as_json=as_json,
        )
        return 1
    except OperationalError as error:
        reason = str(error.orig).strip().splitlines()[0] if error.orig else _("unknown error")
        fail(_("the database cannot be reached: {reason}").format(reason=reason), as_json=as_json)
        return 1
    except OSError as error:
        where = f" ({error.filename})" if error.filename else ""
        fail(f"{error.strerror or error}{where}", as_json=as_json)
        return 1
    except Exception as error:
        log = _log_unexpected()
        kind = type(error).__name__
        if log:
            unexpected = _("unexpected error ({kind}); the details are in {log}.")
        else:
            unexpected = _("unexpected error ({kind}).")
        fail(unexpected.format(kind=kind, log=log), as_json=as_json)
        return 1
    return result if isinstance(result, int) else 0


def main() -> None:
    """The console script `educonnect-bot`."""
    sys.exit(run())
