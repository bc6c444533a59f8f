"""Hypothesis strategies of the fuzzers: ONDE-like files, what users type after a command, and
forged button data."""

from __future__ import annotations

from hypothesis import strategies as st

from tests.conftest import SAMPLES

# Telegram's limits: a message holds at most 4,096 characters, button data at most 64 bytes.
MAX_MESSAGE = 4096
MAX_BUTTON_DATA = 64


# --- ONDE files -------------------------------------------------------------------------------


def _sample(name: str) -> list[list[str]]:
    text = (SAMPLES / name).read_bytes().decode("cp1252")
    return [line.split(";") for line in text.splitlines() if line]


PUPILS = _sample("eleves.csv")
GUARDIANS = _sample("responsables.csv")


# What breaks CSV readers and decoders: separators, quotes, line breaks, BOMs, bidirectional
# marks, characters no single-byte encoding has; and, more rarely, NUL and other controls.
_NASTY = ";,\t\"'\r\n\ufeff\u200f\u202e\u00a0é€œ😀𝒜ـ"
_DATES = (
    "07/01/2018",
    "2018-01-07",
    "2018-01-07 00:00",
    "31/02/2019",
    "00/00/0000",
    "1/1/1899",
    "29/02/2020",
    "29/02/2021",
    "01/01/2999",
    "99999999999999999999/1/2000",
    "2018-13-01",
    "7.1.2018",
    "٠٧/٠١/٢٠١٨",
    "",
    " ",
)

_cells = st.one_of(
    st.text(alphabet=st.characters(exclude_categories=("Cs", "Cc")), max_size=12),
    st.text(alphabet=_NASTY, max_size=6),
    st.text(alphabet=st.characters(codec="latin-1"), max_size=20),
    st.sampled_from(_DATES),
    st.sampled_from(["CE1", "CM2", "GS", "CE2-CM1", "PS/MS", "M", "F", "MME", "x@y", "a@b.fr"]),
    st.sampled_from(["06 12 34 56 78", "+33612345678", "0033 6 12", "٠٦١٢٣٤٥٦٧٨", "+" + "9" * 40]),
    st.integers(min_value=200, max_value=3000).map(lambda n: "é" * n),
)
_rare_cells = st.one_of(_cells, st.text(max_size=4))  # with controls (NUL, ESC…)


@st.composite
def _mutated_rows(draw: st.DrawFn, sample: list[list[str]]) -> list[list[str]]:
    """The sample's header and a few of its rows (duplicates included), with cells replaced,
    rows cut short or lengthened, and lines of random cells."""
    header = list(sample[0])
    if draw(st.integers(0, 5)) == 0:
        # A header with columns missing, shuffled or renamed.
        header = draw(st.permutations(header))[: draw(st.integers(1, len(header)))]
        if draw(st.booleans()):
            header[draw(st.integers(0, len(header) - 1))] = draw(_cells)
    indexes = st.integers(1, len(sample) - 1)
    rows = [list(sample[i]) for i in draw(st.lists(indexes, min_size=1, max_size=8))]
    cells = _rare_cells if draw(st.integers(0, 9)) == 0 else _cells
    for row in rows:
        for _ in range(draw(st.integers(0, 3))):
            if row:
                row[draw(st.integers(0, len(row) - 1))] = draw(cells)
        change = draw(st.integers(0, 6))
        if change == 0:
            del row[draw(st.integers(0, len(row))) :]
        elif change == 1:
            row.extend(draw(st.lists(_cells, max_size=6)))
    rows += draw(st.lists(st.lists(_cells, max_size=30), max_size=2))
    return [header, *draw(st.permutations(rows))]


_separators = st.sampled_from([";", ",", "\t"])
_breaks = st.sampled_from(["\r\n", "\n", "\r", "\r\r\n"])
_encodings = st.sampled_from(["cp1252", "utf-8", "utf-8-sig", "latin-1", "utf-16", "utf-16-le"])


@st.composite
def onde_files(draw: st.DrawFn) -> bytes:
    """An ONDE-like extraction: sample rows with mutated cells; one file in three is also
    written with random conventions (separator, encoding, breaks) and damaged byte by byte."""
    rows = draw(_mutated_rows(draw(st.sampled_from([PUPILS, GUARDIANS]))))
    damaged = draw(st.integers(0, 2)) == 0
    separator = draw(_separators) if damaged else ";"
    line_break = draw(_breaks)
    lines = [separator.join(row) for row in rows]
    if draw(st.integers(0, 6)) == 0:
        lines.insert(0, "sep=" + separator)
    if draw(st.integers(0, 6)) == 0:
        lines.append(draw(st.sampled_from(["Nombre d'élèves : 3", "Total;9", "", "fin"])))
    text = line_break.join(lines) + (line_break if draw(st.booleans()) else "")
    encoding = draw(_encodings) if damaged else draw(st.sampled_from(["cp1252", "utf-8"]))
    data = text.encode(encoding, errors="replace")
    if not damaged:
        return data
    for _ in range(draw(st.integers(0, 2))):
        position = draw(st.integers(0, len(data)))
        junk = draw(st.binary(min_size=1, max_size=4))
        data = data[:position] + junk + data[position + draw(st.integers(0, 2)) :]
    if draw(st.booleans()):
        data = data[: draw(st.integers(0, len(data)))]  # cut short
    return data


