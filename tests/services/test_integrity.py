"""The invariant checker: a school imported, e-mailed, printed and partly activated through the
real services breaks none; each invariant, broken on purpose in such a database, is reported
with its code and the ids concerned; `educonnect-bot db check` says so and exits 1."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, delete, func, insert, select, text, update
from sqlmodel import Session

from bot.db import make_engine, session_scope
from bot.jobs import OutboxSender
from bot.services.accounts import notify_accounts
from bot.services.distribution import start_email_distribution
from bot.services.integrity import INVARIANTS, MAX_LISTED_IDS, check_invariants
from bot.services.mail.transport import MaildirTransport
from bot.services.portal import finish_activation, follow_confirmation_link
from bot.services.portal.sessions import session_fingerprint
from bot.services.roster import import_roster
from bot.services.schools import add_school, create_inspector_invitation, create_invitation
from models import (
    Account,
    AccountState,
    FamilyLinkCode,
    Guardian,
    InspectorInvitation,
    Invitation,
    OutboxMessage,
    OutboxStatus,
    PortalToken,
    PortalTokenPurpose,
    Pupil,
    PupilGuardian,
    School,
    SchoolClass,
    utcnow,
)
from tests.conftest import SAMPLES
from tests.mailtools import MAIL_FROM, PORTAL_URL, plain_text, read_maildir
from tests.test_cli import Cli

UAI = "0590001A"
NEW_PASSWORD = "Vacances-2027!"
LINK = re.compile(r"https?://\S+/confirmer/([A-Za-z0-9_-]+)")

ACCOUNT = Account.__table__  # type: ignore[attr-defined]
GUARDIAN = Guardian.__table__  # type: ignore[attr-defined]
LINKS = PupilGuardian.__table__  # type: ignore[attr-defined]
PUPIL = Pupil.__table__  # type: ignore[attr-defined]
CLASS = SchoolClass.__table__  # type: ignore[attr-defined]
OUTBOX = OutboxMessage.__table__  # type: ignore[attr-defined]
TOKEN = PortalToken.__table__  # type: ignore[attr-defined]
CODE = FamilyLinkCode.__table__  # type: ignore[attr-defined]
INVITATION = Invitation.__table__  # type: ignore[attr-defined]
INSPECTOR_INVITATION = InspectorInvitation.__table__  # type: ignore[attr-defined]
SCHOOL = School.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class CleanSchool:
    """The ids of a school at every stage of its campaign, written through the services."""

    school_id: int
    untouched: int  # an account never notified (no e-mail, no letter)
    emailed: int  # notified by e-mail, its e-mail sent
    printed: int  # notified on paper
    activating: int  # the form filled in, the confirmation link not followed yet
    activated: int  # the confirmation link followed
    sent_mail: int  # the outbox row of `emailed`'s credentials e-mail
    guardian: int  # `untouched`'s guardian
    pupil: int  # a child of `untouched`'s guardian
    class_id: int  # that child's class


def _children(session: Session, account_id: int) -> list[Any]:
    return list(
        session.execute(
            select(PUPIL.c.id, PUPIL.c.class_id, PUPIL.c.birth_date)
            .join(LINKS, LINKS.c.pupil_id == PUPIL.c.id)
            .join(ACCOUNT, ACCOUNT.c.guardian_id == LINKS.c.guardian_id)
            .where(ACCOUNT.c.id == account_id)
            .order_by(PUPIL.c.id)
        )
    )


def _activate(session: Session, account_id: int) -> None:
    """The portal's activation form, filled in by the family (the birth date of a child)."""
    account = session.get(Account, account_id)
    assert account is not None
    born = next(child.birth_date for child in _children(session, account_id) if child.birth_date)
    result = finish_activation(
        session,
        account_id=account_id,
        fingerprint=session_fingerprint(account),
        new_password=NEW_PASSWORD,
        confirmation=NEW_PASSWORD,
        email=f"famille{account_id}@exemple.fr",
        birth_date=born.strftime("%d/%m/%Y"),
        portal_url=PORTAL_URL,
        mail_from=MAIL_FROM,
    )
    assert result.ok, result


