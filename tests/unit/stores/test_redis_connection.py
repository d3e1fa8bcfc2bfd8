"""The Redis store's URL: its own parameters, redis-py's, and a password never shown."""

from __future__ import annotations

from typing import Any

import pytest

pytest.importorskip("redis")

from aurum_otel import ConfigurationError
from aurum_otel.stores.redis_connection import (
    client_from_url,
    describe_client,
    redact,
    unreachable,
)


def test_the_stores_parameters_are_taken_out_of_the_url() -> None:
    options: dict[str, Any] = {}
    client = client_from_url("redis://h:6380/2?prefix=fleet&history_limit=5&poll_interval=0.5",
                             options)
    assert options == {"prefix": "fleet", "history_limit": 5, "poll_interval": 0.5}
    assert describe_client(client) == "redis://h:6380/2"


def test_given_options_win_over_the_url() -> None:
    options: dict[str, Any] = {"prefix": "mine"}
    client_from_url("redis://h/0?prefix=fleet", options)
    assert options == {"prefix": "mine"}


@pytest.mark.parametrize("url", [
    "http://h:6379/0", "redis://:s3cret@h:6379/0?history_limit=many",
], ids=["not-redis", "bad-number"])
def test_a_bad_url_says_the_form_and_hides_the_password(url: str) -> None:
    with pytest.raises(ConfigurationError, match=r"redis://\[:password@\]host") as caught:
        client_from_url(url, {})
    assert "s3cret" not in str(caught.value)


@pytest.mark.parametrize(("url", "shown"), [
    ("redis://:s3cret@h:6379/0", "redis://:***@h:6379/0"),
    ("redis://user:s3cret@h/0", "redis://user:***@h/0"),
    ("redis://h/0?password=s3cret&prefix=p", "redis://h/0?password=***&prefix=p"),
    ("redis://h:6379/0", "redis://h:6379/0"),
])
def test_redact(url: str, shown: str) -> None:
    assert redact(url) == shown


def test_unreachable_says_what_to_check() -> None:
    error = unreachable("redis://h:6379/0", "change the phase of 'orders'", ConnectionError("refused"))
    message = str(error)
    assert message.startswith("cannot change the phase of 'orders': phase store redis://h:6379/0")
    assert "nothing was changed" in message and "redis-cli -u <url> ping" in message
