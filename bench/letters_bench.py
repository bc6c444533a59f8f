"""Benchmark of the printable letters (issue « Credential distribution »): 1,000 letters with
their two QR codes, as one combined PDF and as 1,000 individual PDFs, beside — in the same
run — the naive way: one FPDF document per letter, fonts loaded each time.

Targets on the 2-core machine: combined ≥ 60 pages/s, individual ≥ 40 files/s (the naive way
makes about 7 files/s). In the same run, bilingual letters (issue 12): the same letters in
French alone, French + Arabic (shaped, right to left) and French + Portuguese, ≥ 40 pages/s
bilingual. Credentials are drawn before the clock starts: hashing passwords has
its own figure (docs/PRODUCT.md) and is not part of rendering.

    python -m bench.letters_bench [--letters 1000] [--naive 100] [--bilingual 300] [--quick]
                                  [--no-write]
"""

from __future__ import annotations

import argparse
import io
import random
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from typing import Any

from pypdf import PdfReader

from bench.results import Machine, peak_rss_mb, write_section
from bot.services.accounts import CredentialKind, generate_provisional_password
from bot.services.letters import (
    ChildLine,
    Letter,
    activation_url,
    bot_link_url,
    encrypt_pdf,
    render_letters,
    split_letters,
    zip_letters,
)

TARGET_COMBINED_PAGES_S = 60.0
TARGET_INDIVIDUAL_FILES_S = 40.0
TARGET_BILINGUAL_PAGES_S = 40.0
# The second language of each bilingual run (None: French alone).
BILINGUAL_RUNS = ((None, "French alone"), ("ar", "French + Arabic"), ("pt", "French + Portuguese"))
PORTAL = "https://educonnect.ac-lyon.fr"
BOT = "EcoleJeanJauresBot"
DOCUMENT_PASSWORD = "Cartable-Rentrée-2026"

# Names of the families the letters reach: French, Portuguese, Spanish, Turkish, Arabic.
_FIRST_NAMES = (
    "Céline",
    "Gülşen",
    "João",
    "Ñuño",
    "Françoise",
    "İbrahim",
    "Zoé",
    "Hélène",
    "Çağrı",
    "Maëlle",
    "Inès",
    "Conceição",
    "Yusuf",
    "Anaïs",
    "Sébastien",
    "Şule",
    "Aurélien",
    "Noé",
)
_SURNAMES = (
    "Dupont",
    "Yılmaz",
    "Gonçalves",
    "Peña",
    "Lefèvre",
    "Öztürk",
    "Conceição",
    "Benali",
    "Muñoz",
    "Şahin",
    "Le Bihan",
    "Da Silva",
    "Fontaine-Gérard",
    "Çelik",
    "Núñez",
    "Ağaoğlu",
)
_CLASSES = ("PS", "MS", "GS", "CP", "CE1", "CE2", "CE2-CM1", "CM1", "CM2")


def make_letters(count: int, *, seed: int = 2026) -> list[Letter]:
    """`count` first-distribution letters of one school, each with both QR codes."""
    rng = random.Random(seed)
    letter_day = date(2026, 11, 30)
    expires = datetime(2027, 2, 28, 22, 59, 59, tzinfo=UTC)
    letters = []
    for number in range(count):
        first, last = rng.choice(_FIRST_NAMES), rng.choice(_SURNAMES)
        identifier = f"{first[0].lower()}.{last.lower().replace(' ', '')}{number}"
        identifier = identifier.encode("ascii", "ignore").decode()
        code = "".join(
            rng.choices("ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789", k=24)
        )
        children = tuple(
            ChildLine(rng.choice(_FIRST_NAMES), last, rng.choice(_CLASSES))
            for _ in range(rng.choice((1, 1, 2, 2, 3)))
        )
        letters.append(
            Letter(
                account_id=number + 1,
                kind=CredentialKind.FIRST,
                civility=None,
                first_name=first,
                last_name=last,
                email=None,
                language=None,
                school_name="École élémentaire publique Jean-Jaurès",
                school_uai="0691234X",
                school_city="Villeurbanne",
                children=children,
                identifier=identifier,
                password=generate_provisional_password(),
                expires_at=expires,
                portal_url=PORTAL,
                activation_url=activation_url(PORTAL, identifier),
                bot_link_url=bot_link_url(BOT, code),
                family_link_code=code,
                letter_date=letter_day,
            )
        )
    return letters


