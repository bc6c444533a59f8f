"""The credential e-mails: the letter's content, as multipart text + HTML with proper headers."""

from __future__ import annotations

import email
import email.policy
import re
from dataclasses import replace
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import parsedate_to_datetime
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import Session

from bot.services.accounts.credentials import CredentialKind, issue_credentials, mark_distributed
from bot.services.accounts.passwords import verify_password
from bot.services.mail.composition import MissingAddressError, compose_credentials_email
from models import Account, DistributionChannel
from tests.factories import make_school_with_guardians
from tests.mailtools import MAIL_FROM, html_text, letters_for, plain_text

PARIS = ZoneInfo("Europe/Paris")
NOW = datetime(2026, 11, 28, 9, 30, tzinfo=UTC)


def _roundtrip(message: EmailMessage) -> EmailMessage:
    """The message as a mail reader gets it: serialised as the outbox stores it, parsed back."""
    raw = message.as_bytes()
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def _issued(session: Session, kind: CredentialKind, **school: object) -> tuple[list, list]:
    built = make_school_with_guardians(session, **school)  # type: ignore[arg-type]
    issued = issue_credentials(
        session=session, account_ids=built.account_ids, kind=CredentialKind.FIRST, actor="t"
    )
    if kind != CredentialKind.FIRST:
        mark_distributed(
            session=session,
            account_ids=built.account_ids,
            channel=DistributionChannel.EMAIL,
            actor="t",
        )
        issued = issue_credentials(
            session=session, account_ids=built.account_ids, kind=kind, actor="t"
        )
    return built.guardians, issued


@pytest.mark.parametrize("kind", [CredentialKind.FIRST, CredentialKind.RESET])
def test_password_email_has_both_parts_with_identifier_and_a_password_that_verifies(
    session: Session, kind: CredentialKind
) -> None:
    _guardians, issued = _issued(session, kind, n=1)
    letter = letters_for(session, issued)[0]
    message = _roundtrip(compose_credentials_email(letter, mail_from=MAIL_FROM, tz=PARIS))

    assert message.get_content_type() == "multipart/alternative"
    assert [part.get_content_type() for part in message.iter_parts()] == [
        "text/plain",
        "text/html",
    ]
    assert not any(part.get_content_disposition() == "attachment" for part in message.walk())
    account = session.get(Account, letter.account_id)
    assert account is not None and account.password_hash is not None
    for text in (plain_text(message), html_text(message)):
        assert letter.identifier in text
        assert letter.password is not None and letter.password in text
        found = re.findall(r"\b[A-Z2-9]{8}\b", text)
        assert any(verify_password(account.password_hash, candidate) for candidate in found)
        assert letter.activation_url.replace("&", "&amp;") in text or letter.activation_url in text
        assert letter.bot_link_url is not None and letter.bot_link_url in text
        assert letter.school_uai in text


def test_reminder_email_carries_no_password(session: Session) -> None:
    _guardians, first = _issued(session, CredentialKind.FIRST, n=1)
    mark_distributed(
        session=session,
        account_ids=[first[0].account_id],
        channel=DistributionChannel.EMAIL,
        actor="t",
    )
    reminder = issue_credentials(
        session=session,
        account_ids=[first[0].account_id],
        kind=CredentialKind.REMINDER,
        actor="t",
    )
    letter = letters_for(session, reminder)[0]
    assert letter.password is None
    message = _roundtrip(compose_credentials_email(letter, mail_from=MAIL_FROM, tz=PARIS))
    raw = message.as_string()
    assert first[0].password not in raw
    for text in (plain_text(message), html_text(message)):
        assert letter.identifier in text
        assert first[0].password not in text


