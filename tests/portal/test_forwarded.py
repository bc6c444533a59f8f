"""FORWARDED_ALLOW_IPS: behind a reverse proxy, the portal believes X-Forwarded-For only from the
proxy's address, set in the settings (environment or `.env`) and given to uvicorn."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine

from bot.config import Settings
from bot.portal.server import start_portal


def test_the_setting_is_read_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("FORWARDED_ALLOW_IPS", "10.0.0.5")
    assert Settings(data_dir=tmp_path).forwarded_allow_ips == "10.0.0.5"
    monkeypatch.delenv("FORWARDED_ALLOW_IPS")
    assert Settings(data_dir=tmp_path).forwarded_allow_ips == "127.0.0.1,::1"


async def test_uvicorn_believes_forwarded_addresses_only_from_the_configured_proxy(
    monkeypatch: pytest.MonkeyPatch, sqlite_engine: Engine, tmp_path: Path
) -> None:
    # Not in the environment: a `.env` file or the settings object is enough.
    monkeypatch.delenv("FORWARDED_ALLOW_IPS", raising=False)
    settings = Settings(
        data_dir=tmp_path / "data",
        portal_bind="127.0.0.1:0",
        smtp_host=None,
        forwarded_allow_ips="192.0.2.254",
    )
    running = await start_portal(settings, sqlite_engine)
    assert running is not None
    try:
        assert running.server.config.forwarded_allow_ips == "192.0.2.254"
        async with httpx.AsyncClient(base_url=running.local_url) as client:
            # 127.0.0.1 is not the proxy now: its X-Forwarded-For is not believed.
            page = await client.get("/health", headers={"X-Forwarded-For": "198.51.100.1"})
            assert page.status_code == 200
    finally:
        await running.stop()
