"""database.errors: classification, translation and scrubbing of driver errors."""

from __future__ import annotations

import sqlite3

import pytest
import trino.auth
import trino.exceptions

from aurum_otel.database import (
    DatabaseError,
    DatabaseUnavailableError,
    ErrorKind,
    SimpleTrinoClient,
    classify,
)
from tests.unit.database.fakes import (
    CANARY,
    TRINO,
    FakeDB,
    dropped_mid_query,
    legacy_client,
    refused,
    syntax_error,
)


@pytest.mark.parametrize(
    ("error", "kind"),
    [(refused(), ErrorKind.NOT_SENT),
     (dropped_mid_query(), ErrorKind.TRANSIENT),
     (trino.exceptions.Http503Error("error 503"), ErrorKind.TRANSIENT),
     (sqlite3.OperationalError("database is locked"), ErrorKind.NOT_SENT),
     (sqlite3.OperationalError('near "FORM": syntax error'), ErrorKind.FATAL),
     (syntax_error(), ErrorKind.FATAL),
     (trino.exceptions.TrinoExternalError({"errorName": "SERVER_STARTING_UP"}), ErrorKind.NOT_SENT),
     (trino.exceptions.HttpError("error 401: b'Unauthorized'"), ErrorKind.FATAL)],
    ids=["refused", "dropped", "503", "locked", "sqlite-syntax", "trino-syntax", "starting",
         "401"],
)
def test_classify(error: BaseException, kind: ErrorKind) -> None:
    assert classify(error) is kind


def test_both_clients_raise_the_same_type_for_the_same_failure() -> None:
    raised = []
    for make in (lambda db: legacy_client(db), lambda db: SimpleTrinoClient(TRINO, connect=db.connect)):
        db = FakeDB()
        db.fail(syntax_error())
        with pytest.raises(DatabaseError) as caught:
            make(db).query("SELECT FORM t")
        raised.append(type(caught.value))
    assert raised == [DatabaseError, DatabaseError]


def test_driver_messages_are_scrubbed_of_the_password() -> None:
    db = FakeDB()
    db.fail(*(trino.exceptions.TrinoConnectionError(
        f"failed to execute: https://aurum:{CANARY}@trino.test:8443/v1/statement refused"
    ) for _ in range(6)))
    for client in (legacy_client(db), SimpleTrinoClient(TRINO, connect=db.connect)):
        with pytest.raises(DatabaseUnavailableError) as caught:
            client.query("SELECT 1")
        assert CANARY not in str(caught.value) and "<redacted>" in str(caught.value)
