"""Steps the end-to-end tests share: a director joins, imports the sample school and presses
buttons (or forges a press); the e-mails and confirmation links a test SMTP server received."""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
from sqlmodel import Session, col, select

from bot.i18n import _, use_language
from bot.sandbox.botapi import CallbackAnswer, ChatMessage, ThreadedBotApi, ThreadedUser
from bot.services.accounts import normalise_email
from bot.services.roster.onde.importer import import_roster
from models import Account, Guardian, HelpRequest, Pupil, PupilGuardian, SchoolClass
from tests.e2e.conftest import REPLY_TIMEOUT, BotProcess, SeededSchool
from tests.mailtools import ReceivedMessage, SmtpTestServer, plain_text


def buttons(message: ChatMessage) -> list[str]:
    return [b.callback_data for row in message.inline_keyboard for b in row if b.callback_data]


def offering(prefix: str) -> Callable[[ChatMessage], bool]:
    return lambda message: any(data.startswith(prefix) for data in buttons(message))


def press(user: ThreadedUser, message: ChatMessage, prefix: str) -> None:
    data = next(data for data in buttons(message) if data.startswith(prefix))
    user.drain()
    callback = user.press(message, data)
    user.answer_for(callback, timeout=REPLY_TIMEOUT)


def import_samples(bot: BotProcess, school: SeededSchool, folder: Path) -> None:
    files = [(name, (folder / name).read_bytes()) for name in ("eleves.csv", "responsables.csv")]
    bot.service(import_roster, school_id=school.id, files=files, actor="e2e")


CONFIRMATION_LINK = re.compile(r"https?://\S+/confirmer/[A-Za-z0-9_-]+")


def confirmation_link(smtp: SmtpTestServer, address: str, timeout: float = 30.0) -> str:
    """The link of the first e-mail the SMTP server accepted for `address`."""
    deadline = time.monotonic() + timeout
    while True:
        for message in smtp.messages:
            if address in message.rcpt_tos:
                match = CONFIRMATION_LINK.search(plain_text(message.parsed()))
                assert match, plain_text(message.parsed())
                return match[0]
        assert time.monotonic() < deadline, f"no e-mail reached {address}"
        time.sleep(0.1)


def become_director(bot_api: ThreadedBotApi, school: SeededSchool) -> ThreadedUser:
    user = bot_api.new_user("Claire", last_name="Martin")
    user.send_text(f"/start {school.code}")
    user.wait_for(lambda m: school.name in m.content or school.uai in m.content, REPLY_TIMEOUT)
    return user


def forge_press(user: ThreadedUser, message: ChatMessage, data: str) -> CallbackAnswer:
    """Send a button press carrying `data` under `message`, whatever its buttons are (what a
    modified client could send), and return the bot's answer to it."""
    callback = user.api.run(user.user.press_data(message, data), 10)
    return user.answer_for(callback, timeout=REPLY_TIMEOUT)


def mails_to(
    smtp: SmtpTestServer, address: str, count: int = 1, timeout: float = 30.0
) -> list[ReceivedMessage]:
    """The e-mails the SMTP server accepted for `address`, once there are at least `count`."""
    deadline = time.monotonic() + timeout
    while True:
        found = [m for m in smtp.messages if address in m.rcpt_tos]
        if len(found) >= count:
            return found
        assert time.monotonic() < deadline, f"{len(found)} e-mail(s) reached {address}, not {count}"
        time.sleep(0.1)


def link_in(message: ReceivedMessage) -> str:
    """The confirmation link of one e-mail."""
    match = CONFIRMATION_LINK.search(plain_text(message.parsed()))
    assert match, plain_text(message.parsed())
    return match[0]


# --- The help desk: families linked by phone, the portal's pages, the help conversations -------

REFERENCE = re.compile(r"D-\d{4}-\d{4}")
CSRF = re.compile(r'name="csrf_token"\s+value="([^"]+)"')


def fr(message: str) -> str:
    """`message` as the bot shows it to a French family or director."""
    with use_language("fr"):
        return _(message)


def fr_start(message: str) -> str:
    """The French text of `message` up to its first placeholder."""
    return fr(message).split("{", 1)[0]


def contains(*texts: str) -> Callable[[ChatMessage], bool]:
    """A message holding every one of `texts`."""
    return lambda message: all(text in message.content for text in texts)


def say(user: ThreadedUser, text: str, wanted: Callable[[ChatMessage], bool]) -> ChatMessage:
    """Type `text`; the first bot message since then that is `wanted`."""
    user.drain()
    user.send_text(text)
    return user.wait_for(wanted, REPLY_TIMEOUT)


def tap(
    user: ThreadedUser, message: ChatMessage, prefix: str, wanted: Callable[[ChatMessage], bool]
) -> ChatMessage:
    """Press the message's button whose data starts with `prefix`; the first bot message since
    then that is `wanted`."""
    press(user, message, prefix)
    return user.wait_for(wanted, REPLY_TIMEOUT)


def data_of(message: ChatMessage, prefix: str) -> str:
    """The data of the message's first button starting with `prefix`."""
    return next(data for data in buttons(message) if data.startswith(prefix))


@dataclass(frozen=True)
class FamilyRecord:
    """A guardian of the imported school, as the school's files have them."""

    account_id: int
    identifier: str
    name: str  # « Olivier Petit »
    email: str | None
    onde_mobile: str  # as ONDE writes it: « 0730261677 »
    telegram_number: str  # as Telegram shares it: « 33730261677 »
    child: str  # « Rayan Petit »
    class_label: str
    birth_date: str  # dd/mm/yyyy


