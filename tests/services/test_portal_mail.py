"""The portal's e-mails: headers, both parts, the family's language, links kept whole."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from zoneinfo import ZoneInfo

from bot.services.portal.mail import (
    IdentifierLine,
    compose_activation_link,
    compose_identifier_reminder,
    compose_password_reset_link,
)

PARIS = ZoneInfo("Europe/Paris")
NOW = datetime(2026, 11, 28, 15, 0, tzinfo=UTC)
LINK = "https://portail.example.fr/confirmer/" + "x" * 90


def parsed(message: EmailMessage) -> EmailMessage:
    reparsed = message_from_bytes(message.as_bytes(), policy=policy.default)
    assert isinstance(reparsed, EmailMessage)
    return reparsed


def parts(message: EmailMessage) -> tuple[str, str]:
    text = message.get_body(("plain",))
    page = message.get_body(("html",))
    assert text is not None and page is not None
    return str(text.get_content()), str(page.get_content())


def test_activation_link_in_french_with_accented_name_dated_in_the_school_zone() -> None:
    message = parsed(
        compose_activation_link(
            to="helene.muller@example.fr",
            addressee="Hélène Müller",
            identifier="h.muller",
            school_name="École Jules Ferry",
            link=LINK,
            expires_at=NOW + timedelta(hours=48),
            mail_from="ecole@example.fr",
            tz=PARIS,
            now=NOW,
        )
    )

    text, page = parts(message)
    assert message["Subject"].startswith("EduConnect — confirmez")
    assert "Hélène Müller" in str(message["To"])
    assert message["Date"].endswith("+0100")  # 16:00 in Paris
    assert message["Content-Language"] == "fr"
    assert message["Message-ID"].endswith("@example.fr>")
    assert message["Auto-Submitted"] == "auto-generated"
    assert LINK in text.splitlines()  # on a line of its own, never wrapped
    assert f'href="{LINK}"' in page
    assert "h.muller" in text and "h.muller" in page
    assert "30 novembre 2026" in text  # the expiry, in French


def test_reset_link_and_identifier_reminder_add_the_familys_language_after_french() -> None:
    reset = parsed(
        compose_password_reset_link(
            to="ana@example.pt",
            addressee="Ana Conceição",
            identifier="a.conceicao",
            school_name="École Jules Ferry",
            link=LINK,
            expires_at=NOW + timedelta(minutes=30),
            mail_from="ecole@example.fr",
            language="en-GB",
            tz=PARIS,
            now=NOW,
        )
    )
    reminder = parsed(
        compose_identifier_reminder(
            to="ana@example.pt",
            addressee="Ana Conceição",
            lines=[
                IdentifierLine("a.conceicao", "Ana Conceição", "École Jules Ferry"),
                IdentifierLine("a.conceicao2", "Ana Conceição", "École Victor Hugo"),
            ],
            login_url="https://portail.example.fr/connexion",
            forgot_password_url="https://portail.example.fr/mot-de-passe-oublie",
            mail_from="ecole@example.fr",
            language="en",
            now=NOW,
        )
    )

    # French first (the reference), then the same e-mail in English.
    assert reset["Content-Language"] == "fr, en"
    assert reset["Subject"].startswith("EduConnect — choisissez un nouveau mot de passe (")
    assert reset["Subject"].endswith("English)")
    text, page = parts(reset)
    assert text.index("ouvrez ce lien") < text.index("English") < text.index("open this link")
    assert text.count(LINK) == 2
    assert '<div lang="en" dir="ltr"' in page and '<html lang="fr">' in page
    assert reminder["Subject"].startswith("EduConnect — vos identifiants (")
    text, page = parts(reminder)
    french, english = text.split("English", 1)
    assert "Voici les identifiants EduConnect" in french
    assert "Here are the EduConnect identifiers" in english
    assert "a.conceicao — Ana Conceição, École Jules Ferry" in english
    assert "<li>a.conceicao2 — Ana Conceição, École Victor Hugo</li>" in page
    assert "https://portail.example.fr/mot-de-passe-oublie" in text.splitlines()
    # The signature separator comes once, at the very end: nothing after it is greyed out
    # but the footers.
    lines = text.splitlines()
    assert lines.count("-- ") == 1
    assert text.index("\n-- \r\n") > text.index("Here are the EduConnect identifiers")
