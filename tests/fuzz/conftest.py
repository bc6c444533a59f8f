"""Hypothesis profiles of the fuzzers: reproducible and quick in CI, long on demand.

`FUZZ_EXAMPLES=5000 pytest tests/fuzz` runs each fuzzer with that many examples (random, not
derandomized: every long run explores new inputs; add `--timeout=0` beyond about 5,000, as the
chat fuzzers then take more than pytest's five minutes); the default profile is what CI runs.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime

from hypothesis import HealthCheck, settings
from sqlmodel import Session

from bot.services.roster import import_roster
from models import School
from tests.conftest import SAMPLES

# The running bot on the Bot API emulator, for the fuzzers that chat with it.
from tests.handlers.conftest import bot_harness as bot_harness

NOW = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)

_CI_EXAMPLES = 50
_SLOW_CHECKS = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example]

settings.register_profile(
    "ci",
    max_examples=_CI_EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    print_blob=True,
    suppress_health_check=_SLOW_CHECKS,
)
settings.register_profile(
    "long",
    max_examples=int(os.environ.get("FUZZ_EXAMPLES") or _CI_EXAMPLES),
    deadline=None,
    derandomize=False,
    database=None,
    print_blob=True,
    suppress_health_check=_SLOW_CHECKS,
)
settings.load_profile("long" if os.environ.get("FUZZ_EXAMPLES") else "ci")


def examples(share: float) -> int:
    """A share of the profile's examples, for a fuzzer whose examples cost more (a database
    import, a chat with the bot): at least 10."""
    return max(10, round(settings().max_examples * share))


def school_with_roster(session: Session, uai: str = "0751234X") -> int:
    """A school with the demo school's roster imported and committed; its id."""
    school = School(uai=uai, name="École du Parc", city="Lille")
    session.add(school)
    session.flush()
    assert school.id is not None
    files = [(name, (SAMPLES / name).read_bytes()) for name in ("eleves.csv", "responsables.csv")]
    import_roster(session, school_id=school.id, files=files, actor="test", now=NOW)
    session.commit()
    return school.id
