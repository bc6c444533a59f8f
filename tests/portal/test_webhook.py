"""The webhook route on the portal's server (403 without the secret token, 400 for what is not
an update, 503 while the bot is not running, 200 and queued otherwise) and the checks of
TELEGRAM_WEBHOOK_URL / TELEGRAM_WEBHOOK_SECRET at start."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import Engine
from telegram import Update
from telegram.ext import ExtBot

from bot.config import Settings
from bot.i18n import use_language
from bot.portal.app import create_portal, serves_page
from bot.portal.server import start_portal
from bot.portal.webhook import (
    MAX_UPDATE_BYTES,
    SECRET_HEADER,
    SECRET_PATTERN,
    WebhookEndpoint,
    WebhookReceiver,
    WebhookSettingsError,
    derived_secret,
    webhook_endpoint,
)

TOKEN = "123456789:AAtest-token-for-the-webhook-tests_0123"
SECRET = "the-Secret_token-0123456789"
PATH = "/telegram/webhook"


def settings(tmp_path: Path, **values: Any) -> Settings:
    values.setdefault("telegram_webhook_url", f"https://ent.example.fr{PATH}")
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        telegram_bot_token=TOKEN,
        data_dir=tmp_path,
        portal_url="http://portal.test",
        **values,
    )


def an_update(update_id: int = 500, text: str = "/etat") -> dict[str, Any]:
    return {
        "update_id": update_id,
        "message": {
            "message_id": 7,
            "date": 1_700_000_000,
            "chat": {"id": 42, "type": "private", "first_name": "Claire"},
            "from": {"id": 42, "is_bot": False, "first_name": "Claire"},
            "text": text,
        },
    }


class Harness:
    def __init__(self, receiver: WebhookReceiver, client: httpx.AsyncClient) -> None:
        self.receiver = receiver
        self.client = client

    async def post(
        self, body: bytes | dict[str, Any], secret: str | None = SECRET
    ) -> httpx.Response:
        headers: dict[str, str | bytes] = {"Content-Type": "application/json"}
        if secret is not None:
            # As bytes: a forged header may hold what is not ASCII.
            headers[SECRET_HEADER] = secret.encode("latin-1")
        content = body if isinstance(body, bytes) else json.dumps(body).encode()
        return await self.client.post(PATH, content=content, headers=headers)

    def queued(self) -> list[Update]:
        queue = self.receiver.update_queue
        return [queue.get_nowait() for _ in range(queue.qsize())]


@pytest.fixture
async def webhook(sqlite_engine: Engine, tmp_path: Path) -> AsyncIterator[Harness]:
    endpoint = WebhookEndpoint(url=f"https://ent.example.fr{PATH}", path=PATH, secret=SECRET)
    receiver = WebhookReceiver(endpoint=endpoint, bot=ExtBot(TOKEN), update_queue=asyncio.Queue())
    receiver.open()
    app = create_portal(
        settings(tmp_path), sqlite_engine, session_secret="s" * 64, webhook=receiver
    )
    transport = httpx.ASGITransport(app=app, client=("149.154.167.197", 443))
    async with httpx.AsyncClient(transport=transport, base_url="http://portal.test") as client:
        yield Harness(receiver, client)


# --- the route ------------------------------------------------------------------------------


FORGED_SECRETS = (None, "", "wrong", SECRET[:-1], SECRET + "x", SECRET.upper(), "é" + SECRET[1:])
NOT_UPDATES = (
    b"",
    b"{not json",
    b"\xff\xfe\x00binary",
    b"[]",
    b'"update"',
    b'{"message": {"text": "/etat"}}',
    b'{"update_id": "500"}',
    b'{"update_id": true}',
    b'{"update_id": 500, "message": "not an object"}',
    b'{"update_id": 500, "message": {"chat": 42}}',
    b"[" * 100_000,
    b'{"update_id": 500, "message": ' + b'{"reply_to_message": ' * 5_000 + b"{}" + b"}" * 5_001,
)


async def test_webhook_without_the_secret_token_is_refused_before_reading_the_body(
    webhook: Harness,
) -> None:
    for secret in FORGED_SECRETS:
        for body in (an_update(), b"{not json at all"):  # refused before it is parsed: 403
            answer = await webhook.post(body, secret=secret)
            assert answer.status_code == 403, (secret, body)
    assert webhook.queued() == []


async def test_webhook_refuses_what_is_not_a_json_update_with_400(webhook: Harness) -> None:
    for body in NOT_UPDATES:
        answer = await webhook.post(body)
        assert answer.status_code == 400, body
        assert "Traceback" not in answer.text and len(answer.text) < 100
    assert webhook.queued() == []


async def test_webhook_refuses_a_body_larger_than_any_update(webhook: Harness) -> None:
    huge = an_update(text="x" * MAX_UPDATE_BYTES)
    assert (await webhook.post(huge)).status_code == 413
    assert webhook.queued() == []


async def test_webhook_queues_a_good_update_once_and_answers_200(webhook: Harness) -> None:
    answer = await webhook.post(an_update(500))
    assert answer.status_code == 200
    # Telegram posts an update again when it missed our answer: handled once.
    assert (await webhook.post(an_update(500))).status_code == 200
    assert (await webhook.post(an_update(501, "/aide"))).status_code == 200
    queued = webhook.queued()
    assert [u.update_id for u in queued] == [500, 501]
    assert queued[0].effective_message is not None
    assert queued[0].effective_message.text == "/etat"
    assert webhook.receiver.received == 2


async def test_webhook_answers_503_while_the_bot_is_not_running(webhook: Harness) -> None:
    webhook.receiver.close()
    answer = await webhook.post(an_update())
    assert answer.status_code == 503 and answer.headers["Retry-After"].isdigit()
    assert webhook.queued() == []
    # Without the secret, still 403: a stranger learns nothing about the bot's state.
    assert (await webhook.post(an_update(), secret=None)).status_code == 403
    webhook.receiver.open()
    assert (await webhook.post(an_update())).status_code == 200


async def test_the_webhook_path_takes_only_posts_and_the_portal_keeps_its_pages(
    webhook: Harness,
) -> None:
    assert (await webhook.client.get(PATH)).status_code == 405
    assert (await webhook.client.get("/")).status_code == 200


async def test_a_portal_without_webhook_has_no_webhook_route(
    sqlite_engine: Engine, tmp_path: Path
) -> None:
    app = create_portal(settings(tmp_path), sqlite_engine, session_secret="s" * 64)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://portal.test") as client:
        answer = await client.post(
            PATH, content=json.dumps(an_update()), headers={SECRET_HEADER: SECRET}
        )
    assert answer.status_code == 404


# --- the settings, checked at start ---------------------------------------------------------


def test_a_valid_webhook_url_gives_its_path_and_the_configured_secret(tmp_path: Path) -> None:
    endpoint = webhook_endpoint(
        settings(tmp_path, telegram_webhook_secret=SecretStr(SECRET)), taken=serves_page
    )
    assert endpoint.url == f"https://ent.example.fr{PATH}" and endpoint.path == PATH
    assert endpoint.secret == SECRET
    assert SECRET not in repr(endpoint)


def test_without_a_configured_secret_one_is_derived_stably_from_the_token(tmp_path: Path) -> None:
    first = webhook_endpoint(settings(tmp_path)).secret
    assert first == webhook_endpoint(settings(tmp_path)).secret == derived_secret(TOKEN)
    assert SECRET_PATTERN.fullmatch(first) and len(first) >= 40
    assert TOKEN not in first and derived_secret(TOKEN + "x") != first


@pytest.mark.parametrize(
    ("url", "base_url"),
    [
        ("http://127.0.0.1:8080/telegram/webhook", "http://127.0.0.1:8081/bot"),
        ("http://localhost:8080/telegram/webhook", "http://localhost:8081/bot"),
        ("https://ent.example.fr:8443/telegram/webhook", "https://api.telegram.org/bot"),
        # A local Bot API server posts to any port.
        ("https://ent.example.fr:9443/tg", "http://127.0.0.1:8081/bot"),
    ],
)
def test_local_http_addresses_and_telegram_ports_are_accepted(
    tmp_path: Path, url: str, base_url: str
) -> None:
    values = {"telegram_webhook_url": url, "telegram_base_url": base_url}
    assert webhook_endpoint(settings(tmp_path, **values), taken=serves_page).url == url


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("ent.example.fr/telegram/webhook", "https://ent.example.fr/telegram/webhook"),
        ("ftp://ent.example.fr/telegram", "public address"),
        ("http://ent.example.fr/telegram/webhook", "https://"),
        ("http://192.168.1.10/telegram/webhook", "https://"),
        ("https://127.0.0.1/telegram/webhook", "cannot reach"),
        ("https://ent.example.fr:8080/telegram/webhook", "443, 80, 88"),
        ("https://ent.example.fr:99999/telegram/webhook", "443, 80, 88"),
        ("https://ent.example.fr", "path of its own"),
        ("https://ent.example.fr/", "path of its own"),
        ("https://ent.example.fr/activation", "path of its own"),
        ("https://ent.example.fr/static/webhook", "path of its own"),
        ("https://ent.example.fr/confirmer/abc", "path of its own"),
        ("https://ent.example.fr/telegram/{token}", "path of its own"),
        ("https://ent.example.fr/telegram?bot=1", "path of its own"),
    ],
)
def test_a_webhook_url_that_cannot_work_is_refused_with_what_to_change(
    tmp_path: Path, url: str, words: str
) -> None:
    # The message ids are English; the tests read them so, whatever the catalogs say.
    with use_language("en"), pytest.raises(WebhookSettingsError) as refused:
        webhook_endpoint(settings(tmp_path, telegram_webhook_url=url), taken=serves_page)
    assert words in str(refused.value) and "TELEGRAM_WEBHOOK_URL" in str(refused.value)


@pytest.mark.parametrize("secret", ["has space", "é-accent", "semi;colon", "x" * 257])
def test_a_secret_telegram_would_refuse_is_refused_without_being_repeated(
    tmp_path: Path, secret: str
) -> None:
    with use_language("en"), pytest.raises(WebhookSettingsError) as refused:
        webhook_endpoint(settings(tmp_path, telegram_webhook_secret=SecretStr(secret)))
    message = str(refused.value)
    assert "TELEGRAM_WEBHOOK_SECRET" in message and secret not in message


async def test_with_the_portal_served_elsewhere_the_bot_still_serves_the_webhook(
    sqlite_engine: Engine, tmp_path: Path
) -> None:
    endpoint = webhook_endpoint(settings(tmp_path, telegram_webhook_secret=SecretStr(SECRET)))
    receiver = WebhookReceiver(endpoint=endpoint, bot=ExtBot(TOKEN), update_queue=asyncio.Queue())
    receiver.open()
    values = {"portal_in_bot": False, "portal_bind": "127.0.0.1:0"}
    assert await start_portal(settings(tmp_path, **values), sqlite_engine) is None
    running = await start_portal(settings(tmp_path, **values), sqlite_engine, webhook=receiver)
    assert running is not None
    try:
        async with httpx.AsyncClient(base_url=running.local_url) as client:
            answer = await client.post(PATH, json=an_update(), headers={SECRET_HEADER: SECRET})
        assert answer.status_code == 200 and receiver.update_queue.qsize() == 1
    finally:
        await running.stop()
