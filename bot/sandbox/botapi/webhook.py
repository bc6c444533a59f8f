"""Telegram's side of a webhook: setWebhook, deleteWebhook, getWebhookInfo, and the delivery
of each update, in order, by a POST to the webhook's URL, retried until the bot accepts it."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import logging
import re
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

from bot.sandbox.botapi.errors import bad_request
from bot.sandbox.botapi.model import now
from bot.sandbox.botapi.params import Params
from bot.sandbox.botapi.state import EmulatorState

_LOGGER = logging.getLogger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
_SECRET_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,256}")
# Telegram waits longer and longer between retries; the emulator keeps the same shape, in
# fractions of a second, so that tests of a restart stay short.
RETRY_DELAYS = (0.1, 0.2, 0.5, 1.0)
DELIVERY_TIMEOUT = 10.0


@dataclass(frozen=True)
class WebhookDelivery:
    """One POST of an update to the webhook: the bot's HTTP status, or why it failed."""

    update_id: int
    url: str
    status: int | None
    error: str | None
    time: float

    @property
    def accepted(self) -> bool:
        """Whether the bot took the update (a 2xx answer), which confirms it."""
        return self.status is not None and 200 <= self.status < 300


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class WebhookMethods(EmulatorState):
    """The webhook methods and the delivery task (started and stopped with the server)."""

    def __init__(self, **identity: Any) -> None:
        super().__init__(**identity)
        self.webhook_secret: str | None = None
        self.webhook_max_connections = 40
        self.webhook_last_error: tuple[int, str] | None = None
        """``(date, message)`` of the last failed delivery, as getWebhookInfo reports it."""
        self.webhook_deliveries: list[WebhookDelivery] = []
        """Every POST of an update to the webhook, oldest first: what tests inspect."""
        self._webhook_changed = asyncio.Event()
        self._delivery_task: asyncio.Task[None] | None = None
        self._delivery_client: httpx.AsyncClient | None = None

    # -- lifecycle (called by the server) ---------------------------------------------------

    def _start_delivery(self) -> None:
        # Events bind to the loop that first waits on them; a restart may use another loop.
        self._webhook_changed = asyncio.Event()
        self._delivery_task = asyncio.create_task(self._deliver_forever(), name="webhook")

    async def _stop_delivery(self) -> None:
        task, self._delivery_task = self._delivery_task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        client, self._delivery_client = self._delivery_client, None
        if client is not None:
            await client.aclose()

    def _webhook_was_changed(self) -> None:
        changed, self._webhook_changed = self._webhook_changed, asyncio.Event()
        changed.set()

    # -- the Bot API methods ----------------------------------------------------------------

    async def _set_webhook(self, params: Params) -> bool:
        url = (params.str_opt("url") or "").strip()
        if url:
            parts = urlsplit(url)
            host = parts.hostname or ""
            # Telegram posts over HTTPS only; the emulator also posts over plain HTTP to this
            # machine, where the bot under test listens without a certificate.
            if not host or not (
                parts.scheme == "https" or (parts.scheme == "http" and _loopback(host))
            ):
                raise bad_request("bad webhook: An HTTPS URL must be provided for webhook")
        secret = params.str_opt("secret_token")
        if secret is not None and not _SECRET_TOKEN.fullmatch(secret):
            raise bad_request("secret token contains unallowed characters")
        max_connections = params.int_opt("max_connections")
        if max_connections is not None and not 1 <= max_connections <= 100:
            raise bad_request("bad webhook: max_connections must be between 1 and 100")
        allowed = params.json_opt("allowed_updates")
        if isinstance(allowed, list):
            self._allowed_updates = frozenset(str(a) for a in allowed) or None
        if params.bool_opt("drop_pending_updates"):
            self._pending.clear()
        self.webhook_url = url
        self.webhook_secret = secret if url else None
        self.webhook_max_connections = max_connections or 40
        self.webhook_last_error = None
        # A getUpdates waiting ends with its 409; the delivery starts over at once.
        self._wake_pollers()
        self._webhook_was_changed()
        return True

    async def _delete_webhook(self, params: Params) -> bool:
        if params.bool_opt("drop_pending_updates"):
            self._pending.clear()
        self.webhook_url = ""
        self.webhook_secret = None
        self.webhook_last_error = None
        self._webhook_was_changed()
        return True

    async def _get_webhook_info(self, params: Params) -> dict[str, Any]:
        info: dict[str, Any] = {
            "url": self.webhook_url,
            "has_custom_certificate": False,
            "pending_update_count": len(self._pending),
        }
        if self.webhook_url:
            info["max_connections"] = self.webhook_max_connections
        if self.webhook_last_error is not None:
            info["last_error_date"], info["last_error_message"] = self.webhook_last_error
        if self._allowed_updates:
            info["allowed_updates"] = sorted(self._allowed_updates)
        return info

    # -- delivery -----------------------------------------------------------------------------

    async def _deliver_forever(self) -> None:
        """Post the oldest pending update until the bot accepts it, then the next: one at a
        time, so the bot receives them in order, as polling would."""
        failures = 0
        while True:
            changed = self._updates_changed
            batch = self._collect(1) if self.webhook_url else []
            if not batch:
                failures = 0
                await changed.wait()
                continue
            update = batch[0]
            delivery = await self._post(self.webhook_url, self.webhook_secret, update)
            self.webhook_deliveries.append(delivery)
            if delivery.accepted:
                failures = 0
                if self._pending and self._pending[0]["update_id"] == update["update_id"]:
                    self._pending.popleft()
                continue
            self.webhook_last_error = (now(), delivery.error or f"HTTP {delivery.status}")
            delay = RETRY_DELAYS[min(failures, len(RETRY_DELAYS) - 1)]
            failures += 1
            # setWebhook or deleteWebhook cuts the wait short, as Telegram tries again at once.
            webhook_changed = self._webhook_changed
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(webhook_changed.wait(), delay)
            if webhook_changed.is_set():
                failures = 0

    async def _post(self, url: str, secret: str | None, update: dict[str, Any]) -> WebhookDelivery:
        client = self._delivery_client
        if client is None:  # made at the first post: most runs never set a webhook
            client = self._delivery_client = httpx.AsyncClient(timeout=DELIVERY_TIMEOUT)
        headers = {"Content-Type": "application/json"}
        if secret:
            headers[SECRET_HEADER] = secret
        update_id = int(update["update_id"])
        try:
            answer = await client.post(url, content=json.dumps(update), headers=headers)
        except httpx.HTTPError as failure:
            # Telegram's own words for the usual failures of getWebhookInfo.last_error_message.
            reason = (
                "Connection refused"
                if isinstance(failure, httpx.ConnectError)
                else f"{type(failure).__name__}: {failure}"
            )
            _LOGGER.debug("webhook: update %s not delivered: %s", update_id, reason)
            return WebhookDelivery(update_id, url, None, reason, time.time())
        status = answer.status_code
        error = None if answer.is_success else f"Wrong response from the webhook: {status}"
        return WebhookDelivery(update_id, url, status, error, time.time())
