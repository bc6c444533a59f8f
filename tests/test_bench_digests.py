"""The digest benchmark's own arithmetic: quantiles, the statement breakdown, the busiest second."""

from __future__ import annotations

import pytest

from bench.digest_bench import quantile, statement_kind
from bench.digest_broadcast import Pass, busiest_window


def test_quantile_is_the_nearest_rank() -> None:
    values = [0.005, 0.001, 0.004, 0.002, 0.003]
    assert quantile(values, 0.5) == 0.003
    assert quantile(values, 0.95) == 0.005
    assert quantile([], 0.5) == 0.0


@pytest.mark.parametrize(
    ("statement", "kind"),
    [
        (
            "WITH links AS (SELECT pupil.school_id ...)",
            "progress (the lights, per school and class)",
        ),
        ("SELECT digest_run.school_id, max(digest_run.sent_at) ...", "previous digest"),
        (
            "SELECT family_reminder.school_id ... FROM family_reminder JOIN account",
            "reminded guardians",
        ),
        ("SELECT help_request.school_id, count(*) FROM help_request", "open help requests"),
        (
            "SELECT school_class.school_id, school_class.id FROM school_class WHERE ...",
            "classes of the schools",
        ),
        ("SELECT school.id, school.uai FROM school WHERE school.id IN (...)", "schools"),
        ("SELECT 1", "other"),
    ],
)
def test_each_statement_of_the_content_is_named_by_what_it_reads(statement: str, kind: str) -> None:
    assert statement_kind(statement) == kind


def test_busiest_second_counts_the_fullest_one_second_window() -> None:
    assert busiest_window([0.0, 0.1, 0.2, 1.05, 1.1, 1.15, 1.9]) == 4
    assert busiest_window([]) == 0


def test_a_pass_rate_is_messages_per_second() -> None:
    item = Pass("all at once", 10, 20, 0, 0, 0.8, 20)
    assert item.rate == 25.0