any_bytes = st.one_of(
    st.binary(max_size=300),
    st.binary(max_size=40).map(lambda tail: b"\xef\xbb\xbf" + tail),
    st.binary(max_size=40).map(lambda tail: b"\xff\xfe" + tail),
    st.binary(max_size=40).map(lambda tail: b"%PDF" + tail),
    st.binary(max_size=40).map(lambda tail: b"PK\x03\x04" + tail),
)


# --- What users type --------------------------------------------------------------------------

_MONTHS = [
    "janvier", "février", "fevrier", "mars", "avril", "mai", "juin", "juillet", "août", "aout",
    "septembre", "octobre", "novembre", "décembre", "janv.", "févr.", "sept", "oct.", "déc",
    "January", "Feb", "1er", "le", "lundi", "8h", "CE1", "CM2", "ecole", "niveau", "sans",
    "avec", "e-mail", "non", "notifié", "activés", "🟢", "🔴",
]  # fmt: skip
# Bidirectional marks, odd spaces, combining marks, digits of other scripts, emojis (with joiners).
_ODD = (
    "\u200f\u200e\u202e\u2066\u00a0\u3000\ufeff\u0301\u0640"
    "٠١٢٣٤٥٦٧٨٩０１２３²³¹/-.:,'’😀👨\u200d👩\u200d👧🇫🇷"
)

_word = st.one_of(
    st.sampled_from(_MONTHS),
    st.integers(min_value=-5, max_value=10**25).map(str),
    st.text(alphabet=st.characters(codec="utf-8"), min_size=1, max_size=8),
    st.text(alphabet=_ODD + "0123456789", min_size=1, max_size=6),
)
_separator = st.sampled_from([" ", "  ", "/", "-", ".", "\t", "\n", " / ", "\u00a0"])


@st.composite
def typed(draw: st.DrawFn) -> str:
    """Text as a user types it after a command: words and numbers of every script, dates,
    month names, emojis, bidirectional marks, odd spaces; sometimes very long."""
    parts = draw(st.lists(_word, max_size=6))
    text = "".join(part + draw(_separator) for part in parts)
    if draw(st.integers(0, 24)) == 0:
        text += draw(st.sampled_from(["x", "9", "é ", "😀"])) * draw(st.integers(300, 4090))
    return text


typed_text = st.one_of(typed(), st.text(max_size=40))


# --- Forged button data -----------------------------------------------------------------------

# Every prefix the bot's buttons carry, with the start of their shapes: forged data then reaches
# each decoder, not only the absence of a handler.
_PREFIXES = (
    "ien:p", "ien:", "imp:", "imp:go", "resp:s:", "resp:p:", "resp:f:", "tel:", "ecole:",
    "lsu:m:", "lsu:d:", "lsu:months", "dg:", "dg:weekday:", "dg:at:", "dg:after:",
    "dg:reminders:", "lang:", "ga:card:", "ga:mail:", "ga:pdf:", "ga:link:", "ga:email:",
    "ga:lang:", "ga:unlock:", "gl:", "etat:", "etat:c", "etat:l", "fh:go:", "fh:pw:",
    "fh:cl:", "fh:file:", "fh:active:", "fr:school:", "fr:skip", "hd:open:", "hd:rep:",
    "hd:end:", "hd:who:", "hd:pg:", "fa:", "env:s:", "env:go:", "env:no:", "rel:s:",
    "rel:remind:", "rel:reset:", "rel:no:", "pdf:s:a:", "pdf:s:d:", "pdf:go:", "pdf:no:",
    "pdf:zip", "pdf:ret:", "pdf:pw:", "", "x",
)  # fmt: skip
_tails = st.one_of(
    st.integers(min_value=-1, max_value=10**30).map(str),
    st.from_regex(r"\A[0-9]{1,25}(:[0-9a-z]{0,20}){0,2}\Z"),
    st.from_regex(r"\A[a-z]{0,3}[0-9]{0,4}(-[0-9]{1,3}){0,2}\Z"),
    st.text(alphabet="0123456789٣²:-_ace", max_size=12),
    st.text(max_size=20),
)


def _fits(data: str) -> bool:
    return len(data.encode()) <= MAX_BUTTON_DATA


forged_button_data = st.builds(
    lambda prefix, tail: prefix + tail, st.sampled_from(_PREFIXES), _tails
).filter(_fits)
