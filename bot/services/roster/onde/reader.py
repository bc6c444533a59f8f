"""Read one ONDE extraction (bytes) into validated rows and a per-line report.

Nothing here touches the database: a file that cannot be read raises `RosterFileError`
before anything is written.
"""

from __future__ import annotations

import csv
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from typing import ClassVar

from bot.i18n import format_number
from bot.services.roster.classes import class_label_key, levels_in_label, normalise_level
from bot.services.roster.onde import messages
from bot.services.roster.onde.headers import COLUMN_TITLES, GuardianLayout, PupilLayout, recognise
from bot.services.roster.onde.normalise import (
    address_key,
    clean,
    name_key,
    normalise_email,
    normalise_phone,
    parse_civility,
    parse_date,
    parse_ine,
    parse_sex,
)
from bot.services.roster.onde.report import LineIssue


@dataclass(frozen=True, slots=True)
class SizeLimits:
    """The most one school's extraction may hold. A large French primary school has about
    1,000 pupils and 2,000 guardians, in well under 1 MB: far above that is a district's file,
    or a hostile one, refused before its rows are read so that it costs neither minutes nor
    hundreds of megabytes."""

    max_bytes: int
    max_pupil_lines: int
    max_guardian_lines: int

    def max_lines(self, kind: str) -> int:
        return self.max_pupil_lines if kind == "pupils" else self.max_guardian_lines


MAX_FILE_BYTES = 5 * 1024 * 1024
SCHOOL_SIZE = SizeLimits(max_bytes=MAX_FILE_BYTES, max_pupil_lines=5_000, max_guardian_lines=10_000)

_DELIMITERS = (";", ",", "\t")
# A line under the data that ONDE or a tool added: « Nombre d'élèves : 180 », « Total : 226 ».
_FOOTER = re.compile(r"^(nombre|nb|total|effectif|extraction|edition|edite|date|fin|export|genere)")
_EXCEL_SEPARATOR_HINT = re.compile(r"^\s*sep=(.)\s*$", re.IGNORECASE)
_OLDEST_BIRTH_YEAR = 1900
# A cell with line breaks spreads its record over at most this many lines; an unclosed quote
# that no line below closes within them spoils its own line only.
_MAX_RECORD_LINES = 10


@dataclass(frozen=True, slots=True)
class PupilRow:
    """One pupil as the Élèves extraction describes them, cleaned and validated."""

    line: int
    last_name: str
    usage_name: str | None
    first_name: str
    birth_date: date
    sex: str | None
    ine: str | None
    address: str | None
    postcode: str | None
    city: str | None
    level: str | None
    class_label: str | None
    class_onde_id: str | None

    @property
    def identity(self) -> tuple[str, str, date]:
        """Who the pupil is when there is no INE: family name, first name, birth date."""
        return (name_key(self.last_name), name_key(self.first_name), self.birth_date)

    @property
    def address_key(self) -> str | None:
        return address_key(self.address, self.postcode)


@dataclass(frozen=True, slots=True)
class RejectedPupil:
    """What a rejected Élèves line still says about who the pupil is.

    An already imported pupil whose new line is rejected (a typo in ONDE) is kept as it was
    rather than archived.
    """

    line: int
    ine: str | None
    last_name: str | None
    first_name: str | None


@dataclass(frozen=True, slots=True)
class ChildRef:
    """One child as a guardian row names them (no INE in that file)."""

    group: int  # 1-based position of the child group on the row
    usage_name: str | None
    last_name: str | None
    first_name: str
    class_label: str | None


@dataclass(frozen=True, slots=True)
class GuardianRow:
    """One guardian (one row of the Responsables extraction), cleaned and validated."""

    line: int
    civility: str | None
    usage_name: str | None
    last_name: str  # « Nom responsable » (birth name), else the usage name
    first_name: str
    address: str | None
    postcode: str | None
    city: str | None
    country: str | None
    email: str | None  # normalised; None when absent or malformed
    phone_home: str | None
    phone_work: str | None
    phone_mobile: str | None
    mobile_e164: str | None  # `phone_mobile` in E.164; None when absent or not a valid number
    children: tuple[ChildRef, ...]

    @property
    def name_key(self) -> tuple[str, str]:
        return (name_key(self.last_name), name_key(self.first_name))

    @property
    def address_key(self) -> str | None:
        return address_key(self.address, self.postcode)


