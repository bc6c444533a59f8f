"""Where the outbox hands its e-mails over: an SMTP server (aiosmtplib, one connection reused
for many messages) per SMTP_HOST / SMTP_PORT / SMTP_SECURITY / SMTP_USERNAME / SMTP_PASSWORD,
or, without SMTP_HOST, a Maildir in the data folder (the sandbox, a laptop, the tests).

A transport says « accepted » by returning, or raises `DeliveryError` saying whether trying
again later may help (4xx replies, network trouble) or not (5xx replies, an impossible address),
with the server's own words kept for the director's summary.
"""

from __future__ import annotations

import asyncio
import mailbox
import os
import socket
import ssl
from email.utils import parseaddr
from pathlib import Path
from typing import Literal, Protocol

import aiosmtplib

from bot.config import Settings
from bot.services.mail.composition import message_id_domain

# Seconds to wait for the server at each step (connect, each command, the data).
DEFAULT_TIMEOUT = 30.0
# Without SMTP_HOST, mail is delivered under DATA_DIR in this folder.
MAILDIR_FOLDER = "maildir"
# Connections the sender keeps open to the SMTP server at once (a relay allows a few).
DEFAULT_CONNECTIONS = 3
DEFAULT_PORTS = {"starttls": 587, "tls": 465, "none": 25}

Security = Literal["starttls", "tls", "none"]


