"""What every handler reaches through its context: the settings and the service runner.

Services are plain synchronous functions taking a `session`; handlers call them through
`context.db.run(...)`, which runs them in a worker thread inside one transaction, so the
event loop never waits on the database and handlers never see SQL.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, Concatenate, ParamSpec, TypeVar

from sqlalchemy import Engine
from sqlmodel import Session
from telegram.ext import Application, CallbackContext, ExtBot

from bot.config import Settings
from bot.db import session_scope

P = ParamSpec("P")
T = TypeVar("T")


class ServiceRunner:
    """Runs service functions off the event loop, each in its own transaction."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # Services take the session as their first parameter, so `P` is the rest of their
    # signature and mypy checks the keywords a handler passes.
    def call(
        self, function: Callable[Concatenate[Session, P], T], /, *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """Run `function(session, *args, **kwargs)` in a transaction, in this thread."""
        with session_scope(self.engine) as session:
            return function(session, *args, **kwargs)

    async def run(
        self, function: Callable[Concatenate[Session, P], T], /, *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """Run `function(session, *args, **kwargs)` in a transaction, in a worker thread."""
        return await asyncio.to_thread(self.call, function, *args, **kwargs)

    def session(self) -> Session:
        """A bare session, for the rare caller that manages its own transaction."""
        return Session(self.engine, expire_on_commit=False)


class EduConnectApplication(Application):
    """PTB's Application, carrying our settings and service runner."""

    settings: Settings
    db: ServiceRunner


def educonnect(application: Application[Any, Any, Any, Any, Any, Any]) -> EduConnectApplication:
    """`application` as ours, with its settings and service runner (for code that holds the
    application, not a context: background tasks and jobs)."""
    assert isinstance(application, EduConnectApplication)
    return application


class BotContext(CallbackContext[ExtBot[None], dict[str, Any], dict[str, Any], dict[str, Any]]):
    """The context handlers receive: PTB's, plus `settings` and `db`."""

    @property
    def settings(self) -> Settings:
        return self._app().settings

    @property
    def db(self) -> ServiceRunner:
        return self._app().db

    def _app(self) -> EduConnectApplication:
        return educonnect(self.application)