@dataclass
class _Extraction:
    filename: str
    encoding: str
    columns: frozenset[str]  # the fields this file carries; absent ones are left untouched
    data_lines: int  # non-blank lines under the header, footer excluded
    issues: list[LineIssue] = field(default_factory=list)


@dataclass
class PupilExtraction(_Extraction):
    """An Élèves extraction: the pupils, their classes and levels."""

    kind: ClassVar[str] = "pupils"
    rows: list[PupilRow] = field(default_factory=list)
    rejected_pupils: list[RejectedPupil] = field(default_factory=list)


@dataclass
class GuardianExtraction(_Extraction):
    """A Responsables extraction: one guardian per row, with their children."""

    kind: ClassVar[str] = "guardians"
    rows: list[GuardianRow] = field(default_factory=list)


# --- Bytes to lines ---------------------------------------------------------------------------


def _decode(data: bytes, filename: str, limits: SizeLimits | None) -> tuple[str, str]:
    """The file's text and the encoding it was read with; refuses what is not text."""
    if limits is not None and len(data) > limits.max_bytes:
        raise messages.file_error(
            "too_big",
            filename=filename,
            size_mb=messages.megabytes(len(data)),
            limit_mb=limits.max_bytes // (1024 * 1024),
        )
    if not data.replace(b"\xef\xbb\xbf", b"").strip():
        raise messages.file_error("empty", filename=filename)
    if data.startswith(b"%PDF"):
        raise messages.file_error("pdf", filename=filename)
    # ZIP (xlsx, ods) and OLE2 (xls) containers.
    if data.startswith((b"PK\x03\x04", b"\xd0\xcf\x11\xe0")):
        raise messages.file_error("spreadsheet", filename=filename)
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        # « Texte Unicode » from a spreadsheet: UTF-16 with a byte-order mark.
        try:
            text = data.decode("utf-16")
        except UnicodeDecodeError:
            raise messages.file_error("unreadable", filename=filename) from None
        if "\x00" in text:
            raise messages.file_error("binary", filename=filename)
        return text, "utf-16"
    sample = data[:65536]
    controls = sum(1 for byte in sample if byte < 32 and byte not in (9, 10, 12, 13, 26))
    # A NUL byte anywhere, not only in the sample: PostgreSQL stores no NUL character, so a
    # row carrying one would fail the whole import once written.
    if b"\x00" in data or controls > len(sample) // 100:
        raise messages.file_error("binary", filename=filename)
    for encoding in ("utf-8-sig", "cp1252"):
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        used = "utf-8" if encoding == "utf-8-sig" else encoding
        return text, used
    # ISO-8859-1 decodes any byte; it is what is left once UTF-8 and Windows-1252 failed.
    return data.decode("latin-1"), "latin-1"


def _normalise_breaks(text: str) -> tuple[str, bool]:
    """The text with every line break (CRLF, LF or CR) as LF, and whether it ends with one.

    ONDE never writes a line break inside a field, so a line is a record: an unclosed quote
    spoils one line, not the rest of the file (and a cell with a line break refuses the file).
    """
    text = text.rstrip("\x1a")  # DOS end-of-file marker
    ends_with_break = text.endswith(("\n", "\r"))
    return text.replace("\r\n", "\n").replace("\r", "\n"), ends_with_break


def _split_lines(text: str, ends_with_break: bool) -> list[str]:
    """The physical lines of a normalised text."""
    lines = text.split("\n")
    if ends_with_break:
        lines.pop()
    return lines


def _iter_lines(text: str) -> Iterator[tuple[int, str]]:
    """(index, line) of a normalised text, one at a time: finds the header of a file without
    splitting all of it."""
    start, index = 0, 0
    while start < len(text):
        end = text.find("\n", start)
        end = len(text) if end < 0 else end
        yield index, text[start:end]
        start, index = end + 1, index + 1


def _fields(line: str, delimiter: str) -> list[str]:
    """The fields of one line; raises csv.Error when its quotes are unbalanced."""
    if '"' not in line:
        return line.split(delimiter)
    return next(csv.reader([line], delimiter=delimiter, strict=True), [])


def _is_blank(fields: list[str]) -> bool:
    return not any(value.strip() for value in fields)


