"""Password protection of PDFs that carry provisional passwords (AES-256).

A letter PDF sent in a chat stays on phones and in Telegram's cloud: it is encrypted with the
school's document password, and opens with that password only.
"""

from __future__ import annotations

import io
import secrets
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pypdf import PdfWriter

ENCRYPTION_ALGORITHM = "AES-256"


def encrypt_writer(writer: PdfWriter, password: str) -> None:
    """Make `writer` produce a PDF that opens with `password` only (AES-256, PDF 2.0 R6).

    The owner password is random and thrown away: nobody can lift the protection, and the
    document password grants every use a parent or a director needs (printing included)."""
    if not password:
        raise ValueError("a document password cannot be empty")
    writer.encrypt(
        user_password=password,
        owner_password=secrets.token_urlsafe(24),
        algorithm=ENCRYPTION_ALGORITHM,
    )


def encrypt_pdf(pdf: bytes, password: str) -> bytes:
    """`pdf` encrypted with AES-256 so that it opens with `password` only."""
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(pdf)))
    encrypt_writer(writer, password)
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


class BatchEncryption:
    """AES-256 for many documents that share one password, with one key derivation.

    Deriving the R6 keys from a password is deliberately slow (≈ 15 ms in pypdf), more than
    cutting and writing a one-page letter. The documents of one batch open with the same
    password anyway, so they can share its derived values and file key: whoever opens one can
    open them all, which is already true. Each stream still gets its own random IV.

    This reaches into `PdfWriter`'s encryption attributes (no public API shares them); a pypdf
    that lacks them gets a full `encrypt()` per document instead, and the tests open every
    file of a batch with the password to catch a change of behaviour.
    """

    def __init__(self, password: str) -> None:
        from pypdf import PdfWriter
        from pypdf.generic import DictionaryObject

        self._password = password
        template = PdfWriter()
        encrypt_writer(template, password)
        self._encryption = getattr(template, "_encryption", None)
        entry = getattr(template, "_encrypt_entry", None)
        self._entry = entry if isinstance(entry, DictionaryObject) else None

    def apply(self, writer: PdfWriter) -> None:
        """Make `writer` produce a PDF encrypted like every other document of the batch."""
        if (
            self._encryption is None
            or self._entry is None
            or not hasattr(writer, "_encryption")
            or getattr(writer, "_encrypt_entry", False) is not None
        ):
            encrypt_writer(writer, self._password)
            return
        from pypdf.generic import DictionaryObject

        writer.generate_file_identifiers()
        entry = DictionaryObject(self._entry)
        writer._add_object(entry)
        writer._encryption = self._encryption
        writer._encrypt_entry = entry
