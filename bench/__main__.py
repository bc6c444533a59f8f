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


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] in (["-h"], ["--help"], ["help"]):
        print(__doc__)
        return 0
    command = args.pop(0) if args and not args[0].startswith("-") else "all"
    if command == "import":
        from bench import import_bench

        return import_bench.main(args)
    if command == "bot":
        from bench import bot_load

        return bot_load.main(args)
    if command == "letters":
        from bench import letters_bench

        return letters_bench.main(args)
    if command == "mail":
        from bench import mail_bench

        return mail_bench.main(args)
    if command == "portal":
        from bench import portal_bench

        return portal_bench.main(args)
    if command == "portal-processes":
        from bench import portal_processes

        return portal_processes.main(args)
    if command == "phone":
        from bench import phone_bench

        return phone_bench.main(args)
    if command == "helpdesk":
        from bench import helpdesk_bench

        return helpdesk_bench.main(args)
    if command == "digests":
        from bench import digest_bench

        return digest_bench.main(args)
    if command == "district-load":
        from bench import district_load

        return district_load.main(args)
    if command == "startup":
        from bench import startup_bench

        return startup_bench.main(args)
    if command == "generate":
        return _generate(args)
    if command == "all":
        from bench import (
            bot_load,
            digest_bench,
            district_load,
            helpdesk_bench,
            import_bench,
            letters_bench,
            mail_bench,
            phone_bench,
            portal_bench,
            portal_processes,
            startup_bench,
        )

        modules = (
            import_bench,
            bot_load,
            letters_bench,
            mail_bench,
            portal_bench,
            portal_processes,
            phone_bench,
            helpdesk_bench,
            digest_bench,
            district_load,
            startup_bench,
        )
        codes = [module.main(args) for module in modules]
        return max(codes)
    print(f"unknown benchmark {command!r}\n{__doc__}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
