"""`educonnect-bot send` and `educonnect-bot letters` through the command line's entry point,
against a local SMTP server: the same distribution as /envoyer and /pdf."""

from __future__ import annotations

import io
import re
import stat
import zipfile
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest
from pypdf import PdfReader
from sqlalchemy import Engine, select
from sqlmodel import Session, col

from bot.db import make_engine
from bot.services.accounts.passwords import verify_password
from models import Account, AccountState, DistributionChannel, OutboxMessage, OutboxStatus
from tests.mailtools import SmtpTestServer
from tests.services.test_distribution import guardians_of_class_in_files
from tests.test_cli import UAI, Cli

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
def smtp() -> Iterator[SmtpTestServer]:
    with SmtpTestServer() as server:
        yield server


@pytest.fixture
def school(tmp_path: Path, samples_dir: Path, smtp: SmtpTestServer, database_url: str) -> Cli:
    """A CLI whose school has the sample roster, sending to the local SMTP server, on the
    test's database (SQLite, then PostgreSQL)."""
    cli = Cli(
        tmp_path,
        DATABASE_URL=database_url,
        SMTP_HOST="127.0.0.1",
        SMTP_PORT=str(smtp.port),
        SMTP_SECURITY="none",
        MAIL_FROM="École Jules Ferry <ecole@example.org>",
        PORTAL_URL="https://portail.example.org",
    )
    cli.ok("school", "add", UAI, "École Jules Ferry")
    cli.ok("import", UAI, samples_dir / "eleves.csv", samples_dir / "responsables.csv")
    return cli


@pytest.fixture
def database(school: Cli, database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    try:
        yield engine
    finally:
        engine.dispose()


def accounts(engine: Engine) -> dict[str, Account]:
    with Session(engine) as session:
        return {a.identifier: a for a in session.execute(select(Account)).scalars()}


def password_in(text: str, account: Account) -> bool:
    """Whether `text` holds a provisional password (8 capitals and digits) opening `account`."""
    words = set(re.findall(r"\b[A-Z0-9]{8}\b", text))
    return any(verify_password(account.password_hash, word) for word in words)


def plain_text(message: EmailMessage) -> str:
    part = message.get_body(("plain",))
    assert part is not None
    return str(part.get_content())


def test_send_mails_each_guardian_of_the_class_once_and_marks_them_notified(
    school: Cli, smtp: SmtpTestServer, database: Engine, samples_dir: Path
) -> None:
    expected = sorted(a for a in guardians_of_class_in_files(samples_dir, "CM1") if a)

    result = school.json("send", UAI, "CM1", "--yes")

    assert result["plan"]["planned"] == {"first": len(expected)}
    assert result["sent"] == len(expected) and result["failed"] == [] and result["waiting"] == 0
    received = sorted(address for m in smtp.messages for address in m.rcpt_tos)
    assert received == expected
    by_identifier = accounts(database)
    for message in smtp.messages:
        text = plain_text(message.parsed())
        identifier = next(i for i in by_identifier if i in text.split())
        account = by_identifier[identifier]
        assert password_in(text, account)
        assert account.state == AccountState.NOTIFIED
        assert account.distribution_channel == DistributionChannel.EMAIL
    with Session(database) as session:
        rows = session.execute(select(OutboxMessage)).scalars().all()
        assert {row.status for row in rows} == {OutboxStatus.SENT}
        assert all(row.body is None for row in rows)  # the passwords are gone from the outbox

    # A second run: reminders, no new password.
    again = school.json("send", UAI, "CM1", "--yes")
    assert again["plan"]["planned"] == {"reminder": len(expected)}
    assert len(smtp.messages) == 2 * len(expected)


def test_send_without_confirmation_changes_nothing(
    school: Cli, smtp: SmtpTestServer, database: Engine
) -> None:
    result = school.run("send", UAI, "CM1")  # no terminal, no --yes
    assert result.returncode == 1
    assert "--yes" in result.stderr
    assert "CM1" in result.stdout  # the plan was shown
    assert smtp.messages == []
    assert all(a.password_hash is None for a in accounts(database).values())

    unknown = school.run("send", UAI, "CM3", "--yes")
    assert unknown.returncode == 1 and "CM3" in unknown.stderr and "CE2-CM1" in unknown.stderr


def test_send_no_wait_leaves_the_emails_to_the_worker(
    school: Cli, smtp: SmtpTestServer, database: Engine
) -> None:
    result = school.json("send", UAI, "CE1", "--yes", "--no-wait")
    assert result["queued"] > 0 and result["batch_id"]
    assert smtp.messages == []
    with Session(database) as session:
        pending = session.execute(
            select(OutboxMessage).where(col(OutboxMessage.status) == OutboxStatus.PENDING)
        ).scalars()
        assert {row.batch_id for row in pending} == {result["batch_id"]}


def test_letters_writes_private_pdfs_and_marks_the_guardians_notified_on_paper(
    school: Cli, database: Engine, tmp_path: Path
) -> None:
    combined, folder, archive = tmp_path / "cm1.pdf", tmp_path / "lettres", tmp_path / "cm1.zip"

    result = school.json(
        "letters", UAI, "CM1", "-o", combined, "--individual", folder, "--zip", archive, "--yes"
    )

    count = result["letters"]
    assert count == result["plan"]["planned"]["first"] > 0
    for path in (combined, archive, *folder.iterdir()):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    pages = [page.extract_text() for page in PdfReader(combined).pages]
    assert len(pages) == count == len(list(folder.iterdir()))
    with zipfile.ZipFile(archive) as zipped:
        assert len(zipped.namelist()) == count
        single = PdfReader(io.BytesIO(zipped.read(zipped.namelist()[0])))
        assert len(single.pages) == 1
    printed = [a for a in accounts(database).values() if a.state == AccountState.NOTIFIED]
    assert len(printed) == count
    for account in printed:
        assert account.distribution_channel == DistributionChannel.PAPER
        page = next(p for p in pages if account.identifier in p.split())
        assert password_in(page, account)


def test_letters_needs_somewhere_to_write(school: Cli, tmp_path: Path) -> None:
    result = school.run("letters", UAI, "CM1", "--yes")
    assert result.returncode == 1 and "-o" in result.stderr
    missing = school.run("letters", UAI, "CM1", "-o", tmp_path / "nope" / "x.pdf", "--yes")
    assert missing.returncode == 1 and "nope" in missing.stderr
