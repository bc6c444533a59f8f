"""The accounts export: every account of the school, no secret, safe in a spreadsheet, and
readable by French Excel (UTF-8 with BOM, « ; »)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import UTC, date, datetime

import pytest
from sqlalchemy import Engine, select
from sqlmodel import Session, col

from bot.services.accounts.passwords import hash_provisional_password
from bot.services.roster.export import COLUMNS, export_accounts, neutralise_cell
from models import Account, AccountState, AuditEvent, DistributionChannel
from tests.factories import make_school_with_guardians


@pytest.fixture
def db(engine: Engine) -> Iterator[Session]:
    with Session(engine, expire_on_commit=False) as session:
        yield session


def _rows(content: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(content.decode("utf-8-sig")), delimiter=";"))


@pytest.mark.parametrize(
    ("cell", "shown"),
    [
        ('=HYPERLINK("http://evil")', '\'=HYPERLINK("http://evil")'),
        ("+33 6 12 34 56 78", "'+33 6 12 34 56 78"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tcmd", "'\tcmd"),
        ("\rcmd", "'\rcmd"),
        ("Éloïse", "Éloïse"),
        ("", ""),
    ],
)
def test_cells_that_a_spreadsheet_would_run_are_neutralised(cell: str, shown: str) -> None:
    assert neutralise_cell(cell) == shown


def test_export_lists_every_account_without_any_secret(db: Session) -> None:
    built = make_school_with_guardians(db, 4, uai="0751234X", with_email=[True, False, True, True])
    other = make_school_with_guardians(db, 2, uai="0751235Y")
    first = built.accounts[0]
    first.password_hash = hash_provisional_password("BUNZ57DM")
    first.state = AccountState.NOTIFIED
    first.distribution_channel = DistributionChannel.EMAIL
    first.distributed_at = datetime(2026, 11, 2, 8, 30, tzinfo=UTC)
    built.guardians[3].first_name = '=HYPERLINK("http://evil.example")'
    built.guardians[2].phone_mobile = "+33 6 12 34 56 78"
    db.add_all([first, built.guardians[3], built.guardians[2]])
    db.commit()
    assert built.school.id is not None

    export = export_accounts(
        session=db,
        school_id=built.school.id,
        actor="telegram:42",
        today=date(2026, 11, 28),
        language="en",  # the column titles are then the English ids themselves
    )
    db.commit()

    assert export.filename == "comptes-0751234X-2026-11-28.csv"
    assert export.content.startswith(b"\xef\xbb\xbf")
    assert b"BUNZ57DM" not in export.content and b"argon2" not in export.content
    rows = _rows(export.content)
    assert rows[0] == list(COLUMNS)
    assert not any("password" in title.lower() or "hash" in title.lower() for title in rows[0])
    body = [dict(zip(rows[0], row, strict=True)) for row in rows[1:]]
    assert export.rows == len(body) == 4
    assert {row["Identifier"] for row in body} == {a.identifier for a in built.accounts}
    assert not {a.identifier for a in other.accounts} & {row["Identifier"] for row in body}

    by_identifier = {row["Identifier"]: row for row in body}
    notified = by_identifier[first.identifier]
    assert notified["Light"] == "🟠" and notified["Distributed on"] == "02/11/2026 09:30"
    assert notified["E-mail"] == "parent0@example.org" and notified["Channel"] == "e-mail"
    assert notified["Children"] == "Enfant Martin (CM1)" and notified["Classes"] == "CM1"
    injected = by_identifier[built.accounts[3].identifier]
    assert injected["First name"] == '\'=HYPERLINK("http://evil.example")'
    assert by_identifier[built.accounts[1].identifier]["E-mail"] == ""
    assert by_identifier[built.accounts[2].identifier]["Mobile phone"] == "'+33 6 12 34 56 78"
    # Accents survive: the factory's names carry them (Éloïse, D'Almeida…).
    accented = by_identifier[built.accounts[1].identifier]
    assert (accented["First name"], accented["Last name"]) == ("Éloïse", "D'Almeida")

    event = db.execute(
        select(AuditEvent).where(col(AuditEvent.action) == "accounts.exported")
    ).scalar_one()
    assert event.actor == "telegram:42" and event.school_id == built.school.id
    assert event.details == {"rows": 4}


def test_an_empty_school_exports_its_header_only(db: Session) -> None:
    built = make_school_with_guardians(db, 0)
    db.commit()
    assert built.school.id is not None

    export = export_accounts(session=db, school_id=built.school.id, actor="telegram:42")

    assert export.rows == 0 and len(_rows(export.content)) == 1
    assert db.execute(select(Account)).first() is None
