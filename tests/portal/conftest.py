"""The portal under test: the real Starlette application on a test database, a browser-like
client that keeps its cookies and sends each form's CSRF token, a clock the test moves, and a
family whose letter was just printed (so its provisional password is known).

    async def test_something(portal: PortalHarness, family: Family) -> None:
        browser = portal.browser()
        page = await browser.get(f"/activation?identifiant={family.identifier}")
        reply = await browser.post("/activation", {"identifier": ..., "password": ...})
        portal.account(family)  # the row, read again after the request
"""

from __future__ import annotations

import email
import email.policy
import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine
from sqlmodel import Session, col, select
from starlette.applications import Starlette

from bot.config import Settings
from bot.portal.app import create_portal
from bot.services.accounts.credentials import notify_accounts
from models import (
    Account,
    AuditEvent,
    Guardian,
    OutboxMessage,
    PortalThrottle,
    PortalToken,
    Pupil,
    PupilGuardian,
)
from tests.factories import make_school_with_guardians

PORTAL_URL = "http://portal.test"
MAIL_FROM = "EduConnect <no-reply@ecole-test.fr>"
CHILD_BIRTH_DATE = date(2017, 3, 14)
SIBLING_BIRTH_DATE = date(2019, 11, 2)
# A password that meets CNIL 2022 (12+ characters, four kinds).
NEW_PASSWORD = "Vacances-2027!"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
LINK = re.compile(r"https?://[^\s\"<>]+/(?:confirmer|reinitialiser)/[A-Za-z0-9_-]+")


class Clock:
    """The portal's idea of now; tests move it forward."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@dataclass(frozen=True)
class Family:
    """A guardian whose paper letter was printed: identifier and provisional password."""

    account_id: int
    guardian_id: int
    school_id: int
    identifier: str
    password: str
    email: str | None


class Browser:
    """One person's browser: cookies kept, redirects not followed (tests check them)."""

    def __init__(self, app: Starlette, *, client: str, base_url: str) -> None:
        transport = httpx.ASGITransport(app=app, client=(client, 50000))
        self.http = httpx.AsyncClient(transport=transport, base_url=base_url)
        self.last_csrf: str | None = None

    async def get(self, path: str, **kwargs: Any) -> httpx.Response:
        response = await self.http.get(path, **kwargs)
        self._remember(response)
        return response

    async def csrf(self) -> str:
        """This session's CSRF token, as any page's forms carry it."""
        await self.get("/identifiant-oublie")  # a page with a form, open to everyone
        assert self.last_csrf is not None
        return self.last_csrf

    async def post(
        self, path: str, data: dict[str, str] | None = None, *, csrf: bool = True
    ) -> httpx.Response:
        """Submit a form as a browser would, with the session's CSRF token (unless not)."""
        fields = dict(data or {})
        if csrf:
            fields["csrf_token"] = await self.csrf()
        response = await self.http.post(path, data=fields)
        self._remember(response)
        return response

    def _remember(self, response: httpx.Response) -> None:
        if "text/html" in response.headers.get("content-type", ""):
            match = CSRF.search(response.text)
            if match:
                self.last_csrf = match[1]

    async def log_in(self, identifier: str, password: str) -> httpx.Response:
        return await self.post("/connexion", {"identifier": identifier, "password": password})

    async def aclose(self) -> None:
        await self.http.aclose()