def _is_footer(line: str) -> bool:
    """A summary line a tool added under the data (few cells, starting with a known word)."""
    cells = [cell for cell in re.split(r"[;,\t]", line.replace('"', "")) if cell.strip()]
    return 0 < len(cells) <= 2 and bool(_FOOTER.match(name_key(cells[0])))


# --- Header -----------------------------------------------------------------------------------


def _read_header(line: str, filename: str) -> tuple[PupilLayout | GuardianLayout, str]:
    """The layout of the header line and its delimiter; refuses anything else."""
    wrong_delimiter = None
    for delimiter in _DELIMITERS:
        try:
            header = _fields(line, delimiter)
        except csv.Error:
            raise messages.file_error("bad_header", filename=filename) from None
        layout = recognise(header)
        if layout is None:
            continue
        if delimiter == ";":
            return layout, delimiter
        wrong_delimiter = wrong_delimiter or delimiter
    if wrong_delimiter:
        raise messages.file_error(
            "wrong_separator", filename=filename, found=messages.separator_name(wrong_delimiter)
        )
    raise messages.file_error("not_onde", filename=filename)


def _check_columns(layout: PupilLayout | GuardianLayout, filename: str) -> None:
    missing = layout.missing
    if missing:
        kind = "pupils" if isinstance(layout, PupilLayout) else "guardians"
        raise messages.file_error(
            "missing_columns",
            filename=filename,
            category=messages.category_name(kind),
            columns=messages.quoted([COLUMN_TITLES[name] for name in missing]),
        )


# --- Public entry point -----------------------------------------------------------------------


def read_extraction(
    data: bytes,
    *,
    filename: str,
    today: date | None = None,
    limits: SizeLimits | None = SCHOOL_SIZE,
) -> PupilExtraction | GuardianExtraction:
    """Read an ONDE extraction, recognised by its header, into validated rows.

    Raises `RosterFileError` (one sentence naming the file) when the file cannot be imported
    at all; line-level problems are in the extraction's `issues`. A file above `limits` (None:
    no limit, for benchmarks) is refused once its header is read, before its rows are.
    """
    text, encoding = _decode(data, filename, limits)
    text, ends_with_break = _normalise_breaks(text)
    header_index, header = _find_header(text, filename)
    layout, delimiter = _read_header(header, filename)
    _check_columns(layout, filename)
    if limits is not None:
        _check_line_count(text, ends_with_break, header_index, layout, limits, filename)
    lines = _split_lines(text, ends_with_break)
    parsed = _data_lines(
        lines, header_index, delimiter, ends_with_break, _required_width(layout), filename
    )
    today = today or date.today()
    if isinstance(layout, PupilLayout):
        return _read_pupils(parsed, layout, filename, encoding, today)
    return _read_guardians(parsed, layout, filename, encoding)


def _find_header(text: str, filename: str) -> tuple[int, str]:
    """The index and text of the header: the first line that is not blank, or the one after
    the « sep=; » a spreadsheet may write above it."""
    lines = ((index, line) for index, line in _iter_lines(text) if line.strip())
    found = next(lines, None)
    if found is not None and _EXCEL_SEPARATOR_HINT.match(found[1]):
        found = next(lines, None)
    if found is None:
        raise messages.file_error("empty", filename=filename)
    return found


def _check_line_count(
    text: str,
    ends_with_break: bool,
    header_index: int,
    layout: PupilLayout | GuardianLayout,
    limits: SizeLimits,
    filename: str,
) -> None:
    """Refuse a file with more lines under its header than one school's extraction can have,
    counted on the text (no line is split into fields yet)."""
    kind = "pupils" if isinstance(layout, PupilLayout) else "guardians"
    lines = text.count("\n") + (0 if ends_with_break else 1) - header_index - 1
    if lines > limits.max_lines(kind):
        raise messages.file_error(
            f"too_many_{kind}",
            filename=filename,
            lines=format_number(lines),
            limit=format_number(limits.max_lines(kind)),
        )


@dataclass
class _ParsedLines:
    """The data lines of a file, split into fields, with the lines that could not be."""

    rows: list[tuple[int, list[str], bool]]  # (line number, fields, is the cut last line)
    issues: list[LineIssue]
    count: int


