"""A real local SMTP server for tests (aiosmtpd, in its own thread) that records what it
accepts and can misbehave on demand, plus builders for credential e-mails.

    with SmtpTestServer() as server:          # plain SMTP on 127.0.0.1:<free port>
        server.refuse["bad@example.org"] = "550 5.1.1 Unknown user"
        server.data_faults.append("421 4.3.2 Try again later")   # the next DATA answers 421
        server.drop_at_data = 5                # the 5th DATA: the connection is cut
        ...
        server.messages                        # what was accepted, in order
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import mailbox
import socket
import ssl
import subprocess
import threading
from dataclasses import dataclass, field
from datetime import date
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from sqlmodel import Session, col, select

from bot.services.accounts.credentials import IssuedCredential
from bot.services.letters.content import ChildLine, Letter, activation_url, bot_link_url
from models import Account, Guardian, Pupil, PupilGuardian, School, SchoolClass

PORTAL_URL = "http://127.0.0.1:8080"
MAIL_FROM = "EduConnect <no-reply@ecole-test.fr>"


def free_port() -> int:
    """A TCP port nobody listens on (aiosmtpd's Controller(port=0) does not work)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class ReceivedMessage:
    """One message the server accepted."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes

    def parsed(self) -> EmailMessage:
        message = email.message_from_bytes(self.data, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        return message

    @property
    def message_id(self) -> str:
        return str(self.parsed()["Message-ID"])


@dataclass
class _Handler:
    refuse: dict[str, str] = field(default_factory=dict)
    data_faults: list[str] = field(default_factory=list)
    drop_at_data: int | None = None
    delay: float = 0.0  # seconds before answering each DATA: a slow server
    messages: list[ReceivedMessage] = field(default_factory=list)
    data_commands: int = 0
    connections: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_EHLO(
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        session.host_name = hostname
        return responses

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        refusal = self.refuse.get(address)
        if refusal:
            return refusal
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.delay:
            await asyncio.sleep(self.delay)
        with self.lock:
            self.data_commands += 1
            drop = self.drop_at_data is not None and self.data_commands == self.drop_at_data
            fault = self.data_faults.pop(0) if self.data_faults and not drop else None
        if drop:
            # Cut before answering: the client never learns the message was accepted, so it
            # must not be: nothing is recorded.
            server.transport.close()
            return "421 4.4.2 Connection dropped"
        if fault:
            return fault
        with self.lock:
            self.messages.append(
                ReceivedMessage(
                    mail_from=envelope.mail_from,
                    rcpt_tos=tuple(envelope.rcpt_tos),
                    data=bytes(envelope.original_content or envelope.content),
                )
            )
        return "250 2.0.0 OK queued"


class SmtpTestServer:
    """aiosmtpd on 127.0.0.1 in a thread; plain, STARTTLS (`starttls_context`) or implicit TLS
    (`tls_context`), with optional login (`credentials` = (user, password))."""

    def __init__(
        self,
        *,
        port: int | None = None,
        starttls_context: ssl.SSLContext | None = None,
        tls_context: ssl.SSLContext | None = None,
        credentials: tuple[str, str] | None = None,
    ) -> None:
        self.port = port or free_port()
        self.handler = _Handler()
        self.logins: list[str] = []
        kwargs: dict[str, Any] = {}
        if starttls_context is not None:
            kwargs.update(tls_context=starttls_context, require_starttls=True)
        if credentials is not None:
            kwargs.update(
                authenticator=self._authenticator(credentials),
                auth_require_tls=starttls_context is not None or tls_context is not None,
                auth_required=True,
            )
        self.controller = Controller(
            self.handler,
            hostname="127.0.0.1",
            port=self.port,
            ssl_context=tls_context,
            server_hostname="smtp.test",
            **kwargs,
        )

    def _authenticator(self, credentials: tuple[str, str]) -> Any:
        def authenticate(
            server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
        ) -> AuthResult:
            ok = (
                isinstance(auth_data, LoginPassword)
                and (
                    auth_data.login.decode(),
                    auth_data.password.decode(),
                )
                == credentials
            )
            if ok:
                self.logins.append(auth_data.login.decode())
            # handled=False: aiosmtpd answers « 535 » itself on failure.
            return AuthResult(success=ok, handled=False)

        return authenticate

    # What tests read and set
    @property
    def messages(self) -> list[ReceivedMessage]:
        with self.handler.lock:
            return list(self.handler.messages)

    @property
    def refuse(self) -> dict[str, str]:
        return self.handler.refuse

    @property
    def data_faults(self) -> list[str]:
        return self.handler.data_faults

    @property
    def drop_at_data(self) -> int | None:
        return self.handler.drop_at_data

    @drop_at_data.setter
    def drop_at_data(self, value: int | None) -> None:
        self.handler.drop_at_data = value

    def start(self) -> SmtpTestServer:
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()

    def __enter__(self) -> SmtpTestServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def self_signed_certificate(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 / localhost and its key, made with the openssl tool."""
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "2",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost,IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


def read_maildir(path: Path) -> list[EmailMessage]:
    """Every message delivered to the Maildir at `path`."""
    box = mailbox.Maildir(path, create=False)
    messages = []
    for key in box.iterkeys():
        message = email.message_from_bytes(box.get_bytes(key), policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        messages.append(message)
    return messages


def plain_text(message: EmailMessage) -> str:
    part = message.get_body(("plain",))
    assert part is not None
    return str(part.get_content())  # type: ignore[attr-defined]


def html_text(message: EmailMessage) -> str:
    part = message.get_body(("html",))
    assert part is not None
    return str(part.get_content())  # type: ignore[attr-defined]


def letters_for(
    session: Session,
    issued: list[IssuedCredential],
    *,
    portal_url: str = PORTAL_URL,
    bot_username: str | None = "educonnect_test_bot",
    letter_date: date | None = None,
) -> list[Letter]:
    """The letters of freshly issued credentials, as the distribution service builds them."""
    letters = []
    for number, credential in enumerate(issued):
        account = session.get(Account, credential.account_id)
        assert account is not None
        guardian = session.get(Guardian, account.guardian_id)
        assert guardian is not None
        school = session.get(School, guardian.school_id)
        assert school is not None
        children = session.exec(
            select(Pupil, SchoolClass)
            .join(PupilGuardian, col(PupilGuardian.pupil_id) == col(Pupil.id))
            .join(SchoolClass, col(SchoolClass.id) == col(Pupil.class_id), isouter=True)
            .where(col(PupilGuardian.guardian_id) == guardian.id)
        ).all()
        code = f"CODE{credential.account_id:04d}X{number}"
        letters.append(
            Letter(
                account_id=credential.account_id,
                kind=credential.kind,
                civility=guardian.civility,
                first_name=guardian.first_name,
                last_name=guardian.usage_name or guardian.last_name,
                email=guardian.email,
                language=None,
                school_name=school.name,
                school_uai=school.uai,
                school_city=school.city,
                children=tuple(
                    ChildLine(pupil.first_name, pupil.last_name, klass.label if klass else None)
                    for pupil, klass in children
                ),
                identifier=credential.identifier,
                password=credential.password,
                expires_at=credential.expires_at,
                portal_url=portal_url,
                activation_url=activation_url(portal_url, credential.identifier),
                bot_link_url=bot_link_url(bot_username, code) if bot_username else None,
                family_link_code=code,
                letter_date=letter_date or date(2026, 11, 28),
            )
        )
    return letters
