"""Printable letters: parsed back with pypdf, drawn with PDFium, QR codes read with ZXing."""

from __future__ import annotations

import io
import itertools
import re
import zipfile
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pypdfium2 as pdfium
import pytest
import zxingcpp
from PIL import Image
from pypdf import PasswordType, PdfReader, PdfWriter

from bot.services.accounts.credentials import CredentialKind
from bot.services.accounts.passwords import PROVISIONAL_ALPHABET
from bot.services.letters.content import ChildLine, Letter, activation_url, bot_link_url
from bot.services.letters.protection import BatchEncryption
from bot.services.letters.rendering import (
    encrypt_pdf,
    letter_filename,
    render_letters,
    split_letters,
    zip_letters,
)

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
PARIS = ZoneInfo("Europe/Paris")
PORTAL = "https://educonnect.example.fr"
# A provisional password as the letters print it: eight characters of the alphabet.
PASSWORD_PATTERN = re.compile(rf"\b[{PROVISIONAL_ALPHABET}]{{8}}\b")


def make_letter(number: int = 1, **changes: Any) -> Letter:
    """A first-distribution letter for guardian `number`, with `changes` applied."""
    identifier = changes.pop("identifier", f"celine.dupont{number}")
    code = changes.pop("family_link_code", f"Lk{number:04d}x9QmZ2rT7vW4yB8nC3")
    letter = Letter(
        account_id=number,
        kind=CredentialKind.FIRST,
        civility="Mme",
        first_name="Céline",
        last_name="Dupont",
        email=None,
        language=None,
        school_name="École élémentaire Jean-Jaurès",
        school_uai="0751234A",
        school_city="Lyon",
        children=(ChildLine("Léa", "Dupont", "CM1"), ChildLine("Noé", "Dupont", "CP")),
        identifier=identifier,
        password="BUNZ57DM",
        # The end of the local day, as accounts.provisional_expiry stores it (in UTC).
        expires_at=datetime(2027, 2, 28, 22, 59, 59, tzinfo=UTC),
        portal_url=PORTAL,
        activation_url=activation_url(PORTAL, identifier),
        bot_link_url=bot_link_url("EcoleJauresBot", code),
        family_link_code=code,
        letter_date=date(2026, 11, 30),
    )
    return replace(letter, **changes)


def page_texts(pdf: bytes, password: str | None = None) -> list[str]:
    reader = PdfReader(io.BytesIO(pdf))
    if password is not None:
        assert reader.decrypt(password) == PasswordType.USER_PASSWORD
    return [page.extract_text() for page in reader.pages]


def compact(text: str) -> str:
    """Page text with every run of white space as one space (lines wrap anywhere)."""
    return " ".join(text.split())


def page_image(pdf: bytes, index: int = 0, *, password: str | None = None) -> Image.Image:
    """Page `index` drawn by PDFium at 150 dpi, as a printer would put it on paper."""
    document = pdfium.PdfDocument(pdf, password=password)
    return document[index].render(scale=150 / 72).to_pil()


def decoded_qr_codes(image: Image.Image) -> list[str]:
    return sorted(result.text for result in zxingcpp.read_barcodes(image))