def _drain(engine: Engine, maildir: Path) -> None:
    sender = OutboxSender(
        engine=engine, transport=MaildirTransport(maildir), envelope_from=MAIL_FROM
    )
    asyncio.run(sender.drain_once())


def build_clean_school(engine: Engine, tmp_path: Path) -> CleanSchool:
    """The demo school imported, five families e-mailed, three letters printed, two of those
    families activating and one of them activated, through the services."""
    files = [(name, (SAMPLES / name).read_bytes()) for name in ("eleves.csv", "responsables.csv")]
    with session_scope(engine) as session:
        school = add_school(session=session, uai=UAI, name="École Jules Ferry", actor="test")
        assert school.id is not None
        school_id = school.id
        create_invitation(session=session, school_id=school_id, actor="test")
        create_inspector_invitation(session=session, uais=[UAI], actor="test")
        import_roster(session=session, school_id=school_id, files=files, actor="test")
        # A re-import of the same files changes nothing but its audit event.
        import_roster(session=session, school_id=school_id, files=files, actor="test")
        rows = session.execute(
            select(ACCOUNT.c.id, GUARDIAN.c.email)
            .join(GUARDIAN, GUARDIAN.c.id == ACCOUNT.c.guardian_id)
            .order_by(ACCOUNT.c.id)
        ).all()
    with_email = [
        row.id for row in rows if row.email and re.fullmatch(r"[^@\s]+@[^@\s]+\.\w+", row.email)
    ]
    without = [row.id for row in rows if not row.email]
    emailed, printed = with_email[:5], without[:3]
    with session_scope(engine) as session:
        start_email_distribution(
            session=session,
            school_id=school_id,
            preview_or_account_ids=emailed,
            reset=False,
            actor="test",
            bot_username="educonnect_test_bot",
            portal_url=PORTAL_URL,
            mail_from=MAIL_FROM,
        )
        notify_accounts(session=session, account_ids=printed, actor="test")
    maildir = tmp_path / "maildir"
    _drain(engine, maildir)
    with session_scope(engine) as session:
        _activate(session, printed[0])
        _activate(session, printed[1])
    _drain(engine, maildir)
    confirmation = next(
        message
        for message in read_maildir(maildir)
        if f"famille{printed[1]}@" in str(message["To"])
    )
    token = LINK.search(plain_text(confirmation))
    assert token is not None
    with session_scope(engine) as session:
        view = follow_confirmation_link(
            session, token=token[1], client="203.0.113.7", mail_from=MAIL_FROM
        )
        assert view.state == AccountState.ACTIVATED
        sent_mail = session.execute(
            select(OUTBOX.c.id).where(OUTBOX.c.account_id == emailed[0])
        ).scalar_one()
        untouched = without[3]
        guardian = session.execute(
            select(ACCOUNT.c.guardian_id).where(ACCOUNT.c.id == untouched)
        ).scalar_one()
        child = _children(session, untouched)[0]
    return CleanSchool(
        school_id=school_id,
        untouched=untouched,
        emailed=emailed[0],
        printed=printed[2],
        activating=printed[0],
        activated=printed[1],
        sent_mail=sent_mail,
        guardian=guardian,
        pupil=child.id,
        class_id=child.class_id,
    )


# --- Each invariant broken on purpose ---------------------------------------------------------

Corruption = Callable[[Connection, CleanSchool], int]


def _guardian_without_account(c: Connection, s: CleanSchool) -> int:
    return int(
        c.execute(
            insert(GUARDIAN)
            .values(
                school_id=s.school_id,
                last_name="X",
                first_name="Y",
                created_at=utcnow(),
                updated_at=utcnow(),
            )
            .returning(GUARDIAN.c.id)
        ).scalar_one()
    )


def _unlink(c: Connection, s: CleanSchool) -> int:
    c.execute(delete(LINKS).where(LINKS.c.guardian_id == s.guardian))
    return s.untouched


def _deactivate(c: Connection, s: CleanSchool) -> int:
    c.execute(update(ACCOUNT).where(ACCOUNT.c.id == s.untouched).values(deactivated_at=utcnow()))
    return s.untouched


