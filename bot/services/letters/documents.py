"""The individual documents (« document individuel ») of a combined PDF of letters that was
already sent encrypted: one PDF per letter (its French page, and its translation for a
bilingual letter), encrypted again, in a ZIP.

The chat asks for them after the combined PDF, when the clear passwords are long gone: the pages
are cut from the encrypted PDF itself, opened with the school's document password.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

from bot.services.letters.protection import BatchEncryption
from bot.services.letters.rendering import letter_page_groups, zip_letters


class LetterDocumentsError(ValueError):
    """The PDF cannot be cut into the expected letters (wrong password, other pages)."""


def individual_documents_zip(
    *, pdf: bytes, document_password: str, filenames: Sequence[str]
) -> bytes:
    """A ZIP of one PDF per letter of `pdf` (letter i named `filenames[i]`), each encrypted
    with `document_password` like the combined PDF. CPU-bound: run it off the event loop."""
    from pypdf import PdfReader, PdfWriter
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(io.BytesIO(pdf))
        if reader.is_encrypted and not reader.decrypt(document_password):
            raise LetterDocumentsError("the document password does not open this PDF")
        letters = letter_page_groups(reader)
    except PdfReadError as error:
        raise LetterDocumentsError("this PDF cannot be read") from error
    if len(letters) != len(filenames):
        raise LetterDocumentsError(f"{len(letters)} letters in the PDF for {len(filenames)} names")
    encryption = BatchEncryption(document_password)
    files: list[tuple[str, bytes]] = []
    for pages, name in zip(letters, filenames, strict=True):
        writer = PdfWriter()
        for page in pages:
            writer.add_page(page)
        encryption.apply(writer)
        buffer = io.BytesIO()
        writer.write(buffer)
        files.append((name, buffer.getvalue()))
    return zip_letters(files)
