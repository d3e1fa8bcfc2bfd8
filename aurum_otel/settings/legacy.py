"""The legacy settings loader: the hand-rolled environment reader the platform grew up with.

It is the ``legacy`` side of the ``settings`` migration and returns the same
:class:`~aurum_otel.settings.model.AurumSettings` type as the simplified loader (built without
validation, with ``model_construct``), so a shadow comparison reports field-level differences.
For an ordinary environment both loaders agree. They disagree where the legacy loader has a
quirk, each of them real and kept on purpose so that hybrid runs surface it:

1. **Older names win.** ``AURUM_API_TRINO_HOST``, ``_PORT``, ``_USER``, ``_PASSWORD``,
   ``_CATALOG``, ``_SCHEMA``, ``_SCHEME`` and ``_VERIFY`` are read first; the
   ``AURUM_TRINO__*`` names only when the older one is absent. AurumSettings reads only
   ``AURUM_TRINO__*``, so an environment that still sets the older names differs.
2. **Empty text is a value.** ``AURUM_TRINO__HOST=`` gives the host ``""`` (the classic
   ``os.environ.get(name, default)``); AurumSettings treats an empty variable as unset. Numbers and
   flags fall back to their default when empty (``int(value or default)``).
3. **Loose flags.** Only ``1``, ``true``, ``yes``, ``on`` (any case) are true; anything else, a
   typo such as ``ture`` included, is silently false. AurumSettings also takes ``t``/``y`` and
   rejects what it does not know.
4. **No range or choice checks.** Ports such as ``0`` or ``99999``, a negative cache TTL and any
   log level (upper-cased, e.g. ``VERBOSE``) are taken as they are.
5. **Forgiving environment names.** ``dev``, ``stage`` and ``prod`` are expanded, and an unknown
   name silently becomes ``development``.
6. **Scheme guessed from the password.** With a password and no scheme it picks ``https``;
   AurumSettings defaults to ``http`` (and the Trino client then refuses to send the password).
7. **CA paths unchecked.** ``verify`` accepts a path that does not exist.
8. **Whole numbers only.** Ports and the cache TTL go through ``int()``, so
   ``AURUM_CACHE_TTL_SECONDS=1.5`` raises a bare ``ValueError`` where AurumSettings accepts it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from pydantic import SecretStr

from aurum_otel.settings.model import AurumSettings, TrinoSettings

_TRUTHY = ("1", "true", "yes", "on")
_ENVIRONMENTS = {
    "development": "development",
    "dev": "development",
    "staging": "staging",
    "stage": "staging",
    "production": "production",
    "prod": "production",
}


def load_legacy_settings(environ: Mapping[str, str] | None = None) -> AurumSettings:
    """Read the settings the way the legacy platform did (see the module docstring's quirks).

    Args:
        environ: the variables to read; default ``os.environ``.
    """
    env = os.environ if environ is None else environ

    def trino(suffix: str, default: str) -> str:
        old = f"AURUM_API_TRINO_{suffix}"
        new = f"AURUM_TRINO__{suffix}"
        if old in env:
            return env[old]
        return env.get(new, default)

    password_text = trino("PASSWORD", "")
    password = SecretStr(password_text) if password_text else None
    scheme = trino("SCHEME", "") or env.get("AURUM_TRINO__HTTP_SCHEME", "")
    if not scheme:
        scheme = "https" if password is not None else "http"

    trino_settings = TrinoSettings.model_construct(
        host=trino("HOST", "localhost"),
        port=int(trino("PORT", "") or 8080),
        user=trino("USER", "aurum"),
        password=password,
        catalog=trino("CATALOG", "iceberg"),
        schema_name=trino("SCHEMA", "market"),
        http_scheme=scheme.lower(),
        verify=_verify(trino("VERIFY", "")),
    )
    database_url = env.get("AURUM_DATABASE_URL")
    return AurumSettings.model_construct(
        environment=_ENVIRONMENTS.get(
            env.get("AURUM_ENVIRONMENT", "development").strip().lower(), "development"
        ),
        debug=_flag(env.get("AURUM_DEBUG", "")),
        log_level=(env.get("AURUM_LOG_LEVEL") or "INFO").upper(),
        api_host=env.get("AURUM_API_HOST", "127.0.0.1"),
        api_port=int(env.get("AURUM_API_PORT") or 8000),
        database_url=SecretStr(database_url) if database_url else None,
        cache_ttl_seconds=int(env.get("AURUM_CACHE_TTL_SECONDS") or 300),
        request_timeout_seconds=float(env.get("AURUM_REQUEST_TIMEOUT_SECONDS") or 30),
        trino=trino_settings,
    )


def _flag(value: str) -> bool:
    return value.strip().lower() in _TRUTHY


def _verify(value: str) -> bool | str:
    text = value.strip()
    if not text or text.lower() in _TRUTHY:
        return True
    if text.lower() in ("0", "false", "no", "off"):
        return False
    return text
