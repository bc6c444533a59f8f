"""Serving the portal with uvicorn inside the bot's process and event loop: started by the
application's post_init, stopped by its post_stop (and the sandbox's), one process for all.

uvicorn's own signal handling is left out: the bot (PTB's run_polling, or the sandbox) owns
Ctrl-C and SIGTERM and stops the portal through post_stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from dataclasses import dataclass

import uvicorn
from sqlalchemy import Engine

from bot.config import Settings
from bot.db import session_scope
from bot.portal.app import create_portal
from bot.portal.embedded import EmbeddedServer
from bot.portal.webhook import WebhookReceiver
from bot.services.portal import purge_stale

log = logging.getLogger(__name__)

# How often expired throttle counters and long-dead links are deleted.
PURGE_INTERVAL_SECONDS = 3600.0


def parse_bind(bind: str) -> tuple[str, int]:
    """PORTAL_BIND (« 127.0.0.1:8080 », « [::1]:8080 », « :8080 ») as (host, port)."""
    host, separator, port = bind.strip().rpartition(":")
    if not separator or not port.isdigit():
        raise ValueError(f"PORTAL_BIND must be host:port, not {bind!r}")
    host = host.strip("[]") or "0.0.0.0"
    return host, int(port)


@dataclass
class RunningPortal:
    """The portal being served, and how to stop it."""

    server: EmbeddedServer
    task: asyncio.Task[None]
    purge_task: asyncio.Task[None]
    host: str
    port: int

    @property
    def local_url(self) -> str:
        """Where it listens (the port the system chose when PORTAL_BIND asked for 0)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    async def stop(self, timeout: float = 10.0) -> None:
        """Finish the requests in flight, close the sockets, stop the purge."""
        self.purge_task.cancel()
        self.server.request_exit()
        try:
            await asyncio.wait_for(asyncio.shield(self.task), timeout)
        except TimeoutError:
            self.server.request_exit(force=True)
            self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self.task
        with contextlib.suppress(asyncio.CancelledError):
            await self.purge_task


def purge_once(engine: Engine) -> int:
    """Delete the expired throttle counters and long-dead links; how many rows went."""
    with session_scope(engine) as session:
        return purge_stale(session=session)


async def _purge_forever(engine: Engine) -> None:
    while True:
        try:
            await asyncio.to_thread(purge_once, engine)
        except Exception:
            log.exception("portal: could not purge stale throttles and links")
        await asyncio.sleep(PURGE_INTERVAL_SECONDS)


def listening_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY on accepted connections only when the
    # listening socket says TCP, and without it every answer (head and body written apart)
    # waited ≈ 40 ms for the browser's delayed ACK (measured by `python -m bench portal`).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


async def start_portal(
    settings: Settings, engine: Engine, *, webhook: WebhookReceiver | None = None
) -> RunningPortal | None:
    """Serve the portal on PORTAL_BIND in the running loop, with the route of the Telegram
    webhook in webhook mode (`webhook`); None (and an error in the log)
    when the address cannot be bound, so the bot runs on without its portal, and None when
    PORTAL_IN_BOT is false (`educonnect-bot portal` serves it in processes of its own) unless
    the webhook needs this server: the reverse proxy then sends only the webhook's path here."""
    if not settings.portal_in_bot:
        if webhook is None:
            log.info("portal: PORTAL_IN_BOT is false; `educonnect-bot portal` serves it")
            return None
        log.info("portal: PORTAL_IN_BOT is false, but the webhook is served on PORTAL_BIND")
    host, port = parse_bind(settings.portal_bind)
    try:
        # Bound here, not by uvicorn: a busy port is an error to report, not a sys.exit.
        sock = listening_socket(host, port)
    except OSError as error:
        log.warning(
            "portal: cannot listen on %s (%s); %s",
            settings.portal_bind,
            error.strerror or error,
            "the webhook cannot receive updates" if webhook else "the bot runs without it",
        )
        return None
    bound_host, bound_port = sock.getsockname()[:2]
    app = create_portal(settings, engine, webhook=webhook)
    config = uvicorn.Config(
        app,
        lifespan="off",
        # The access log would write every URL, and confirmation links carry their token.
        access_log=False,
        log_config=None,
        server_header=False,
        # X-Forwarded-For is believed only from FORWARDED_ALLOW_IPS (this host by default).
        proxy_headers=True,
        forwarded_allow_ips=settings.forwarded_allow_ips,
        timeout_graceful_shutdown=5,
    )
    server = EmbeddedServer(config)
    task = asyncio.create_task(server.serve(sockets=[sock]), name="portal")
    while not server.started and not task.done():
        await asyncio.sleep(0.01)
    if task.done():
        sock.close()
        log.error("portal: the server stopped at start: %s", task.exception())
        return None
    purge_task = asyncio.create_task(_purge_forever(engine), name="portal-purge")
    running = RunningPortal(
        server=server, task=task, purge_task=purge_task, host=bound_host, port=bound_port
    )
    log.info("portal listening on %s (public address %s)", running.local_url, settings.portal_url)
    return running