def test_headers_decode_to_the_accented_name_and_carry_message_id_and_date(
    session: Session,
) -> None:
    _guardians, issued = _issued(
        session, CredentialKind.FIRST, n=1, names=[("Éloïse", "Gonçalves-Yıldız")]
    )
    letter = letters_for(session, issued)[0]
    composed = compose_credentials_email(letter, mail_from=MAIL_FROM, tz=PARIS, now=NOW)
    headers = composed.as_bytes().split(b"\n\n", 1)[0]
    assert headers.isascii(), "headers must be RFC 2047 encoded, not raw UTF-8"

    message = _roundtrip(composed)
    (to,) = message["To"].addresses
    assert to.display_name == "Éloïse GONÇALVES-YILDIZ"
    assert to.addr_spec == letter.email
    assert message["From"].addresses[0].addr_spec == "no-reply@ecole-test.fr"
    assert "École Jules Ferry" in str(message["Subject"])
    assert str(message["Message-ID"]).endswith("@ecole-test.fr>")
    assert parsedate_to_datetime(str(message["Date"])) == NOW
    assert message["Auto-Submitted"] == "auto-generated"


def test_each_email_gets_its_own_message_id(session: Session) -> None:
    _guardians, issued = _issued(session, CredentialKind.FIRST, n=3)
    ids = {
        str(compose_credentials_email(letter, mail_from=MAIL_FROM)["Message-ID"])
        for letter in letters_for(session, issued)
    }
    assert len(ids) == 3


def test_html_part_escapes_names(session: Session) -> None:
    _guardians, issued = _issued(
        session, CredentialKind.FIRST, n=1, names=[("<script>alert(1)</script>", "O'Brien & Co")]
    )
    letter = letters_for(session, issued)[0]
    message = _roundtrip(compose_credentials_email(letter, mail_from=MAIL_FROM))
    body = html_text(message)
    assert "<script>" not in body
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body
    assert "O&#x27;BRIEN &amp; CO" in body
    # The plain text shows the name as it is.
    assert "<script>alert(1)</script> O'BRIEN & CO" in plain_text(message)


def test_plain_text_reads_on_its_own(session: Session) -> None:
    _guardians, issued = _issued(session, CredentialKind.FIRST, n=1)
    letter = replace(
        letters_for(session, issued)[0], expires_at=datetime(2027, 2, 28, 22, 59, tzinfo=UTC)
    )
    text = plain_text(_roundtrip(compose_credentials_email(letter, mail_from=MAIL_FROM, tz=PARIS)))
    for line in text.splitlines():
        # Lines are wrapped for mail readers; only a link is never cut.
        assert len(line) <= 78 or "://" in line, line
    assert "<" not in text.replace(letter.addressee, "")  # no markup leaked into the text
    assert "28 février 2027" in text  # the expiry, formatted in French by Babel
    assert "28 novembre 2026" in text  # the letter's date
    assert letter.addressee in text
    assert "Enfant" in text  # the child covered


def test_without_bot_username_the_code_and_command_are_given(session: Session) -> None:
    _guardians, issued = _issued(session, CredentialKind.FIRST, n=1)
    letter = letters_for(session, issued, bot_username=None)[0]
    assert letter.bot_link_url is None
    text = plain_text(_roundtrip(compose_credentials_email(letter, mail_from=MAIL_FROM)))
    assert f"/start {letter.family_link_code}" in text


def test_guardian_without_address_gets_no_email(session: Session) -> None:
    _guardians, issued = _issued(session, CredentialKind.FIRST, n=1, with_email=False)
    letter = letters_for(session, issued)[0]
    with pytest.raises(MissingAddressError):
        compose_credentials_email(letter, mail_from=MAIL_FROM)


def test_internationalised_address_is_composed_for_smtputf8(session: Session) -> None:
    _guardians, issued = _issued(session, CredentialKind.FIRST, n=1)
    letter = replace(letters_for(session, issued)[0], email="josé@exemple.fr")
    message = compose_credentials_email(letter, mail_from=MAIL_FROM)
    assert message.policy.utf8
    assert "josé@exemple.fr" in message.as_bytes().decode("utf-8")
