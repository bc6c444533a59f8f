"""`python -m bot.sandbox.onde_generator FOLDER`: write the demo school's two ONDE files."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bot.sandbox.onde_generator.demo_school import demo_school


def main(argv: list[str] | None = None) -> int:
    """Write `eleves.csv` and `responsables.csv` of the demo school into the folder given."""
    parser = argparse.ArgumentParser(
        prog="python -m bot.sandbox.onde_generator",
        description="Write the demo school's ONDE extractions (eleves.csv, responsables.csv).",
    )
    parser.add_argument("folder", type=Path, help="folder to write into")
    options = parser.parse_args(argv)
    for path in demo_school().write(options.folder):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