def save_artifact(image: Image.Image, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / name
    image.save(path)
    return path


def test_one_page_per_letter_holding_names_children_identifier_and_password() -> None:
    letters = [
        make_letter(1, password="BUNZ57DM"),
        make_letter(
            2,
            first_name="Karim",
            last_name="Benali",
            children=(ChildLine("Yanis", "Benali", "CE2-CM1"),),
            password="K7XQ2MPA",
        ),
        make_letter(3, kind=CredentialKind.RESET, first_name="Jean", password="HZ4WN8RE"),
    ]

    texts = page_texts(render_letters(letters))

    assert len(texts) == 3
    for letter, text in zip(letters, texts, strict=True):
        flat = compact(text)
        assert letter.addressee in flat  # « Prénom NOM »
        assert letter.identifier in flat
        assert letter.password is not None and letter.password in flat
        assert letter.school_name in flat and letter.school_uai in flat
        for child in letter.children:
            assert f"{child.first_name} {child.last_name.upper()}" in flat
            assert child.class_label is not None and child.class_label in flat
        # Each page holds its own password and nobody else's.
        assert PASSWORD_PATTERN.findall(flat) == [letter.password]


def test_letter_says_what_spec_asks_in_french() -> None:
    text = compact(page_texts(render_letters([make_letter()]))[0])

    assert "À l'attention de Céline DUPONT" in text
    assert "mot de passe provisoire, à modifier lors de la première connexion" in text
    assert "Activez votre compte en 2 étapes" in text
    assert "28 février 2027" in text  # the expiry, by Babel, in Paris time
    assert "30 novembre 2026" in text  # the letter's date
    assert "educonnect.example.fr" in text
    assert "Le directeur / La directrice d'école" in text


def test_expiry_date_is_the_local_day() -> None:
    # 23:30 UTC on 31 March is already 1 April in Paris (summer time).
    letter = make_letter(expires_at=datetime(2027, 3, 31, 23, 30, tzinfo=UTC))

    text = compact(page_texts(render_letters([letter], tz=PARIS))[0])

    assert "1 avril 2027" in text


def test_reminder_letters_carry_no_password() -> None:
    # Even a reminder built with a password by mistake must not print it.
    reminder = make_letter(kind=CredentialKind.REMINDER, password="BUNZ57DM")

    text = compact(page_texts(render_letters([reminder]))[0])

    assert "BUNZ57DM" not in text
    assert PASSWORD_PATTERN.search(text) is None
    assert "votre mot de passe est inchangé" in text.lower()
    assert reminder.identifier in text


def test_turkish_portuguese_and_spanish_names_come_back_intact() -> None:
    letter = make_letter(
        first_name="Gülşen",
        last_name="Yılmaz-Peña",
        children=(
            ChildLine("İbrahim", "Yılmaz", "CM1"),
            ChildLine("Ağrı", "Şahin", "CE1"),
            ChildLine("João", "Conceição", "CP"),
            ChildLine("Ñuño", "Gonçalves", "GS"),
        ),
        school_name="École Françoise-Dolto",
        school_city="Saint-Étienne",
    )

    text = compact(page_texts(render_letters([letter]))[0])

    for expected in (
        "Gülşen YILMAZ-PEÑA",
        "İbrahim YILMAZ",
        "Ağrı ŞAHIN",
        "João CONCEIÇÃO",
        "Ñuño GONÇALVES",
        "École Françoise-Dolto",
        "Saint-Étienne",
    ):
        assert expected in text


def test_narrow_no_break_space_of_french_numbers_renders() -> None:
    # Babel writes « 1 234 » with U+202F in French: the embedded font has the glyph.
    letter = make_letter(school_name="École n° 1\u202f234")

    text = page_texts(render_letters([letter]))[0]

    assert "1\u202f234" in text


def test_qr_codes_decode_to_activation_page_and_bot_link() -> None:
    letter = make_letter()
    pdf = render_letters([letter])

    image = page_image(pdf)
    save_artifact(image, "letter-first-distribution.png")

    assert decoded_qr_codes(image) == sorted([letter.activation_url, str(letter.bot_link_url)])
    assert "identifiant=celine.dupont1" in letter.activation_url
    # The password is on paper, never inside a QR code.
    assert all("BUNZ57DM" not in url for url in decoded_qr_codes(image))


def test_without_bot_link_the_code_and_command_are_printed() -> None:
    letter = make_letter(kind=CredentialKind.REMINDER, bot_link_url=None, password=None)
    pdf = render_letters([letter])

    text = compact(page_texts(pdf)[0])
    image = page_image(pdf)
    save_artifact(image, "letter-reminder-without-bot-link.png")

    assert f"/start {letter.family_link_code}" in text
    assert decoded_qr_codes(image) == [letter.activation_url]


def _text_boxes_overlap(pdf: bytes, index: int = 0) -> list[tuple[Any, Any]]:
    page = pdfium.PdfDocument(pdf)[index]
    textpage = page.get_textpage()
    boxes = [textpage.get_rect(i) for i in range(textpage.count_rects())]
    overlapping = []
    for first, second in itertools.combinations(boxes, 2):
        width = min(first[2], second[2]) - max(first[0], second[0])
        height = min(first[3], second[3]) - max(first[1], second[1])
        if width > 0.5 and height > 0.5:
            overlapping.append((first, second))
    return overlapping


def test_five_children_and_a_long_school_name_fit_one_page() -> None:
    letter = make_letter(
        kind=CredentialKind.REMINDER,
        password=None,
        first_name="Marie-Christine Françoise",
        last_name="de la Fontaine-Gonçalves y Oñate",
        school_name=(
            "Groupe scolaire élémentaire et maternelle d'application Marie-Curie et "
            "Louis-Pasteur de la Croix-Rousse"
        ),
        children=tuple(
            ChildLine(name, "de la Fontaine-Gonçalves", "CE2-CM1")
            for name in ("Maximilien", "Éloïse", "Ağrı", "João", "Ñuño")
        ),
        identifier="marie-christine.delafontaine-goncalves12",
        bot_link_url=None,
    )
    pdf = render_letters([letter])

    texts = page_texts(pdf)
    save_artifact(page_image(pdf), "letter-five-children.png")

    assert len(texts) == 1
    text = compact(texts[0])
    for child in letter.children:
        assert f"{child.first_name} {child.last_name.upper()}" in text
    assert letter.identifier in text
    assert "Le directeur / La directrice d'école" in text
    assert _text_boxes_overlap(pdf) == []
    width, height = pdfium.PdfDocument(pdf)[0].get_size()
    textpage = pdfium.PdfDocument(pdf)[0].get_textpage()
    for index in range(textpage.count_rects()):
        left, bottom, right, top = textpage.get_rect(index)
        assert left >= 0 and right <= width and bottom >= 0 and top <= height


def test_a_crowded_page_tightens_its_spacing_and_keeps_the_signature_clear() -> None:
    portal = "https://educonnect-assistant.circonscription-villeurbanne.ac-lyon.fr"
    identifier = "marie-christine.delafontaine-goncalves123"
    letter = make_letter(
        kind=CredentialKind.REMINDER,
        password=None,
        first_name="Marie-Christine Françoise Ğülizar",
        last_name="de la Fontaine-Gonçalves-Peña y Oñate Çağlayan",
        school_name=(
            "Groupe scolaire élémentaire et maternelle d'application Marie-Curie et "
            "Louis-Pasteur de la Croix-Rousse Saint-Jean-de-Luz"
        ),
        children=tuple(
            ChildLine(f"Maximilien-Güneş{n}", "de la Fontaine-Gonçalves", "CE2-CM1 bilingue")
            for n in range(5)
        ),
        identifier=identifier,
        portal_url=portal,
        activation_url=activation_url(portal, identifier),
        bot_link_url=None,
    )
    pdf = render_letters([letter])
    save_artifact(page_image(pdf), "letter-crowded.png")

    assert _text_boxes_overlap(pdf) == []
    text = compact(page_texts(pdf)[0])
    assert "Le directeur / La directrice d'école" in text
    assert decoded_qr_codes(page_image(pdf)) == [letter.activation_url]


def test_no_text_overlaps_on_any_kind_of_letter() -> None:
    letters = [
        make_letter(1),
        make_letter(2, kind=CredentialKind.REMINDER, password=None),
        make_letter(3, kind=CredentialKind.RESET, school_city=None),
        make_letter(4, children=tuple(ChildLine(f"Enfant{i}", "Martin", "CM2") for i in range(8))),
    ]
    pdf = render_letters(letters)

    for index in range(len(letters)):
        assert _text_boxes_overlap(pdf, index) == []


def test_progress_follows_each_page() -> None:
    calls: list[tuple[int, int]] = []

    render_letters([make_letter(n) for n in range(1, 4)], progress=lambda *a: calls.append(a))

    assert calls == [(1, 3), (2, 3), (3, 3)]


def test_split_gives_one_single_page_pdf_per_letter_named_after_its_identifier() -> None:
    letters = [make_letter(n, password=f"BUNZ57D{n + 1}") for n in range(1, 5)]
    pdf = render_letters(letters)

    files = split_letters(pdf, letters)

    assert [name for name, _content in files] == [
        f"lettre-celine.dupont{n}.pdf" for n in range(1, 5)
    ]
    for letter, (_name, content) in zip(letters, files, strict=True):
        texts = page_texts(content)
        assert len(texts) == 1
        assert letter.identifier in texts[0]
        assert letter.password is not None and letter.password in texts[0]


def test_split_refuses_a_pdf_of_other_letters() -> None:
    letters = [make_letter(1), make_letter(2)]

    with pytest.raises(ValueError):
        split_letters(render_letters(letters[:1]), letters)


def test_split_with_a_password_encrypts_every_file() -> None:
    letters = [make_letter(n) for n in range(1, 4)]

    files = split_letters(render_letters(letters), letters, password="Cartable-2026")

    for letter, (_name, content) in zip(letters, files, strict=True):
        reader = PdfReader(io.BytesIO(content))
        assert reader.is_encrypted
        assert reader.decrypt("wrong password") == PasswordType.NOT_DECRYPTED
        assert reader.decrypt("Cartable-2026") == PasswordType.USER_PASSWORD
        assert letter.identifier in reader.pages[0].extract_text()
        # PDFium, an independent reader, agrees.
        assert len(pdfium.PdfDocument(content, password="Cartable-2026")) == 1


def test_batch_encryption_without_pypdf_internals_encrypts_each_file_itself() -> None:
    # A pypdf whose writer no longer exposes its encryption attributes must still give
    # protected files: each document then derives its own keys.
    batch = BatchEncryption("Cartable-2026")
    batch._entry = None
    writer = PdfWriter()
    writer.add_blank_page(width=100, height=100)

    batch.apply(writer)
    buffer = io.BytesIO()
    writer.write(buffer)

    reader = PdfReader(io.BytesIO(buffer.getvalue()))
    assert reader.is_encrypted
    assert reader.decrypt("Cartable-2026") == PasswordType.USER_PASSWORD


def test_encrypted_pdf_is_aes_256_and_opens_with_the_document_password_only() -> None:
    letters = [make_letter(1), make_letter(2)]
    encrypted = encrypt_pdf(render_letters(letters), "Sésame ouvre-toi")

    reader = PdfReader(io.BytesIO(encrypted))
    assert reader.is_encrypted
    encryption = reader.trailer["/Encrypt"].get_object()
    assert encryption["/V"] == 5 and encryption["/R"] == 6  # AES-256, PDF 2.0
    assert encryption["/CF"]["/StdCF"]["/CFM"] == "/AESV3"
    assert reader.decrypt("") == PasswordType.NOT_DECRYPTED
    assert reader.decrypt("sésame ouvre-toi") == PasswordType.NOT_DECRYPTED
    assert b"BUNZ57DM" not in encrypted and b"celine.dupont" not in encrypted
    texts = page_texts(encrypted, password="Sésame ouvre-toi")
    assert len(texts) == 2 and "BUNZ57DM" in texts[0]
    with pytest.raises(pdfium.PdfiumError):
        pdfium.PdfDocument(encrypted)
    with pytest.raises(pdfium.PdfiumError):
        pdfium.PdfDocument(encrypted, password="wrong")
    image = page_image(encrypted, password="Sésame ouvre-toi")
    save_artifact(image, "letter-encrypted-page.png")
    assert letters[0].activation_url in decoded_qr_codes(image)


def test_zip_lists_the_individual_letters() -> None:
    letters = [make_letter(n) for n in range(1, 4)]
    files = split_letters(render_letters(letters), letters)

    archive = zipfile.ZipFile(io.BytesIO(zip_letters(files)))

    assert archive.namelist() == [name for name, _content in files]
    assert archive.testzip() is None
    assert archive.read(files[1][0]) == files[1][1]


def test_letter_filenames_are_safe() -> None:
    assert letter_filename(make_letter(identifier="celine.dupont114")) == (
        "lettre-celine.dupont114.pdf"
    )
    assert letter_filename(make_letter(identifier="../é vil/x")) == "lettre-vil-x.pdf"