def _archive_pupil(c: Connection, s: CleanSchool) -> int:
    c.execute(update(PUPIL).where(PUPIL.c.id == s.pupil).values(archived_at=utcnow()))
    return s.guardian


def _other_school_pupil(c: Connection, s: CleanSchool) -> int:
    other = c.execute(
        insert(SCHOOL)
        .values(uai="0590002B", name="Autre", created_at=utcnow())
        .returning(SCHOOL.c.id)
    ).scalar_one()
    pupil = c.execute(
        insert(PUPIL)
        .values(
            school_id=other, last_name="Z", first_name="W", created_at=utcnow(), updated_at=utcnow()
        )
        .returning(PUPIL.c.id)
    ).scalar_one()
    c.execute(insert(LINKS).values(pupil_id=pupil, guardian_id=s.guardian))
    return s.guardian


def _archive_class(c: Connection, s: CleanSchool) -> int:
    c.execute(update(CLASS).where(CLASS.c.id == s.class_id).values(archived_at=utcnow()))
    return s.pupil


def _extra_pupil(c: Connection, s: CleanSchool) -> int:
    c.execute(
        insert(PUPIL).values(
            school_id=s.school_id,
            last_name="Z",
            first_name="W",
            created_at=utcnow(),
            updated_at=utcnow(),
        )
    )
    return s.school_id


def _extra_live_account(c: Connection, s: CleanSchool) -> int:
    guardian = _guardian_without_account(c, s)
    c.execute(insert(LINKS).values(pupil_id=s.pupil, guardian_id=guardian))
    c.execute(
        insert(ACCOUNT).values(
            guardian_id=guardian,
            identifier="x.y99",
            state="not_notified",
            created_at=utcnow(),
            session_version=0,
        )
    )
    return s.school_id


def _account(**values: Any) -> Callable[[str], Corruption]:
    def on(role: str) -> Corruption:
        def write(c: Connection, s: CleanSchool) -> int:
            account_id = int(getattr(s, role))
            c.execute(update(ACCOUNT).where(ACCOUNT.c.id == account_id).values(**values))
            return account_id

        return write

    return on


def _outbox(**values: Any) -> Corruption:
    def write(c: Connection, s: CleanSchool) -> int:
        c.execute(update(OUTBOX).where(OUTBOX.c.id == s.sent_mail).values(**values))
        return s.sent_mail

    return write


def _token(c: Connection, s: CleanSchool, **values: Any) -> int:
    token_id = c.execute(select(TOKEN.c.id).where(TOKEN.c.account_id == s.activating)).scalar_one()
    c.execute(update(TOKEN).where(TOKEN.c.id == token_id).values(**values))
    return int(token_id)


def _second_live_link(c: Connection, s: CleanSchool) -> int:
    c.execute(
        insert(TOKEN).values(
            account_id=s.activating,
            purpose=PortalTokenPurpose.ACTIVATION.value,
            token_hash="a" * 64,
            created_at=utcnow(),
            expires_at=utcnow() + timedelta(days=7),
        )
    )
    return s.activating


def _code(c: Connection, s: CleanSchool, **values: Any) -> int:
    code_id = c.execute(select(CODE.c.id).where(CODE.c.account_id == s.emailed)).scalar_one()
    c.execute(update(CODE).where(CODE.c.id == code_id).values(**values))
    return int(code_id)


def _second_live_code(c: Connection, s: CleanSchool) -> int:
    c.execute(
        insert(CODE).values(
            account_id=s.emailed,
            code_hash="b" * 64,
            created_at=utcnow(),
            expires_at=utcnow() + timedelta(days=30),
        )
    )
    return s.emailed


def _first(model: Any, **values: Any) -> Corruption:
    def write(c: Connection, _s: CleanSchool) -> int:
        row_id = c.execute(select(func.min(model.c.id))).scalar_one()
        c.execute(update(model).where(model.c.id == row_id).values(**values))
        return int(row_id)

    return write


def _dangling(model: Any, column: str, key: Callable[[CleanSchool], int]) -> Corruption:
    def write(c: Connection, s: CleanSchool) -> int:
        row_id = key(s)
        c.execute(update(model).where(model.c.id == row_id).values({column: 999_999}))
        return row_id

    return write


