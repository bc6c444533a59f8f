"""What the commands print: the consoles, JSON for scripts, the one-line error, and the
numbers, dates and sizes written the operator's way."""

from __future__ import annotations

import json
import sys
from datetime import datetime
from typing import Any

from rich.console import Console

from bot.config import Settings
from bot.i18n import _, format_date, format_number, format_percentage, format_time


def stdout_console() -> Console:
    """The console of the command's answer."""
    # Markup off: school names and file names are shown as they are, brackets included.
    width = None if sys.stdout.isatty() else 120
    return Console(markup=False, highlight=False, width=width)


def stderr_console() -> Console:
    """The console of what is said beside the answer: progress, the worker's state."""
    return Console(stderr=True, markup=False, highlight=False)


def print_json(data: Any) -> None:
    """The answer for scripts (--json): indented, accents as they are."""
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2, default=str) + "\n")


def fail(message: str, *, as_json: bool = False, **details: Any) -> None:
    """One line on stderr, whatever the message carries; with --json, the same as JSON."""
    line = " ".join(message.split())
    sys.stderr.write(_("Error: {message}").format(message=line) + "\n")
    if as_json:
        print_json({"error": line, **details})


def local_time(moment: datetime, settings: Settings) -> str:
    """A moment as a date and time in the time zone of the settings."""
    return _("{date} at {time}").format(
        date=format_date(moment, tz=settings.tz, fmt="short"),
        time=format_time(moment, tz=settings.tz),
    )


def percent(value: float) -> str:
    """A percentage given in [0, 100], with one decimal."""
    return format_percentage(value / 100, decimals=1)


def megabytes(size: int) -> str:
    """A size limit in MB: binary megabytes when it is a whole number of them, else decimal."""
    mib = 1024 * 1024
    value = size / mib if size % mib == 0 else size / 1_000_000
    return format_number(int(value) if value == int(value) else round(value, 1))
