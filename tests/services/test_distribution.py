"""Distributing credentials (docs/PRODUCT.md): who gets what and why not, then — in one transaction
— new credentials, family-link codes, letters, and e-mails in the outbox or a printed PDF."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from email_validator import EmailNotValidError, validate_email
from pypdf import PdfReader
from sqlalchemy import Engine, event, func, select
from sqlmodel import Session, col

import bot.services.distribution.drafting
from bot.db import session_scope
from bot.services.accounts.credentials import CredentialKind
from bot.services.accounts.family_links import hash_link_code
from bot.services.accounts.passwords import verify_password
from bot.services.accounts.validity import provisional_expiry
from bot.services.distribution.drafting import build_letters
from bot.services.distribution.errors import (
    NoScopeError,
    NothingToDistributeError,
    StalePlanError,
)
from bot.services.distribution.flows import (
    prepare_paper_letters,
    start_email_distribution,
    start_reminders,
)
from bot.services.distribution.planning import (
    DistributionPreview,
    Purpose,
    SkipReason,
    plan_email_distribution,
    plan_paper_letters,
    plan_reminders,
)
from bot.services.distribution.scopes import resolve_scopes
from bot.services.roster.onde.importer import import_roster
from bot.services.roster.scopes import ScopeKind, UnknownClassError
from bot.services.schools.registry import add_school
from models import (
    Account,
    AccountState,
    AuditEvent,
    DistributionChannel,
    FamilyLinkCode,
    Guardian,
    OutboxMessage,
    OutboxStatus,
    Pupil,
    School,
    utcnow,
)
from tests.factories import make_school_with_guardians

PORTAL = "https://portail.example.org"
BOT = "educonnect_test_bot"
MAIL_FROM = "École Jules Ferry <ecole@example.org>"


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    """A session on a clean database, SQLite and PostgreSQL (this module's tests run on both)."""
    with Session(engine, expire_on_commit=False) as session:
        yield session


# --- The sample school, and what its files say independently of the import -----------------


@pytest.fixture
def sample_school(engine: Engine, samples_dir: Path) -> int:
    """The demo school's ONDE extractions imported into a new school; its id."""
    with session_scope(engine) as session:
        school = add_school(session=session, uai="0751234X", name="École Jules Ferry", actor="t")
        assert school.id is not None
        import_roster(
            session=session,
            school_id=school.id,
            files=[
                (name, (samples_dir / name).read_bytes())
                for name in ("eleves.csv", "responsables.csv")
            ],
            actor="t",
            dry_run=False,
        )
        return school.id


def _rows(path: Path) -> list[list[str]]:
    """The file's rows: the header, then the data (a summary line of one cell under the data,
    such as « Nombre d'élèves : 180 », is left out)."""
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = raw.decode("cp1252")
    rows = [row for row in csv.reader(io.StringIO(text), delimiter=";") if any(row)]
    while len(rows) > 1 and len(rows[-1]) == 1:
        rows.pop()
    return rows


def _valid(address: str) -> str | None:
    try:
        return validate_email(address.strip(), check_deliverability=False).normalized
    except EmailNotValidError:
        return None


def guardians_of_class_in_files(samples_dir: Path, class_label: str) -> list[str | None]:
    """The valid e-mail address (or None) of each guardian row with a child in `class_label`,
    read from the CSV files themselves."""
    pupils = _rows(samples_dir / "eleves.csv")
    header = pupils[0]
    last, first, label = (header.index(h) for h in ("Nom élève", "Prénom élève", "Libellé classe"))
    in_class = {(row[last].upper(), row[first]) for row in pupils[1:] if row[label] == class_label}
    guardians = _rows(samples_dir / "responsables.csv")
    header = guardians[0]
    email = header.index("Courriel")
    child_start = header.index("Nom d'usage enfant")
    found: list[str | None] = []
    for row in guardians[1:]:
        children = {
            (row[i + 1].upper(), row[i + 2])
            for i in range(child_start, len(row) - 2, 4)
            if row[i + 1] or row[i + 2]
        }
        if children & in_class:
            found.append(_valid(row[email]) if row[email].strip() else None)
    return found


def test_email_plan_of_a_class_matches_the_sample_files(
    engine: Engine, sample_school: int, samples_dir: Path
) -> None:
    expected = guardians_of_class_in_files(samples_dir, "CM1")
    with session_scope(engine) as session:
        preview = plan_email_distribution(
            session=session, school_id=sample_school, scope_tokens=["cm1"]
        )

    (scope,) = preview.scopes
    assert (scope.scope.kind, scope.scope.label) == (ScopeKind.CLASS, "CM1")
    assert preview.pupils == scope.pupils == 22
    assert preview.guardians == scope.guardians == len(expected)
    assert sorted(e.email or "" for e in preview.planned) == sorted(a for a in expected if a)
    assert preview.counts() == {CredentialKind.FIRST: sum(1 for a in expected if a)}
    assert preview.counts(DistributionChannel.PAPER) == {}
    # ONDE gave some guardians a malformed address: the import dropped it, so « no address ».
    assert preview.skip_counts() == {SkipReason.NO_ADDRESS: sum(1 for a in expected if not a)}
    assert all(e.channel is DistributionChannel.EMAIL for e in preview.planned)
    names = [(e.last_name.casefold(), e.first_name.casefold()) for e in preview.entries]
    assert len(names) == len(expected)
    # Nothing changed.
    with session_scope(engine) as session:
        assert (
            session.execute(
                select(func.count())
                .select_from(Account)
                .where(col(Account.password_hash).is_not(None))
            ).scalar_one()
            == 0
        )


def test_scopes_add_up_and_the_whole_school_absorbs_the_rest(
    engine: Engine, sample_school: int
) -> None:
    with session_scope(engine) as session:
        ce1 = plan_paper_letters(session=session, school_id=sample_school, scope_tokens=["CE1"])
        cm1_2 = plan_paper_letters(
            session=session, school_id=sample_school, scope_tokens=["cm1/2 mme n'diaye"]
        )
        both = plan_paper_letters(
            session=session, school_id=sample_school, scope_tokens=["CE1", "CM1/2 Mme N'Diaye"]
        )
        school = plan_email_distribution(
            session=session, school_id=sample_school, scope_tokens=["CE1", "ecole"]
        )
        by_token = resolve_scopes(
            session=session,
            school_id=sample_school,
            scope_tokens=[both.scopes[0].scope.token, "lCM1"],
        )
        with pytest.raises(UnknownClassError):
            resolve_scopes(session=session, school_id=sample_school, scope_tokens=["CM3"])
        with pytest.raises(NoScopeError):
            resolve_scopes(session=session, school_id=sample_school, scope_tokens=["  "])

    assert both.pupils == ce1.pupils + cm1_2.pupils
    ids = {e.account_id for e in both.entries}
    assert ids == {e.account_id for e in ce1.entries} | {e.account_id for e in cm1_2.entries}
    assert [s.scope.kind for s in school.scopes] == [ScopeKind.SCHOOL]
    assert school.pupils == 180
    assert [s.scope.kind for s in by_token] == [ScopeKind.CLASS, ScopeKind.LEVEL]


def test_every_skip_reason_is_reported_with_the_guardians_names(session: Session) -> None:
    built = make_school_with_guardians(
        session,
        7,
        with_email=[True, True, True, True, True, False, True],
        names=[
            ("Ada", "Activée"),
            ("Bea", "Adresse"),
            ("Cyd", "Désactivé"),
            ("Dan", "Parti"),
            ("Eve", "Notifiée"),
            ("Fil", "Papier"),
            ("Gus", "Neuf"),
        ],
    )
    activated, _bad, deactivated, left, notified, _paper, _new = built.accounts
    activated.state = AccountState.ACTIVATED
    bad_address_guardian = built.guardians[1]
    bad_address_guardian.email = "parent@@example.org"
    deactivated.deactivated_at = utcnow()
    left.deactivated_at = utcnow()
    notified.state = AccountState.NOTIFIED
    notified.password_hash = "x"
    notified.provisional_expires_at = utcnow() + timedelta(days=30)
    pupil = session.execute(select(Pupil).where(col(Pupil.last_name) == "Parti")).scalar_one()
    pupil.archived_at = utcnow()
    session.add_all([activated, bad_address_guardian, deactivated, left, notified, pupil])
    session.flush()
    school_id = built.school.id
    assert school_id is not None

    email = plan_email_distribution(session=session, school_id=school_id, scope_tokens=["CM1"])
    reasons = {e.name: e.skip for e in email.skipped}
    assert reasons == {
        "Ada ACTIVÉE": SkipReason.ALREADY_ACTIVATED,
        "Bea ADRESSE": SkipReason.INVALID_ADDRESS,
        "Cyd DÉSACTIVÉ": SkipReason.DEACTIVATED,
        "Dan PARTI": SkipReason.ARCHIVED,
        "Fil PAPIER": SkipReason.NO_ADDRESS,
    }
    assert {e.name: e.kind for e in email.planned} == {
        "Eve NOTIFIÉE": CredentialKind.REMINDER,
        "Gus NEUF": CredentialKind.FIRST,
    }
    assert email.guardians == 5  # the archived and the deactivated are not counted
    assert [e.name for e in email.entries_for(SkipReason.NO_ADDRESS)] == ["Fil PAPIER"]

    reset = plan_email_distribution(
        session=session, school_id=school_id, scope_tokens=["CM1"], reset=True
    )
    # A bulk reset never touches an activated family's chosen password.
    assert {e.name: e.kind for e in reset.planned} == {
        "Eve NOTIFIÉE": CredentialKind.RESET,
        "Gus NEUF": CredentialKind.FIRST,
    }

    paper = plan_paper_letters(session=session, school_id=school_id, scope_tokens=["CM1"])
    # Without « tous », those with a usable address get an e-mail; a bad address means paper.
    assert {e.name for e in paper.planned} == {"Bea ADRESSE", "Fil PAPIER"}
    assert {e.name for e in paper.entries_for(SkipReason.HAS_ADDRESS)} == {
        "Eve NOTIFIÉE",
        "Gus NEUF",
    }
    everyone = plan_paper_letters(
        session=session, school_id=school_id, scope_tokens=["CM1"], include_all=True
    )
    assert len(everyone.planned) == 4

    reminders = plan_reminders(session=session, school_id=school_id, scope_tokens=["CM1"])
    assert reminders.reset is None
    assert {e.name: (e.kind, e.channel) for e in reminders.planned} == {
        "Eve NOTIFIÉE": (CredentialKind.REMINDER, DistributionChannel.EMAIL),
    }
    assert {e.name for e in reminders.entries_for(SkipReason.NOT_YET_NOTIFIED)} == {
        "Bea ADRESSE",
        "Fil PAPIER",
        "Gus NEUF",
    }


# --- Paper ----------------------------------------------------------------------------------


def pages_text(pdf: bytes) -> list[str]:
    return [page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages]


def accounts_by_id(session: Session, ids: list[int]) -> dict[int, Account]:
    return {
        a.id: a
        for a in session.execute(select(Account).where(col(Account.id).in_(ids))).scalars()
        if a.id is not None
    }


def test_paper_letters_are_printed_once_per_guardian_and_mark_them_notified(
    engine: Engine, sample_school: int
) -> None:
    now = utcnow()
    with session_scope(engine) as session:
        preview = plan_paper_letters(session=session, school_id=sample_school, scope_tokens=["CM1"])
        paper = prepare_paper_letters(
            session=session,
            school_id=sample_school,
            preview_or_account_ids=json.loads(json.dumps(preview.confirmation())),
            actor="telegram:1",
            bot_username=BOT,
            portal_url=PORTAL,
            now=now,
        )

    assert paper.count == len(preview.planned) > 0
    assert paper.counts() == {CredentialKind.FIRST: paper.count}
    texts = pages_text(paper.pdf)
    assert len(texts) == paper.count
    with session_scope(engine) as session:
        accounts = accounts_by_id(session, [letter.account_id for letter in paper.letters])
        for letter, text in zip(paper.letters, texts, strict=True):
            account = accounts[letter.account_id]
            assert letter.identifier in text and letter.password and letter.password in text
            assert verify_password(account.password_hash, letter.password)
            assert account.state == AccountState.NOTIFIED
            assert account.distribution_channel == DistributionChannel.PAPER
            assert account.distributed_at == now
            assert account.provisional_expires_at == provisional_expiry(now)
            # The bot link carries a single-use code stored only as its hash.
            assert letter.family_link_code and letter.bot_link_url
            assert letter.bot_link_url.endswith(f"?start={letter.family_link_code}")
            code = session.execute(
                select(FamilyLinkCode).where(
                    col(FamilyLinkCode.code_hash) == hash_link_code(letter.family_link_code)
                )
            ).scalar_one()
            assert code.account_id == account.id and code.expires_at == provisional_expiry(now)
        assert (
            session.execute(
                select(AuditEvent).where(col(AuditEvent.action) == "distribution.letters_printed")
            )
            .scalar_one()
            .details["accounts"]
            == paper.count
        )
    documents = paper.individual_documents()
    assert [name for name, _pdf in documents] == [f.filename for f in paper.files]
    assert all(len(PdfReader(io.BytesIO(pdf)).pages) == 1 for _name, pdf in documents)

    # Printed again: reminders (identifier only, « password unchanged »), no new password.
    with session_scope(engine) as session:
        again = prepare_paper_letters(
            session=session,
            school_id=sample_school,
            scope_tokens=["CM1"],
            actor="t",
            bot_username=None,
            portal_url=PORTAL,
        )
        assert again.counts() == {CredentialKind.REMINDER: paper.count}
        assert all(letter.password is None for letter in again.letters)
        assert all(letter.bot_link_url is None for letter in again.letters)  # no username yet
        after = accounts_by_id(session, [letter.account_id for letter in paper.letters])
        assert all(
            verify_password(after[letter.account_id].password_hash, letter.password or "")
            for letter in paper.letters
        )


def test_reminder_keeps_the_password_and_reset_replaces_it(
    engine: Engine, sample_school: int
) -> None:
    first_day = utcnow() - timedelta(days=10)
    with session_scope(engine) as session:
        first = prepare_paper_letters(
            session=session,
            school_id=sample_school,
            scope_tokens=["CE2"],
            actor="t",
            bot_username=BOT,
            portal_url=PORTAL,
            now=first_day,
        )
    letter = first.letters[0]
    old_password = letter.password
    assert old_password is not None

    later = utcnow()
    with session_scope(engine) as session:
        preview = plan_reminders(session=session, school_id=sample_school, scope_tokens=["CE2"])
        ours = [e for e in preview.planned if e.account_id == letter.account_id]
        assert [(e.kind, e.channel) for e in ours] == [
            (CredentialKind.REMINDER, DistributionChannel.PAPER)
        ]
        reminded = start_reminders(
            session=session,
            school_id=sample_school,
            preview_or_account_ids=preview,
            reset=False,
            actor="t",
            bot_username=BOT,
            portal_url=PORTAL,
            mail_from=MAIL_FROM,
            now=later,
        )
    assert reminded.paper is not None
    reminder = next(x for x in reminded.paper.letters if x.account_id == letter.account_id)
    assert reminder.kind is CredentialKind.REMINDER and reminder.password is None
    page = pages_text(reminded.paper.pdf)[reminded.paper.letters.index(reminder)]
    assert letter.identifier in page and old_password not in page
    with session_scope(engine) as session:
        account = accounts_by_id(session, [letter.account_id])[letter.account_id]
        assert account.state == AccountState.NOTIFIED
        assert account.distributed_at == later
        assert account.provisional_expires_at == provisional_expiry(first_day)
        assert verify_password(account.password_hash, old_password)

    with session_scope(engine) as session:
        reset = start_reminders(
            session=session,
            school_id=sample_school,
            preview_or_account_ids=[letter.account_id],
            reset=True,
            actor="t",
            bot_username=BOT,
            portal_url=PORTAL,
            mail_from=MAIL_FROM,
            now=later,
        )
    assert reset.paper is not None
    (new_letter,) = reset.paper.letters
    assert new_letter.kind is CredentialKind.RESET and new_letter.password
    assert new_letter.password in pages_text(reset.paper.pdf)[0]
    with session_scope(engine) as session:
        account = accounts_by_id(session, [letter.account_id])[letter.account_id]
        assert account.state == AccountState.NOTIFIED
        assert verify_password(account.password_hash, new_letter.password)
        assert not verify_password(account.password_hash, old_password)
        assert account.provisional_expires_at == provisional_expiry(later)


def test_a_failing_renderer_leaves_nothing_committed(
    engine: Engine, sample_school: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any, **kwargs: Any) -> bytes:
        raise RuntimeError("the printer caught fire")

    monkeypatch.setattr(bot.services.distribution.drafting, "render_letters", broken)
    with pytest.raises(RuntimeError), session_scope(engine) as session:
        prepare_paper_letters(
            session=session,
            school_id=sample_school,
            scope_tokens=["ecole"],
            actor="t",
            bot_username=BOT,
            portal_url=PORTAL,
        )
    with session_scope(engine) as session:
        assert (
            session.execute(
                select(func.count())
                .select_from(Account)
                .where(
                    (col(Account.state) != AccountState.NOT_NOTIFIED)
                    | col(Account.password_hash).is_not(None)
                )
            ).scalar_one()
            == 0
        )
        assert session.execute(select(func.count()).select_from(FamilyLinkCode)).scalar_one() == 0
        assert (
            session.execute(
                select(func.count())
                .select_from(AuditEvent)
                .where(
                    col(AuditEvent.action).like("account.%"),
                    col(AuditEvent.action) != "account.created",
                )
            ).scalar_one()
            == 0
        )


def test_a_preview_gone_stale_is_refused_and_nothing_is_done(
    engine: Engine, sample_school: int
) -> None:
    with session_scope(engine) as session:
        preview = plan_paper_letters(
            session=session, school_id=sample_school, scope_tokens=["CP A"]
        )
    someone = preview.planned[0].account_id
    with session_scope(engine) as session:
        prepare_paper_letters(
            session=session,
            school_id=sample_school,
            preview_or_account_ids=[someone],
            actor="t",
            bot_username=BOT,
            portal_url=PORTAL,
        )
    with pytest.raises(StalePlanError), session_scope(engine) as session:
        prepare_paper_letters(
            session=session,
            school_id=sample_school,
            preview_or_account_ids=preview,
            actor="t",
            bot_username=BOT,
            portal_url=PORTAL,
        )
    with session_scope(engine) as session:
        notified = session.execute(
            select(func.count())
            .select_from(Account)
            .where(col(Account.state) == AccountState.NOTIFIED)
        ).scalar_one()
        assert notified == 1
        with pytest.raises(ValueError):
            start_email_distribution(
                session=session,
                school_id=sample_school,
                preview_or_account_ids=preview.confirmation(),  # a paper plan
                reset=False,
                actor="t",
                bot_username=BOT,
                portal_url=PORTAL,
                mail_from=MAIL_FROM,
            )


def test_build_letters_reads_guardians_and_children_in_one_query(session: Session) -> None:
    built = make_school_with_guardians(session, 40, names=None)
    school = session.get(School, built.school.id)
    assert school is not None
    from bot.services.accounts.credentials import issue_credentials

    credentials = issue_credentials(
        session=session, account_ids=built.account_ids, kind=CredentialKind.FIRST, actor="t"
    )
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(args[2])

    engine = session.get_bind()
    event.listen(engine, "before_cursor_execute", count)
    try:
        letters = build_letters(
            session=session,
            credentials=credentials,
            link_codes={c.account_id: f"f_{c.account_id:032d}" for c in credentials},
            school=school,
            bot_username=BOT,
            portal_url=PORTAL,
            letter_date=utcnow().date(),
        )
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert len(statements) == 1
    assert [letter.account_id for letter in letters] == built.account_ids
    first = letters[0]
    assert first.children[0].class_label == "CM1" and first.children[0].first_name == "Enfant"
    assert first.activation_url == f"{PORTAL}/activation?identifiant={first.identifier}"
    assert first.bot_link_url == f"https://t.me/{BOT}?start=f_{first.account_id:032d}"
    assert first.school_uai == school.uai and first.password


# --- E-mail ---------------------------------------------------------------------------------


@pytest.fixture
def emailed_school(engine: Engine) -> Iterator[tuple[int, list[int]]]:
    with session_scope(engine) as session:
        built = make_school_with_guardians(session, 4, with_email=[True, True, True, False])
        assert built.school.id is not None
        school_id, ids = built.school.id, built.account_ids
    yield school_id, ids


def _start(session: Session, school_id: int, confirmation: Any, *, reset: bool = False) -> str:
    return start_email_distribution(
        session=session,
        school_id=school_id,
        preview_or_account_ids=confirmation,
        reset=reset,
        actor="telegram:1",
        bot_username=BOT,
        portal_url=PORTAL,
        mail_from=MAIL_FROM,
    )


def password_in(text: str, account: Account) -> bool:
    """Whether `text` holds a provisional password (8 capitals and digits) opening `account`."""
    words = set(re.findall(r"\b[A-Z0-9]{8}\b", text))
    return any(verify_password(account.password_hash, word) for word in words)


def _message_text(row: OutboxMessage) -> str:
    from email import message_from_bytes, policy
    from email.message import EmailMessage

    assert row.body is not None
    message = message_from_bytes(row.body, policy=policy.default)
    assert isinstance(message, EmailMessage)
    part = message.get_body(("plain",))
    assert part is not None
    return str(part.get_content())


def test_outbox_rows_are_written_in_the_same_transaction_as_the_credentials(
    engine: Engine, emailed_school: tuple[int, list[int]]
) -> None:
    school_id, _ids = emailed_school
    session = Session(engine, expire_on_commit=False)
    try:
        preview = plan_email_distribution(
            session=session, school_id=school_id, scope_tokens=["CM1"]
        )
        _start(session, school_id, preview)
        session.rollback()
    finally:
        session.close()
    with session_scope(engine) as session:
        assert session.execute(select(func.count()).select_from(OutboxMessage)).scalar_one() == 0
        assert (
            session.execute(
                select(func.count())
                .select_from(Account)
                .where(col(Account.password_hash).is_not(None))
            ).scalar_one()
            == 0
        )

    with session_scope(engine) as session:
        preview = plan_email_distribution(
            session=session, school_id=school_id, scope_tokens=["CM1"]
        )
        batch_id = _start(session, school_id, preview)
    with session_scope(engine) as session:
        rows = session.execute(select(OutboxMessage)).scalars().all()
        accounts = accounts_by_id(session, [row.account_id for row in rows if row.account_id])
        guardians = {
            g.id: g for g in session.execute(select(Guardian)).scalars() if g.id is not None
        }
        assert len(rows) == len(preview.planned) == 3
        for row in rows:
            assert row.batch_id == batch_id and row.status == OutboxStatus.PENDING
            assert row.kind == "credentials_first"
            assert row.account_id is not None
            account = accounts[row.account_id]
            assert row.to_address == guardians[account.guardian_id].email
            # Not notified until the e-mail is accepted by the server.
            assert account.state == AccountState.NOT_NOTIFIED
            text = _message_text(row)
            assert account.identifier in text
            assert password_in(text, account)
        assert (
            session.execute(
                select(AuditEvent).where(col(AuditEvent.action) == "distribution.emails_queued")
            )
            .scalar_one()
            .details["batch_id"]
            == batch_id
        )


def test_reminder_emails_carry_no_password_and_reset_ones_a_new_one(
    engine: Engine, emailed_school: tuple[int, list[int]]
) -> None:
    school_id, ids = emailed_school
    with session_scope(engine) as session:
        preview = plan_paper_letters(
            session=session, school_id=school_id, scope_tokens=["CM1"], include_all=True
        )
        paper = prepare_paper_letters(
            session=session,
            school_id=school_id,
            preview_or_account_ids=preview,
            actor="t",
            bot_username=BOT,
            portal_url=PORTAL,
        )
    old = {letter.account_id: letter.password for letter in paper.letters}

    with session_scope(engine) as session:
        reminders = plan_email_distribution(
            session=session, school_id=school_id, scope_tokens=["CM1"]
        )
        assert reminders.counts() == {CredentialKind.REMINDER: 3}
        reminder_batch = _start(session, school_id, reminders)
    with session_scope(engine) as session:
        queued = session.execute(select(OutboxMessage)).scalars().all()
        assert len(queued) == 3
        for row in queued:
            assert row.account_id is not None
            text = _message_text(row)
            assert accounts_by_id(session, ids)[row.account_id].identifier in text
            assert (old[row.account_id] or "") not in text
    with session_scope(engine) as session:
        resets = plan_email_distribution(
            session=session, school_id=school_id, scope_tokens=["CM1"], reset=True
        )
        assert resets.counts() == {CredentialKind.RESET: 3}
        reset_batch = _start(session, school_id, resets.confirmation(), reset=True)

    with session_scope(engine) as session:
        rows = session.execute(select(OutboxMessage)).scalars().all()
        accounts = accounts_by_id(session, ids)
        for row in rows:
            assert row.account_id is not None
            account = accounts[row.account_id]
            old_password = old[row.account_id]
            assert old_password is not None
            if row.batch_id == reminder_batch:
                assert row.kind == "credentials_reminder"
                # Not sent yet when the reset came: cancelled, so no stale letter goes out.
                assert row.status == OutboxStatus.CANCELLED and row.body is None
            else:
                assert row.batch_id == reset_batch and row.kind == "credentials_reset"
                assert not verify_password(account.password_hash, old_password)
                assert password_in(_message_text(row), account)
            assert account.state == AccountState.NOTIFIED  # a reset keeps the state


def test_nobody_left_to_send_to_is_said_plainly(
    engine: Engine, emailed_school: tuple[int, list[int]]
) -> None:
    school_id, ids = emailed_school
    with session_scope(engine) as session, pytest.raises(NothingToDistributeError):
        _start(session, school_id, [ids[3]])  # the one without an address
    empty = DistributionPreview(
        school_id=school_id,
        purpose=Purpose.EMAIL,
        reset=False,
        include_all=False,
        scopes=(),
        pupils=0,
        entries=(),
        planned_at=utcnow(),
    )
    with session_scope(engine) as session, pytest.raises(NothingToDistributeError):
        _start(session, school_id, empty)