@dataclass(frozen=True)
class Phase:
    name: str
    items: int
    seconds: float
    output_bytes: int
    note: str = ""

    @property
    def rate(self) -> float:
        return self.items / self.seconds if self.seconds else 0.0


def _timed(action: Callable[[], Any]) -> tuple[Any, float]:
    start = time.perf_counter()
    result = action()
    return result, time.perf_counter() - start


def run(letter_count: int, naive_count: int) -> dict[str, Any]:
    letters = make_letters(letter_count)
    # Warm-up: imports, font files in the page cache, Babel's French data.
    render_letters(letters[:2])
    phases: list[Phase] = []

    # The naive way: a document per letter, fonts parsed and subset each time.
    naive_sample = letters[:naive_count]
    naive, naive_seconds = _timed(lambda: [render_letters([letter]) for letter in naive_sample])
    phases.append(
        Phase(
            "naive: one FPDF document per letter",
            len(naive_sample),
            naive_seconds,
            sum(len(pdf) for pdf in naive),
        )
    )

    combined, combined_seconds = _timed(lambda: render_letters(letters))
    pages = len(PdfReader(io.BytesIO(combined)).pages)
    if pages != letter_count:
        raise RuntimeError(f"the combined PDF has {pages} pages for {letter_count} letters")
    phases.append(Phase("combined PDF", letter_count, combined_seconds, len(combined)))

    encrypted, encrypt_seconds = _timed(lambda: encrypt_pdf(combined, DOCUMENT_PASSWORD))
    phases.append(
        Phase(
            "combined PDF, AES-256 (what /pdf sends)",
            letter_count,
            combined_seconds + encrypt_seconds,
            len(encrypted),
            f"render {combined_seconds:.2f} s + encrypt {encrypt_seconds:.2f} s",
        )
    )

    files, split_seconds = _timed(lambda: split_letters(combined, letters))
    archive, zip_seconds = _timed(lambda: zip_letters(files))
    if len(files) != letter_count:
        raise RuntimeError(f"{len(files)} individual PDFs for {letter_count} letters")
    phases.append(
        Phase(
            "individual PDFs (render + split + ZIP)",
            letter_count,
            combined_seconds + split_seconds + zip_seconds,
            len(archive),
            f"render {combined_seconds:.2f} s + split {split_seconds:.2f} s "
            f"+ ZIP {zip_seconds:.2f} s",
        )
    )

    protected, protected_seconds = _timed(
        lambda: split_letters(combined, letters, password=DOCUMENT_PASSWORD)
    )
    protected_archive, protected_zip_seconds = _timed(lambda: zip_letters(protected))
    phases.append(
        Phase(
            "individual PDFs, each AES-256 (what /pdf sends)",
            letter_count,
            combined_seconds + protected_seconds + protected_zip_seconds,
            len(protected_archive),
            f"render {combined_seconds:.2f} s + split and encrypt {protected_seconds:.2f} s "
            f"+ ZIP {protected_zip_seconds:.2f} s",
        )
    )
    return {"letters": letter_count, "phases": phases, "peak_rss_mb": peak_rss_mb()}