def _data_lines(
    lines: list[str],
    header_index: int,
    delimiter: str,
    ends_with_break: bool,
    min_fields: int,
    filename: str,
) -> _ParsedLines:
    # Footer lines are ignored only at the end of the file, under the last real row.
    end = len(lines)
    while end > header_index + 1 and (not lines[end - 1].strip() or _is_footer(lines[end - 1])):
        end -= 1
    last_index = end - 1
    # A file cut short ends without a line break, in the middle of its last row.
    cut = not ends_with_break and end == len(lines)
    rows: list[tuple[int, list[str], bool]] = []
    issues: list[LineIssue] = []
    for index in range(header_index + 1, end):
        line = lines[index]
        if not line.strip():
            continue
        number = index + 1
        is_cut = cut and index == last_index
        try:
            fields = _fields(line, delimiter)
        except csv.Error:
            if is_cut:
                # The file stops inside a quoted field: rows are missing, not just this one.
                raise messages.file_error("truncated", filename=filename, line=number) from None
            last = _record_end(lines, index, end, delimiter, min_fields)
            if last is not None:
                # Read line by line, the end of the record would make a row of its own.
                raise messages.file_error(
                    "line_break_in_cell", filename=filename, line=number, last_line=last + 1
                ) from None
            issues.append(messages.rejected("malformed_line", filename=filename, line=number))
            continue
        if _is_blank(fields):
            continue
        rows.append((number, fields, is_cut))
    count = len(rows) + len(issues)
    if count == 0:
        raise messages.file_error("no_rows", filename=filename)
    return _ParsedLines(rows, issues, count)


def _record_end(
    lines: list[str], index: int, end: int, delimiter: str, min_fields: int
) -> int | None:
    """The index of the last line of a record that starts on `lines[index]` and goes on below
    it because a quoted cell holds a line break; None when the lines below do not close it
    into a whole record (an unclosed quote, spoiling its own line only)."""
    record = lines[index]
    for last in range(index + 1, min(end, index + _MAX_RECORD_LINES)):
        record += "\n" + lines[last]
        try:
            fields = _fields(record, delimiter)
        except csv.Error:
            continue
        return last if len(fields) >= min_fields else None
    return None


def _required_width(layout: PupilLayout | GuardianLayout) -> int:
    """How many fields a row needs to reach the columns that name who it describes."""
    needed = ["last_name", "usage_name", "first_name"]
    if isinstance(layout, PupilLayout):
        needed += ["birth_date", "class_label"]
    return 1 + max(layout.columns[name] for name in needed if name in layout.columns)


def _cell(fields: list[str], index: int | None) -> str | None:
    if index is None or index >= len(fields):
        return None
    return clean(fields[index])


# --- Rows shared by both files ----------------------------------------------------------------


@dataclass(slots=True)
class _IssueLog:
    """Collects a file's per-line problems, in the order they are found."""

    filename: str
    issues: list[LineIssue]

    def reject(self, template: str, line: int, **params: object) -> None:
        self.issues.append(messages.rejected(template, filename=self.filename, line=line, **params))

    def warn(self, template: str, line: int, **params: object) -> None:
        self.issues.append(messages.warning(template, filename=self.filename, line=line, **params))


def _names(fields: list[str], columns: dict[str, int]) -> tuple[str | None, str | None, str | None]:
    """The row's (family name, usage name, first name): the family name falls back on the
    usage name, and a usage name equal to the family name is dropped."""
    last_name = _cell(fields, columns.get("last_name"))
    usage_name = _cell(fields, columns.get("usage_name"))
    first_name = _cell(fields, columns.get("first_name"))
    last_name = last_name or usage_name
    if usage_name and last_name and name_key(usage_name) == name_key(last_name):
        usage_name = None
    return last_name, usage_name, first_name


# --- Élèves -----------------------------------------------------------------------------------


