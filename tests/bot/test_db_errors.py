"""Database errors never carry the values of a statement's parameters (a family's address, a
password hash) into the log: only the statement and the error."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError

SECRET = "parent.secret@example.org"


def test_a_failing_statement_does_not_show_its_parameters(engine: Engine) -> None:
    with engine.connect() as connection, pytest.raises(DBAPIError) as failed:
        connection.execute(
            text("INSERT INTO no_such_table (address) VALUES (:address)"), {"address": SECRET}
        )

    assert "no_such_table" in str(failed.value)
    assert SECRET not in str(failed.value)
    assert SECRET not in repr(failed.value)
