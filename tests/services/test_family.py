"""Family-link codes: hashed at rest, single use, expiring with the provisional password,
superseded by a newer letter; redeeming one links the chat to its guardian."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import Engine, select
from sqlmodel import Session, col

from bot.db import session_scope
from bot.services.accounts.family_links import (
    FamilyLinkError,
    LinkRefusal,
    create_link_codes,
    hash_link_code,
    known_bot_username,
    linked_chat_ids,
    linked_guardians,
    looks_like_link_code,
    redeem_link_code,
    remember_bot_username,
)
from bot.services.accounts.lifecycle import confirm_activation, deactivate_accounts
from models import AccountState, AuditEvent, FamilyChat, FamilyLinkCode, utcnow
from tests.factories import make_school_with_guardians

TELEGRAM_ID = 5_000_000_001  # more than 32 bits, as real Telegram ids


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    """A session on a clean database, SQLite and PostgreSQL (this module's tests run on both)."""
    with Session(engine, expire_on_commit=False) as session:
        yield session


def test_codes_fit_a_start_payload_and_only_their_hash_is_stored(session: Session) -> None:
    built = make_school_with_guardians(session, 3)
    expiry = utcnow() + timedelta(days=90)
    codes = create_link_codes(session=session, expiries=dict.fromkeys(built.account_ids, expiry))

    assert set(codes) == set(built.account_ids)
    assert len(set(codes.values())) == 3
    for code in codes.values():
        # Telegram's /start payload: [A-Za-z0-9_-], at most 64 characters; never like an
        # invitation code (22 characters).
        assert re.fullmatch(r"[A-Za-z0-9_-]{1,64}", code) and code.startswith("f_")
        assert len(code) == 34 and looks_like_link_code(code)
    stored = session.execute(select(FamilyLinkCode)).scalars().all()
    assert {row.code_hash for row in stored} == {hash_link_code(c) for c in codes.values()}
    assert not any(code in row.code_hash for row in stored for code in codes.values())


def test_a_code_links_the_chat_once_and_says_where_the_account_stands(engine: Engine) -> None:
    with session_scope(engine) as session:
        built = make_school_with_guardians(session, 2, names=[("Inès", "Gonçalves"), ("A", "B")])
        account_id = built.account_ids[0]
        code = create_link_codes(
            session=session, expiries={account_id: utcnow() + timedelta(days=90)}
        )[account_id]

    with session_scope(engine) as session:
        linked = redeem_link_code(session=session, code=code, telegram_user_id=TELEGRAM_ID)
    assert linked.account_id == account_id
    assert (linked.first_name, linked.last_name) == ("Inès", "Gonçalves")
    assert linked.state == AccountState.NOT_NOTIFIED and not linked.already_linked
    assert linked.children == ("Enfant",)

    with session_scope(engine) as session:
        chats = session.execute(select(FamilyChat)).scalars().all()
        assert [(c.telegram_user_id, c.guardian_id) for c in chats] == [
            (TELEGRAM_ID, linked.guardian_id)
        ]
        used = session.execute(select(FamilyLinkCode)).scalar_one()
        assert used.used_at is not None and used.used_by_telegram_id == TELEGRAM_ID
        event = session.execute(
            select(AuditEvent).where(col(AuditEvent.action) == "family.chat_linked")
        ).scalar_one()
        assert event.account_id == account_id
        assert code not in str(event.details)
        assert linked_guardians(session=session, telegram_user_id=TELEGRAM_ID)[0].account_id == (
            account_id
        )
        assert linked_chat_ids(session=session, guardian_ids=[linked.guardian_id]) == {
            linked.guardian_id: [TELEGRAM_ID]
        }

    # The same person scanning again gets the link back; anyone else is refused.
    with session_scope(engine) as session:
        again = redeem_link_code(session=session, code=code, telegram_user_id=TELEGRAM_ID)
        assert again.already_linked
        with pytest.raises(FamilyLinkError) as refused:
            redeem_link_code(session=session, code=code, telegram_user_id=TELEGRAM_ID + 1)
        assert refused.value.reason is LinkRefusal.USED


@pytest.mark.parametrize("text", ["", "f_short", "f_" + "A" * 32, "abcdefghijklmnopqrstuv"])
def test_unknown_codes_are_refused_as_unknown(session: Session, text: str) -> None:
    make_school_with_guardians(session, 1)
    with pytest.raises(FamilyLinkError) as refused:
        redeem_link_code(session=session, code=text, telegram_user_id=TELEGRAM_ID)
    assert refused.value.reason is LinkRefusal.UNKNOWN


def test_a_code_expires_with_its_provisional_password(session: Session) -> None:
    built = make_school_with_guardians(session, 1)
    now = utcnow()
    account_id = built.account_ids[0]
    code = create_link_codes(
        session=session, expiries={account_id: now + timedelta(days=1)}, now=now
    )[account_id]

    with pytest.raises(FamilyLinkError) as refused:
        redeem_link_code(
            session=session,
            code=code,
            telegram_user_id=TELEGRAM_ID,
            now=now + timedelta(days=1, seconds=1),
        )
    assert refused.value.reason is LinkRefusal.EXPIRED
    assert session.execute(select(FamilyChat)).first() is None


def test_a_newer_letter_supersedes_the_unused_codes_of_older_ones(session: Session) -> None:
    built = make_school_with_guardians(session, 2)
    first_account, other_account = built.account_ids
    now = utcnow()
    expiry = now + timedelta(days=90)
    old = create_link_codes(
        session=session, expiries={first_account: expiry, other_account: expiry}, now=now
    )
    later = now + timedelta(minutes=5)
    new = create_link_codes(session=session, expiries={first_account: expiry}, now=later)

    with pytest.raises(FamilyLinkError) as refused:
        redeem_link_code(
            session=session,
            code=old[first_account],
            telegram_user_id=TELEGRAM_ID,
            now=later + timedelta(seconds=1),
        )
    assert refused.value.reason is LinkRefusal.SUPERSEDED
    # The newer code works, and so does the other account's untouched one.
    assert (
        redeem_link_code(session=session, code=new[first_account], telegram_user_id=TELEGRAM_ID)
    ).account_id == first_account
    assert (
        redeem_link_code(session=session, code=old[other_account], telegram_user_id=TELEGRAM_ID + 1)
    ).account_id == other_account


def test_a_deactivated_account_cannot_be_linked(session: Session) -> None:
    built = make_school_with_guardians(session, 1)
    account_id = built.account_ids[0]
    code = create_link_codes(session=session, expiries={account_id: utcnow() + timedelta(days=90)})[
        account_id
    ]
    deactivate_accounts(session=session, account_ids=[account_id], actor="t")

    with pytest.raises(FamilyLinkError) as refused:
        redeem_link_code(session=session, code=code, telegram_user_id=TELEGRAM_ID)
    assert refused.value.reason is LinkRefusal.DEACTIVATED


def test_linking_shows_the_current_state(session: Session) -> None:
    built = make_school_with_guardians(session, 1)
    account = built.accounts[0]
    assert account.id is not None
    account.state = AccountState.ACTIVATING
    session.add(account)
    session.flush()
    code = create_link_codes(session=session, expiries={account.id: utcnow() + timedelta(days=90)})[
        account.id
    ]

    linked = redeem_link_code(session=session, code=code, telegram_user_id=TELEGRAM_ID)
    assert linked.state == AccountState.ACTIVATING


def test_a_code_stops_working_once_the_account_is_activated(session: Session) -> None:
    # A letter found in a bin after the family activated its account must not link a
    # stranger's chat to the family (and its children's names).
    built = make_school_with_guardians(session, 1)
    account = built.accounts[0]
    assert account.id is not None
    code = create_link_codes(session=session, expiries={account.id: utcnow() + timedelta(days=90)})[
        account.id
    ]
    account.state = AccountState.ACTIVATING
    session.add(account)
    session.flush()
    confirm_activation(session=session, account_id=account.id, actor="t")

    with pytest.raises(FamilyLinkError) as refused:
        redeem_link_code(session=session, code=code, telegram_user_id=TELEGRAM_ID)
    assert refused.value.reason is LinkRefusal.ACTIVATED
    assert session.execute(select(FamilyChat)).scalars().first() is None
    row = session.execute(select(FamilyLinkCode)).scalars().one()
    assert row.used_at is None


def test_the_bot_username_is_remembered_for_the_letters(session: Session) -> None:
    assert known_bot_username(session=session) is None
    remember_bot_username(session=session, username="educonnect_bot")
    remember_bot_username(session=session, username="@educonnect_ecole_bot")
    remember_bot_username(session=session, username=None)
    assert known_bot_username(session=session) == "educonnect_ecole_bot"
