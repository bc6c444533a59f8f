"""The repository is self-contained: nothing tracked reads, links or cites a file outside it (a
clone has nothing beside it). The product's reference is docs/PRODUCT.md; the test data and the
demo school are generated inside the tree."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# Built from pieces, so that this file does not name them itself.
OUTSIDE = tuple(
    "".join(parts)
    for parts in (
        ("..", "/shared"),
        ("shared", "/samples"),
        ("/wo", "rk/"),
        ("SP", "EC §"),
        ("NOT", "ES.md"),
    )
)


def _tracked_files() -> list[Path]:
    try:
        listed = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=ROOT,
            capture_output=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError) as error:
        pytest.skip(f"not a git checkout ({error})")
    return [ROOT / name for name in listed.decode().split("\0") if name]


def test_no_tracked_file_points_outside_the_repository() -> None:
    found = []
    for path in _tracked_files():
        if not path.is_file():
            continue  # deleted in the working tree, not yet in the index
        data = path.read_bytes()
        if b"\0" in data:
            continue  # a binary file (a font, an image)
        for needle in OUTSIDE:
            if needle.encode() in data:
                line = data[: data.index(needle.encode())].count(b"\n") + 1
                found.append(f"{path.relative_to(ROOT)}:{line}: {needle}")
    assert not found, "files pointing outside the repository:\n" + "\n".join(found)