def _dangling_link(c: Connection, s: CleanSchool) -> int:
    c.execute(insert(LINKS).values(pupil_id=s.pupil, guardian_id=999_999))
    return 999_999


ARGON = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA"
HOUR_AGO = timedelta(hours=1)

CORRUPTIONS: dict[str, Corruption] = {
    "roster.guardian_without_account": _guardian_without_account,
    "roster.live_account_without_child": _unlink,
    "roster.deactivated_account_with_child": _deactivate,
    "roster.link_to_archived_pupil": _archive_pupil,
    "roster.link_across_schools": _other_school_pupil,
    "roster.pupil_in_wrong_class": _archive_class,
    "roster.import_pupil_counts_differ": _extra_pupil,
    "roster.import_guardian_counts_differ": _extra_live_account,
    "account.not_notified_inconsistent": _account(distributed_at=utcnow())("untouched"),
    "account.notified_inconsistent": _account(provisional_expires_at=None)("printed"),
    "account.activating_inconsistent": _account(activated_at=utcnow())("activating"),
    "account.activated_inconsistent": _account(activated_at=None)("activated"),
    "account.distribution_half_recorded": _account(distribution_channel=None)("emailed"),
    "account.expiry_without_password": _account(provisional_expires_at=utcnow())("untouched"),
    "account.activating_without_confirmation_mail": _account(state="activating")("printed"),
    "account.password_not_hashed": _account(password_hash="Vacances-2027!")("activated"),
    "mail.body_not_erased": _outbox(body=b"Mot de passe : ABCD1234"),
    "mail.sent_without_date": _outbox(sent_at=None),
    "mail.pending_inconsistent": _outbox(status=OutboxStatus.PENDING.value, claimed_by="h:1:x"),
    "mail.sending_inconsistent": _outbox(status=OutboxStatus.SENDING.value),
    "mail.sending_abandoned": _outbox(
        status=OutboxStatus.SENDING.value,
        body=b"x",
        claimed_by="elsewhere:1:x",
        claimed_at=utcnow() - HOUR_AGO,
    ),
    "mail.sent_but_not_notified": _account(
        state="not_notified", distributed_at=None, distribution_channel=None
    )("emailed"),
    "mail.notified_by_email_without_mail": _account(distribution_channel="email")("printed"),
    "mail.credentials_never_queued": _account(
        password_hash=ARGON, provisional_expires_at=utcnow() + timedelta(days=90)
    )("untouched"),
    "secret.portal_link_not_hashed": lambda c, s: _token(c, s, token_hash="jeton-en-clair"),
    "secret.letter_code_not_hashed": lambda c, s: _code(c, s, code_hash="ABCD-1234"),
    "secret.director_invitation_not_hashed": _first(INVITATION, code_hash="A" * 64),
    "secret.inspector_invitation_not_hashed": _first(INSPECTOR_INVITATION, code_hash="12345678"),
    "secret.several_live_portal_links": _second_live_link,
    "secret.used_activation_link_not_activated": _account(state="activating", activated_at=None)(
        "activated"
    ),
    "secret.several_live_letter_codes": _second_live_code,
    "secret.letter_code_use_half_recorded": lambda c, s: _code(c, s, used_at=utcnow()),
    "reference.pupil_guardian.guardian_id": _dangling_link,
    "reference.account.guardian_id": _dangling(ACCOUNT, "guardian_id", lambda s: s.untouched),
    "reference.outbox_message.account_id": _dangling(OUTBOX, "account_id", lambda s: s.sent_mail),
}


@contextmanager
def corrupted(engine: Engine) -> Iterator[tuple[Connection, Session]]:
    """A transaction with foreign keys unchecked (as a restored or hand-edited database),
    rolled back at the end, and a session on it for the checker."""
    with engine.connect() as connection:
        if engine.dialect.name == "sqlite":
            # Outside any transaction, or SQLite ignores it.
            connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
            connection.commit()
        transaction = connection.begin()
        if engine.dialect.name == "postgresql":
            connection.execute(text("SET LOCAL session_replication_role = replica"))
        try:
            with Session(bind=connection) as session:
                yield connection, session
        finally:
            transaction.rollback()
            if engine.dialect.name == "sqlite":
                connection.exec_driver_sql("PRAGMA foreign_keys=ON")
                connection.commit()


