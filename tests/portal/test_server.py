"""The portal served by uvicorn in the bot's own event loop: started with the application
(post_init), answering on PORTAL_BIND, stopped with it (post_stop); a busy address leaves the
bot running without its portal."""

from __future__ import annotations

import email
import email.policy
import logging
import mailbox
import socket
from email.message import EmailMessage
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine

from bot.app import running_portal
from bot.config import Settings
from bot.jobs import OutboxSender
from bot.portal.server import listening_socket, parse_bind, start_portal
from bot.sandbox.session import open_sandbox, sandbox_database_path
from bot.services.mail.transport import maildir_path
from models import AccountState
from tests.portal.conftest import (
    CSRF,
    LINK,
    NEW_PASSWORD,
    PortalHarness,
    mail_text,
    make_family,
)


def _settings(tmp_path: Path, bind: str = "127.0.0.1:0") -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        portal_bind=bind,
        portal_url="http://127.0.0.1:8080",
        smtp_host=None,
    )


def test_portal_bind_is_parsed() -> None:
    assert parse_bind("127.0.0.1:8080") == ("127.0.0.1", 8080)
    assert parse_bind("[::1]:8443") == ("::1", 8443)
    assert parse_bind(":8080") == ("0.0.0.0", 8080)
    with pytest.raises(ValueError):
        parse_bind("localhost")


def test_thelistening_socket_says_tcp_so_answers_never_wait_for_a_delayed_ack() -> None:
    # asyncio sets TCP_NODELAY on the connections it accepts only when the listening socket's
    # protocol is IPPROTO_TCP; with 0, every answer waited ≈ 40 ms (Nagle + delayed ACK).
    with listening_socket("127.0.0.1", 0) as sock:
        assert sock.proto == socket.IPPROTO_TCP


async def test_the_portal_serves_in_the_running_loop_and_stops(
    sqlite_engine: Engine, tmp_path: Path
) -> None:
    running = await start_portal(_settings(tmp_path), sqlite_engine)
    assert running is not None
    try:
        async with httpx.AsyncClient(base_url=running.local_url) as client:
            health = await client.get("/health")
            assert health.status_code == 200 and health.json()["database"] == "ok"
            page = await client.get("/activation?identifiant=camille.martin")
            assert page.status_code == 200 and 'value="camille.martin"' in page.text
            assert "server" not in page.headers  # uvicorn does not announce itself
    finally:
        await running.stop()
    with pytest.raises(httpx.ConnectError):
        async with httpx.AsyncClient(base_url=running.local_url) as client:
            await client.get("/health")


async def test_a_busy_address_leaves_the_bot_without_its_portal(
    sqlite_engine: Engine, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        with caplog.at_level(logging.WARNING, logger="bot.portal.server"):
            running = await start_portal(_settings(tmp_path, f"127.0.0.1:{port}"), sqlite_engine)
    assert running is None
    assert "cannot listen" in caplog.text


async def test_the_sandbox_serves_the_portal_beside_the_bot(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    settings.ensure_data_dir()
    database = sandbox_database_path(settings, demo=False)
    async with open_sandbox(settings, database) as sandbox:
        portal = running_portal(sandbox.application)
        assert portal is not None
        async with httpx.AsyncClient(base_url=portal.local_url) as client:
            assert (await client.get("/health")).status_code == 200
    assert running_portal(sandbox.application) is None
    assert portal.task.done()


async def test_an_activation_over_the_network_with_the_link_from_the_maildir(
    engine: Engine, tmp_path: Path
) -> None:
    """What `make run` does: the portal and the outbox sender in one loop, the e-mail in the
    Maildir of the data folder, the link followed from there."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings = _settings(tmp_path, f"127.0.0.1:{port}").model_copy(
        update={"portal_url": f"http://127.0.0.1:{port}"}
    )
    running = await start_portal(settings, engine)
    assert running is not None
    harness = PortalHarness(engine, tmp_path)
    family = make_family(harness)
    sender = OutboxSender.from_settings(settings, engine, name="test")
    try:
        async with httpx.AsyncClient(base_url=running.local_url) as browser:
            page = await browser.get(f"/activation?identifiant={family.identifier}")
            token = CSRF.search(page.text)[1]  # type: ignore[index]
            reply = await browser.post(
                "/activation",
                data={
                    "csrf_token": token,
                    "identifier": family.identifier,
                    "password": family.password,
                },
            )
            assert reply.headers["location"] == "/activation/finaliser"
            page = await browser.get("/activation/finaliser")
            token = CSRF.search(page.text)[1]  # type: ignore[index]
            reply = await browser.post(
                "/activation/finaliser",
                data={
                    "csrf_token": token,
                    "new_password": NEW_PASSWORD,
                    "confirm_password": NEW_PASSWORD,
                    "email": "famille@example.org",
                    "birth_date": "14/03/2017",
                },
            )
            assert reply.status_code == 303
            assert await sender.drain_once() == 1
            [message] = mailbox.Maildir(maildir_path(settings), create=False)
            parsed = email.message_from_bytes(message.as_bytes(), policy=email.policy.default)
            assert isinstance(parsed, EmailMessage)
            link = LINK.search(mail_text(parsed))[0]  # type: ignore[index]
            assert link.startswith(running.local_url + "/confirmer/")
            page = await browser.get(link)
            token = CSRF.search(page.text)[1]  # type: ignore[index]
            reply = await browser.post(link, data={"csrf_token": token})
            assert reply.status_code == 200
        assert harness.account(family).state == AccountState.ACTIVATED
    finally:
        await sender.transport.close()
        await running.stop()
        await harness.aclose()
