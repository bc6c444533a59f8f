"""The portal without the bot (`educonnect-bot portal`): the same Starlette application, served
by uvicorn in one process or in N worker processes sharing one listening socket."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import threading
from collections.abc import AsyncIterator, Callable, Generator
from contextlib import AbstractAsyncContextManager
from typing import Any

import uvicorn
from sqlalchemy import Engine
from starlette.applications import Starlette
from uvicorn.config import STARTUP_FAILURE
from uvicorn.supervisors import Multiprocess

from bot.config import Settings, get_settings
from bot.db import make_engine
from bot.i18n import _
from bot.portal.app import create_portal
from bot.portal.server import (
    PURGE_INTERVAL_SECONDS,
    listening_socket,
    parse_bind,
    purge_once,
)
from bot.services.errors import ServiceError

log = logging.getLogger(__name__)

# What each worker process imports: uvicorn calls it there (spawned processes share no objects).
APP_FACTORY = "bot.portal.standalone:create_app"
# How many workers share this machine, told by the parent to the workers it spawns.
WORKERS_VARIABLE = "EDUCONNECT_PORTAL_WORKERS"

# One line per event on stderr, in every process (uvicorn applies it in each worker it spawns).
LOG_CONFIG: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"line": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {
        "stderr": {
            "class": "logging.StreamHandler",
            "formatter": "line",
            "stream": "ext://sys.stderr",
        }
    },
    "root": {"level": "INFO", "handlers": ["stderr"]},
    # Alembic announces its plugins at import: noise in every worker.
    "loggers": {"httpx": {"level": "WARNING"}, "alembic": {"level": "WARNING"}},
}


class PortalStartError(ServiceError):
    """The portal cannot be served; the message says why and what to change."""


def _disposing(engine: Engine) -> Callable[[Starlette], AbstractAsyncContextManager[None]]:
    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            # Connections closed, not dropped: PostgreSQL logs no « unexpected EOF ».
            engine.dispose()

    return lifespan


def password_slots(workers: int, cores: int) -> int:
    """The argon2 checks one of `workers` processes runs at once: the machine's cores shared
    between them, so that N processes never run N times as many checks as there are cores
    (each check is memory-hard: more at once only slow every one of them down)."""
    return max(1, cores // max(1, workers))


def create_app() -> Starlette:
    """The portal of one worker process, on the settings of the environment (and .env)."""
    settings = get_settings()
    engine = make_engine(settings.sqlalchemy_url)
    app = create_portal(settings, engine)
    app.router.lifespan_context = _disposing(engine)
    workers = os.environ.get(WORKERS_VARIABLE, "1")
    slots = password_slots(int(workers) if workers.isdigit() else 1, len(os.sched_getaffinity(0)))
    app.state.portal.password_slots = asyncio.Semaphore(slots)
    return app


def listen(bind: str) -> socket.socket:
    """The listening socket on `bind` (HOST:PORT), made by the parent before any worker
    starts, so that a busy or malformed address is one clear error, not N tracebacks."""
    try:
        host, port = parse_bind(bind)
    except ValueError:
        raise PortalStartError(
            _(
                "the portal's address must be HOST:PORT (e.g. 127.0.0.1:8080), not « {bind} »."
            ).format(bind=bind)
        ) from None
    try:
        return listening_socket(host, port)
    except OSError as error:
        raise PortalStartError(
            _(
                "cannot listen on {address}: {reason}. Another process holds it (the bot, "
                "unless PORTAL_IN_BOT=false, or another portal): stop it, or choose another "
                "address with --bind or PORTAL_BIND."
            ).format(address=bind, reason=error.strerror or error)
        ) from None


class HourlyPurge:
    """The hourly purge of one `educonnect-bot portal` command, in a thread of its parent
    process: once per command, whatever its number of workers. Several commands (machines)
    and the bot may purge too: the deletes are idempotent, and a concurrent one finds the
    rows already gone."""

    def __init__(self, engine: Engine, interval: float = PURGE_INTERVAL_SECONDS) -> None:
        self.engine = engine
        self.interval = interval
        self.runs = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="portal-purge", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop waiting for the next purge (one in progress finishes, up to `timeout`)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                purged = purge_once(self.engine)
            except Exception:
                log.exception("portal: could not purge stale throttles and links")
            else:
                if purged:
                    log.info("portal: %d stale throttle and link rows purged", purged)
            self.runs += 1
            self._stop.wait(self.interval)


class _ForegroundServer(uvicorn.Server):
    """uvicorn in this process, stopped by SIGINT or SIGTERM like the worker command: the
    requests in flight finish and the process exits 0 (uvicorn would raise the signal again
    once stopped, and the process would die of it)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        previous = {
            signum: signal.signal(signum, self.handle_exit)
            for signum in (signal.SIGINT, signal.SIGTERM)
        }
        try:
            yield
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)


def server_config(settings: Settings, workers: int) -> uvicorn.Config:
    """uvicorn's configuration, as the bot's embedded server has it."""
    return uvicorn.Config(
        APP_FACTORY,
        factory=True,
        workers=workers,
        loop="asyncio",
        lifespan="on",
        # The access log would write every URL, and confirmation links carry their token.
        access_log=False,
        log_config=LOG_CONFIG,
        server_header=False,
        # X-Forwarded-For is believed only from FORWARDED_ALLOW_IPS (this host by default).
        proxy_headers=True,
        forwarded_allow_ips=settings.forwarded_allow_ips,
        timeout_graceful_shutdown=5,
        # A spawned worker first imports the program it was started from (`educonnect-bot`:
        # the whole CLI) before it can answer the supervisor's pings: uvicorn's 5 s would
        # kill, and start again, every worker of a busy machine.
        timeout_worker_healthcheck=30,
    )


def serve(settings: Settings, sock: socket.socket, engine: Engine, *, workers: int) -> None:
    """Serve the portal on `sock` until SIGINT or SIGTERM: in this process for one worker,
    else in `workers` spawned processes under uvicorn's supervisor (which restarts a worker
    that dies), with the hourly purge on `engine` in this process. Raises PortalStartError
    when the workers cannot start."""
    config = server_config(settings, workers)  # logging configured from here on
    os.environ[WORKERS_VARIABLE] = str(workers)  # inherited by the workers spawned below
    purge = HourlyPurge(engine)
    purge.start()
    try:
        if workers == 1:
            _serve_here(config, sock)
            return
        supervisor = Multiprocess(config, sockets=[sock])
        supervisor.run()
        if any(process.exitcode == STARTUP_FAILURE for process in supervisor.processes):
            raise PortalStartError(_not_started())
    finally:
        purge.stop()


def _serve_here(config: uvicorn.Config, sock: socket.socket) -> None:
    try:
        _ForegroundServer(config).run(sockets=[sock])
    except SystemExit as stopped:  # uvicorn's way of saying the app did not load
        if stopped.code == STARTUP_FAILURE:
            raise PortalStartError(_not_started()) from None
        raise


def _not_started() -> str:
    return _("the portal's processes could not start; the log above says why.")