def _read_pupils(
    parsed: _ParsedLines, layout: PupilLayout, filename: str, encoding: str, today: date
) -> PupilExtraction:
    columns = layout.columns
    extraction = PupilExtraction(
        filename=filename,
        encoding=encoding,
        columns=frozenset(columns),
        data_lines=parsed.count,
        issues=list(parsed.issues),
    )
    log = _IssueLog(filename, extraction.issues)
    required_width = _required_width(layout)
    # Some tools drop trailing empty cells on every row: a cut last row is one shorter than
    # the usual row, not than the header.
    widths = Counter(len(fields) for _, fields, is_cut in parsed.rows if not is_cut)
    usual_width = widths.most_common(1)[0][0] if widths else layout.width
    max_width = max(layout.width, usual_width)
    seen_ine: dict[str, int] = {}
    seen_identity: dict[tuple[tuple[str, str, date], str | None], int] = {}

    for line, fields, is_cut in parsed.rows:
        if is_cut and len(fields) < usual_width:
            # Importing the rest would archive every pupil listed after the cut.
            raise messages.file_error("truncated", filename=filename, line=line)
        if len(fields) < required_width:
            log.reject("incomplete_line", line, found=len(fields), expected=layout.width)
            continue
        if len(fields) > max_width:
            # An unquoted « ; » inside a field: every column after it is shifted.
            log.reject("extra_fields", line, found=len(fields), expected=layout.width)
            continue
        row = _pupil_row(fields, columns, line, today, log, extraction.rejected_pupils)
        if row is None:
            continue
        # The same pupil twice: same INE, or (without INE) same names, birth date and address.
        if row.ine is not None:
            first_line = seen_ine.setdefault(row.ine, line)
        else:
            first_line = seen_identity.setdefault((row.identity, row.address_key), line)
        if first_line != line:
            name = messages.person(row.first_name, row.usage_name or row.last_name)
            log.reject("duplicate_pupil", line, name=name, first_line=first_line)
            continue
        extraction.rows.append(row)
    return extraction


def _pupil_row(
    fields: list[str],
    columns: dict[str, int],
    line: int,
    today: date,
    log: _IssueLog,
    rejected: list[RejectedPupil],
) -> PupilRow | None:
    """The pupil of one line, or None when the line is rejected (noted in `log`, and in
    `rejected` with what it says about who the pupil is)."""
    last_name, usage_name, first_name = _names(fields, columns)
    ine = parse_ine(_cell(fields, columns.get("ine")))
    if not first_name or not last_name:
        log.reject("missing_pupil_name", line)
        rejected.append(RejectedPupil(line, ine, last_name, first_name))
        return None
    name = messages.person(first_name, usage_name or last_name)
    raw_birth_date = clean(fields[columns["birth_date"]])
    birth_date = parse_date(raw_birth_date)
    if birth_date is None or not (birth_date.year >= _OLDEST_BIRTH_YEAR and birth_date <= today):
        if raw_birth_date:
            log.reject("invalid_birth_date", line, value=raw_birth_date, name=name)
        else:
            log.reject("missing_birth_date", line, name=name)
        rejected.append(RejectedPupil(line, ine, last_name, first_name))
        return None
    class_label = _cell(fields, columns.get("class_label"))
    level = _pupil_level(fields, columns, class_label, line, name, log)
    if class_label is None:
        log.warn("missing_class", line, name=name)
    return PupilRow(
        line=line,
        last_name=last_name,
        usage_name=usage_name,
        first_name=first_name,
        birth_date=birth_date,
        sex=parse_sex(_cell(fields, columns.get("sex"))),
        ine=ine,
        address=_cell(fields, columns.get("address")),
        postcode=_cell(fields, columns.get("postcode")),
        city=_cell(fields, columns.get("city")),
        level=level,
        class_label=class_label,
        class_onde_id=_cell(fields, columns.get("class_onde_id")),
    )


def _pupil_level(
    fields: list[str],
    columns: dict[str, int],
    class_label: str | None,
    line: int,
    name: str,
    log: _IssueLog,
) -> str | None:
    """The pupil's level from « Niveau », else deduced from a single-level class label."""
    raw = _cell(fields, columns.get("level"))
    level = normalise_level(raw)
    if level is not None:
        return level
    label_levels = levels_in_label(class_label)
    derived = label_levels[0] if len(label_levels) == 1 else None
    if "level" not in columns:
        # Older files without the column: the class label is all there is, silently.
        return derived
    if derived is not None:
        template = "unknown_level_derived" if raw else "missing_level_derived"
        log.warn(template, line, value=raw, name=name, level=derived, class_label=class_label)
    else:
        template = "unknown_level_dropped" if raw else "missing_level_dropped"
        log.warn(template, line, value=raw, name=name)
    return derived


# --- Responsables -----------------------------------------------------------------------------


