"""A director's one-tap actions on one guardian (their card in /responsables and in the help
desk): the preview for accounts picked by hand, the confirmation link sent again, the address
corrected."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlmodel import Session, col

from bot.i18n import use_language
from bot.services.accounts import CredentialKind, RefusalReason
from bot.services.distribution import (
    Purpose,
    SkipReason,
    plan_for_accounts,
    start_email_distribution,
    start_reminders,
)
from bot.services.portal import RequestStatus, send_confirmation_link_again
from bot.services.roster import (
    EmailCorrectionError,
    GuardianNotFoundError,
    correct_guardian_email,
    guardian_card,
    mask_email,
)
from models import AccountState, AuditEvent, Guardian, OutboxMessage, PortalToken, utcnow
from tests.factories import SchoolWithGuardians, make_school_with_guardians

PORTAL = "https://portail.example.org"
MAIL_FROM = "École Jules Ferry <ecole@example.org>"
DIRECTOR = "telegram:42"


def _set_state(
    session: Session, school: SchoolWithGuardians, index: int, state: AccountState
) -> int:
    account = school.accounts[index]
    account.state = state
    if state is not AccountState.NOT_NOTIFIED:
        account.distributed_at = utcnow()
    session.add(account)
    session.flush()
    assert account.id is not None
    return account.id


def _outbox_to(session: Session, address: str) -> list[OutboxMessage]:
    rows = session.execute(select(OutboxMessage)).scalars()
    return [row for row in rows if address in row.to_address]


def _resend(session: Session, school_id: int, account_id: int, **options: object) -> object:
    return send_confirmation_link_again(
        session,
        school_id=school_id,
        account_id=account_id,
        actor=DIRECTOR,
        portal_url=PORTAL,
        mail_from=MAIL_FROM,
        **options,  # type: ignore[arg-type]
    )


def _correct(session: Session, school_id: int, account_id: int, email: str) -> object:
    return correct_guardian_email(
        session,
        school_id=school_id,
        account_id=account_id,
        email=email,
        actor=DIRECTOR,
        portal_url=PORTAL,
        mail_from=MAIL_FROM,
    )


# --- The preview for accounts picked by hand --------------------------------------------------


def test_plan_for_accounts_previews_the_picked_guardian_only(session: Session) -> None:
    school = make_school_with_guardians(session, 3)
    picked = school.account_ids[1]
    preview = plan_for_accounts(
        session, school_id=school.school.id or 0, account_ids=[picked], purpose=Purpose.EMAIL
    )
    assert [entry.account_id for entry in preview.planned] == [picked]
    assert preview.scopes == ()
    assert preview.pupils == 1
    assert preview.counts() == {CredentialKind.FIRST: 1}


def test_plan_for_accounts_leaves_out_another_schools_accounts(session: Session) -> None:
    ours = make_school_with_guardians(session, 1)
    theirs = make_school_with_guardians(session, 1)
    preview = plan_for_accounts(
        session,
        school_id=ours.school.id or 0,
        account_ids=[theirs.account_ids[0]],
        purpose=Purpose.PAPER,
    )
    assert preview.entries == ()
    assert preview.is_empty


def test_plan_for_accounts_reminds_a_notified_guardian_and_skips_a_never_notified(
    session: Session,
) -> None:
    school = make_school_with_guardians(session, 2)
    notified = _set_state(session, school, 0, AccountState.NOTIFIED)
    preview = plan_for_accounts(
        session,
        school_id=school.school.id or 0,
        account_ids=school.account_ids,
        purpose=Purpose.REMINDER,
    )
    assert preview.reset is None
    assert preview.account_ids == [notified]
    assert [entry.skip for entry in preview.skipped] == [SkipReason.NOT_YET_NOTIFIED]


def test_plan_for_accounts_skips_an_activated_family(session: Session) -> None:
    school = make_school_with_guardians(session, 1)
    activated = _set_state(session, school, 0, AccountState.ACTIVATED)
    preview = plan_for_accounts(
        session, school_id=school.school.id or 0, account_ids=[activated], purpose=Purpose.PAPER
    )
    assert preview.is_empty
    assert preview.skipped[0].skip is SkipReason.ALREADY_ACTIVATED


def test_confirming_a_picked_preview_queues_the_email(session: Session) -> None:
    school = make_school_with_guardians(session, 2)
    picked = school.account_ids[0]
    preview = plan_for_accounts(
        session, school_id=school.school.id or 0, account_ids=[picked], purpose=Purpose.EMAIL
    )
    start_email_distribution(
        session,
        school_id=school.school.id or 0,
        preview_or_account_ids=preview.confirmation(),
        reset=False,
        actor=DIRECTOR,
        bot_username=None,
        portal_url=PORTAL,
        mail_from=MAIL_FROM,
    )
    assert len(_outbox_to(session, "parent0@example.org")) == 1
    assert not _outbox_to(session, "parent1@example.org")


def test_confirming_a_picked_reminder_as_a_reset_queues_a_new_password(session: Session) -> None:
    school = make_school_with_guardians(session, 1)
    notified = _set_state(session, school, 0, AccountState.NOTIFIED)
    preview = plan_for_accounts(
        session, school_id=school.school.id or 0, account_ids=[notified], purpose=Purpose.REMINDER
    )
    result = start_reminders(
        session,
        school_id=school.school.id or 0,
        preview_or_account_ids=preview.confirmation(),
        reset=True,
        actor=DIRECTOR,
        bot_username=None,
        portal_url=PORTAL,
        mail_from=MAIL_FROM,
    )
    assert result.batch_id is not None
    assert len(_outbox_to(session, "parent0@example.org")) == 1


# --- The guardian's card ----------------------------------------------------------------------


def test_card_shows_the_masked_address_and_the_children(session: Session) -> None:
    school = make_school_with_guardians(session, 1, names=[("Céline", "Dupont")])
    card = guardian_card(session, school_id=school.school.id or 0, account_id=school.account_ids[0])
    assert card.masked_email == "p•••@example.org"
    assert card.name == "Céline DUPONT"
    assert [(child.first_name, child.class_label) for child in card.children] == [("Enfant", "CM1")]
    assert card.state is AccountState.NOT_NOTIFIED


def test_card_of_another_schools_guardian_is_refused(session: Session) -> None:
    ours = make_school_with_guardians(session, 1)
    theirs = make_school_with_guardians(session, 1)
    with pytest.raises(GuardianNotFoundError):
        guardian_card(session, school_id=ours.school.id or 0, account_id=theirs.account_ids[0])


def test_mask_email_keeps_the_first_letter_and_the_domain() -> None:
    assert mask_email("lea.martin@example.fr") == "l•••@example.fr"


# --- The confirmation link sent again ---------------------------------------------------------


def test_director_resends_the_confirmation_link_of_an_activating_account(
    session: Session,
) -> None:
    school = make_school_with_guardians(session, 1)
    activating = _set_state(session, school, 0, AccountState.ACTIVATING)
    result = _resend(session, school.school.id or 0, activating)
    assert result.status is RequestStatus.ACCEPTED  # type: ignore[attr-defined]
    assert len(_outbox_to(session, "parent0@example.org")) == 1
    assert session.execute(select(PortalToken)).scalars().one().account_id == activating
    event = session.execute(
        select(AuditEvent).where(col(AuditEvent.action) == "portal.activation_link_sent")
    ).scalar_one()
    assert event.actor == DIRECTOR


def test_resending_the_confirmation_link_keeps_the_per_account_mail_limit(
    session: Session,
) -> None:
    school = make_school_with_guardians(session, 1)
    activating = _set_state(session, school, 0, AccountState.ACTIVATING)
    now = utcnow()
    statuses = [
        _resend(session, school.school.id or 0, activating, now=now + timedelta(seconds=i))
        for i in range(4)
    ]
    assert [s.status for s in statuses] == [  # type: ignore[attr-defined]
        RequestStatus.ACCEPTED,
        RequestStatus.ACCEPTED,
        RequestStatus.ACCEPTED,
        RequestStatus.RATE_LIMITED,
    ]


def test_resending_the_link_is_refused_for_another_state_or_school(session: Session) -> None:
    ours = make_school_with_guardians(session, 1)
    theirs = make_school_with_guardians(session, 1)
    foreign = _set_state(session, theirs, 0, AccountState.ACTIVATING)
    refused = _resend(session, ours.school.id or 0, foreign)
    assert refused.refusal is RefusalReason.UNKNOWN_ACCOUNT  # type: ignore[attr-defined]
    notified = _set_state(session, ours, 0, AccountState.NOTIFIED)
    refused = _resend(session, ours.school.id or 0, notified)
    assert refused.refusal is RefusalReason.NOT_ACTIVATING  # type: ignore[attr-defined]
    assert not session.execute(select(OutboxMessage)).scalars().all()


# --- The address corrected --------------------------------------------------------------------


def test_correcting_the_address_of_a_notified_guardian_says_to_correct_onde(
    session: Session,
) -> None:
    school = make_school_with_guardians(session, 1)
    notified = _set_state(session, school, 0, AccountState.NOTIFIED)
    done = _correct(session, school.school.id or 0, notified, "  Lea.Martin@Example.FR ")
    guardian = session.get(Guardian, school.guardians[0].id)
    assert guardian is not None and guardian.email == "Lea.Martin@example.fr"
    assert done.correct_in_onde and done.changed and done.link is None  # type: ignore[attr-defined]
    event = session.execute(
        select(AuditEvent).where(col(AuditEvent.action) == "roster.email_corrected")
    ).scalar_one()
    assert event.actor == DIRECTOR
    assert "example.fr" not in str(event.details).lower()


def test_correcting_the_address_of_an_activating_account_sends_the_link_there(
    session: Session,
) -> None:
    school = make_school_with_guardians(session, 1)
    activating = _set_state(session, school, 0, AccountState.ACTIVATING)
    done = _correct(session, school.school.id or 0, activating, "bon.parent@example.fr")
    assert done.link_sent and not done.correct_in_onde  # type: ignore[attr-defined]
    assert len(_outbox_to(session, "bon.parent@example.fr")) == 1
    assert not _outbox_to(session, "parent0@example.org")


@pytest.mark.parametrize(
    ("typed", "says"),
    [
        ("", "Type an e-mail address"),
        ("lea.martin.example.fr", "« @ »"),
        ("lea martin@example.fr", "no spaces"),
        ("lea@example", "not a valid domain"),
    ],
)
def test_an_invalid_address_is_refused_with_the_reason(
    session: Session, typed: str, says: str
) -> None:
    school = make_school_with_guardians(session, 1)
    # The reasons are read in English here (the message ids), whatever the catalog says.
    with use_language("en"), pytest.raises(EmailCorrectionError, match=says):
        _correct(session, school.school.id or 0, school.account_ids[0], typed)
    assert school.guardians[0].email == "parent0@example.org"


def test_an_activated_familys_address_is_theirs_to_change(session: Session) -> None:
    school = make_school_with_guardians(session, 1)
    activated = _set_state(session, school, 0, AccountState.ACTIVATED)
    with pytest.raises(EmailCorrectionError, match="Mon compte"):
        _correct(session, school.school.id or 0, activated, "autre@example.fr")


def test_another_schools_guardian_cannot_be_corrected(session: Session) -> None:
    ours = make_school_with_guardians(session, 1)
    theirs = make_school_with_guardians(session, 1)
    with pytest.raises(GuardianNotFoundError):
        _correct(session, ours.school.id or 0, theirs.account_ids[0], "x@example.fr")
    assert theirs.guardians[0].email == "parent0@example.org"
