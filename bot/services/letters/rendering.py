"""Printable credential letters: one A4 page per guardian in French and, for a family whose
language is another one, the same letter in that language on the next page (docs/PRODUCT.md:
the French wording stays the authoritative one).

`render_letters` draws every letter into one PDF (fonts parsed and subset once, which is what
makes a thousand pages fast); `split_letters` cuts it into the individual documents and
`zip_letters` packs them. Rendering is CPU-bound: callers run it off the event loop.

A page in a right-to-left language is mirrored: every box changes side and its text is shaped
by HarfBuzz (fpdf2's text shaping, with its bidi algorithm) in Noto Sans Arabic, DejaVu Sans
standing in for the Latin letters of names. Identifiers, passwords, addresses and codes stay
left to right in the Latin monospace font, never reordered.
"""

from __future__ import annotations

import io
import itertools
import re
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from bot.config import get_settings
from bot.i18n import RTL_LANGUAGES, _, negotiate_language, use_language
from bot.services.accounts import CredentialKind
from bot.services.letters.content import Letter
from bot.services.letters.protection import BatchEncryption, encrypt_pdf
from bot.services.letters.qr import draw_qr
from bot.services.letters.wording import LetterText, letter_text

if TYPE_CHECKING:
    from pypdf import PageObject, PdfReader

__all__ = [
    "encrypt_pdf",
    "letter_filename",
    "letter_languages",
    "letter_page_groups",
    "render_letters",
    "split_letters",
    "zip_letters",
]

FONTS_DIR = Path(__file__).resolve().parents[2] / "assets" / "fonts"
LETTER_LANGUAGE = "fr"

# Page geometry, in millimetres.
PAGE_WIDTH = 210.0
PAGE_HEIGHT = 297.0
MARGIN = 20.0
CONTENT_WIDTH = PAGE_WIDTH - 2 * MARGIN
BAND_HEIGHT = 30.0
QR_SIZE = 28.0
QR_PANEL_GAP = 8.0
CHILD_ROW = 5.8
# Space between the blocks, from the band down: addressee, title, children, credentials,
# steps, QR codes. A crowded page gets them smaller.
GAPS = (8.0, 7.0, 5.0, 6.0, 8.0, 4.0)
# Where the content must end: the date and signature need the room below.
CONTENT_BOTTOM = PAGE_HEIGHT - 38

# Colours (RGB): a sober navy for structure, greys for secondary text.
NAVY = (31, 58, 95)
ACCENT = (43, 92, 138)
BAND = (234, 240, 247)
PANEL = (244, 247, 251)
GREY = (90, 98, 110)
LIGHT_GREY = (200, 206, 214)
BLACK = (25, 25, 25)
WHITE = (255, 255, 255)

SANS = "DejaVuSans"
MONO = "DejaVuSansMono"
# The face of right-to-left pages (it has no Latin letters: SANS is its fallback).
ARABIC = "NotoSansArabic"
# Every page of a letter is labelled « <letter number>-<page> »: the label says where a letter
# starts when its PDF is cut into individual documents, long after the letters are gone.
LABEL_SEPARATOR = "-"


# French puts a space before « : ; ! ? » and inside « »: a line never breaks there.
_GLUED_SPACE = re.compile(r" (?=[:;!?»])|(?<=«) ")


def _unbreakable_words(text: str) -> list[str]:
    """The words of `text` where a line may break, French punctuation kept with its word."""
    glued = _GLUED_SPACE.sub("\u00a0", text)
    return [word.replace("\u00a0", " ") for word in re.split(r"[ \t\n]+", glued) if word]


@dataclass(frozen=True, slots=True)
class _CredentialsLayout:
    """Where the identifier and the password go in their panel (offsets from its top left)."""

    password: str | None
    identifier_width: float
    right_offset: float
    right_width: float
    note_lines: list[str]
    expiry_on_note_row: bool
    row_offset: float
    height: float


@dataclass(frozen=True, slots=True)
class _QrPanel:
    url: str | None
    caption_lines: list[str]
    hint_lines: list[str]
    command: str | None
    width: float
    needed: float


@dataclass(frozen=True, slots=True)
class _PagePlan:
    """One page measured: its wrapped lines and the height of its blocks, gaps excluded."""

    school_lines: list[str]
    addressee_lines: list[str]
    intro_lines: list[str]
    children_columns: int
    children_rows: int
    credentials: _CredentialsLayout
    step_lines: list[list[str]]
    panels: list[_QrPanel]
    qr_height: float
    height: float


