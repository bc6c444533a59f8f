"""The operator's command line through its console entry point: French text, JSON on request,
and one clear line on stderr for every mistake. Most commands run in this process (`Cli`), the
console script itself as a separate process, as the operator runs it."""

from __future__ import annotations

import io
import json
import os
import re
import stat
import subprocess
import sys
from contextlib import redirect_stderr, redirect_stdout
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bot import cli as cli_module
from bot.config import get_settings
from bot.i18n import use_language

UAI = "0751234X"
SAMPLE_PUPILS = Path(__file__).parent / "data" / "onde" / "eleves.csv"
CONSOLE_SCRIPT = Path(sys.executable).parent / "educonnect-bot"


class Cli:
    """Runs the command line against its own data folder. By default in this process, through
    the console script's own entry point (`bot.cli.run`: same parsing, errors and French text),
    which takes milliseconds where a new interpreter takes seconds; `separate=True` (or a
    `program`) runs `python -m bot …` as a fresh process, as the operator does."""

    def __init__(self, workdir: Path, *, separate: bool = False, **env: str) -> None:
        self.workdir = workdir
        self.data_dir = workdir / "data"
        self.separate = separate
        self.env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
        self.env.update(DATA_DIR=str(self.data_dir), **env)

    def run(
        self, *args: str | Path, program: list[str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        if not self.separate and program is None:
            return self._run_here([str(arg) for arg in args])
        command = [*(program or [sys.executable, "-m", "bot"]), *map(str, args)]
        # The working folder holds no .env: only the environment above configures the process.
        return subprocess.run(
            command,
            cwd=self.workdir,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    def _run_here(self, args: list[str]) -> subprocess.CompletedProcess[str]:
        out, err = io.StringIO(), io.StringIO()
        saved_env, saved_cwd = dict(os.environ), os.getcwd()
        os.environ.clear()
        os.environ.update(self.env)
        os.chdir(self.workdir)  # no .env here
        get_settings.cache_clear()
        try:
            with redirect_stdout(out), redirect_stderr(err), use_language("fr"):
                code = cli_module.run(args)
        finally:
            os.chdir(saved_cwd)
            os.environ.clear()
            os.environ.update(saved_env)
            get_settings.cache_clear()
        return subprocess.CompletedProcess(
            ["educonnect-bot", *args], code, out.getvalue(), err.getvalue()
        )

    def ok(self, *args: str | Path) -> str:
        result = self.run(*args)
        assert result.returncode == 0, result.stderr
        assert result.stderr == ""
        return result.stdout

    def json(self, *args: str | Path) -> Any:
        return json.loads(self.ok(*args, "--json"))


@pytest.fixture
def cli(tmp_path: Path, database_url: str) -> Cli:
    """The command line on SQLite (its default file in DATA_DIR, which it creates), then on
    the test's PostgreSQL database."""
    if database_url.startswith("sqlite"):
        return Cli(tmp_path)
    return Cli(tmp_path, DATABASE_URL=database_url)


def test_the_walkthrough_from_a_new_school_to_its_statistics(cli: Cli, samples_dir: Path) -> None:
    eleves, responsables = samples_dir / "eleves.csv", samples_dir / "responsables.csv"

    added = cli.ok("school", "add", "0751234x", "École Jules Ferry", "--city", "Paris")
    assert "École ajoutée : 0751234X — École Jules Ferry (Paris)" in added
    # The data folder is private, and so is the SQLite file in it.
    assert stat.S_IMODE(cli.data_dir.stat().st_mode) == 0o700
    if "DATABASE_URL" not in cli.env:
        assert stat.S_IMODE((cli.data_dir / "educonnect.db").stat().st_mode) == 0o600

    preview = cli.ok("import", UAI, eleves, responsables, "--dry-run")
    assert "Simulation : rien n'a été modifié." in preview
    assert "Élèves" in preview and "Responsables" in preview and "Comptes créés" in preview
    assert "adresse e-mail" in preview  # the warnings, line by line
    assert cli.json("stats", UAI)["total"]["pupils"] == 0

    imported = cli.ok("import", UAI, eleves, responsables)
    assert "Import enregistré." in imported
    assert "Simulation" not in imported

    stats = cli.ok("stats", UAI)
    assert "École Jules Ferry (0751234X)" in stats
    assert "Par classe" in stats and "Par niveau" in stats
    assert "CE2-CM1" in stats and "CM2" in stats
    for light in "🔴🟠🟡🟢":
        assert light in stats
    assert "% élèves couverts" in stats

    invitation = cli.ok("director", "invite", UAI)
    code_line = next(line for line in invitation.splitlines() if line.startswith("/start "))
    assert len(code_line.split()) == 2
    assert "Valable une seule fois, jusqu'au" in invitation

    listed = cli.ok("school", "list")
    assert UAI in listed and "École Jules Ferry" in listed


def test_every_command_can_answer_in_json(cli: Cli, samples_dir: Path) -> None:
    eleves, responsables = samples_dir / "eleves.csv", samples_dir / "responsables.csv"

    assert cli.json("db", "upgrade")["revision"]
    assert cli.json("school", "add", UAI, "École Jules Ferry")["uai"] == UAI
    assert [school["uai"] for school in cli.json("school", "list")] == [UAI]

    preview = cli.json("import", UAI, eleves, responsables, "--dry-run")
    assert preview["dry_run"] is True and preview["pupils"]["added"] > 0
    report = cli.json("import", UAI, eleves, responsables)
    assert report["dry_run"] is False
    assert report["school"] == {"uai": UAI, "name": "École Jules Ferry"}
    assert report["accounts_created"] == report["guardians"]["added"] > 0
    assert {"file", "line", "message"} <= set(report["warnings"][0])
    again = cli.json("import", UAI, eleves, responsables)
    assert again["accounts_created"] == 0 and again["pupils"]["added"] == 0

    stats = cli.json("stats", UAI)
    assert stats["total"]["accounts"] == report["guardians"]["added"]
    assert stats["total"]["pupils"] == report["pupils"]["added"]
    assert stats["classes"] and stats["levels"]
    assert "activated_accounts_percent" in stats["classes"][0]

    invitation = cli.json("director", "invite", UAI, "--days", "3")
    assert set(invitation) >= {"code", "expires_at"}
    assert invitation["start_command"] == f"/start {invitation['code']}"
    assert invitation["school"]["uai"] == UAI
    expires_at = datetime.fromisoformat(invitation["expires_at"])
    assert expires_at - datetime.now(UTC) == pytest.approx(
        timedelta(days=3), abs=timedelta(minutes=5)
    )


@pytest.mark.skipif(not CONSOLE_SCRIPT.exists(), reason="the package is not installed")
def test_the_console_script_runs_the_same_commands(tmp_path: Path) -> None:
    # The entry point, not the database: SQLite only (each run is a new interpreter).
    cli = Cli(tmp_path)
    added = cli.run("school", "add", UAI, "École Jules Ferry", program=[str(CONSOLE_SCRIPT)])
    assert added.returncode == 0, added.stderr
    assert "École ajoutée" in added.stdout
    listed = cli.run("school", "list", "--json", program=[str(CONSOLE_SCRIPT)])
    assert json.loads(listed.stdout)[0]["uai"] == UAI
    refused = cli.run("stats", "0691234A", program=[str(CONSOLE_SCRIPT)])
    assert refused.returncode == 1 and refused.stderr.count("\n") == 1


# --- every mistake: one line on stderr, a non-zero exit, no traceback ----------------------


@pytest.fixture(scope="module")
def school_cli(tmp_path_factory: pytest.TempPathFactory) -> Cli:
    """A data folder with one registered school and a few bad files beside it."""
    workdir = tmp_path_factory.mktemp("cli")
    cli = Cli(workdir)
    cli.ok("school", "add", UAI, "École Jules Ferry")
    (workdir / "empty.csv").write_bytes(b"")
    (workdir / "binary.csv").write_bytes(bytes(range(256)) * 20)
    (workdir / "photo.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + b"\x00" * 64)
    (workdir / "other.csv").write_bytes(b"Produit;Prix;Stock\r\nCrayon;1,20;40\r\n")
    header, *rows = [line for line in SAMPLE_PUPILS.read_bytes().split(b"\r\n") if line]
    crowded = [header, *(rows[i % len(rows)] for i in range(6_000))]
    (workdir / "crowded.csv").write_bytes(b"\r\n".join(crowded) + b"\r\n")
    # The third line's family name holds a line break: the record goes on to line 4.
    name = rows[1].split(b";")[0]
    broken = [
        header,
        rows[0],
        rows[1].replace(name, b'"' + name[:2] + b"\r\n" + name[2:] + b'"', 1),
    ]
    (workdir / "broken-cell.csv").write_bytes(b"\r\n".join([*broken, *rows[2:]]) + b"\r\n")
    with (workdir / "huge.csv").open("wb") as huge:
        huge.truncate(21 * 1024 * 1024)  # sparse: no need to write 21 MB
    locked = workdir / "locked.csv"
    locked.write_bytes(b"Nom;Prenom\r\n")
    locked.chmod(0)
    return cli


def _unreadable(workdir: Path) -> str:
    # root reads any file whatever its mode: use one the kernel refuses to read instead.
    return "/proc/self/mem" if os.geteuid() == 0 else str(workdir / "locked.csv")


BAD_INPUTS: dict[str, list[str]] = {
    "unknown UAI": ["stats", "0691234A"],
    "unknown UAI for an import": ["import", "0691234A", "{samples}/eleves.csv"],
    "invalid UAI": ["school", "add", "75-1234", "École"],
    "invalid UAI for an invitation": ["director", "invite", "ABCDEFGH"],
    "duplicate school": ["school", "add", "0751234x", "Une autre école"],
    "missing file": ["import", UAI, "{workdir}/absent.csv"],
    "a folder instead of a file": ["import", UAI, "{workdir}"],
    "unreadable file": ["import", UAI, "{unreadable}"],
    "wrong kind of file": ["import", UAI, "{workdir}/other.csv"],
    "empty file": ["import", UAI, "{workdir}/empty.csv"],
    "binary file": ["import", UAI, "{workdir}/binary.csv"],
    "image file": ["import", UAI, "{workdir}/photo.png"],
    "file over 20 MB": ["import", UAI, "{workdir}/huge.csv"],
    "far more lines than a school": ["import", UAI, "{workdir}/crowded.csv"],
    "line break inside a cell": ["import", UAI, "{workdir}/broken-cell.csv"],
    "three files": ["import", UAI, *["{samples}/eleves.csv"] * 3],
    "missing argument": ["school", "add", UAI],
    "unknown option": ["stats", UAI, "--verbose"],
    "invitation valid for no time": ["director", "invite", UAI, "--days", "0"],
}


@pytest.mark.parametrize("args", BAD_INPUTS.values(), ids=BAD_INPUTS.keys())
def test_a_bad_input_is_one_clear_line_and_a_failure(
    school_cli: Cli, samples_dir: Path, args: list[str]
) -> None:
    values = {
        "workdir": str(school_cli.workdir),
        "samples": str(samples_dir),
        "unreadable": _unreadable(school_cli.workdir),
    }
    result = school_cli.run(*(arg.format(**values) for arg in args))

    assert result.returncode != 0
    assert "Traceback" not in result.stderr + result.stdout
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Erreur : ") and len(lines[0]) > len("Erreur : ") + 10


def test_a_refused_file_changes_nothing(school_cli: Cli) -> None:
    result = school_cli.run("import", UAI, school_cli.workdir / "other.csv", "--json")
    assert result.returncode == 1
    answer = json.loads(result.stdout)
    assert "n'est pas une extraction ONDE" in answer["error"]
    assert answer["rejected"] == []
    assert school_cli.json("stats", UAI)["total"]["pupils"] == 0


def test_a_hostile_roster_is_refused_with_what_to_do_and_imports_nothing(
    school_cli: Cli, samples_dir: Path
) -> None:
    workdir, guardians = school_cli.workdir, samples_dir / "responsables.csv"
    crowded = school_cli.run("import", UAI, workdir / "crowded.csv", guardians, "--json")
    broken = school_cli.run("import", UAI, workdir / "broken-cell.csv", guardians, "--json")
    assert crowded.returncode == broken.returncode == 1
    too_many = json.loads(crowded.stdout)["error"]
    assert "« crowded.csv »" in too_many and "6" in too_many and "5" in too_many
    line_break = json.loads(broken.stdout)["error"]
    assert "« broken-cell.csv »" in line_break
    assert re.search(r"\b3\b", line_break) and re.search(r"\b4\b", line_break)
    assert school_cli.json("stats", UAI)["total"]["pupils"] == 0


def test_with_json_an_error_is_json_on_stdout_too(school_cli: Cli) -> None:
    result = school_cli.run("director", "invite", "0691234A", "--json")
    assert result.returncode == 1
    assert len(result.stderr.splitlines()) == 1
    assert "0691234A" in json.loads(result.stdout)["error"]


def test_an_unreachable_database_is_one_line(tmp_path: Path) -> None:
    cli = Cli(tmp_path, DATABASE_URL="postgresql+psycopg://nobody@127.0.0.1:1/educonnect")
    result = cli.run("school", "list")
    assert result.returncode == 1
    assert result.stderr.splitlines() == [result.stderr.strip()]
    assert "la base de données est inaccessible" in result.stderr


def test_a_malformed_database_url_is_one_line(tmp_path: Path) -> None:
    result = Cli(tmp_path, DATABASE_URL="nosuchdialect://somewhere/db").run("school", "list")
    assert result.returncode == 1
    assert result.stderr.startswith("Erreur : DATABASE_URL n'est pas une adresse")
    assert len(result.stderr.splitlines()) == 1


def test_an_unexpected_error_is_logged_in_the_data_folder_not_shown(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from bot import cli
    from bot.cli import schools as school_commands
    from bot.config import get_settings

    def broken(*_: Any, **__: Any) -> None:
        raise RuntimeError("a bug, with a secret detail")

    monkeypatch.setenv("DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(school_commands, "list_schools", broken)
    get_settings.cache_clear()
    try:
        code = cli.run(["school", "list"])
    finally:
        get_settings.cache_clear()

    out, err = capsys.readouterr()
    assert code == 1 and out == ""
    assert err.splitlines() == [err.strip()]
    assert "erreur inattendue (RuntimeError)" in err and "secret" not in err
    log = tmp_path / "data" / "educonnect-cli.log"
    assert str(log) in err
    logged = log.read_text(encoding="utf-8")
    assert "Traceback" in logged and "a bug, with a secret detail" in logged
    assert stat.S_IMODE(log.stat().st_mode) == 0o600
