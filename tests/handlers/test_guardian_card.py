"""A guardian's card in chat, as a director meets it from /responsables: each one-tap action
end to end (the e-mail in the outbox, the letter's PDF, the confirmation link, the address
corrected), and another school's guardian refused whatever the button says."""

from __future__ import annotations

import asyncio
import io
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from pypdf import PdfReader
from sqlalchemy import select
from sqlmodel import Session, col

from bot.sandbox.botapi import ChatMessage, SandboxUser
from bot.services.helpdesk import HelpAction, HelpDeclaration, file_help_request
from bot.services.roster.onde.importer import import_roster
from handlers.distribution import state
from models import (
    Account,
    AccountState,
    AuditEvent,
    DistributionChannel,
    Guardian,
    HelpRequestEvent,
    HelpTopic,
    OutboxMessage,
    PortalToken,
    utcnow,
)
from tests.handlers.conftest import BotHarness, DirectorChat

pytestmark = [
    pytest.mark.timeout(90),
    pytest.mark.filterwarnings("ignore::telegram.warnings.PTBUserWarning"),
]

SAMPLE_FILES = ("eleves.csv", "responsables.csv")
DOCUMENT_PASSWORD = "Cartable-Bleu-2026"


# --- helpers ----------------------------------------------------------------------------------


async def director_with_roster(harness: BotHarness, samples_dir: Path) -> DirectorChat:
    director = await harness.new_director()
    files = [(name, (samples_dir / name).read_bytes()) for name in SAMPLE_FILES]
    harness.call(import_roster, school_id=director.school_id, files=files, actor="test")
    return director


def guardian_with_email(harness: BotHarness, school_id: int, state: AccountState) -> Account:
    """A guardian of the school with an address, their account put in `state`."""
    with Session(harness.engine, expire_on_commit=False) as session, session.begin():
        account = (
            session.execute(
                select(Account)
                .join(Guardian, col(Guardian.id) == col(Account.guardian_id))
                .where(col(Guardian.school_id) == school_id, col(Guardian.email).is_not(None))
                .order_by(col(Account.id))
            )
            .scalars()
            .first()
        )
        assert account is not None
        account.state = state
        if state is not AccountState.NOT_NOTIFIED:
            account.distributed_at = utcnow()
            account.distribution_channel = DistributionChannel.EMAIL
        session.add(account)
        return account


def button_data(message: ChatMessage) -> list[str]:
    return [b.callback_data for row in message.inline_keyboard for b in row if b.callback_data]


def has_button(prefix: str) -> Callable[[ChatMessage], bool]:
    return lambda message: any(value.startswith(prefix) for value in button_data(message))


async def press(user: SandboxUser, message: ChatMessage, prefix: str) -> str | None:
    """Press the message's button whose data starts with `prefix`; the alert it answered."""
    data = next(value for value in button_data(message) if value.startswith(prefix))
    answer = await user.answer_for(await user.press(message, data), timeout=20)
    return answer.text


async def forge_press(
    user: SandboxUser, harness: BotHarness, message: ChatMessage, data: str
) -> str:
    """A button press with callback data the bot never sent; the alert it answered."""
    answer = await user.answer_for(await user.press_data(message, data), timeout=20)
    return answer.text or ""


async def open_card(user: SandboxUser, harness: BotHarness, account: Account) -> ChatMessage:
    """Open the guardian's card as /responsables does (its numbered buttons carry this data)."""
    user.drain()
    await user.send_text("/responsables ecole")
    listing = await user.wait_for(has_button("resp:f:"), timeout=20)
    await forge_press(user, harness, listing, f"ga:card:{account.id}")
    return await user.wait_for(lambda m: account.identifier in m.content, timeout=20)


def outbox_for(harness: BotHarness, account_id: int) -> list[OutboxMessage]:
    with Session(harness.engine) as session:
        return list(
            session.execute(
                select(OutboxMessage).where(col(OutboxMessage.account_id) == account_id)
            ).scalars()
        )


async def wait_for_outbox(harness: BotHarness, account_id: int) -> list[OutboxMessage]:
    for _attempt in range(200):
        found = outbox_for(harness, account_id)
        if found:
            return found
        await asyncio.sleep(0.05)
    raise AssertionError("no e-mail reached the outbox")


def reload(harness: BotHarness, account_id: int) -> tuple[Account, Guardian]:
    with Session(harness.engine) as session:
        account = session.get(Account, account_id)
        assert account is not None
        guardian = session.get(Guardian, account.guardian_id)
        assert guardian is not None
        return account, guardian


