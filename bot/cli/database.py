"""The database a command works on, and who the audit log names for what it does."""

from __future__ import annotations

import getpass
import os
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine

from bot.config import get_settings
from bot.db import make_engine, upgrade_schema


def operator_name() -> str:
    """Who the audit log names for a CLI action."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # no login name in some containers
        return f"cli:uid{os.getuid()}"


@contextmanager
def open_database() -> Iterator[Engine]:
    """The database of the settings, private data folder created, schema upgraded."""
    settings = get_settings()
    settings.ensure_data_dir()
    engine = make_engine(settings.sqlalchemy_url)
    try:
        upgrade_schema(engine)
        yield engine
    finally:
        engine.dispose()
