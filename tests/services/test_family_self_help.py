"""A linked family helps itself: its accounts as it may see them, a new provisional password by
e-mail at most once a day, the confirmation link again within the portal's mail limits; a chat
never acts on an account it is not linked to."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from bot.services.accounts import begin_activation, mark_distributed
from bot.services.accounts.family_links import attach_chat
from bot.services.accounts.lifecycle import confirm_activation, deactivate_accounts
from bot.services.family import (
    ChildLine,
    SelfHelpOutcome,
    SelfHelpResult,
    family_accounts,
    mask_email,
    resend_confirmation_link,
    send_new_provisional_password,
)
from bot.services.portal.links import issue_link
from models import (
    Account,
    AccountState,
    AuditEvent,
    DistributionChannel,
    Guardian,
    OutboxMessage,
    PortalTokenPurpose,
    utcnow,
)
from tests.factories import make_school_with_guardians

TELEGRAM_ID = 5_000_000_001
STRANGER_ID = 5_000_000_002
PORTAL = "https://portail.example.org"
MAIL_FROM = "École Jules Ferry <ecole@example.org>"
CHOSEN = "Un-mot-de-passe-solide-42"
NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    """A session on a clean database, SQLite and PostgreSQL (row locks matter here)."""
    with Session(engine, expire_on_commit=False) as session:
        yield session


def linked_account(session: Session, *, with_email: bool = True) -> int:
    """A school of one guardian (a child in CM1), whose account this chat is linked to."""
    built = make_school_with_guardians(
        session, 1, with_email=with_email, names=[("Lucie", "Dubois")]
    )
    attach_chat(
        session, telegram_user_id=TELEGRAM_ID, guardian_id=built.guardians[0].id or 0, now=NOW
    )
    session.commit()
    return built.account_ids[0]


def new_password(
    session: Session, account_id: int, *, now: datetime = NOW, user: int = TELEGRAM_ID
) -> SelfHelpResult:
    result = send_new_provisional_password(
        session,
        telegram_user_id=user,
        account_id=account_id,
        bot_username="educonnect_bot",
        portal_url=PORTAL,
        mail_from=MAIL_FROM,
        now=now,
    )
    session.commit()
    return result


def confirmation_link(
    session: Session, account_id: int, *, user: int = TELEGRAM_ID
) -> SelfHelpResult:
    result = resend_confirmation_link(
        session,
        telegram_user_id=user,
        account_id=account_id,
        portal_url=PORTAL,
        mail_from=MAIL_FROM,
        now=utcnow(),
    )
    session.commit()
    return result


def outbox(session: Session, account_id: int) -> list[OutboxMessage]:
    return list(
        session.exec(
            select(OutboxMessage)
            .where(col(OutboxMessage.account_id) == account_id)
            .order_by(col(OutboxMessage.id))
        ).all()
    )


def activating(session: Session, account_id: int) -> None:
    """The family started its activation on the portal with its own address, which waits on
    the confirmation link the portal sent there."""
    account = begin_activation(
        session,
        account_id=account_id,
        new_password=CHOSEN,
        email="lucie.dubois@example.fr",
        actor="portal",
        verified_by_phone=True,
    )
    issue_link(
        session,
        account,
        PortalTokenPurpose.ACTIVATION,
        email="lucie.dubois@example.fr",
        now=utcnow(),
    )
    session.commit()


def test_an_address_is_masked_enough_to_recognise_not_to_learn() -> None:
    assert mask_email("lucie.dubois@example.fr") == "l•••@example.fr"
    assert mask_email(None) is None


def test_a_linked_chat_sees_its_account_children_and_school_never_a_password(
    session: Session,
) -> None:
    account_id = linked_account(session)

    [seen] = family_accounts(session, telegram_user_id=TELEGRAM_ID)

    assert seen.account_id == account_id
    assert (seen.first_name, seen.last_name, seen.school_name) == (
        "Lucie",
        "Dubois",
        "École Jules Ferry",
    )
    assert seen.state == AccountState.NOT_NOTIFIED and not seen.deactivated
    assert seen.children == (ChildLine(first_name="Enfant", class_label="CM1"),)
    assert seen.masked_email == "p•••@example.org"
    assert not hasattr(seen, "password_hash")
    assert family_accounts(session, telegram_user_id=STRANGER_ID) == []


def test_an_activating_account_says_when_its_confirmation_link_went(session: Session) -> None:
    account_id = linked_account(session)
    activating(session, account_id)
    assert confirmation_link(session, account_id).outcome is SelfHelpOutcome.SENT

    [seen] = family_accounts(session, telegram_user_id=TELEGRAM_ID)
    assert seen.state == AccountState.ACTIVATING
    assert seen.confirmation_sent_at is not None
    assert seen.masked_email == "l•••@example.fr"


def test_a_lost_provisional_password_is_reset_by_email_through_the_distribution_service(
    session: Session,
) -> None:
    account_id = linked_account(session)

    first = new_password(session, account_id)

    assert first.outcome is SelfHelpOutcome.SENT
    assert first.masked_email == "p•••@example.org"
    [mail] = outbox(session, account_id)
    assert mail.to_address == "parent0@example.org" and mail.kind == "credentials_first"
    account = session.get(Account, account_id)
    assert account is not None and account.password_hash is not None
    actions = session.exec(
        select(AuditEvent.actor, AuditEvent.action).where(col(AuditEvent.account_id) == account_id)
    ).all()
    assert ("family:5000000001", "family.new_password_sent") in actions


def test_reset_email_at_most_once_a_day(session: Session) -> None:
    account_id = linked_account(session)
    assert new_password(session, account_id).outcome is SelfHelpOutcome.SENT

    again = new_password(session, account_id, now=NOW + timedelta(hours=3))
    assert again.outcome is SelfHelpOutcome.ALREADY_TODAY
    assert again.retry_at == NOW + timedelta(hours=24)
    assert len(outbox(session, account_id)) == 1

    # The first e-mail was accepted: the next one is a reset, not a first distribution.
    mark_distributed(
        session, account_ids=[account_id], channel=DistributionChannel.EMAIL, actor="outbox"
    )
    session.commit()
    tomorrow = new_password(session, account_id, now=NOW + timedelta(hours=25))
    assert tomorrow.outcome is SelfHelpOutcome.SENT
    kinds = [mail.kind for mail in outbox(session, account_id)]
    assert kinds[-1] == "credentials_reset"


def test_without_an_address_the_school_must_prepare_a_paper_letter(session: Session) -> None:
    account_id = linked_account(session, with_email=False)

    result = new_password(session, account_id)

    assert result.outcome is SelfHelpOutcome.NO_ADDRESS
    assert outbox(session, account_id) == []


def test_an_activated_account_is_sent_to_the_portals_forgotten_password(session: Session) -> None:
    account_id = linked_account(session)
    activating(session, account_id)
    confirm_activation(session=session, account_id=account_id, actor="portal")
    session.commit()

    assert new_password(session, account_id).outcome is SelfHelpOutcome.ACTIVATED
    assert confirmation_link(session, account_id).outcome is SelfHelpOutcome.ACTIVATED
    assert outbox(session, account_id) == []


def test_a_deactivated_account_gets_nothing(session: Session) -> None:
    account_id = linked_account(session)
    deactivate_accounts(session=session, account_ids=[account_id], actor="tests")
    session.commit()

    assert new_password(session, account_id).outcome is SelfHelpOutcome.DEACTIVATED
    assert confirmation_link(session, account_id).outcome is SelfHelpOutcome.DEACTIVATED


def test_a_chat_never_acts_on_an_account_it_is_not_linked_to(session: Session) -> None:
    account_id = linked_account(session)

    assert new_password(session, account_id, user=STRANGER_ID).outcome is SelfHelpOutcome.NOT_LINKED
    assert confirmation_link(session, account_id, user=STRANGER_ID).outcome is (
        SelfHelpOutcome.NOT_LINKED
    )
    assert outbox(session, account_id) == []


def test_the_confirmation_link_only_for_an_account_awaiting_confirmation(
    session: Session,
) -> None:
    account_id = linked_account(session)

    result = confirmation_link(session, account_id)

    assert result.outcome is SelfHelpOutcome.NOT_ACTIVATING
    assert outbox(session, account_id) == []


def test_the_confirmation_link_again_within_the_portals_mail_limits(session: Session) -> None:
    account_id = linked_account(session)
    activating(session, account_id)

    outcomes = [confirmation_link(session, account_id).outcome for _ in range(4)]

    # The portal allows three e-mails an hour to one account.
    assert outcomes == [SelfHelpOutcome.SENT] * 3 + [SelfHelpOutcome.RATE_LIMITED]
    mails = outbox(session, account_id)
    assert [mail.kind for mail in mails] == ["activation_confirmation"] * 3
    assert {mail.to_address for mail in mails} == {"lucie.dubois@example.fr"}
    refused = confirmation_link(session, account_id)
    assert refused.retry_at is not None and refused.retry_at > utcnow()
    guardian = session.exec(select(Guardian)).one()
    # Pending on the link until the family follows it: the school's address stays on file.
    assert guardian.email == "parent0@example.org"