# --- Opening a card ---------------------------------------------------------------------------


async def test_card_opens_from_the_numbered_buttons_of_responsables(
    bot_harness: BotHarness, samples_dir: Path
) -> None:
    director = await director_with_roster(bot_harness, samples_dir)
    user = director.user
    await user.send_text("/responsables ecole")
    listing = await user.wait_for(has_button("resp:f:"), timeout=20)
    await press(user, listing, "resp:f:")
    numbered = await user.wait_for(has_button("ga:card:"), timeout=20)
    first = next(b for row in numbered.inline_keyboard for b in row if b.text == "1")
    assert "Whose card?" in numbered.content or "fiche" in numbered.content.lower()
    user.drain()
    await user.answer_for(await user.press(numbered, "1"))
    card = await user.wait_for(lambda m: "Identifier" in m.content or "Identifiant" in m.content)
    account_id = int((first.callback_data or "").rsplit(":", 1)[1])
    account, guardian = reload(bot_harness, account_id)
    assert account.identifier in card.content
    assert "🔴" in card.content
    assert ("•••@" in card.content) == (guardian.email is not None)
    assert has_button(f"ga:pdf:{account_id}")(card)
    assert has_button("ga:link:")(card) is False  # not waiting for a confirmation


async def test_an_activated_account_shows_its_card_with_only_its_language(
    bot_harness: BotHarness, samples_dir: Path
) -> None:
    director = await director_with_roster(bot_harness, samples_dir)
    account = guardian_with_email(bot_harness, director.school_id, AccountState.ACTIVATED)
    card = await open_card(director.user, bot_harness, account)
    assert "🟢" in card.content
    # Nothing to send; the family's language still matters for the portal's e-mails.
    assert button_data(card) == [f"ga:lang:{account.id}"]


# --- The actions --------------------------------------------------------------------------------


async def test_mail_button_sends_a_never_notified_guardian_their_credentials(
    bot_harness: BotHarness, samples_dir: Path
) -> None:
    director = await director_with_roster(bot_harness, samples_dir)
    user = director.user
    account = guardian_with_email(bot_harness, director.school_id, AccountState.NOT_NOTIFIED)
    card = await open_card(user, bot_harness, account)
    await press(user, card, f"ga:mail:{account.id}")
    preview = await user.wait_for(has_button(state.SEND), timeout=20)
    assert account.identifier in preview.content  # the preview names whom it is for
    await press(user, preview, state.SEND)
    mails = await wait_for_outbox(bot_harness, account.id or 0)
    assert [mail.kind for mail in mails] == ["credentials_first"]


async def test_mail_button_offers_a_notified_guardian_a_reminder_or_a_new_password(
    bot_harness: BotHarness, samples_dir: Path
) -> None:
    director = await director_with_roster(bot_harness, samples_dir)
    user = director.user
    account = guardian_with_email(bot_harness, director.school_id, AccountState.NOTIFIED)
    card = await open_card(user, bot_harness, account)
    await press(user, card, f"ga:mail:{account.id}")
    preview = await user.wait_for(has_button(state.RESET), timeout=20)
    assert has_button(state.REMIND)(preview)
    await press(user, preview, state.RESET)
    mails = await wait_for_outbox(bot_harness, account.id or 0)
    assert [mail.kind for mail in mails] == ["credentials_reset"]


async def test_letter_button_asks_for_the_document_password_then_delivers_the_letter(
    bot_harness: BotHarness, samples_dir: Path
) -> None:
    director = await director_with_roster(bot_harness, samples_dir)
    user = director.user
    account = guardian_with_email(bot_harness, director.school_id, AccountState.NOT_NOTIFIED)
    card = await open_card(user, bot_harness, account)
    await press(user, card, f"ga:pdf:{account.id}")
    await user.wait_for(lambda m: "🔒" in m.content)
    user.drain()
    await user.send_text(DOCUMENT_PASSWORD)
    preview = await user.wait_for(has_button(state.PRINT), timeout=20)
    await press(user, preview, state.PRINT)
    sent = await user.wait_for(lambda m: m.document is not None, timeout=60)
    await user.wait_for(lambda m: m.content.startswith("✅") and m.document is None, timeout=20)
    assert sent.document is not None
    reader = PdfReader(io.BytesIO(sent.document.data))
    assert reader.decrypt(DOCUMENT_PASSWORD)
    assert len(reader.pages) == 1
    text = " ".join(reader.pages[0].extract_text().split())
    assert account.identifier in text
    recorded, _guardian = reload(bot_harness, account.id or 0)
    assert recorded.state == AccountState.NOTIFIED
    assert recorded.distribution_channel == DistributionChannel.PAPER


