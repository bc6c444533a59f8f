"""The outbox stores each message as the standard library serialises it (CRLF line endings),
through a faster generator that must give the very same bytes."""

from __future__ import annotations

from datetime import date

import pytest

from bot.services.accounts.credentials import CredentialKind
from bot.services.letters.content import ChildLine, Letter
from bot.services.mail.composition import compose_credentials_email
from bot.services.mail.outbox import _serialized


def letter(email: str, kind: CredentialKind) -> Letter:
    return Letter(
        account_id=1,
        kind=kind,
        civility="Mme",
        first_name="Éloïse",
        last_name="Gonçalves-Yıldız",
        email=email,
        language=None,
        school_name="École élémentaire Jean Jaurès",
        school_uai="0750001B",
        school_city="Paris",
        children=(ChildLine("Zoé", "Gonçalves", "CM1"), ChildLine("Noé", "Gonçalves", None)),
        identifier="e.goncalves12",
        password="ABCD2345" if kind is not CredentialKind.REMINDER else None,
        expires_at=None,
        portal_url="https://educonnect.example.fr",
        activation_url="https://educonnect.example.fr/activation?identifiant=e.goncalves12",
        bot_link_url="https://t.me/educonnect_bot?start=f_" + "x" * 32,
        family_link_code="f_" + "x" * 32,
        letter_date=date(2026, 11, 28),
    )


@pytest.mark.parametrize("kind", list(CredentialKind))
@pytest.mark.parametrize("email", ["famille@example.org", "élodie@exemple.fr"])
def test_stored_bytes_are_what_the_standard_library_writes(
    kind: CredentialKind, email: str
) -> None:
    message = compose_credentials_email(letter(email, kind), mail_from="École <ecole@example.fr>")
    standard = message.as_bytes(policy=message.policy.clone(linesep="\r\n"))
    assert _serialized(message) == standard
    assert b"\r\n" in standard and b"\n" not in standard.replace(b"\r\n", b"")