class PortalHarness:
    """The app, its database and clock, and readers for what the requests changed."""

    def __init__(self, engine: Engine, tmp_path: Path, *, portal_url: str = PORTAL_URL) -> None:
        self.engine = engine
        self.clock = Clock(datetime.now(UTC).replace(microsecond=0))
        self.settings = Settings(
            data_dir=tmp_path / "data",
            portal_url=portal_url,
            mail_from=MAIL_FROM,
            smtp_host=None,
        )
        self.app = create_portal(self.settings, engine, clock=self.clock)
        # Tests of the recovery flows would each wait for it; one test checks it on its own.
        self.app.state.portal.same_answer_seconds = 0.0
        self.portal_url = portal_url
        self._browsers: list[Browser] = []

    def browser(self, *, client: str = "203.0.113.7") -> Browser:
        """A new browser (no cookies), from the client address `client`."""
        browser = Browser(self.app, client=client, base_url=self.portal_url)
        self._browsers.append(browser)
        return browser

    async def aclose(self) -> None:
        for browser in self._browsers:
            await browser.aclose()

    # -- the database, read again

    def session(self) -> Session:
        return Session(self.engine, expire_on_commit=False)

    def account(self, family: Family) -> Account:
        with self.session() as session:
            found = session.get(Account, family.account_id)
            assert found is not None
            return found

    def guardian(self, family: Family) -> Guardian:
        with self.session() as session:
            found = session.get(Guardian, family.guardian_id)
            assert found is not None
            return found

    def actions(self, family: Family | None = None) -> list[str]:
        """The audit log's actions, oldest first (for one account, or all)."""
        with self.session() as session:
            statement = select(AuditEvent).order_by(col(AuditEvent.id))
            if family is not None:
                statement = statement.where(AuditEvent.account_id == family.account_id)
            return [event.action for event in session.exec(statement)]

    def events(self, action: str) -> list[AuditEvent]:
        with self.session() as session:
            return list(
                session.exec(
                    select(AuditEvent)
                    .where(AuditEvent.action == action)
                    .order_by(col(AuditEvent.id))
                )
            )

    def outbox(self, kind: str | None = None) -> list[OutboxMessage]:
        with self.session() as session:
            statement = select(OutboxMessage).order_by(col(OutboxMessage.id))
            if kind is not None:
                statement = statement.where(OutboxMessage.kind == kind)
            return list(session.exec(statement))

    def tokens(self) -> list[PortalToken]:
        with self.session() as session:
            return list(session.exec(select(PortalToken).order_by(col(PortalToken.id))))

    def throttles(self) -> list[PortalThrottle]:
        with self.session() as session:
            return list(session.exec(select(PortalThrottle)))

    def mail(self, kind: str) -> EmailMessage:
        """The latest e-mail of this kind in the outbox, parsed."""
        rows = self.outbox(kind)
        assert rows, f"no {kind} e-mail in the outbox"
        assert rows[-1].body is not None
        message = email.message_from_bytes(rows[-1].body, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        return message

    def link_path(self, kind: str) -> str:
        """The path of the link in the latest e-mail of this kind (as the family clicks it)."""
        text = mail_text(self.mail(kind))
        match = LINK.search(text)
        assert match, text
        assert match[0].startswith(self.portal_url)
        return match[0][len(self.portal_url) :]


def mail_text(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    return str(part.get_content())


@pytest.fixture
async def portal(engine: Engine, tmp_path: Path) -> AsyncIterator[PortalHarness]:
    """The portal on SQLite, then on PostgreSQL."""
    harness = PortalHarness(engine, tmp_path)
    yield harness
    await harness.aclose()


@pytest.fixture
async def sqlite_portal(sqlite_engine: Engine, tmp_path: Path) -> AsyncIterator[PortalHarness]:
    """The portal on SQLite only (refusals and details that do not depend on the database)."""
    harness = PortalHarness(sqlite_engine, tmp_path)
    yield harness
    await harness.aclose()


def make_family(
    harness: PortalHarness,
    *,
    letter_time: datetime | None = None,
    email: str | None = "parent0@example.org",
    birth_dates: tuple[date | None, ...] = (CHILD_BIRTH_DATE,),
    names: tuple[str, str] = ("Camille", "Martin"),
    uai: str | None = None,
) -> Family:
    """A school with one guardian whose children were born on `birth_dates`, and a paper
    letter printed at `letter_time` (default: the portal clock's now)."""
    with harness.session() as session:
        school = make_school_with_guardians(
            session, 1, with_email=email is not None, names=[names], uai=uai
        )
        guardian = school.guardians[0]
        assert guardian.id is not None and school.school.id is not None
        if email is not None:
            guardian.email = email
            session.add(guardian)
        [pupil] = session.exec(
            select(Pupil)
            .join(PupilGuardian, col(PupilGuardian.pupil_id) == col(Pupil.id))
            .where(PupilGuardian.guardian_id == guardian.id)
        ).all()
        pupil.first_name = "Léa"
        pupil.birth_date = birth_dates[0]
        session.add(pupil)
        for index, born in enumerate(birth_dates[1:], start=1):
            sibling = Pupil(
                school_id=school.school.id,
                class_id=school.school_class.id,
                first_name=f"Hugo{index}" if index > 1 else "Hugo",
                last_name=names[1],
                birth_date=born,
                level="CM1",
            )
            session.add(sibling)
            session.flush()
            assert sibling.id is not None
            session.add(PupilGuardian(pupil_id=sibling.id, guardian_id=guardian.id))
        batch = notify_accounts(
            session=session,
            account_ids=school.account_ids,
            actor="director:42",
            now=letter_time or harness.clock(),
        )
        session.commit()
    [issued] = batch.issued
    assert issued.password is not None
    return Family(
        account_id=issued.account_id,
        guardian_id=guardian.id,
        school_id=school.school.id,
        identifier=issued.identifier,
        password=issued.password,
        email=email,
    )


@pytest.fixture
def family(portal: PortalHarness) -> Family:
    """A notified family on the main portal (SQLite, then PostgreSQL)."""
    return make_family(portal)


@pytest.fixture
def sqlite_family(sqlite_portal: PortalHarness) -> Family:
    return make_family(sqlite_portal)


async def activate(
    harness: PortalHarness,
    family: Family,
    *,
    browser: Browser | None = None,
    email: str = "famille.martin@example.org",
    password: str = NEW_PASSWORD,
) -> Browser:
    """Take `family` through the whole activation, confirmation link included."""
    browser = browser or harness.browser()
    reply = await browser.post(
        "/activation", {"identifier": family.identifier, "password": family.password}
    )
    assert reply.status_code == 303, reply.text
    reply = await browser.post(
        "/activation/finaliser",
        {
            "new_password": password,
            "confirm_password": password,
            "email": email,
            "birth_date": CHILD_BIRTH_DATE.strftime("%d/%m/%Y"),
        },
    )
    assert reply.status_code == 303, reply.text
    link = harness.link_path("activation_confirmation")
    reply = await browser.post(link)
    assert reply.status_code == 200, reply.text
    return browser


@pytest.fixture
def no_real_settings(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Keep the developer's PORTAL_* settings out of a test that reads the environment."""
    for name in ("PORTAL_URL", "PORTAL_BIND", "DATA_DIR"):
        monkeypatch.delenv(name, raising=False)
    yield