async def test_link_button_sends_the_confirmation_link_again(
    bot_harness: BotHarness, samples_dir: Path
) -> None:
    director = await director_with_roster(bot_harness, samples_dir)
    user = director.user
    account = guardian_with_email(bot_harness, director.school_id, AccountState.ACTIVATING)
    card = await open_card(user, bot_harness, account)
    user.drain()
    await press(user, card, f"ga:link:{account.id}")
    said = await user.wait_for(lambda m: m.content.startswith("🔁"), timeout=20)
    assert account.identifier in said.content and "•••@" in said.content
    mails = outbox_for(bot_harness, account.id or 0)
    assert [mail.kind for mail in mails] == ["activation_confirmation"]
    with Session(bot_harness.engine) as session:
        tokens = session.execute(
            select(PortalToken).where(col(PortalToken.account_id) == account.id)
        ).scalars()
        assert len(list(tokens)) == 1


async def test_correcting_the_email_refuses_an_invalid_address_then_corrects_it(
    bot_harness: BotHarness, samples_dir: Path
) -> None:
    director = await director_with_roster(bot_harness, samples_dir)
    user = director.user
    account = guardian_with_email(bot_harness, director.school_id, AccountState.NOTIFIED)
    card = await open_card(user, bot_harness, account)
    user.drain()
    await press(user, card, f"ga:email:{account.id}")
    await user.wait_for(lambda m: "/annuler" in m.content, timeout=20)
    user.drain()
    await user.send_text("lea.martin.example.fr")
    refused = await user.next_message(timeout=20)
    assert "@" in refused.content and "/annuler" in refused.content
    user.drain()
    await user.send_text("Lea.Martin@Example.FR")
    done = await user.next_message(timeout=20)
    assert done.content.startswith("✅") and "ONDE" in done.content
    _account, guardian = reload(bot_harness, account.id or 0)
    assert guardian.email == "Lea.Martin@example.fr"
    with Session(bot_harness.engine) as session:
        actions = set(session.execute(select(col(AuditEvent.action))).scalars())
    assert "roster.email_corrected" in actions


async def test_correcting_the_email_of_an_activating_account_resends_the_link_there(
    bot_harness: BotHarness, samples_dir: Path
) -> None:
    director = await director_with_roster(bot_harness, samples_dir)
    user = director.user
    account = guardian_with_email(bot_harness, director.school_id, AccountState.ACTIVATING)
    card = await open_card(user, bot_harness, account)
    user.drain()
    await press(user, card, f"ga:email:{account.id}")
    await user.wait_for(lambda m: "/annuler" in m.content, timeout=20)
    user.drain()
    await user.send_text("bonne.adresse@example.fr")
    done = await user.next_message(timeout=20)
    assert "🔁" in done.content
    mails = outbox_for(bot_harness, account.id or 0)
    assert [mail.to_address for mail in mails] == ["bonne.adresse@example.fr"]


async def test_annuler_leaves_the_address_unchanged(
    bot_harness: BotHarness, samples_dir: Path
) -> None:
    director = await director_with_roster(bot_harness, samples_dir)
    user = director.user
    account = guardian_with_email(bot_harness, director.school_id, AccountState.NOTIFIED)
    _before, guardian = reload(bot_harness, account.id or 0)
    card = await open_card(user, bot_harness, account)
    await press(user, card, f"ga:email:{account.id}")
    await user.wait_for(lambda m: "/annuler" in m.content, timeout=20)
    user.drain()
    await user.send_text("/annuler")
    await user.next_message(timeout=20)
    _after, unchanged = reload(bot_harness, account.id or 0)
    assert unchanged.email == guardian.email


async def test_another_schools_guardian_is_refused_whatever_the_button(
    bot_harness: BotHarness, samples_dir: Path
) -> None:
    director = await director_with_roster(bot_harness, samples_dir)
    other = await director_with_roster(bot_harness, samples_dir)
    theirs = guardian_with_email(bot_harness, other.school_id, AccountState.ACTIVATING)
    user = director.user
    await user.send_text("/responsables ecole")
    listing = await user.wait_for(has_button("resp:f:"), timeout=20)
    for action in ("card", "mail", "pdf", "link", "email"):
        alert = await forge_press(user, bot_harness, listing, f"ga:{action}:{theirs.id}")
        assert re.search(r"not in your school|ne figure pas|pas dans", alert), (action, alert)
    await bot_harness.settle()
    assert not outbox_for(bot_harness, theirs.id or 0)
    for message in user.bot_messages:
        assert theirs.identifier not in message.content