class DeliveryError(Exception):
    """A message was not accepted. `permanent`: trying again cannot help (5xx, bad address)."""

    def __init__(self, reason: str, *, permanent: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.permanent = permanent


class ServerUnavailable(DeliveryError):
    """No connection could be made (refused, timed out, TLS or login refused): no message was
    even tried, so none is to blame; everything waits for the server to come back."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason, permanent=False)


class MailTransport(Protocol):
    """Hands raw messages to whoever delivers them."""

    @property
    def description(self) -> str:
        """Where mail goes, for the logs (never a password)."""
        ...

    @property
    def parallelism(self) -> int:
        """How many `send` calls may run at once (one per connection)."""
        ...

    async def send(self, *, sender: str, recipient: str, body: bytes) -> None:
        """Deliver `body` (a whole RFC 5322 message) to `recipient`, or raise DeliveryError."""
        ...

    async def close(self) -> None:
        """Let go of any connection; the next `send` opens a new one."""
        ...


def smtp_reply(code: int, message: str) -> str:
    """A server's reply as one line, « 550 5.1.1 Unknown user »."""
    return f"{code} {' '.join(str(message).split())}".strip()


def _network_reason(error: BaseException) -> str:
    detail = " ".join(str(error).split()) or type(error).__name__
    return f"connection: {detail}"


def _needs_smtputf8(address: str) -> bool:
    return not address.isascii()


class _Connection:
    """One SMTP connection of the pool, and how many messages it has carried."""

    def __init__(self, client: aiosmtplib.SMTP) -> None:
        self.client = client
        self.sent = 0


class SmtpTransport:
    """An SMTP client that keeps its connections open for as many messages as it is given:
    up to `connections` of them, one per concurrent `send` (the server works on one message
    while the next is on its way, which nearly doubles the rate on a local relay).

    A connection that has already carried messages may have been closed by the server
    meanwhile (idle timeout, a restart): a message that meets a closed connection is retried
    once at once on a new one. A server that cannot be reached raises `ServerUnavailable`.
    """

    def __init__(
        self,
        *,
        host: str,
        port: int,
        security: Security = "starttls",
        username: str | None = None,
        password: str | None = None,
        local_hostname: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        tls_context: ssl.SSLContext | None = None,
        connections: int = DEFAULT_CONNECTIONS,
    ) -> None:
        self.host = host
        self.port = port
        self.security = security
        self.username = username
        self.password = password
        # aiosmtplib otherwise calls socket.getfqdn() — a DNS lookup — at every connection.
        self.local_hostname = local_hostname or socket.gethostname() or "localhost"
        self.timeout = timeout
        self.tls_context = tls_context
        self.connections = max(1, connections)
        self._idle: list[_Connection] = []
        self.connections_opened = 0

    @property
    def description(self) -> str:
        login = f", login {self.username}" if self.username else ""
        return f"SMTP {self.host}:{self.port} ({self.security}{login})"

    @property
    def parallelism(self) -> int:
        return self.connections

    def _new_client(self) -> aiosmtplib.SMTP:
        return aiosmtplib.SMTP(
            hostname=self.host,
            port=self.port,
            local_hostname=self.local_hostname,
            timeout=self.timeout,
            # Implicit TLS from the first byte, or a mandatory STARTTLS: a server that does not
            # offer it is refused rather than sent passwords in clear. « none »: plain SMTP.
            use_tls=self.security == "tls",
            start_tls=self.security == "starttls",
            validate_certs=True,
            tls_context=self.tls_context,
            username=self.username or None,
            password=self.password if self.username else None,
        )

    async def _connect(self) -> _Connection:
        client = self._new_client()
        try:
            await client.connect()
        except aiosmtplib.SMTPResponseException as error:  # 421 greeting, 535 login…
            client.close()
            raise ServerUnavailable(smtp_reply(error.code, error.message)) from error
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as error:
            client.close()
            raise ServerUnavailable(_network_reason(error)) from error
        self.connections_opened += 1
        return _Connection(client)

    async def _acquire(self) -> _Connection:
        # The sender runs at most `parallelism` sends at once, so a connection is always free
        # or may be opened.
        while self._idle:
            connection = self._idle.pop()
            if connection.client.is_connected:
                return connection
            connection.client.close()
        return await self._connect()

    async def send(self, *, sender: str, recipient: str, body: bytes) -> None:
        options = ["SMTPUTF8"] if _needs_smtputf8(sender + recipient) else []
        retried = False
        while True:
            connection = await self._acquire()
            client = connection.client
            try:
                await client.sendmail(sender, [recipient], body, mail_options=options)
            except aiosmtplib.SMTPRecipientsRefused as error:
                # Our envelopes have one recipient: this one was refused, the next may not be.
                self._release(connection)
                refusal = error.recipients[0]
                raise DeliveryError(
                    smtp_reply(refusal.code, refusal.message), permanent=refusal.code >= 500
                ) from error
            except aiosmtplib.SMTPResponseException as error:
                # « 421 closing channel »: the server is going away; a new connection next.
                self._release(connection, keep=error.code != 421)
                raise DeliveryError(
                    smtp_reply(error.code, error.message), permanent=error.code >= 500
                ) from error
            except aiosmtplib.SMTPNotSupported as error:
                self._release(connection)
                raise DeliveryError(f"address: {error}", permanent=True) from error
            except ValueError as error:  # aiosmtplib refuses an address it cannot send safely
                self._release(connection)
                raise DeliveryError(f"address: {error}", permanent=True) from error
            except (aiosmtplib.SMTPException, OSError, TimeoutError) as error:
                self._release(connection, keep=False)
                if connection.sent and not retried:
                    retried = True
                    continue
                raise DeliveryError(_network_reason(error), permanent=False) from error
            except BaseException:  # cancelled mid-command: the connection's state is unknown
                self._release(connection, keep=False)
                raise
            connection.sent += 1
            self._release(connection)
            return

    def _release(self, connection: _Connection, *, keep: bool = True) -> None:
        if keep and connection.client.is_connected:
            self._idle.append(connection)
        else:
            connection.client.close()

    async def close(self) -> None:
        idle, self._idle = self._idle, []
        for connection in idle:
            client = connection.client
            if not client.is_connected:
                client.close()
                continue
            try:
                await asyncio.wait_for(client.quit(), timeout=min(self.timeout, 5.0))
            except (aiosmtplib.SMTPException, OSError, TimeoutError):
                client.close()


class MaildirTransport:
    """Delivers into a Maildir (one file per message in `new/`), readable by its owner only.

    A message counts as accepted once its file is written and synced to disk.
    """

    def __init__(self, path: Path) -> None:
        self.path = path

    @property
    def description(self) -> str:
        return f"Maildir {self.path}"

    @property
    def parallelism(self) -> int:
        return 1

    def _deliver(self, body: bytes) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        box = mailbox.Maildir(self.path, create=True)  # creates its folders 0700
        os.chmod(self.path, 0o700)
        # Maildir files use the local line ending; the outbox keeps SMTP's CRLF.
        box.add(body.replace(b"\r\n", b"\n"))

    async def send(self, *, sender: str, recipient: str, body: bytes) -> None:
        try:
            await asyncio.to_thread(self._deliver, body)
        except OSError as error:
            raise ServerUnavailable(f"maildir: {error}") from error

    async def close(self) -> None:
        return None


def smtp_port(settings: Settings) -> int:
    """SMTP_PORT when set, else the usual port of SMTP_SECURITY (587, 465 or 25)."""
    if "smtp_port" in settings.model_fields_set:
        return settings.smtp_port
    return DEFAULT_PORTS[settings.smtp_security]


def local_hostname(settings: Settings) -> str:
    """The name we give in EHLO: this machine's if it is a full domain name, else MAIL_FROM's
    domain (some servers refuse a bare host name). Never a DNS lookup."""
    hostname = socket.gethostname()
    if "." in hostname:
        return hostname
    return message_id_domain(settings.mail_from)


def maildir_path(settings: Settings) -> Path:
    """Where mail goes without SMTP_HOST."""
    return settings.data_dir.resolve() / MAILDIR_FOLDER


def envelope_sender(settings: Settings) -> str:
    """The bare address of MAIL_FROM, for SMTP's MAIL FROM."""
    return parseaddr(settings.mail_from)[1]


def transport_from_settings(
    settings: Settings, *, tls_context: ssl.SSLContext | None = None
) -> MailTransport:
    """SMTP per the settings, or the data folder's Maildir when SMTP_HOST is not set or
    MAIL_TRANSPORT=maildir."""
    if not settings.smtp_host or settings.mail_transport == "maildir":
        return MaildirTransport(maildir_path(settings))
    return SmtpTransport(
        host=settings.smtp_host,
        port=smtp_port(settings),
        security=settings.smtp_security,
        username=settings.smtp_username,
        password=settings.smtp_password,
        local_hostname=local_hostname(settings),
        tls_context=tls_context,
    )
