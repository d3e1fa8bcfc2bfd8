"""Migration names: what is valid, and the one-to-one token they take in variable names."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aurum_otel.errors import ConfigurationError
from aurum_otel.flags import variables_for
from aurum_otel.names import check_name, env_token, name_of_token


@pytest.mark.parametrize("name", ["settings", "database", "billing_v2", "a", "x" * 63])
def test_valid_names(name: str) -> None:
    assert check_name(name) == name
    assert name_of_token(env_token(name)) == name


@pytest.mark.parametrize(
    ("name", "hint"),
    [
        ("", "starting with a letter"),
        ("databse\n", "did you mean 'databse'?"),
        ('a"b', "did you mean 'a_b'?"),
        ("a\\b", "did you mean 'a_b'?"),
        ("Billing", "did you mean 'billing'?"),
        ("db-client", "did you mean 'db_client'?"),
        ("café", "lower-case ASCII"),
        ("1st", "starting with a letter"),
        ("x" * 64, "1 to 63"),
    ],
    ids=["empty", "newline", "quote", "backslash", "upper-case", "hyphen", "non-ascii",
         "digit-first", "too-long"],
)
def test_invalid_names_say_what_to_change(name: str, hint: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        check_name(name, variable="NAME")
    assert caught.value.variable == "NAME" and hint in str(caught.value)


def test_names_that_used_to_share_variables_are_refused() -> None:
    # Before: a"b and a\b both read AURUM_MIGRATION_A_B_*, and non-ASCII names an empty token.
    for name in ('a"b', "a\\b", "ünïcode", "日本"):
        with pytest.raises(ConfigurationError):
            variables_for(name)


@given(st.text(max_size=12), st.text(max_size=12))
def test_env_token_is_injective(a: str, b: str) -> None:
    try:
        token_a, token_b = env_token(a), env_token(b)
    except ConfigurationError:
        return
    assert (token_a == token_b) == (a == b)
    assert token_a.isascii() and token_a.replace("_", "").isalnum()


@given(st.from_regex(r"[a-z][a-z0-9_]{0,62}", fullmatch=True))
def test_every_name_of_the_pattern_is_valid_and_round_trips(name: str) -> None:
    assert name_of_token(env_token(name)) == name
    assert variables_for(name)["phase"][-1] == f"AURUM_MIGRATION_{name.upper()}_PHASE"