# --- From a help request ------------------------------------------------------------------------


def file_request(harness: BotHarness, family: SandboxUser, school_id: int) -> int:
    filed = harness.call(
        file_help_request,
        telegram_user_id=family.id,
        declaration=HelpDeclaration(
            topic=HelpTopic.WRONG_EMAIL, school_id=school_id, message="Pas reçu le mail"
        ),
        language="fr",
    )
    return filed.id


def request_actions(harness: BotHarness, request_id: int) -> list[tuple[str, dict[str, object]]]:
    with Session(harness.engine) as session:
        rows = session.execute(
            select(HelpRequestEvent).where(col(HelpRequestEvent.request_id) == request_id)
        ).scalars()
        return [(row.action, dict(row.details)) for row in rows]


async def test_an_action_from_a_help_request_is_recorded_on_it_and_the_family_told(
    bot_harness: BotHarness, samples_dir: Path
) -> None:
    director = await director_with_roster(bot_harness, samples_dir)
    family = bot_harness.new_family()
    request_id = file_request(bot_harness, family, director.school_id)
    account = guardian_with_email(bot_harness, director.school_id, AccountState.ACTIVATING)
    user = director.user
    card = await open_card(user, bot_harness, account)
    family.drain()
    await forge_press(user, bot_harness, card, f"ga:link:{account.id}:{request_id}")
    await user.wait_for(lambda m: m.content.startswith("🔁"), timeout=20)
    await bot_harness.settle()
    assert (HelpAction.CONFIRMATION_RESENT.value, {}) in request_actions(bot_harness, request_id)
    await family.next_message(timeout=20)


async def test_an_email_sent_from_a_help_request_is_recorded_with_its_kind(
    bot_harness: BotHarness, samples_dir: Path
) -> None:
    director = await director_with_roster(bot_harness, samples_dir)
    family = bot_harness.new_family()
    request_id = file_request(bot_harness, family, director.school_id)
    account = guardian_with_email(bot_harness, director.school_id, AccountState.NOTIFIED)
    user = director.user
    card = await open_card(user, bot_harness, account)
    await forge_press(user, bot_harness, card, f"ga:mail:{account.id}:{request_id}")
    preview = await user.wait_for(has_button(state.RESET), timeout=20)
    await press(user, preview, state.REMIND)
    await wait_for_outbox(bot_harness, account.id or 0)
    for _attempt in range(100):
        if request_actions(bot_harness, request_id)[1:]:
            break
        await asyncio.sleep(0.05)
    assert (HelpAction.EMAIL_SENT.value, {"reset": False}) in request_actions(
        bot_harness, request_id
    )


async def test_a_document_password_being_typed_is_never_read_as_an_address(
    bot_harness: BotHarness, samples_dir: Path
) -> None:
    director = await director_with_roster(bot_harness, samples_dir)
    user = director.user
    account = guardian_with_email(bot_harness, director.school_id, AccountState.NOTIFIED)
    _before, guardian = reload(bot_harness, account.id or 0)
    card = await open_card(user, bot_harness, account)
    # ✏️ tapped, then /pdf asks for the document password: the password goes to /pdf.
    await press(user, card, f"ga:email:{account.id}")
    await user.wait_for(lambda m: "/annuler" in m.content, timeout=20)
    user.drain()
    await user.send_text("/pdf CM1")
    await user.wait_for(lambda m: "🔒" in m.content, timeout=20)
    user.drain()
    typed = await user.send_text(DOCUMENT_PASSWORD)
    await user.wait_for(lambda m: m.content.startswith("✅"), timeout=20)
    assert (user.chat_id, typed.message_id) in bot_harness.server.deleted
    _after, unchanged = reload(bot_harness, account.id or 0)
    assert unchanged.email == guardian.email
    # While the password is awaited, ✏️ says to type it first.
    await user.send_text("/pdf motdepasse")
    await user.wait_for(lambda m: "🔒" in m.content, timeout=20)
    alert = await press(user, card, f"ga:email:{account.id}")
    assert alert  # type it first, or /annuler
    await user.expect_no_message()