def family_records(session: Session, *, with_email: bool = True) -> list[FamilyRecord]:
    """The guardians alone to have their mobile (sharing it links one account) with an e-mail
    address the school can write to (`with_email`) or without one."""
    guardians = session.exec(select(Guardian).order_by(col(Guardian.id))).all()
    mobiles = Counter(g.mobile_e164 for g in guardians if g.mobile_e164)
    found = []
    for guardian in guardians:
        usable = guardian.email is not None and normalise_email(guardian.email) is not None
        if not guardian.mobile_e164 or mobiles[guardian.mobile_e164] != 1 or usable != with_email:
            continue
        account = session.exec(select(Account).where(Account.guardian_id == guardian.id)).one()
        child, klass = session.exec(
            select(Pupil, SchoolClass)
            .join(PupilGuardian, col(PupilGuardian.pupil_id) == col(Pupil.id))
            .join(SchoolClass, col(SchoolClass.id) == col(Pupil.class_id))
            .where(PupilGuardian.guardian_id == guardian.id)
            .order_by(col(Pupil.id))
        ).first() or (None, None)
        if child is None or klass is None or child.birth_date is None or account.id is None:
            continue
        found.append(
            FamilyRecord(
                account_id=account.id,
                identifier=account.identifier,
                name=f"{guardian.first_name} {guardian.last_name.title()}",
                email=normalise_email(guardian.email) if usable and guardian.email else None,
                onde_mobile=guardian.phone_mobile or "",
                telegram_number=guardian.mobile_e164.removeprefix("+"),
                child=f"{child.first_name} {child.last_name.title()}",
                class_label=klass.label,
                birth_date=child.birth_date.strftime("%d/%m/%Y"),
            )
        )
    return found


def account_of(session: Session, *, account_id: int) -> Account:
    """The account as it is now."""
    account = session.get(Account, account_id)
    assert account is not None
    session.expunge(account)
    return account


def request_of(session: Session, *, reference: str) -> HelpRequest:
    """The help request with this reference, as it is now."""
    request = session.exec(select(HelpRequest).where(HelpRequest.reference == reference)).one()
    session.expunge(request)
    return request


def link_by_phone(
    bot_api: ThreadedBotApi, record: FamilyRecord, first_name: str = "Parent"
) -> tuple[ThreadedUser, str]:
    """A family shares its own number (Telegram's form) with the welcome's button: its chat is
    linked; the user, and the portal's single-use activation address."""
    family = bot_api.new_user(first_name, phone_number=record.telegram_number)
    family.send_text("/start")
    family.next_message(REPLY_TIMEOUT)
    button = family.contact_button
    assert button is not None
    family.drain()
    family.tap(button)
    activation = family.wait_for(
        lambda m: any("/telephone/" in (value or "") for row in m.buttons for _, value in row),
        REPLY_TIMEOUT,
    )
    [[(_label, url)]] = activation.buttons
    assert url is not None
    return family, url


def activate_on_portal(url: str, *, email: str, birth_date: str, password: str) -> None:
    """Choose a password and give an address on the portal's phone activation page (the
    confirmation e-mail is then on its way)."""
    with httpx.Client(follow_redirects=True, timeout=REPLY_TIMEOUT) as browser:
        form = browser.get(url)
        csrf = CSRF.search(form.text)
        assert form.status_code == 200 and csrf, form.text
        sent = browser.post(
            url,
            data={
                "csrf_token": csrf[1],
                "new_password": password,
                "confirm_password": password,
                "email": email,
                "birth_date": birth_date,
            },
        )
        assert sent.status_code == 200 and sent.url.path == "/activation/attente", sent.text


def confirm_on_portal(link: str) -> httpx.Response:
    """Open a confirmation link and press its button, as the family's browser would."""
    with httpx.Client(follow_redirects=True, timeout=REPLY_TIMEOUT) as browser:
        page = browser.get(link)
        csrf = CSRF.search(page.text)
        if csrf is None:
            return page  # no button: the link no longer works
        return browser.post(link, data={"csrf_token": csrf[1]})


def log_in_on_portal(portal_url: str, identifier: str, password: str) -> httpx.Response:
    """Log in with the letter's (or e-mail's) identifier and provisional password."""
    with httpx.Client(follow_redirects=True, timeout=REPLY_TIMEOUT) as browser:
        page = browser.get(f"{portal_url}/activation")
        csrf = CSRF.search(page.text)
        assert csrf, page.text
        return browser.post(
            f"{portal_url}/activation",
            data={"csrf_token": csrf[1], "identifier": identifier, "password": password},
        )


def answer_who_questions(
    family: ThreadedUser, *, school: str, guardian: str, child: str, class_label: str
) -> ChatMessage:
    """An unlinked family says which school, who it is, one child and the class; the question
    that follows (its own words)."""
    choices = say(family, school, offering("fr:school:"))
    tap(
        family,
        choices,
        "fr:school:",
        contains(fr("Your first name and last name, as the school knows them?")),
    )
    return answer_names(family, guardian=guardian, child=child, class_label=class_label)


def answer_names(
    family: ThreadedUser, *, guardian: str, child: str, class_label: str
) -> ChatMessage:
    """The guardian's, a child's names and the class; the question that follows."""
    say(
        family,
        guardian,
        contains(fr("The first name and last name of one of your children at this school?")),
    )
    say(family, child, contains(fr("Their class (for example « CP A » or « CE2-CM1 »)?")))
    return say(family, class_label, lambda m: bool(m.content))
