"""Seeded ONDE extractions: the sandbox's demo school, the tests' input, the benchmarks' districts.

`demo_school()` is one fixed school with the mess of real extractions planted on purpose (its
files are committed in tests/data/onde); `generate_school` and `generate_district` draw
schools of any size for the benchmarks (`python -m bench generate --out DIR`). The same seed
gives the same bytes.

    python -m bot.sandbox.onde_generator tests/data/onde   # rewrite the demo school's files
"""

from bot.sandbox.onde_generator.demo_school import (
    DEMO_CITY,
    DEMO_CLASSES,
    DEMO_FILES_COMMAND,
    DEMO_GUARDIANS,
    DEMO_SCHOOL_NAME,
    DEMO_UAI,
    demo_school,
)
from bot.sandbox.onde_generator.schools import (
    ENCODING,
    GUARDIAN_HEADER,
    PUPIL_HEADER,
    SchoolExtraction,
    generate_district,
    generate_school,
)

__all__ = [
    "DEMO_CITY",
    "DEMO_CLASSES",
    "DEMO_FILES_COMMAND",
    "DEMO_GUARDIANS",
    "DEMO_SCHOOL_NAME",
    "DEMO_UAI",
    "ENCODING",
    "GUARDIAN_HEADER",
    "PUPIL_HEADER",
    "SchoolExtraction",
    "demo_school",
    "generate_district",
    "generate_school",
]
