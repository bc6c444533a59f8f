"""`python -m bench [import|bot|letters|mail|portal|portal-processes|phone|helpdesk|digests|
district-load|startup|generate] …`: all or one.

python -m bench [--quick] [--no-write]   # every benchmark, refreshing bench/RESULTS.md
python -m bench import --help            # the ONDE import (issue « Foundation »)
python -m bench bot --help               # the bot under load (issue « The bot »)
python -m bench letters --help           # PDF letters (issue « Credential distribution »)
python -m bench mail --help              # e-mails through the outbox (same issue)
python -m bench portal --help            # logins and activations (issue « Activation portal »)
python -m bench portal-processes --help  # logins/s with 1, 2 and 4 portal processes (issue 14)
python -m bench phone --help             # a guardian found by phone number (issue « Families »)
python -m bench helpdesk --help          # help requests under load (same issue)
python -m bench digests --help           # digests of 500 schools, charts, a broadcast (issue 11)
python -m bench district-load --help     # 500 families, 50 directors, /envoyer (issue 14);
                                         #   --minutes 15 for the memory trend
python -m bench startup --help           # what a process start costs, before and now (issue 14)
python -m bench generate --out DIR [--schools 80 --pupils 250 --seed 2026]
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path


def _generate(argv: list[str]) -> int:
    from bench.district import generate_district

    parser = argparse.ArgumentParser(
        prog="python -m bench generate",
        description="Write synthetic ONDE extractions (eleves.csv, responsables.csv) per school.",
    )
    parser.add_argument("--out", type=Path, required=True, help="folder to write into")
    parser.add_argument("--schools", type=int, default=80)
    parser.add_argument("--pupils", type=int, default=250, help="pupils per school")
    parser.add_argument("--seed", default="2026")
    options = parser.parse_args(argv)
    schools = generate_district(
        seed=options.seed, schools=options.schools, pupils_per_school=options.pupils
    )
    for number, school in enumerate(schools):
        pupils, _ = school.write(options.out / f"{number:03d}-{school.uai}")
        print(
            f"{school.uai}  {school.pupils:>6} pupils  {school.guardians:>6} guardians  "
            f"{pupils.parent}"
        )
    return 0


# Each command's module, in the order `all` runs them; imported only when run (each benchmark
# loads what it measures).
BENCHMARKS = {
    "import": "import_bench",
    "bot": "bot_load",
    "letters": "letters_bench",
    "mail": "mail_bench",
    "portal": "portal_bench",
    "portal-processes": "portal_processes",
    "phone": "phone_bench",
    "helpdesk": "helpdesk_bench",
    "digests": "digest_bench",
    "district-load": "district_load",
    "startup": "startup_bench",
}


def _run(module: str, args: list[str]) -> int:
    code: int = importlib.import_module(f"bench.{module}").main(args)
    return code


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] in (["-h"], ["--help"], ["help"]):
        print(__doc__)
        return 0
    command = args.pop(0) if args and not args[0].startswith("-") else "all"
    if command == "generate":
        return _generate(args)
    if command == "all":
        codes = [_run(module, args) for module in BENCHMARKS.values()]
        return max(codes)
    if command in BENCHMARKS:
        return _run(BENCHMARKS[command], args)
    print(f"unknown benchmark {command!r}\n{__doc__}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
