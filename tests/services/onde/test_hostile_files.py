"""Hostile extractions: a file far above any school's size, or a line break inside a cell.

Both are refused whole, naming the file and saying what to do: the oversized one before its
rows become Python objects (in bounded memory), the broken one with the line of the record.
"""

from __future__ import annotations

import tracemalloc
from collections.abc import Iterator
from datetime import date

import pytest
from sqlalchemy import Engine

from bot.i18n import use_language
from bot.services.roster.onde.reader import (
    MAX_FILE_BYTES,
    GuardianExtraction,
    PupilExtraction,
    read_extraction,
)
from bot.services.roster.onde.report import RosterFileError
from tests.services.onde.builder import Options, guardians_csv, pupils_csv, small_school
from tests.services.onde.conftest import ImportRunner, snapshot

TODAY = date(2026, 11, 28)


@pytest.fixture(autouse=True)
def english() -> Iterator[None]:
    """The messages in English: the French comes later from the catalog."""
    with use_language("en"):
        yield


def refusal(data: bytes, filename: str = "eleves.csv") -> str:
    with pytest.raises(RosterFileError) as caught:
        read_extraction(data, filename=filename, today=TODAY)
    assert caught.value.filename == filename
    message = str(caught.value)
    assert f"« {filename} »" in message and message.endswith("nothing was imported.")
    return message


def repeated(data: bytes, rows: int) -> bytes:
    """The header of `data` and its data lines repeated to `rows` lines (CRLF)."""
    header, *lines = [line for line in data.split(b"\r\n") if line]
    body = [lines[i % len(lines)] for i in range(rows)]
    return b"\r\n".join([header, *body]) + b"\r\n"


def small_pupils(options: Options | None = None) -> bytes:
    return pupils_csv(small_school()[0], options)


def small_guardians(options: Options | None = None) -> bytes:
    return guardians_csv(small_school()[1], options)


# --- Far above a school's size ------------------------------------------------------------------


def test_more_pupil_lines_than_any_school_are_refused_before_they_are_read() -> None:
    data = repeated(small_pupils(), 30_000)
    assert len(data) < MAX_FILE_BYTES  # refused for its lines, not its bytes
    tracemalloc.start()
    try:
        message = refusal(data)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert "30,000 lines" in message and "5,000" in message
    assert "Élèves" in message and "ONDE" in message
    # The text and its line breaks, not 30,000 rows of fields (that took ≈ 70 MB).
    assert peak < 4 * len(data), f"peak {peak / 1e6:.1f} MB for a {len(data) / 1e6:.1f} MB file"


def test_a_school_at_the_limit_is_read_and_one_line_more_is_refused() -> None:
    data = repeated(small_pupils(), 5_000)
    extraction = read_extraction(data, filename="eleves.csv", today=TODAY)
    assert isinstance(extraction, PupilExtraction) and extraction.data_lines == 5_000
    assert "5,001 lines" in refusal(repeated(small_pupils(), 5_001))


def test_more_guardian_lines_than_any_school_are_refused() -> None:
    message = refusal(repeated(small_guardians(), 10_001), "responsables.csv")
    assert "10,001 lines" in message and "10,000" in message and "Responsables" in message


def test_a_file_of_line_breaks_alone_is_refused_in_bounded_memory() -> None:
    data = small_pupils().split(b"\r\n")[0] + b"\n" * (MAX_FILE_BYTES - 1000)
    tracemalloc.start()
    try:
        message = refusal(data)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert "lines" in message
    assert peak < 4 * len(data)


def test_a_file_over_the_byte_limit_is_refused_with_the_limit() -> None:
    message = refusal(small_pupils() + b" " * MAX_FILE_BYTES)
    assert f"{MAX_FILE_BYTES // (1024 * 1024)} MB" in message


def test_the_limits_leave_a_wide_margin_over_real_schools() -> None:
    # A large French primary school has about 1,000 pupils and 2,000 guardians; its two
    # extractions are well under 1 MB.
    assert MAX_FILE_BYTES >= 4 * 1024 * 1024
    guardians = repeated(small_guardians(), 4_000)
    extraction = read_extraction(guardians, filename="responsables.csv", today=TODAY)
    assert isinstance(extraction, GuardianExtraction) and extraction.data_lines == 4_000


# --- A line break inside a quoted cell ------------------------------------------------------------


def with_line(data: bytes, index: int, old: bytes, new: bytes) -> bytes:
    lines = data.split(b"\r\n")
    assert old in lines[index]
    lines[index] = lines[index].replace(old, new, 1)
    return b"\r\n".join(lines)


BROKEN_CELLS = {
    # The second half of the name would make a pupil « BOIS" » of its own.
    "pupil's family name": (small_pupils(), 2, b"MARTIN", b'"MAR\r\nTIN"'),
    "pupil's address, LF": (small_pupils(), 2, b"1 rue de la Paix", b'"1 rue\nde la Paix"'),
    "every field quoted": (
        small_pupils(Options(quote_all=True)),
        2,
        b'"1 rue de la Paix"',
        b'"1 rue\r\nde la Paix"',
    ),
    "guardian's first name": (small_guardians(), 2, b";Paul;", b';"Pa\r\nul";'),
}


@pytest.mark.parametrize(("data", "index", "old", "new"), BROKEN_CELLS.values(), ids=BROKEN_CELLS)
def test_a_line_break_inside_a_cell_refuses_the_file_naming_its_line(
    data: bytes, index: int, old: bytes, new: bytes
) -> None:
    message = refusal(with_line(data, index, old, new), "CSVExtraction.csv")
    assert f"line {index + 1}" in message and f"line {index + 2}" in message
    assert "line break" in message and "ONDE" in message


def test_an_unclosed_quote_without_a_closing_one_below_is_still_one_rejected_line() -> None:
    data = with_line(small_pupils(Options(quote_all=True)), 2, b'"Hugo"', b'"Hugo')
    extraction = read_extraction(data, filename="eleves.csv", today=TODAY)
    assert [(i.line, i.code) for i in extraction.issues] == [(3, "malformed_line")]
    assert len(extraction.rows) == len(small_school()[0]) - 1


def test_a_line_break_inside_a_cell_imports_nothing(
    engine: Engine, run_import: ImportRunner
) -> None:
    run_import([("eleves.csv", small_pupils()), ("responsables.csv", small_guardians())])
    before = snapshot(engine)
    broken = with_line(small_pupils(), 1, b"1 rue de la Paix", b'"1 rue\r\nde la Paix"')
    renamed = small_guardians().replace(b"Claire", b"Clara")
    with pytest.raises(RosterFileError, match=r"line 2"):
        run_import([("eleves.csv", broken), ("responsables.csv", renamed)])
    assert snapshot(engine) == before
