"""How the Redis store connects: its URL, the client's timeouts and retries, and what it says when
Redis cannot be reached (never the password)."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import redis
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry

from aurum_otel.errors import ConfigurationError, StateError

CONNECT_TIMEOUT = 1.0
SOCKET_TIMEOUT = 2.0
HEALTH_CHECK_INTERVAL = 10
URL_FORM = "redis://[:password@]host[:port][/db][?prefix=aurum&history_limit=1000&poll_interval=5]"
OWN_PARAMETERS = ("prefix", "history_limit", "poll_interval")
UNREACHABLE = (RedisConnectionError, RedisTimeoutError, OSError)
"""What redis-py raises when the server cannot be reached (rather than refusing a command)."""


def client_from_url(url: str, options: dict[str, Any]) -> redis.Redis:
    """A client for ``url`` with aurum-otel's timeouts and retry policy; the store's own query
    parameters (``prefix``, ``history_limit``, ``poll_interval``) go into ``options`` unless given.

    Raises:
        ConfigurationError: the URL is not a Redis URL or a parameter is not a number.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("redis", "rediss", "unix"):
        raise ConfigurationError("AURUM_STATE_URL", redact(url), URL_FORM)
    query = parse_qsl(parts.query, keep_blank_values=True)
    own = {key: value for key, value in query if key in OWN_PARAMETERS}
    rest = [(key, value) for key, value in query if key not in OWN_PARAMETERS]
    try:
        if "prefix" in own:
            options.setdefault("prefix", own["prefix"])
        if "history_limit" in own:
            options.setdefault("history_limit", int(own["history_limit"]))
        if "poll_interval" in own:
            options.setdefault("poll_interval", float(own["poll_interval"]))
    except ValueError:
        raise ConfigurationError("AURUM_STATE_URL", redact(url), URL_FORM) from None
    redis_url = urlunsplit(parts._replace(query=urlencode(rest)))
    try:
        return redis.Redis.from_url(
            redis_url,
            decode_responses=True,
            socket_connect_timeout=CONNECT_TIMEOUT,
            socket_timeout=SOCKET_TIMEOUT,
            socket_keepalive=True,
            health_check_interval=HEALTH_CHECK_INTERVAL,
            retry=Retry(ExponentialWithJitterBackoff(cap=0.5, base=0.05), 2),
        )
    except (ValueError, TypeError) as exc:
        raise ConfigurationError("AURUM_STATE_URL", redact(url), f"{URL_FORM} ({exc})") from None


def redact(url: str) -> str:
    """``url`` with its password (in the user part or the query) replaced by ``***``."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    if parts.password is None and not any(key == "password" for key, _ in query):
        return url
    netloc = parts.netloc
    if parts.password is not None:
        host = parts.hostname or ""
        if parts.port is not None:
            host = f"{host}:{parts.port}"
        netloc = f"{parts.username or ''}:***@{host}"
    redacted = urlencode([(key, "***" if key == "password" else value) for key, value in query],
                         safe="*")
    return urlunsplit(parts._replace(netloc=netloc, query=redacted))


def describe_client(client: redis.Redis) -> str:
    """Host, port and db (or socket path) of ``client``, for messages."""
    kwargs = getattr(client.connection_pool, "connection_kwargs", {})
    if "path" in kwargs:
        return f"unix://{kwargs['path']}?db={kwargs.get('db', 0)}"
    return f"redis://{kwargs.get('host', 'localhost')}:{kwargs.get('port', 6379)}/{kwargs.get('db', 0)}"


def unreachable(location: str, action: str, exc: BaseException) -> StateError:
    """The error an operation that could not reach Redis raises: what to check, nothing changed."""
    return StateError(
        f"cannot {action}: phase store {location} is unreachable "
        f"({type(exc).__name__}: {exc}); nothing was changed. Check that redis-server is "
        "running and reachable from this host (redis-cli -u <url> ping), and the host, port, "
        "db and password in AURUM_STATE_URL",
        path=location,
    )
