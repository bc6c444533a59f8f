"""Settings read from the environment (and a `.env` file), with the names the README documents."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

from cryptography.fernet import Fernet
from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


@dataclass(frozen=True)
class SecretKeySource:
    """Where the deployment's Fernet key (it encrypts the schools' document passwords) comes
    from: the key itself (SECRET_KEY), else a file kept outside the data folder
    (SECRET_KEY_FILE, e.g. a container secret), else `data_dir/secret.key`, created on first
    use. The first two keep the key out of the data folder's backups."""

    data_dir: Path
    value: str | None = field(default=None, repr=False)
    file: Path | None = None


class Settings(BaseSettings):
    """Everything the process needs to know about its surroundings."""

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    telegram_bot_token: str | None = None
    telegram_base_url: str = "https://api.telegram.org/bot"
    telegram_base_file_url: str = "https://api.telegram.org/file/bot"
    # Webhook mode (behind a reverse proxy): the public https address Telegram posts each
    # update to, served by the portal's server at the same path. Unset: the bot polls.
    telegram_webhook_url: str | None = None
    # The X-Telegram-Bot-Api-Secret-Token Telegram sends with each update (1-256 characters
    # A-Z a-z 0-9 _ -); unset, one is derived from the bot token (bot.portal.webhook).
    telegram_webhook_secret: SecretStr | None = Field(default=None, repr=False)

    data_dir: Path = Path("./data")
    database_url: str | None = None

    smtp_host: str | None = None
    smtp_port: int = 587
    smtp_username: str | None = None
    smtp_password: str | None = Field(default=None, repr=False)
    smtp_security: Literal["starttls", "tls", "none"] = "starttls"
    mail_from: str = "EduConnect <no-reply@educonnect.invalid>"
    # "maildir" writes every e-mail into DATA_DIR/maildir instead of sending it: the offline
    # sandbox's default, and a real bot's only with this explicit choice (see bot.runner).
    mail_transport: Literal["smtp", "maildir"] | None = None

    portal_url: str = "http://127.0.0.1:8080"
    portal_bind: str = "127.0.0.1:8080"
    # The reverse proxies whose X-Forwarded-For uvicorn believes (comma-separated addresses or
    # networks, « * » for any): the portal throttles per client address, so behind a proxy it
    # must be the proxy's address, or every family would count as the proxy.
    forwarded_allow_ips: str = "127.0.0.1,::1"
    # False when `educonnect-bot portal` serves the portal in processes of its own: the bot's
    # process then serves none (its port stays free, its CPU goes to the bot).
    portal_in_bot: bool = True

    timezone: str = "Europe/Paris"

    # The document passwords' key: SECRET_KEY wins over SECRET_KEY_FILE, which wins over
    # DATA_DIR/secret.key (see SecretKeySource).
    secret_key: SecretStr | None = None
    secret_key_file: Path | None = None

    @field_validator("secret_key")
    @classmethod
    def _a_fernet_key(cls, value: SecretStr | None) -> SecretStr | None:
        """Refuse a malformed key at start, not at the first PDF."""
        if value is not None and value.get_secret_value():
            try:
                Fernet(value.get_secret_value().strip().encode("ascii"))
            except (ValueError, UnicodeEncodeError) as error:
                raise ValueError(
                    "SECRET_KEY must be a Fernet key (32 url-safe base64-encoded bytes)"
                ) from error
        return value

    @property
    def secret_key_source(self) -> SecretKeySource:
        """Where the document passwords' key comes from, by precedence."""
        value = self.secret_key.get_secret_value().strip() if self.secret_key else None
        return SecretKeySource(self.data_dir, value or None, self.secret_key_file)

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def sqlalchemy_url(self) -> str:
        """The database URL, defaulting to a SQLite file in the data folder."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'educonnect.db').resolve()}"

    def ensure_data_dir(self) -> Path:
        """Create the data folder on demand, readable by its owner only."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.data_dir, 0o700)
        return self.data_dir


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The settings of this process, read once."""
    return Settings()