def _read_guardians(
    parsed: _ParsedLines, layout: GuardianLayout, filename: str, encoding: str
) -> GuardianExtraction:
    columns = layout.columns
    extraction = GuardianExtraction(
        filename=filename,
        encoding=encoding,
        columns=frozenset(columns),
        data_lines=parsed.count,
        issues=list(parsed.issues),
    )
    log = _IssueLog(filename, extraction.issues)
    name_width = _required_width(layout)
    first_group = layout.group_starts[0]

    for line, fields, is_cut in parsed.rows:
        # A cut last row stops inside a child group, or before the first one.
        if is_cut and (
            len(fields) <= first_group or (len(fields) - first_group) % layout.group_size != 0
        ):
            # Importing the rest would deactivate every guardian listed after the cut.
            raise messages.file_error("truncated", filename=filename, line=line)
        if len(fields) < name_width:
            log.reject("incomplete_line", line, found=len(fields), expected=layout.width)
            continue
        if (
            not layout.open_ended
            and len(fields) > layout.width
            and not _is_blank(fields[layout.width :])
        ):
            log.reject("extra_fields", line, found=len(fields), expected=layout.width)
            continue
        last_name, usage_name, first_name = _names(fields, columns)
        if not first_name or not last_name:
            log.reject("missing_guardian_name", line)
            continue
        name = messages.person(first_name, usage_name or last_name)
        children = _children(fields, layout, line, name, log)
        if not children:
            log.reject("missing_child", line, name=name)
            continue
        mobile = _cell(fields, columns.get("phone_mobile"))
        extraction.rows.append(
            GuardianRow(
                line=line,
                civility=parse_civility(_cell(fields, columns.get("civility"))),
                usage_name=usage_name,
                last_name=last_name,
                first_name=first_name,
                address=_cell(fields, columns.get("address")),
                postcode=_cell(fields, columns.get("postcode")),
                city=_cell(fields, columns.get("city")),
                country=_cell(fields, columns.get("country")),
                email=_email(_cell(fields, columns.get("email")), line, log),
                phone_home=_cell(fields, columns.get("phone_home")),
                phone_work=_cell(fields, columns.get("phone_work")),
                phone_mobile=mobile,
                mobile_e164=normalise_phone(mobile),
                children=tuple(children),
            )
        )
    return extraction


def _children(
    fields: list[str], layout: GuardianLayout, line: int, name: str, log: _IssueLog
) -> list[ChildRef]:
    """The children a guardian row names, one per child group; incomplete groups are noted
    in `log` and skipped."""
    offsets = layout.group_fields
    children: list[ChildRef] = []
    seen_children: set[tuple[str, str, str, str]] = set()
    for number, start in enumerate(layout.groups(len(fields)), start=1):
        child = {field: _cell(fields, start + offset) for field, offset in offsets.items()}
        if not any(child.values()):
            continue
        child_first = child.get("child_first_name")
        child_last = child.get("child_last_name")
        child_usage = child.get("child_usage_name")
        if not child_first or not (child_last or child_usage):
            log.warn("incomplete_child", line, group=number, name=name)
            continue
        # The same child listed twice on a row counts once; two siblings who share a first
        # name (in two classes) stay two children.
        child_class = child.get("child_class")
        key = (
            name_key(child_first),
            name_key(child_last),
            name_key(child_usage),
            class_label_key(child_class) if child_class else "",
        )
        if key in seen_children:
            continue
        seen_children.add(key)
        children.append(
            ChildRef(
                group=number,
                usage_name=child_usage,
                last_name=child_last,
                first_name=child_first,
                class_label=child_class,
            )
        )
    return children


def _email(raw_email: str | None, line: int, log: _IssueLog) -> str | None:
    """The normalised address, or None (with a warning when one was given but is invalid)."""
    if not raw_email:
        return None
    # Never « repair » an address: a guess could send credentials to a stranger.
    email = normalise_email(raw_email)
    if email is None:
        log.warn("invalid_email", line, email=raw_email)
    return email


__all__ = [
    "MAX_FILE_BYTES",
    "SCHOOL_SIZE",
    "ChildRef",
    "GuardianExtraction",
    "GuardianRow",
    "PupilExtraction",
    "PupilRow",
    "RejectedPupil",
    "SizeLimits",
    "read_extraction",
]
