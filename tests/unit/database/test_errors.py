"""database.errors: classification, translation and scrubbing of driver errors."""

from __future__ import annotations

import sqlite3
import traceback

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
from aurum_otel.database.errors import (
    REDACTED,
    ScrubbedDriverError,
    scrub,
    scrubbed_cause,
    translate,
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


def test_scrub_hides_every_occurrence_of_every_secret() -> None:
    text = f"auth {CANARY} failed; retried with {CANARY}; user bob, token tk-1 and tk-1"
    assert scrub(text, [CANARY, "tk-1", ""]) == (
        f"auth {REDACTED} failed; retried with {REDACTED}; user bob, token {REDACTED} and {REDACTED}"
    )


def test_scrub_hides_a_secret_that_contains_another_whole() -> None:
    # Replacing the short one first would leave the long one's tail ("-long") in the message.
    assert scrub("key=abc-long, pin=abc", ["abc", "abc-long"]) == (
        f"key={REDACTED}, pin={REDACTED}"
    )
    # Longest first, not merely last in reverse alphabetical order ("zz" sorts after "azz").
    assert scrub("key=azz", ["zz", "azz"]) == f"key={REDACTED}"


def test_scrub_hides_the_url_encoded_form_of_a_secret() -> None:
    password = "p@ss/w:rd 1"
    text = "failed to execute: https://aurum:p%40ss%2Fw%3Ard%201@trino.test/ (or p%40ss%2Fw%3Ard+1)"
    scrubbed = scrub(text, [password])
    assert "ss" not in scrubbed and scrubbed.count(REDACTED) == 2


def test_a_translated_error_names_the_failure_but_no_secret_occurrence() -> None:
    error = trino.exceptions.TrinoConnectionError(
        f"failed to execute: https://aurum:{CANARY}@trino.test/v1 (auth={CANARY})"
    )
    translated = translate(error, secrets=[CANARY])
    assert CANARY not in str(translated) and str(translated).count(REDACTED) == 2
    assert isinstance(translated, DatabaseUnavailableError)


def test_the_chained_driver_error_shows_no_secret_in_a_logged_traceback() -> None:
    # logger.exception(...) prints the whole chain: the driver's own error is part of it.
    for make in (legacy_client, lambda db: SimpleTrinoClient(TRINO, connect=db.connect)):
        db = FakeDB()
        db.fail(*(trino.exceptions.TrinoConnectionError(
            f"failed to execute: https://aurum:{CANARY}@trino.test/v1 refused"
        ) for _ in range(6)))
        with pytest.raises(DatabaseUnavailableError) as caught:
            make(db).query("SELECT 1")
        printed = "".join(traceback.format_exception(caught.value))
        assert CANARY not in printed and printed.count(REDACTED) == 2
        cause = caught.value.__cause__
        assert isinstance(cause, ScrubbedDriverError)
        assert cause.driver_error == "trino.exceptions.TrinoConnectionError"
        assert cause.__traceback__ is not None  # where the driver failed is kept


def test_a_driver_error_without_a_secret_stays_the_cause_as_it_is() -> None:
    error = dropped_mid_query()
    assert scrubbed_cause(error, [CANARY]) is error
    inner = ConnectionError(f"to https://u:{CANARY}@h")
    outer = trino.exceptions.TrinoConnectionError("failed to fetch")
    outer.__cause__ = inner
    stand_in = scrubbed_cause(outer, [CANARY])
    assert stand_in is not outer and CANARY not in "".join(traceback.format_exception(stand_in))
