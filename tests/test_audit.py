"""The dependency audit of `make test` (.ci/audit): a known vulnerability fails the run; an
unreachable advisory database skips it, saying why."""

from __future__ import annotations

import importlib.util
from importlib.machinery import SourceFileLoader
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent


def _audit() -> ModuleType:
    loader = SourceFileLoader("ci_audit", str(ROOT / ".ci" / "audit"))
    spec = importlib.util.spec_from_loader("ci_audit", loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def test_a_known_vulnerability_fails_the_run() -> None:
    report = {
        "dependencies": [
            {
                "name": "starlette",
                "version": "0.40.0",
                "vulns": [{"id": "GHSA-7f5h-v6xp-fcq8", "fix_versions": ["0.49.1"]}],
            },
            {"name": "babel", "version": "2.17.0", "vulns": []},
        ]
    }
    code, lines = _audit().verdict(report)
    assert code == 1
    assert any("starlette 0.40.0: GHSA-7f5h-v6xp-fcq8 (fixed in 0.49.1)" in line for line in lines)


def test_an_unreachable_database_skips_with_the_reason() -> None:
    report = {"dependencies": [{"name": "babel", "skip_reason": "Dependency not found on PyPI"}]}
    code, lines = _audit().verdict(report)
    assert code == 0
    assert "skipped" in lines[-1] and "Dependency not found on PyPI" in lines[-1]


def test_a_clean_environment_passes_and_says_how_many_were_checked() -> None:
    report = {
        "dependencies": [
            {"name": "babel", "version": "2.17.0", "vulns": []},
            {"name": "x", "skip_reason": "not on PyPI"},
        ]
    }
    code, lines = _audit().verdict(report)
    assert code == 0
    assert lines == [
        "pip-audit: 1 packages checked, no known vulnerability (1 could not be checked)"
    ]
