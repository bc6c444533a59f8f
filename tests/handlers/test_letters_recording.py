"""/pdf and /relancer record their letters only once the PDF is in the chat, in one short
transaction: when an account changed while the letters were made and sent, the bot deletes the
PDF it sent and says that nothing was recorded."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlmodel import Session

from bot.sandbox.botapi import ChatMessage
from bot.services.distribution.drafting import PaperLetters
from bot.services.distribution.flows import prepare_paper_letters
from bot.services.distribution.planning import plan_paper_letters
from bot.services.letters.settings import set_letter_password
from handlers.distribution import paper, reminders, state
from models import AccountState, DistributionChannel, OutboxMessage, ScheduledDeletion
from tests.handlers.conftest import BotHarness
from tests.handlers.test_distribution_chat import (
    DOCUMENT_PASSWORD,
    accounts,
    ask,
    director_with_roster,
    has_button,
    press,
)

pytestmark = [
    pytest.mark.timeout(90),
    pytest.mark.filterwarnings("ignore::telegram.warnings.PTBUserWarning"),
]


def nothing_recorded(message: ChatMessage) -> bool:
    # The director's chat is in French: « … rien n'a été enregistré … ».
    return "rien n'a été enregistré" in message.content


async def test_pdf_is_withdrawn_when_an_account_changed_while_it_was_made(
    bot_harness: BotHarness, samples_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    director = await director_with_roster(bot_harness, samples_dir)
    bot_harness.call(
        set_letter_password,
        school_id=director.school_id,
        password=DOCUMENT_PASSWORD,
        secret_key=bot_harness.settings.secret_key_source,
        actor="test",
    )
    preview = bot_harness.call(
        plan_paper_letters, school_id=director.school_id, scope_tokens=["CM1"]
    )
    planned = [entry.account_id for entry in preview.planned]
    assert len(planned) > 1
    send_letters = paper.send_letters

    async def sent_then_another_director_prints(
        application: Any, job: Any, paper: PaperLetters
    ) -> Any:
        sent = await send_letters(application, job, paper)
        # Between the upload and the recording, another director prints one of these letters.
        bot_harness.call(
            prepare_paper_letters,
            school_id=director.school_id,
            preview_or_account_ids=[planned[0]],
            actor="telegram:2",
            bot_username=None,
            portal_url=bot_harness.settings.portal_url,
        )
        return sent

    monkeypatch.setattr(paper, "send_letters", sent_then_another_director_prints)
    user = director.user
    shown = await ask(user, "/pdf CM1", has_button(state.PRINT))
    await press(user, shown, state.PRINT)
    told = await user.wait_for(nothing_recorded, timeout=60)
    await bot_harness.settle()

    assert "ont changé" in told.content and "J'ai supprimé le PDF" in told.content
    pdfs = [m for m in user.history if m.from_bot and m.document is not None]
    assert len(pdfs) == 1 and pdfs[0].deleted
    assert (user.chat_id, pdfs[0].message_id) in bot_harness.server.deleted
    states = accounts(bot_harness, director.school_id)
    assert states[planned[0]].distribution_channel == DistributionChannel.PAPER  # the other's
    for account_id in planned[1:]:
        assert states[account_id].state == AccountState.NOT_NOTIFIED
        assert states[account_id].password_hash is None
    with Session(bot_harness.engine) as session:
        assert session.execute(select(ScheduledDeletion)).scalars().all() == []


async def test_relancer_withdraws_its_letters_and_queues_no_email_when_an_account_changed(
    bot_harness: BotHarness, samples_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    director = await director_with_roster(bot_harness, samples_dir)
    bot_harness.call(
        set_letter_password,
        school_id=director.school_id,
        password=DOCUMENT_PASSWORD,
        secret_key=bot_harness.settings.secret_key_source,
        actor="test",
    )
    # Everyone notified on paper first, so that /relancer has letters and e-mails to send.
    printed = bot_harness.call(
        prepare_paper_letters,
        school_id=director.school_id,
        scope_tokens=["CM1"],
        include_all=True,
        actor="test",
        bot_username=None,
        portal_url=bot_harness.settings.portal_url,
    )
    before = accounts(bot_harness, director.school_id)
    send_letters = reminders.send_letters

    async def sent_then_another_director_prints(
        application: Any, job: Any, paper: PaperLetters
    ) -> Any:
        sent = await send_letters(application, job, paper)
        bot_harness.call(
            prepare_paper_letters,
            school_id=director.school_id,
            preview_or_account_ids=[paper.letters[0].account_id],
            actor="telegram:2",
            bot_username=None,
            portal_url=bot_harness.settings.portal_url,
        )
        return sent

    monkeypatch.setattr(reminders, "send_letters", sent_then_another_director_prints)
    user = director.user
    shown = await ask(user, "/relancer CM1", has_button(state.REMIND))
    await press(user, shown, state.REMIND)
    await user.wait_for(nothing_recorded, timeout=60)
    await bot_harness.settle()

    pdfs = [m for m in user.history if m.from_bot and m.document is not None]
    assert len(pdfs) == 1 and pdfs[0].deleted
    after = accounts(bot_harness, director.school_id)
    changed = {
        account_id
        for account_id in after
        if after[account_id].distributed_at != before[account_id].distributed_at
    }
    assert len(changed) == 1  # only the other director's letter
    assert {letter.account_id for letter in printed.letters} >= changed
    with Session(bot_harness.engine) as session:
        assert session.execute(select(OutboxMessage)).scalars().all() == []
