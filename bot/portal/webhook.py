"""Webhook mode: the address Telegram posts updates to (checked at start), and the portal's
route that receives them, checks Telegram's secret token and queues them for the bot."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import ipaddress
import json
import logging
import re
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from starlette.requests import ClientDisconnect, Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from telegram import Bot, Update
from telegram.ext import ExtBot

from bot.config import Settings
from bot.i18n import _
from bot.portal.security import client_address
from bot.services.errors import ServiceError

log = logging.getLogger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
# What Telegram accepts as a secret token (Bot API, setWebhook).
SECRET_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,256}")
# An update is a few kilobytes; a megabyte is far beyond any, and caps what a stranger can send.
MAX_UPDATE_BYTES = 1024 * 1024
# Telegram's cloud posts only to these ports (a local Bot API server, to any).
TELEGRAM_WEBHOOK_PORTS = frozenset({443, 80, 88, 8443})
TELEGRAM_CLOUD_HOST = "api.telegram.org"
# What the route may be: a plain path (Starlette would read « {…} » as a parameter).
_PATH_PATTERN = re.compile(r"(/[A-Za-z0-9._~-]+)+/?")
# Telegram retries an update it thinks undelivered (our answer lost on the way): the last ids
# received, so that a retry is answered 200 and not handled twice.
_RECENT_UPDATES = 1000
# Tells Telegram (and the proxy) when to retry while the bot starts or stops.
_RETRY_AFTER_SECONDS = "5"


class WebhookSettingsError(ServiceError):
    """TELEGRAM_WEBHOOK_URL or TELEGRAM_WEBHOOK_SECRET cannot work; the message says why and
    what to change."""


@dataclass(frozen=True)
class WebhookEndpoint:
    """Where Telegram posts the updates (`url`), the portal's route for it (`path`), and the
    secret token it sends with each."""

    url: str
    path: str
    secret: str = field(repr=False)


def derived_secret(token: str) -> str:
    """A secret token derived from the bot token: the same at every start and on every host
    without being stored, and a new one when @BotFather issues a new token. 43 characters."""
    digest = hmac.new(token.encode(), b"educonnect telegram webhook secret", hashlib.sha256)
    return base64.urlsafe_b64encode(digest.digest()).decode("ascii").rstrip("=")


def _is_local(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def webhook_endpoint(
    settings: Settings, *, taken: Callable[[str], bool] = lambda path: False
) -> WebhookEndpoint:
    """The webhook of `settings` (TELEGRAM_WEBHOOK_URL set), checked: an https URL (http only
    for this machine), a port Telegram posts to, a plain path the portal's pages do not use
    (`taken`), a valid secret. Raises WebhookSettingsError saying what to change.

    The updates arrive at the portal's server in the bot's process, on PORTAL_BIND; with
    PORTAL_IN_BOT=false, `bot.portal.server` still serves there for the webhook."""
    url = (settings.telegram_webhook_url or "").strip()
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.scheme not in ("https", "http") or not host:
        raise WebhookSettingsError(
            _(
                "TELEGRAM_WEBHOOK_URL must be the public address Telegram posts to, such as "
                "https://ent.example.fr/telegram/webhook, not « {url} »."
            ).format(url=url)
        )
    if parts.scheme == "http" and not _is_local(host):
        raise WebhookSettingsError(
            _(
                "TELEGRAM_WEBHOOK_URL must start with https:// (Telegram posts only over "
                "HTTPS; plain http is allowed for this machine only): « {url} »."
            ).format(url=url)
        )
    cloud = urlsplit(settings.telegram_base_url).hostname == TELEGRAM_CLOUD_HOST
    if cloud and _is_local(host):
        raise WebhookSettingsError(
            _(
                "TELEGRAM_WEBHOOK_URL: Telegram's servers cannot reach « {url} », an address of "
                "this machine; give the public https address of the reverse proxy."
            ).format(url=url)
        )
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        port = -1
    if port < 0 or (cloud and port not in TELEGRAM_WEBHOOK_PORTS):
        raise WebhookSettingsError(
            _(
                "TELEGRAM_WEBHOOK_URL: Telegram posts only to the ports 443, 80, 88 or 8443, "
                "not to « {url} »; let the reverse proxy listen on one of them."
            ).format(url=url)
        )
    path = parts.path
    if parts.query or parts.fragment or not _PATH_PATTERN.fullmatch(path) or taken(path):
        raise WebhookSettingsError(
            _(
                "TELEGRAM_WEBHOOK_URL needs a path of its own, such as /telegram/webhook "
                "(letters, digits, « - », « _ », « . », no « ? »), that none of the portal's "
                "pages uses: « {path} » cannot be used."
            ).format(path=path or "/")
        )
    return WebhookEndpoint(url=url, path=path, secret=_secret(settings))


def _secret(settings: Settings) -> str:
    configured = settings.telegram_webhook_secret
    secret = configured.get_secret_value().strip() if configured else ""
    if not secret:
        return derived_secret(settings.telegram_bot_token or "")
    if not SECRET_PATTERN.fullmatch(secret):
        # The value itself is never repeated: it is a secret.
        raise WebhookSettingsError(
            _(
                "TELEGRAM_WEBHOOK_SECRET must be 1 to 256 characters among A-Z, a-z, 0-9, "
                "« _ » and « - » (its current value has {length} characters, some of them "
                "not allowed or too many); leave it unset to derive one from the bot token."
            ).format(length=len(secret))
        )
    return secret


@dataclass
class WebhookReceiver:
    """What the webhook route hands the updates to: the application's update queue. Closed
    (503, Telegram retries later) until the application runs and from when it stops, so that
    no update is accepted that nobody would handle."""

    endpoint: WebhookEndpoint
    bot: Bot
    update_queue: asyncio.Queue[Any]
    accepting: bool = False
    received: int = 0
    _recent: deque[int] = field(default_factory=lambda: deque(maxlen=_RECENT_UPDATES))

    def open(self) -> None:
        """Accept updates from now on."""
        self.accepting = True

    def close(self) -> None:
        """Refuse updates from now on (503): Telegram keeps them for the next start."""
        self.accepting = False

    def is_secret(self, presented: str | None) -> bool:
        """Whether the header carries the secret, compared in constant time."""
        if presented is None:
            return False
        # Starlette decodes headers as latin-1: encoding back never fails.
        expected = self.endpoint.secret.encode("ascii")
        return hmac.compare_digest(presented.encode("latin-1"), expected)

    def put(self, update: Update) -> bool:
        """Queue `update` if the receiver is open; a retried update is not queued twice."""
        # No await between the check and the queueing: once `close()` ran, nothing more
        # reaches the queue behind the application's stop signal.
        if not self.accepting:
            return False
        if update.update_id not in self._recent:
            self._recent.append(update.update_id)
            if isinstance(self.bot, ExtBot):
                # The inline buttons' cached data, as the polling updater does.
                self.bot.insert_callback_data(update)
            self.update_queue.put_nowait(update)
            self.received += 1
        return True


def _answer(status: int, text: str, **headers: str) -> Response:
    return PlainTextResponse(text, status_code=status, headers=headers or None)


def _unavailable() -> Response:
    return _answer(503, "not accepting updates now", **{"Retry-After": _RETRY_AFTER_SECONDS})


async def _read_body(request: Request) -> bytes | None:
    """The body, or None beyond MAX_UPDATE_BYTES (announced or sent)."""
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > MAX_UPDATE_BYTES):
        return None
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > MAX_UPDATE_BYTES:
            return None
    return bytes(body)


def _parse_update(body: bytes, bot: Bot) -> Update | None:
    """The update in `body`, or None when it is not a JSON Telegram update."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):  # UnicodeDecodeError included; « [[[[… » nested deep
        return None
    update_id = data.get("update_id") if isinstance(data, dict) else None
    if not isinstance(update_id, int) or isinstance(update_id, bool):
        return None
    try:
        return Update.de_json(data, bot)
    except Exception as error:  # a malformed object anywhere inside: PTB raises many kinds
        # One line, not a traceback: the body is the sender's mistake, not ours.
        log.warning("webhook: update %s could not be read (%r)", update_id, error)
        return None


async def receive_update(request: Request) -> Response:
    """Queue the update Telegram posts: 403 without the secret (before reading anything), 400
    for what is not a JSON update, 503 while the bot is not running, else 200 at once."""
    receiver: WebhookReceiver = request.app.state.webhook
    if not receiver.is_secret(request.headers.get(SECRET_HEADER)):
        log.warning(
            "webhook: refused a request without the secret token from %s",
            client_address(request),
        )
        return _answer(403, "forbidden")
    if not receiver.accepting:
        return _unavailable()
    try:
        body = await _read_body(request)
    except ClientDisconnect:
        return _answer(400, "incomplete request")
    if body is None:
        return _answer(413, "too large for an update")
    update = _parse_update(body, receiver.bot)
    if update is None:
        return _answer(400, "not a JSON Telegram update")
    if not receiver.put(update):
        return _unavailable()
    return _answer(200, "ok")


def webhook_route(path: str) -> Route:
    """The route of the webhook, POST only, at the URL's path."""
    return Route(path, receive_update, methods=["POST"], name="telegram-webhook")
