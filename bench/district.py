"""Synthetic ONDE extractions at district scale, for the benchmarks: the generator lives in the
package (`bot.sandbox.onde_generator`), shared with the sandbox's demo school and the tests.

    python -m bench generate --schools 80 --pupils 250 --out /tmp/district
"""

from __future__ import annotations

from bot.sandbox.onde_generator import (
    GUARDIAN_HEADER,
    PUPIL_HEADER,
    SchoolExtraction,
    generate_district,
    generate_school,
)

__all__ = [
    "GUARDIAN_HEADER",
    "PUPIL_HEADER",
    "SchoolExtraction",
    "generate_district",
    "generate_school",
]