class _LetterDocument:
    """An A4 document whose pages are credential letters, drawn with fpdf2 (`pdf`).

    Text is placed line by line with `FPDF.text()` and wrapped by `_wrap` from cached word
    widths: `multi_cell` costs about a millisecond per call, which alone would halve the
    throughput of a thousand-page print run."""

    def __init__(self) -> None:
        from fpdf import FPDF

        self.pdf = FPDF(orientation="portrait", unit="mm", format="A4")
        # A letter is exactly one page: the layout below is sized to fit, never to flow on.
        self.pdf.set_auto_page_break(False)
        self.pdf.set_margins(MARGIN, MARGIN, MARGIN)
        self.pdf.set_creator("EduConnect assistant")
        self.pdf.set_title(_("EduConnect account letters"))
        self.pdf.set_lang(LETTER_LANGUAGE)
        self.pdf.add_font(SANS, "", FONTS_DIR / "DejaVuSans.ttf")
        self.pdf.add_font(SANS, "B", FONTS_DIR / "DejaVuSans-Bold.ttf")
        self.pdf.add_font(SANS, "I", FONTS_DIR / "DejaVuSans-Oblique.ttf")
        self.pdf.add_font(MONO, "B", FONTS_DIR / "DejaVuSansMono-Bold.ttf")
        self._widths: dict[tuple[str, str, float, float, str], float] = {}
        # True while a right-to-left page is drawn.
        self._rtl = False
        # `cell()` (the shaped text of right-to-left pages) adds no padding of its own.
        self.pdf.c_margin = 0

    # -- text helpers --------------------------------------------------------------------

    def _font(self, family: str, style: str, size: float) -> None:
        """Select a face; a right-to-left page draws its text in ARABIC (no italic there)."""
        if self._rtl and family == SANS:
            family, style = ARABIC, style.replace("I", "")
        self.pdf.set_font(family, style, size)

    def _style(
        self, size: float, style: str = "", colour: tuple[int, int, int] = BLACK, family: str = SANS
    ) -> None:
        self._font(family, style, size)
        self.pdf.set_text_color(*colour)

    def _mx(self, x: float, width: float) -> float:
        """The left edge of the box (`x`, `width`) on this page: mirrored on a right-to-left one."""
        return PAGE_WIDTH - x - width if self._rtl else x

    def _width(self, text: str) -> float:
        """The width of `text` in the current font, memoised for the document."""
        key = (
            self.pdf.font_family,
            self.pdf.font_style,
            self.pdf.font_size_pt,
            self.pdf.char_spacing,
            text,
        )
        width = self._widths.get(key)
        if width is None:
            width = self._widths[key] = self.pdf.get_string_width(text)
        return width

    def _wrap(self, text: str, width: float) -> list[str]:
        """`text` broken into lines no wider than `width` (a word too long stays whole)."""
        space = self._width(" ")
        lines: list[str] = []
        current: list[str] = []
        current_width = 0.0
        for word in _unbreakable_words(text):
            word_width = self._width(word)
            if current and current_width + space + word_width > width:
                lines.append(" ".join(current))
                current, current_width = [word], word_width
            else:
                current_width += word_width + (space if current else 0.0)
                current.append(word)
        if current:
            lines.append(" ".join(current))
        return lines

    def _line(
        self, x: float, top: float, text: str, *, height: float, width: float = 0, align: str = "L"
    ) -> None:
        """One line of text in the box (`x`, `top`, `width`, `height`), vertically centred.

        On a right-to-left page the box is mirrored and the alignment flipped (a line without a
        box ends where its left-to-right twin starts); its text is shaped, except in MONO."""
        if self._rtl:
            align = {"L": "R", "R": "L"}.get(align, align)
            x, width = (PAGE_WIDTH - x - width, width) if width else (0.0, PAGE_WIDTH - x)
            if self.pdf.font_family == ARABIC.lower():
                self.pdf.set_xy(x, top)
                self.pdf.cell(width, height, text, align=align)
                return
            if align == "L":
                width = 0
        if align != "L":
            free = width - self._width(text)
            x += free if align == "R" else free / 2
        size = self.pdf.font_size  # in mm
        self.pdf.text(x, top + (height - size) / 2 + size * 0.8, text)

    def _lines(self, x: float, top: float, lines: Sequence[str], *, leading: float) -> float:
        """Draw `lines` one below the other from `top`; return the y just below them."""
        for line in lines:
            self._line(x, top, line, height=leading)
            top += leading
        return top

    def _truncate(self, text: str, width: float) -> str:
        """`text` cut with « … » to fit `width` in the current font (kept whole if it fits)."""
        if self._width(text) <= width:
            return text
        while text and self._width(text + "…") > width:
            text = text[:-1]
        return text.rstrip() + "…"

    def _fit_size(self, text: str, family: str, style: str, size: float, width: float) -> float:
        """The largest font size up to `size` at which `text` fits on one line of `width`."""
        self._font(family, style, size)
        natural = self._width(text)
        return size if natural <= width else max(size * width / natural, 6.0)

    # -- page ----------------------------------------------------------------------------

    def _set_direction(self, rtl: bool) -> None:
        """Switch shaping on for right-to-left pages (it costs, so only there), loading the
        Arabic faces the first time: a French-only batch never parses them."""
        if rtl == self._rtl:
            return
        if rtl:
            if f"{ARABIC.lower()}B" not in self.pdf.fonts:
                self.pdf.add_font(ARABIC, "", FONTS_DIR / "NotoSansArabic-Regular.ttf")
                self.pdf.add_font(ARABIC, "B", FONTS_DIR / "NotoSansArabic-Bold.ttf")
            self.pdf.set_text_shaping(True, direction="rtl")
            self.pdf.set_fallback_fonts([SANS])
        else:
            self.pdf.set_text_shaping(False)
            self.pdf.set_fallback_fonts([])
        self._rtl = rtl

    def letter_page(
        self, letter: Letter, text: LetterText, *, number: int, continued: bool, rtl: bool
    ) -> None:
        """Lay the letter out (measure every block), then draw it on a new page: the first
        page of letter `number`, or (`continued`) the same letter in another language."""
        self._set_direction(rtl)
        plan = self._plan(letter, text)
        if continued:
            self.pdf.add_page()  # the label runs on: « 12-2 »
        else:
            self.pdf.add_page(
                label_style="D", label_prefix=f"{number}{LABEL_SEPARATOR}", label_start=1
            )
        self._header_band(letter, plan.school_lines)
        # The gaps between blocks shrink on a crowded page (five children, long names…) so
        # that the date and the signature always keep their place above the footer.
        free = CONTENT_BOTTOM - BAND_HEIGHT - plan.height
        scale = min(1.0, max(free / sum(GAPS), 0.3))
        gap = [size * scale for size in GAPS]
        y = self._addressee(plan, BAND_HEIGHT + gap[0])
        y = self._title(text, plan, y + gap[1])
        y = self._children(letter, text, plan, y + gap[2])
        y = self._credentials(letter, text, plan.credentials, y + gap[3])
        y = self._steps(text, plan, y + gap[4])
        y = self._qr_codes(plan, y + gap[5])
        self._closing(text, y)

    def _plan(self, letter: Letter, text: LetterText) -> _PagePlan:
        """Every wrapped line and block height of the page, before anything is drawn."""
        self._font(SANS, "B", 16)
        school_lines = [letter.school_name]
        if self._width(letter.school_name) > CONTENT_WIDTH:
            # A long name reads better on two lines than squeezed on one.
            self._font(SANS, "B", 12.5)
            school_lines = self._wrap(letter.school_name, CONTENT_WIDTH)
            if len(school_lines) > 2:
                school_lines = [school_lines[0], " ".join(school_lines[1:])]
        self._font(SANS, "B", 12)
        addressee_lines = self._wrap(text.addressee, CONTENT_WIDTH)
        self._font(SANS, "", 10.5)
        intro_lines = self._wrap(text.intro, CONTENT_WIDTH)
        step_lines = [self._wrap(step, CONTENT_WIDTH - 10) for step in text.steps]
        # More columns past five children keep a large family on its one page.
        columns = 1 + (len(letter.children) - 1) // 5 if letter.children else 1
        rows = -(-len(letter.children) // columns)
        credentials = self._credentials_layout(letter, text)
        panels, qr_height = self._qr_layout(letter, text)
        height = (
            len(addressee_lines) * 6
            + 10
            + len(intro_lines) * 5.4
            + 6.5
            + rows * CHILD_ROW
            + credentials.height
            + 9
            + sum(max(len(lines) * 5.4 + 0.5, 6.5) + 3 for lines in step_lines)
            + qr_height
        )
        return _PagePlan(
            school_lines=school_lines,
            addressee_lines=addressee_lines,
            intro_lines=intro_lines,
            children_columns=columns,
            children_rows=rows,
            credentials=credentials,
            step_lines=step_lines,
            panels=panels,
            qr_height=qr_height,
            height=height,
        )

    def _header_band(self, letter: Letter, lines: list[str]) -> None:
        self.pdf.set_fill_color(*BAND)
        self.pdf.rect(0, 0, PAGE_WIDTH, BAND_HEIGHT, style="F")
        self.pdf.set_fill_color(*ACCENT)
        self.pdf.rect(0, BAND_HEIGHT, PAGE_WIDTH, 0.8, style="F")
        top = 7.0 if len(lines) == 1 else 4.5
        for line in lines:
            size = self._fit_size(line, SANS, "B", 16 if len(lines) == 1 else 12.5, CONTENT_WIDTH)
            self._style(size, "B", NAVY)
            self._line(MARGIN, top, line, height=7)
            top += 6.2
        place = f"UAI {letter.school_uai}"
        if letter.school_city:
            place = f"{place} · {letter.school_city}"
        self._style(9.5, "", GREY)
        self._line(MARGIN, BAND_HEIGHT - 10, place, height=5)

    def _addressee(self, plan: _PagePlan, y: float) -> float:
        self._style(12, "B", BLACK)
        return self._lines(MARGIN, y, plan.addressee_lines, leading=6)

    def _title(self, text: LetterText, plan: _PagePlan, y: float) -> float:
        self._style(18, "B", NAVY)
        self._line(MARGIN, y, text.title, height=9)
        self._style(10.5, "", BLACK)
        return self._lines(MARGIN, y + 10, plan.intro_lines, leading=5.4)

    def _children(self, letter: Letter, text: LetterText, plan: _PagePlan, y: float) -> float:
        self._style(8.5, "B", ACCENT)
        # Spacing the letters apart would break the joins of Arabic.
        self.pdf.set_char_spacing(0 if self._rtl else 0.6)
        self._line(MARGIN, y, text.children_heading, height=5)
        self.pdf.set_char_spacing(0)
        y += 6.5
        columns, rows = plan.children_columns, plan.children_rows
        column_width = CONTENT_WIDTH / columns
        for index, (child, class_line) in enumerate(
            zip(letter.children, text.class_lines, strict=True)
        ):
            column, row = divmod(index, rows)
            x = MARGIN + column * column_width
            line_y = y + row * CHILD_ROW
            self.pdf.set_fill_color(*ACCENT)
            self.pdf.rect(self._mx(x + 1, 1.5), line_y + 2.3, 1.5, 1.5, style="F")
            name = f"{child.first_name} {child.last_name.upper()}".strip()
            suffix = f"  —  {class_line}" if class_line else ""
            # Shrink a line that would run into the next column (or off the page).
            available = column_width - 5.5 - (4 if column < columns - 1 else 0)
            self._font(SANS, "B", 10.5)
            name_width = self._width(name)
            self._font(SANS, "", 10)
            natural = name_width + self._width(suffix)
            scale = max(min(1.0, available / natural), 0.7)
            self._font(SANS, "", 10 * scale)
            suffix_width = self._width(suffix)
            self._style(10.5 * scale, "B", BLACK)
            name = self._truncate(name, available - suffix_width)
            self._line(x + 5.5, line_y, name, height=6)
            if suffix:
                name_width = self._width(name)
                self._style(10 * scale, "", GREY)
                self._line(x + 5.5 + name_width, line_y, suffix, height=6)
        return y + rows * CHILD_ROW

    def _credentials_layout(self, letter: Letter, text: LetterText) -> _CredentialsLayout:
        inner_width = CONTENT_WIDTH - 14
        # A long identifier takes room from the password column rather than shrinking.
        self._font(MONO, "B", 15)
        identifier_width = min(
            max(inner_width / 2 - 4, self._width(letter.identifier)), inner_width - 66
        )
        right_offset = identifier_width + 8
        right_width = inner_width - right_offset
        # A reminder never shows a password, whatever the letter was built with.
        password = letter.password if letter.kind is not CredentialKind.REMINDER else None
        note_lines: list[str] = []
        expiry_on_note_row = False
        if password is not None:
            # Below both columns: the note, then the expiry on the same line if it fits.
            self._font(SANS, "B", 9)
            expiry_width = self._width(text.expiry) if text.expiry is not None else 0.0
            self._font(SANS, "I", 8.5)
            expiry_on_note_row = self._width(text.password_note) + 8 + expiry_width <= inner_width
            row_offset = 27.0
            rows_height = 5 if expiry_on_note_row or text.expiry is None else 10
        else:
            self._font(SANS, "", 9.5)
            note_lines = self._wrap(text.password_note, right_width)
            row_offset = max(27.0, 10.5 + len(note_lines) * 4.6 + 1)
            rows_height = 5 if text.expiry is not None else 0
        return _CredentialsLayout(
            password=password,
            identifier_width=identifier_width,
            right_offset=right_offset,
            right_width=right_width,
            note_lines=note_lines,
            expiry_on_note_row=expiry_on_note_row,
            row_offset=row_offset,
            height=row_offset + rows_height + 4,
        )

    def _credentials(
        self, letter: Letter, text: LetterText, layout: _CredentialsLayout, y: float
    ) -> float:
        inner = MARGIN + 7
        inner_width = CONTENT_WIDTH - 14
        right = inner + layout.right_offset
        row_top = y + layout.row_offset
        self.pdf.set_fill_color(*PANEL)
        self.pdf.set_draw_color(*LIGHT_GREY)
        self.pdf.set_line_width(0.3)
        self.pdf.rect(
            MARGIN, y, CONTENT_WIDTH, layout.height, style="DF", round_corners=True, corner_radius=3
        )
        # Identifier, left.
        self._style(8.5, "B", GREY)
        self._line(inner, y + 5, text.identifier_label, height=4)
        size = self._fit_size(letter.identifier, MONO, "B", 15, layout.identifier_width)
        self._style(size, "B", BLACK, MONO)
        self._line(inner, y + 10.5, letter.identifier, height=13)
        # Password, right.
        self._style(8.5, "B", GREY)
        self._line(right, y + 5, text.password_label, height=4)
        if layout.password is not None:
            self.pdf.set_fill_color(*WHITE)
            self.pdf.set_draw_color(*ACCENT)
            self.pdf.set_line_width(0.5)
            self.pdf.rect(
                self._mx(right, layout.right_width),
                y + 10.5,
                layout.right_width,
                13,
                style="DF",
                round_corners=True,
                corner_radius=2,
            )
            self._style(20, "B", NAVY, MONO)
            # Letter-spacing keeps each character apart (the alphabet has no 0/O or 1/I).
            self.pdf.set_char_spacing(3.5)
            self._line(
                right, y + 10.5, layout.password, height=13, width=layout.right_width, align="C"
            )
            self.pdf.set_char_spacing(0)
            self._style(8.5, "I", GREY)
            self._line(inner, row_top, text.password_note, height=5)
            if text.expiry is not None:
                self._style(9, "B", NAVY)
                if layout.expiry_on_note_row:
                    self._line(inner, row_top, text.expiry, height=5, width=inner_width, align="R")
                else:
                    self._line(inner, row_top + 5, text.expiry, height=5)
        else:
            self._style(9.5, "", BLACK)
            self._lines(right, y + 10.5, layout.note_lines, leading=4.6)
            if text.expiry is not None:
                self._style(9, "B", NAVY)
                self._line(inner, row_top, text.expiry, height=5)
        return y + layout.height

    def _steps(self, text: LetterText, plan: _PagePlan, y: float) -> float:
        self._style(13, "B", NAVY)
        self._line(MARGIN, y, text.steps_heading, height=7)
        y += 9
        for number, lines in enumerate(plan.step_lines, start=1):
            self.pdf.set_fill_color(*ACCENT)
            self.pdf.ellipse(self._mx(MARGIN, 6.5), y, 6.5, 6.5, style="F")
            self._style(10, "B", WHITE)
            self._line(MARGIN, y, str(number), height=6.5, width=6.5, align="C")
            self._style(10.5, "", BLACK)
            end = self._lines(MARGIN + 10, y + 0.5, lines, leading=5.4)
            y = max(end, y + 6.5) + 3
        return y

    def _qr_layout(self, letter: Letter, text: LetterText) -> tuple[list[_QrPanel], float]:
        """The QR panels (portal, then bot) with their wrapped text, and their common height."""
        width = (CONTENT_WIDTH - QR_PANEL_GAP) / 2
        panels = [
            self._qr_panel_layout(
                letter.activation_url, text.portal_caption, text.portal_hint, None, width
            )
        ]
        if letter.bot_link_url is not None:
            panels.append(
                self._qr_panel_layout(
                    letter.bot_link_url, text.bot_caption, text.bot_hint, None, width
                )
            )
        elif letter.family_link_code is not None:
            command = f"/start {letter.family_link_code}"
            panels.append(
                self._qr_panel_layout(None, text.bot_caption, text.bot_hint, command, width)
            )
        return panels, max(QR_SIZE + 8, *(panel.needed for panel in panels))

    def _qr_panel_layout(
        self, url: str | None, caption: str, hint: str, command: str | None, width: float
    ) -> _QrPanel:
        text_width = width - 8 - (QR_SIZE + 4 if url is not None else 0)
        self._font(SANS, "B", 10)
        caption_lines = self._wrap(caption, text_width)
        self._font(SANS, "", 8.5)
        hint_lines = self._wrap(hint, text_width)
        needed = 10 + len(caption_lines) * 5.2 + 1.5 + len(hint_lines) * 4.1
        if command is not None:
            needed += 9  # the command to type, below the hint
        return _QrPanel(url, caption_lines, hint_lines, command, width, needed)

    def _qr_codes(self, plan: _PagePlan, y: float) -> float:
        for index, panel in enumerate(plan.panels):
            self._qr_panel(MARGIN + index * (panel.width + QR_PANEL_GAP), y, plan.qr_height, panel)
        return y + plan.qr_height

    def _qr_panel(self, x: float, y: float, height: float, panel: _QrPanel) -> None:
        self.pdf.set_draw_color(*LIGHT_GREY)
        self.pdf.set_line_width(0.3)
        self.pdf.rect(
            self._mx(x, panel.width),
            y,
            panel.width,
            height,
            style="D",
            round_corners=True,
            corner_radius=3,
        )
        text_x = x + 5
        if panel.url is not None:
            # The panel is white, so the QR code's quiet zone is too (4 mm ≥ 4 modules).
            qr_top = y + (height - QR_SIZE) / 2
            qr_left = self._mx(x + 4, QR_SIZE)
            draw_qr(self.pdf, panel.url, x=qr_left, y=qr_top, size=QR_SIZE)
            self.pdf.link(qr_left, qr_top, QR_SIZE, QR_SIZE, panel.url)
            text_x = x + QR_SIZE + 8
        self._style(10, "B", NAVY)
        top = self._lines(text_x, y + 5, panel.caption_lines, leading=5.2) + 1.5
        self._style(8.5, "", GREY)
        top = self._lines(text_x, top, panel.hint_lines, leading=4.1)
        if panel.command is not None:
            size = self._fit_size(panel.command, MONO, "B", 11, x + panel.width - 5 - text_x)
            self._style(size, "B", BLACK, MONO)
            self._line(text_x, top + 2, panel.command, height=6)

    def _closing(self, text: LetterText, content_end: float) -> None:
        # The date and signature sit low on the page, leaving room above them to sign or
        # stamp; a long letter pushes them down towards the footer, never into it.
        top = min(max(PAGE_HEIGHT - 42, content_end + 5), CONTENT_BOTTOM + 5)
        self._style(10, "", GREY)
        self._line(MARGIN, top, text.dated, height=6, width=CONTENT_WIDTH, align="R")
        self._style(10.5, "I", BLACK)
        self._line(MARGIN, top + 6, text.signature, height=6, width=CONTENT_WIDTH, align="R")
        self.pdf.set_draw_color(*LIGHT_GREY)
        self.pdf.set_line_width(0.3)
        self.pdf.line(MARGIN, PAGE_HEIGHT - 18, PAGE_WIDTH - MARGIN, PAGE_HEIGHT - 18)
        self._style(8.5, "", GREY)
        self._line(
            MARGIN,
            PAGE_HEIGHT - 16.5,
            text.confidentiality,
            height=5,
            width=CONTENT_WIDTH,
            align="C",
        )


def letter_languages(letter: Letter) -> tuple[str, ...]:
    """The languages `letter` is printed in, one page each: French, then the family's language
    when it is another supported one (an unknown language leaves the letter French only)."""
    language = negotiate_language(letter.language)
    return (LETTER_LANGUAGE,) if language == LETTER_LANGUAGE else (LETTER_LANGUAGE, language)


def render_letters(
    letters: Sequence[Letter],
    *,
    progress: Callable[[int, int], None] | None = None,
    tz: ZoneInfo | None = None,
) -> bytes:
    """One PDF with the letters in the order given: one A4 page in French each, followed for a
    bilingual letter by the same letter in the family's language (`letter_languages`). No
    letters: one blank page, so the result is still a valid PDF.

    `progress(done, total)` is called after each letter. CPU-bound: run it in a worker thread.
    Expiry dates are shown in `tz`, by default the deployment's TIMEZONE."""
    zone = tz or get_settings().tz
    total = len(letters)
    with use_language(LETTER_LANGUAGE):
        document = _LetterDocument()
        for done, letter in enumerate(letters, start=1):
            for page, language in enumerate(letter_languages(letter)):
                with use_language(language):
                    text = letter_text(letter, tz=zone)
                document.letter_page(
                    letter, text, number=done, continued=page > 0, rtl=language in RTL_LANGUAGES
                )
            if progress is not None:
                progress(done, total)
        if not letters:
            document.pdf.add_page()
        return bytes(document.pdf.output())


_UNSAFE_FILENAME = re.compile(r"[^A-Za-z0-9._-]+")


def letter_filename(letter: Letter) -> str:
    """« lettre-<identifier>.pdf », safe in a ZIP and on any file system."""
    stem = _UNSAFE_FILENAME.sub("-", letter.identifier).strip("-.") or str(letter.account_id)
    return f"lettre-{stem}.pdf"


def split_letters(
    pdf: bytes, letters: Sequence[Letter], *, password: str | None = None
) -> list[tuple[str, bytes]]:
    """The individual documents of a combined PDF from `render_letters(letters)`: one PDF per
    letter (its French page and its translation), named after its identifier, encrypted with
    `password` if given (AES-256, cheaper here than encrypting each file afterwards)."""
    from pypdf import PdfReader, PdfWriter

    reader = PdfReader(io.BytesIO(pdf))
    expected = sum(len(letter_languages(letter)) for letter in letters)
    if len(reader.pages) != expected:
        raise ValueError(f"the PDF has {len(reader.pages)} pages for {len(letters)} letters")
    encryption = BatchEncryption(password) if password is not None else None
    files: list[tuple[str, bytes]] = []
    seen: set[str] = set()
    pages = iter(reader.pages)
    for letter in letters:
        name = letter_filename(letter)
        if name in seen:  # one guardian twice in a batch: keep both files
            name = name.removesuffix(".pdf") + f"-{letter.account_id}.pdf"
        seen.add(name)
        writer = PdfWriter()
        for _language in letter_languages(letter):
            writer.add_page(next(pages))
        if encryption is not None:
            encryption.apply(writer)
        buffer = io.BytesIO()
        writer.write(buffer)
        files.append((name, buffer.getvalue()))
    return files


def letter_page_groups(reader: PdfReader) -> list[list[PageObject]]:
    """The pages of a combined PDF of letters, letter by letter: a letter starts where a page
    label range starts (`render_letters` opens one per letter). A PDF without labels (made
    before bilingual letters) has one page per letter."""
    labels = reader.root_object.get("/PageLabels")
    pages = list(reader.pages)
    if labels is None:
        return [[page] for page in pages]
    numbers = labels.get_object()["/Nums"]
    # fpdf2 writes a range per page; a letter's first page is the one numbered 1 (« 12-1 »).
    starts = sorted(
        {0}
        | {
            int(numbers[index])
            for index in range(0, len(numbers), 2)
            if int(numbers[index + 1].get_object().get("/St", 1)) == 1
        }
    )
    return [pages[start:end] for start, end in itertools.pairwise([*starts, len(pages)])]


def zip_letters(files: Sequence[tuple[str, bytes]]) -> bytes:
    """A ZIP of the individual letters (stored, not deflated: PDF streams are compressed)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        for name, content in files:
            archive.writestr(name, content)
    return buffer.getvalue()
