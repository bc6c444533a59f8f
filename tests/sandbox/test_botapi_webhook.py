"""The emulator's webhook: setWebhook checked as Telegram does, each update posted in order with
the secret token's header and retried until the bot accepts it, getUpdates refused with 409
meanwhile, and polling again after deleteWebhook."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import AsyncIterator, Generator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bot.sandbox.botapi import BotApiServer
from bot.sandbox.botapi.webhook import SECRET_HEADER

pytestmark = pytest.mark.timeout(30)

SECRET = "emulator_Secret-42"


@dataclass
class Receiver:
    """A bot's webhook that refuses the first `failures` posts, then keeps what it gets."""

    failures: int = 0
    posts: list[tuple[int, str | None, int]] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def endpoint(self, request: Request) -> Response:
        update = json.loads(await request.body())
        status = 500 if self.failures > 0 else 200
        self.failures -= 1
        self.posts.append((update["update_id"], request.headers.get(SECRET_HEADER), status))
        self.arrived.set()
        return Response(status_code=status)

    def accepted(self) -> list[int]:
        return [update_id for update_id, _secret, status in self.posts if status == 200]


class _QuietServer(uvicorn.Server):
    """uvicorn leaving the test process's signals alone."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[Receiver, str]]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    receiver = Receiver()
    app = Starlette(routes=[Route("/hook", receiver.endpoint, methods=["POST"])])
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="off")
    server = _QuietServer(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    yield receiver, f"http://127.0.0.1:{port}/hook"
    server.should_exit = True
    with contextlib.suppress(asyncio.CancelledError):
        await task


@pytest.fixture
async def api() -> AsyncIterator[BotApiServer]:
    async with BotApiServer() as server:
        yield server


async def call(server: BotApiServer, method: str, **params: Any) -> httpx.Response:
    data = {k: v if isinstance(v, str) else json.dumps(v) for k, v in params.items()}
    async with httpx.AsyncClient() as client:
        return await client.post(f"{server.base_url}{server.token}/{method}", data=data)


async def until(condition: Any, timeout: float = 15.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline
        await asyncio.sleep(0.02)


async def test_set_webhook_is_refused_as_telegram_refuses_it(api: BotApiServer) -> None:
    for url in ("http://ent.example.fr/hook", "ftp://127.0.0.1/hook", "https:///hook"):
        answer = await call(api, "setWebhook", url=url)
        assert answer.status_code == 400 and "HTTPS URL" in answer.json()["description"]
    answer = await call(api, "setWebhook", url="https://ent.example.fr/h", secret_token="a b")
    assert answer.status_code == 400 and "secret token" in answer.json()["description"]
    assert api.webhook_url == ""


async def test_updates_are_posted_in_order_with_the_secret_and_retried_until_accepted(
    api: BotApiServer, receiver: tuple[Receiver, str]
) -> None:
    hook, url = receiver
    hook.failures = 2
    claire = api.new_user("Claire")
    for text in ("/start", "/aide", "/etat"):
        await claire.send_text(text)
    answer = await call(api, "setWebhook", url=url, secret_token=SECRET)
    assert answer.json() == {"ok": True, "result": True}

    # The emulator counts a delivery once it has the bot's answer, just after the bot.
    await until(lambda: len(api.webhook_deliveries) == 5)
    ids = [update["update_id"] for update in api.updates]
    assert hook.accepted() == ids
    # The first one twice refused, then taken; never the second before the first.
    assert [post[0] for post in hook.posts] == [ids[0], ids[0], ids[0], ids[1], ids[2]]
    assert {post[1] for post in hook.posts} == {SECRET}
    assert api.pending_update_count == 0
    assert [d.accepted for d in api.webhook_deliveries] == [False, False, True, True, True]

    polled = await call(api, "getUpdates")
    assert polled.status_code == 409 and "webhook is active" in polled.json()["description"]
    info = (await call(api, "getWebhookInfo")).json()["result"]
    assert info["url"] == url and info["pending_update_count"] == 0
    assert "500" in info["last_error_message"]

    # Back to polling: the next update waits for getUpdates instead of being posted.
    assert (await call(api, "deleteWebhook")).json()["result"] is True
    await claire.send_text("/classes")
    polled = await call(api, "getUpdates")
    assert [u["message"]["text"] for u in polled.json()["result"]] == ["/classes"]
    assert len(hook.posts) == 5


async def test_a_webhook_nobody_answers_keeps_the_updates_pending(api: BotApiServer) -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nobody listens there
    await call(api, "setWebhook", url=f"http://127.0.0.1:{port}/hook")
    await api.new_user("Claire").send_text("/etat")
    await until(lambda: len(api.webhook_deliveries) >= 2)
    assert api.pending_update_count == 1
    info = (await call(api, "getWebhookInfo")).json()["result"]
    assert info["last_error_message"] == "Connection refused"