def _markdown(result: dict[str, Any], machine: Machine) -> str:
    phases: list[Phase] = result["phases"]
    naive, combined, combined_protected, individual, individual_protected = phases
    combined_ok = combined.rate >= TARGET_COMBINED_PAGES_S
    individual_ok = min(individual.rate, individual_protected.rate) >= TARGET_INDIVIDUAL_FILES_S

    def mark(ok: bool) -> str:
        return "✅ met" if ok else "❌ missed"

    rows = [
        "| way | letters | time | rate | target | size | detail |",
        "|---|---|---|---|---|---|---|",
    ]
    targets = {
        combined.name: f"≥ {TARGET_COMBINED_PAGES_S:.0f} pages/s",
        combined_protected.name: f"≥ {TARGET_COMBINED_PAGES_S:.0f} pages/s",
        individual.name: f"≥ {TARGET_INDIVIDUAL_FILES_S:.0f} files/s",
        individual_protected.name: f"≥ {TARGET_INDIVIDUAL_FILES_S:.0f} files/s",
    }
    for phase in phases:
        unit = "pages/s" if phase.name.startswith("combined") else "files/s"
        target = targets.get(phase.name, "—")
        if phase.name in targets:
            met = phase.rate >= float(target.split()[1])
            target = f"{target} ({mark(met)})"
        rows.append(
            f"| {phase.name} | {phase.items:,} | {phase.seconds:.2f} s | "
            f"**{phase.rate:.0f} {unit}** | {target} | {phase.output_bytes / 1e6:.1f} MB | "
            f"{phase.note or '—'} |"
        )
    headline = (
        f"**Headline: {result['letters']:,} letters with two QR codes each — one combined PDF "
        f"at {combined.rate:.0f} pages/s ({mark(combined_ok)}), {result['letters']:,} individual "
        f"PDFs at {individual.rate:.0f} files/s ({individual_protected.rate:.0f} files/s each "
        f"encrypted; {mark(individual_ok)}), against {naive.rate:.1f} files/s the naive way "
        f"({individual.rate / naive.rate:.0f}× faster).**"
    )
    return "\n\n".join(
        [
            machine.markdown(),
            headline,
            "\n".join(rows),
            f"Naive baseline measured on the first {naive.items} letters (its rate does not "
            f"depend on the count). Peak RSS of the benchmark process: "
            f"{result['peak_rss_mb']:.0f} MB.",
        ]
    )


def run_bilingual(letter_count: int) -> list[Phase]:
    """The same letters rendered as one combined PDF in French alone, then bilingual."""
    letters = make_letters(letter_count)
    # Warm-up: each language's catalog and Babel data, the Arabic faces and HarfBuzz.
    render_letters([replace(letter, language="ar") for letter in letters[:2]])
    phases = []
    for language, name in BILINGUAL_RUNS:
        batch = [replace(letter, language=language) for letter in letters]
        pdf, elapsed = _timed(lambda batch=batch: render_letters(batch))
        pages = len(PdfReader(io.BytesIO(pdf)).pages)
        if pages != letter_count * (1 if language is None else 2):
            raise RuntimeError(f"{name}: {pages} pages for {letter_count} letters")
        phases.append(Phase(name, pages, elapsed, len(pdf), f"{letter_count:,} letters"))
    return phases


def _bilingual_markdown(phases: list[Phase], machine: Machine) -> str:
    rows = [
        "| letters in | pages | time | rate | target | size |",
        "|---|---|---|---|---|---|",
    ]
    for phase in phases:
        target = "—"
        if phase.name != BILINGUAL_RUNS[0][1]:
            met = phase.rate >= TARGET_BILINGUAL_PAGES_S
            verdict = "✅ met" if met else "❌ missed"
            target = f"≥ {TARGET_BILINGUAL_PAGES_S:.0f} pages/s ({verdict})"
        rows.append(
            f"| {phase.name} | {phase.items:,} | {phase.seconds:.2f} s | "
            f"**{phase.rate:.0f} pages/s** | {target} | {phase.output_bytes / 1e6:.1f} MB |"
        )
    return "\n\n".join([machine.markdown(), "\n".join(rows)])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.letters_bench", description=__doc__)
    parser.add_argument("--letters", type=int, default=1000)
    parser.add_argument("--naive", type=int, default=100, help="letters rendered the naive way")
    parser.add_argument("--bilingual", type=int, default=300, help="letters per bilingual run")
    parser.add_argument("--quick", action="store_true", help="tiny sizes; never writes")
    parser.add_argument("--no-write", action="store_true", help="leave bench/RESULTS.md alone")
    options, _rest = parser.parse_known_args(argv)
    letter_count, naive_count = (40, 10) if options.quick else (options.letters, options.naive)
    machine = Machine.here()
    result = run(letter_count, min(naive_count, letter_count))
    markdown = _markdown(result, machine)
    print(markdown)
    bilingual_phases = run_bilingual(20 if options.quick else options.bilingual)
    bilingual = _bilingual_markdown(bilingual_phases, machine)
    print(f"\n{bilingual}")
    if not (options.quick or options.no_write):
        write_section("letters", markdown)
        write_section("letters_bilingual", bilingual)
        print("\nbench/RESULTS.md: letters and bilingual letters sections updated")
    return 0


if __name__ == "__main__":
    sys.exit(main())
