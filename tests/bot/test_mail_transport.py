"""A real bot (a token) never writes families' credentials into a Maildir by accident: without
SMTP_HOST it refuses to start in one clear line, unless MAIL_TRANSPORT=maildir says so."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot import cli, runner
from bot.config import Settings, get_settings
from bot.i18n import use_language
from bot.services.mail import SmtpTransport, transport_from_settings
from bot.services.mail.transport import MaildirTransport

TOKEN = "123456:test-token"


def settings(tmp_path: Path, **values: object) -> Settings:
    return Settings(_env_file=None, data_dir=tmp_path / "data", **values)  # type: ignore[arg-type]


def test_a_bot_token_without_smtp_host_refuses_to_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    started: list[Settings] = []
    monkeypatch.setattr(runner, "run_bot", started.append)

    with pytest.raises(runner.RunError) as refused:
        runner.run(settings(tmp_path, telegram_bot_token=TOKEN))

    assert started == []
    message = str(refused.value)
    assert "SMTP_HOST" in message and "MAIL_TRANSPORT=maildir" in message
    assert len(message.splitlines()) == 1 and TOKEN not in message


def test_an_explicit_maildir_or_an_smtp_host_lets_the_bot_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    started: list[Settings] = []
    monkeypatch.setattr(runner, "run_bot", started.append)
    monkeypatch.setattr(runner, "configure_logging", lambda _settings: None)

    maildir = settings(tmp_path, telegram_bot_token=TOKEN, mail_transport="maildir")
    smtp = settings(tmp_path, telegram_bot_token=TOKEN, smtp_host="smtp.example.org")
    assert runner.run(maildir) == 0 and runner.run(smtp) == 0
    assert started == [maildir, smtp]


def test_mail_transport_chooses_the_transport(tmp_path: Path) -> None:
    assert isinstance(transport_from_settings(settings(tmp_path)), MaildirTransport)
    smtp = settings(tmp_path, smtp_host="smtp.example.org")
    assert isinstance(transport_from_settings(smtp), SmtpTransport)
    forced = settings(tmp_path, smtp_host="smtp.example.org", mail_transport="maildir")
    assert isinstance(transport_from_settings(forced), MaildirTransport)
    with pytest.raises(ValueError):
        settings(tmp_path, mail_transport="pigeon")


def test_a_deployments_worker_without_smtp_host_refuses_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", TOKEN)
    monkeypatch.delenv("SMTP_HOST", raising=False)
    monkeypatch.delenv("MAIL_TRANSPORT", raising=False)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.chdir(tmp_path)  # no .env here
    get_settings.cache_clear()
    try:
        with use_language("fr"):
            code = cli.run(["worker", "--once"])
    finally:
        get_settings.cache_clear()

    err = capsys.readouterr().err
    assert code != 0
    assert "SMTP_HOST" in err and "MAIL_TRANSPORT=maildir" in err
    assert not (tmp_path / "data" / "maildir").exists()
