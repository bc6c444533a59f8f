"""Bilingual letters (issue 12): the French page, then the same letter in the family's language;
Arabic shaped by HarfBuzz and laid out right to left, Latin names kept in their order.

The translated phrases come from the ar, pt, es and tr catalogs: these tests need the letter's
translations merged into locales/.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from zoneinfo import ZoneInfo

import pypdfium2 as pdfium
import pytest
import uharfbuzz as hb
from PIL import Image, ImageChops
from pypdf import PdfReader

from bot.i18n import use_language
from bot.services.letters import individual_documents_zip
from bot.services.letters.rendering import (
    FONTS_DIR,
    LETTER_LANGUAGE,
    _LetterDocument,
    letter_languages,
    render_letters,
    split_letters,
)
from bot.services.letters.wording import letter_text
from tests.services.test_letters import compact, make_letter, page_texts

PARIS = ZoneInfo("Europe/Paris")
REFERENCE = Path(__file__).resolve().parents[1] / "data" / "letter_ar_title.png"
# The letter's last line in each language (its footer), which the French page does not have.
PHRASES = {
    "en": "This letter is personal: keep it safe",
    "ar": "هذه الرسالة شخصية",
    "pt": "Esta carta é pessoal",
    "es": "Esta carta es personal",
    "tr": "Bu mektup kişiseldir",
}
FRENCH_PHRASE = "Ce courrier est personnel"
ARABIC_WORD = "حسابكم"
# Unicode's bidi isolates around a Latin name in an Arabic sentence: invisible, not printed.
ISOLATES = str.maketrans("", "", "\u2068\u2069")


def arabic_text(text: str) -> str:
    """Extracted text without the isolates, its white space as single spaces."""
    return compact(text.translate(ISOLATES))


@pytest.mark.parametrize("language", sorted(PHRASES))
def test_a_bilingual_letter_is_the_french_page_then_the_same_letter_translated(
    language: str,
) -> None:
    letter = make_letter(language=language, identifier="celine.dupont7", password="BUNZ57DM")
    french, translated = (arabic_text(text) for text in page_texts(render_letters([letter])))
    assert FRENCH_PHRASE in french
    assert PHRASES[language] not in french
    assert PHRASES[language] in translated
    assert FRENCH_PHRASE not in translated
    # Same credentials and codes on both pages, always left to right.
    for page in (french, translated):
        assert "celine.dupont7" in page
        assert "BUNZ57DM" in page


def test_a_french_or_unknown_language_letter_is_one_french_page() -> None:
    letters = [make_letter(1), make_letter(2, language="fr"), make_letter(3, language="xx")]
    texts = page_texts(render_letters(letters))
    assert len(texts) == 3
    assert all(FRENCH_PHRASE in compact(text) for text in texts)
    assert [letter_languages(letter) for letter in letters] == [("fr",)] * 3


def test_the_code_to_type_stays_left_to_right_on_the_arabic_page() -> None:
    letter = make_letter(language="ar", bot_link_url=None)
    _, arabic = page_texts(render_letters([letter]))
    assert f"/start {letter.family_link_code}" in arabic


def test_a_french_name_inside_arabic_text_keeps_its_logical_order() -> None:
    letter = make_letter(language="ar", first_name="Jean-Pierre", last_name="Dupont")
    _, arabic = page_texts(render_letters([letter]))
    # pypdf reads a line from left to right as printed: read from the right, the Arabic words
    # come first, then the name — whole, its own letters left to right, never reversed.
    line = next(line for line in arabic.splitlines() if "عناية" in line)
    assert arabic_text(line) == "Jean-Pierre DUPONT إلى عناية"


def _arabic_glyphs(text: str) -> list[int]:
    """The glyphs HarfBuzz itself chooses for `text` in Noto Sans Arabic Regular."""
    blob = hb.Blob.from_file_path(FONTS_DIR / "NotoSansArabic-Regular.ttf")
    font = hb.Font(hb.Face(blob))
    buffer = hb.Buffer()
    buffer.add_str(text)
    buffer.guess_segment_properties()
    hb.shape(font, buffer, {})
    return [info.codepoint for info in buffer.glyph_infos]


def test_arabic_is_shaped_into_its_joined_forms() -> None:
    letter = make_letter(language="ar")
    document = _LetterDocument()
    with use_language("ar"):
        text = letter_text(letter, tz=PARIS)
    document.letter_page(letter, text, number=1, continued=False, rtl=True)
    regular = document.pdf.fonts["notosansarabic"]
    used = {glyph.glyph_id for glyph, _ in regular.subset.items() if glyph is not None}
    joined = _arabic_glyphs(ARABIC_WORD)
    isolated = [glyph for letter_ in ARABIC_WORD for glyph in _arabic_glyphs(letter_)]
    # Joined forms are other glyphs than the letters alone: without shaping, the page would
    # hold only the isolated ones (the font's cmap).
    assert set(joined).isdisjoint(isolated)
    assert set(joined) <= used


def _title_band(pdf: bytes, page_index: int) -> Image.Image:
    """The addressee and the title of a page, rendered by PDFium at 80 dpi, in grey."""
    page = pdfium.PdfDocument(pdf)[page_index]
    image = page.render(scale=80 / 72).to_pil().convert("L")
    return image.crop((340, 110, 610, 190))


def test_the_arabic_page_matches_its_reference_rendering() -> None:
    letter = make_letter(language="ar", first_name="Jean-Pierre", last_name="Dupont")
    band = _title_band(render_letters([letter]), 1)
    reference = Image.open(REFERENCE).convert("L")
    assert band.size == reference.size
    difference = ImageChops.difference(band, reference)
    # Anti-aliasing may differ by a few levels between PDFium builds, never whole glyphs.
    changed = difference.point(lambda value: 255 if value > 64 else 0).histogram()[255]
    assert changed < 0.01 * band.width * band.height
    # The right-aligned text is at the right margin: dark pixels reach it.
    darkest, _ = band.crop((band.width - 20, 0, band.width, band.height)).getextrema()
    assert darkest < 100


def test_bilingual_letters_are_cut_into_one_document_per_letter() -> None:
    letters = [make_letter(1, language="ar"), make_letter(2), make_letter(3, language="pt")]
    pdf = render_letters(letters)
    assert len(PdfReader(io.BytesIO(pdf)).pages) == 5
    files = split_letters(pdf, letters)
    assert [len(PdfReader(io.BytesIO(content)).pages) for _, content in files] == [2, 1, 2]
    # The chat's individual documents, cut from the encrypted PDF by its page labels alone.
    names = [name for name, _ in files]
    archive = individual_documents_zip(pdf=pdf, document_password="Sésame", filenames=names)
    with zipfile.ZipFile(io.BytesIO(archive)) as zipped:
        counts = []
        for name in names:
            reader = PdfReader(io.BytesIO(zipped.read(name)))
            reader.decrypt("Sésame")
            counts.append(len(reader.pages))
    assert counts == [2, 1, 2]


def test_the_french_page_comes_first_whatever_the_language() -> None:
    assert letter_languages(make_letter(language="ar")) == (LETTER_LANGUAGE, "ar")
    assert letter_languages(make_letter(language="pt-BR")) == (LETTER_LANGUAGE, "pt")