def test_a_clean_campaign_breaks_nothing_and_each_invariant_broken_is_reported_with_its_ids(
    engine: Engine, tmp_path: Path
) -> None:
    school = build_clean_school(engine, tmp_path)
    with Session(engine) as session:
        states = dict(
            session.execute(
                select(ACCOUNT.c.id, ACCOUNT.c.state).where(
                    ACCOUNT.c.id.in_([school.emailed, school.activating, school.activated])
                )
            ).all()
        )
    assert states == {
        school.emailed: AccountState.NOTIFIED,
        school.activating: AccountState.ACTIVATING,
        school.activated: AccountState.ACTIVATED,
    }
    assert check_invariants(engine) == []
    missed: list[str] = []
    by_code = {invariant.code: invariant for invariant in INVARIANTS}
    for code, corrupt in CORRUPTIONS.items():
        with corrupted(engine) as (connection, session):
            row_id = corrupt(connection, school)
            # Only the invariant concerned: every invariant on every corruption takes seconds.
            found = check_invariants(session, invariants=[by_code[code]])
        if not found or row_id not in found[0].ids:
            missed.append(f"{code}: id {row_id} not reported ({found})")
    assert missed == []
    # Each corruption was undone: the school is clean again.
    assert check_invariants(engine) == []


def test_every_invariant_but_the_generic_references_has_its_corruption() -> None:
    codes = {invariant.code for invariant in INVARIANTS}
    specific = {code for code in codes if not code.startswith("reference.")}
    assert specific <= set(CORRUPTIONS)
    assert set(CORRUPTIONS) <= codes


def test_a_violation_lists_at_most_fifty_ids_and_counts_them_all(sqlite_engine: Engine) -> None:
    with session_scope(sqlite_engine) as session:
        school = add_school(session=session, uai=UAI, name="École", actor="test")
        session.execute(
            insert(GUARDIAN),
            [
                {
                    "school_id": school.id,
                    "last_name": f"N{i}",
                    "first_name": "P",
                    "created_at": utcnow(),
                    "updated_at": utcnow(),
                }
                for i in range(MAX_LISTED_IDS + 7)
            ],
        )
    [violation] = check_invariants(sqlite_engine)
    assert violation.code == "roster.guardian_without_account"
    assert violation.count == MAX_LISTED_IDS + 7 and len(violation.ids) == MAX_LISTED_IDS
    assert violation.ids == tuple(sorted(violation.ids))
    # Plain words, in French by default, and the ids: never a name.
    assert "N1" not in violation.description and "import" in violation.description.casefold()


def test_db_check_exits_zero_when_clean_and_one_with_the_violations(
    tmp_path: Path, sqlite_template: Path
) -> None:
    database = tmp_path / "educonnect.db"
    database.write_bytes(sqlite_template.read_bytes())
    cli = Cli(tmp_path, DATABASE_URL=f"sqlite:///{database}")
    clean = cli.run("db", "check")
    assert clean.returncode == 0, clean.stderr
    assert "aucun" in clean.stdout.casefold() or "none" in clean.stdout.casefold()
    assert json.loads(cli.run("db", "check", "--json").stdout)["ok"] is True

    with session_scope(make_engine(f"sqlite:///{database}")) as session:
        school = add_school(session=session, uai=UAI, name="École", actor="test")
        session.execute(
            insert(GUARDIAN).values(
                school_id=school.id,
                last_name="DUPONT",
                first_name="Léa",
                created_at=utcnow(),
                updated_at=utcnow(),
            )
        )
    broken = cli.run("db", "check")
    assert broken.returncode == 1
    assert "roster.guardian_without_account" in broken.stdout and "DUPONT" not in broken.stdout
    report = json.loads(cli.run("db", "check", "--json").stdout)
    assert report["ok"] is False
    [violation] = report["violations"]
    assert violation["code"] == "roster.guardian_without_account" and violation["count"] == 1
