"""What starting a process costs: the command line and the bot start without the slow packages
only some of their work needs (tests/test_layout.py's LAZY_IMPORTS), and that work still runs
in a fresh process."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from tests.test_layout import LAZY_IMPORTS


def _run(script: str) -> bytes:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)], check=True, capture_output=True
    ).stdout


def test_the_command_line_and_the_bot_start_without_the_slow_packages() -> None:
    loaded = _run(
        f"""
        import sys
        import bot.app, bot.cli, bot.runner
        print(*sorted(name for name in {sorted(LAZY_IMPORTS)!r} if name in sys.modules))
        """
    )
    assert loaded.split() == []


def test_a_chart_draws_in_a_fresh_process() -> None:
    head = _run(
        """
        import sys
        from bot.services.digests.chart import ChartData, ChartSeries, render_bars
        from models import AccountState
        series = (ChartSeries(AccountState.ACTIVATED, "#1e8e3e", (3,)),)
        data = ChartData(labels=("CM1",), series=series, activated_percent=(100.0,))
        sys.stdout.buffer.write(render_bars(data, title="CM1")[:8])
        """
    )
    assert head == b"\x89PNG\r\n\x1a\n"


def test_the_entry_point_freezes_what_start_up_made_and_collects_again_after() -> None:
    # The command line's entry point pauses the garbage collector while it imports: it must be
    # running again once the command starts, or a long-running bot would never free a cycle.
    enabled, frozen, collected = _run(
        """
        import gc
        import bot.__main__
        cycle = []
        cycle.append(cycle)
        del cycle
        print(gc.isenabled(), gc.get_freeze_count(), gc.collect())
        """
    ).split()
    assert enabled == b"True"
    assert int(frozen) > 50_000, "the start-up objects were not frozen"
    assert int(collected) >= 1, "a cycle made after the start was not collected"


def test_letters_are_drawn_cut_and_protected_in_a_fresh_process() -> None:
    # The letter is spelled out rather than taken from tests/services/test_letters.py, whose
    # imports (pypdf, Pillow) would load what this test checks is loaded on demand.
    out = _run(
        """
        import io, sys, zipfile
        from datetime import date
        from bot.services.accounts import CredentialKind
        from bot.services.letters import (
            ChildLine, Letter, encrypt_pdf, individual_documents_zip, render_letters,
            split_letters,
        )
        print("fpdf" in sys.modules, "pypdf" in sys.modules)
        letter = Letter(
            account_id=1, kind=CredentialKind.FIRST, civility="Mme", first_name="Céline",
            last_name="Dupont", email=None, language="ar", school_name="École Jean-Jaurès",
            school_uai="0751234A", school_city="Lyon",
            children=(ChildLine("Léa", "Dupont", "CM1"),),
            identifier="celine.dupont1", password="BUNZ57DM", expires_at=None,
            portal_url="https://educonnect.example", activation_url="https://educonnect.example/a",
            bot_link_url=None, family_link_code="Lk0001x9QmZ2rT7vW4yB8nC3",
            letter_date=date(2026, 11, 30),
        )
        pdf = render_letters([letter])
        files = split_letters(pdf, [letter], password="document")
        protected = encrypt_pdf(pdf, "document")
        archive = individual_documents_zip(
            pdf=protected, document_password="document", filenames=["a.pdf"]
        )
        print(pdf[:5].decode(), len(files), zipfile.ZipFile(io.BytesIO(archive)).namelist())
        """
    ).decode()
    assert out.splitlines() == ["False False", "%PDF- 1 ['a.pdf']"]
