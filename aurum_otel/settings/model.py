"""``AurumSettings``: the platform's settings on pydantic-settings (the simplified loader).

Every field comes from an ``AURUM_`` variable; the Trino connection's fields are nested under
``AURUM_TRINO__`` (``AURUM_TRINO__HOST``, ``AURUM_TRINO__PASSWORD``, ...). An empty variable
counts as unset. :meth:`AurumSettings.from_env` turns any bad value into a
:class:`~aurum_otel.errors.ConfigurationError` that names the variable and the allowed values and
never repeats a secret.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict, SettingsError

from aurum_otel.compare import REDACTED
from aurum_otel.errors import ConfigurationError

ENV_PREFIX = "AURUM_"
NESTED_DELIMITER = "__"

Environment = Literal["development", "staging", "production"]
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]

_TRUE = frozenset({"1", "true", "yes", "on", "t", "y"})
_FALSE = frozenset({"0", "false", "no", "off", "f", "n"})

# What to tell the user per field path; the variable name is derived from the path.
_ALLOWED: dict[tuple[str, ...], str] = {
    ("environment",): "development, staging, production",
    ("debug",): "0 or 1 (also true/false, yes/no, on/off)",
    ("log_level",): "DEBUG, INFO, WARNING, ERROR, CRITICAL (any case)",
    ("api_host",): "a host name or IP address",
    ("api_port",): "an integer from 1 to 65535",
    ("database_url",): "a database URL, e.g. sqlite:///aurum.db",
    ("cache_ttl_seconds",): "a number of seconds >= 0",
    ("request_timeout_seconds",): "a number of seconds > 0",
    ("trino",): "a JSON object, or the AURUM_TRINO__<FIELD> variables",
    ("trino", "host"): "a host name or IP address",
    ("trino", "port"): "an integer from 1 to 65535",
    ("trino", "user"): "a non-empty user name",
    ("trino", "catalog"): "a catalog name",
    ("trino", "schema"): "a schema name",
    ("trino", "http_scheme"): "http, https",
    ("trino", "verify"): "true, false, or the path of a CA bundle file that exists",
}
# Never echoed in an error: the JSON form of AURUM_TRINO may hold the password too.
_SECRET_PATHS = frozenset({("trino",), ("trino", "password"), ("database_url",)})


class TrinoSettings(BaseModel):
    """Where and how to reach Trino.

    Attributes:
        host: the coordinator's host name (``AURUM_TRINO__HOST``).
        port: its HTTP(S) port (``AURUM_TRINO__PORT``).
        user: the Trino user (``AURUM_TRINO__USER``).
        password: for password authentication, which Trino accepts only over https
            (``AURUM_TRINO__PASSWORD``).
        catalog: the default catalog (``AURUM_TRINO__CATALOG``).
        schema_name: the default schema (``AURUM_TRINO__SCHEMA``).
        http_scheme: ``http`` or ``https`` (``AURUM_TRINO__HTTP_SCHEME``).
        verify: TLS verification: ``True``, ``False`` or a CA bundle path
            (``AURUM_TRINO__VERIFY``).
    """

    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="ignore")

    host: str = "localhost"
    port: int = Field(default=8080, ge=1, le=65535)
    user: str = Field(default="aurum", min_length=1)
    password: SecretStr | None = None
    catalog: str = "iceberg"
    # "schema" would shadow BaseModel.schema(); the variable and the alias keep the short name.
    schema_name: str = Field(
        default="market", validation_alias=AliasChoices("schema", "schema_name")
    )
    http_scheme: Literal["http", "https"] = "http"
    verify: bool | str = True

    @field_validator("http_scheme", mode="before")
    @classmethod
    def _scheme_case(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("verify", mode="before")
    @classmethod
    def _verify(cls, value: Any) -> Any:
        # A plain ``bool | str`` union would keep "false" as a path; decide here instead.
        if not isinstance(value, str):
            return value
        text = value.strip()
        if text.lower() in _TRUE:
            return True
        if text.lower() in _FALSE:
            return False
        if not Path(text).is_file():
            raise ValueError("not true/false and not an existing CA bundle file")
        return text


class AurumSettings(BaseSettings):
    """The Aurum platform's settings, read from ``AURUM_*`` variables; immutable.

    Build it with :meth:`from_env`, which reports a bad value as a ConfigurationError.

    Attributes:
        environment: ``development``, ``staging`` or ``production`` (``AURUM_ENVIRONMENT``).
        debug: debug mode (``AURUM_DEBUG``).
        log_level: the root log level (``AURUM_LOG_LEVEL``).
        api_host: the API's bind address (``AURUM_API_HOST``).
        api_port: the API's port (``AURUM_API_PORT``).
        database_url: the application database; kept secret because URLs carry credentials
            (``AURUM_DATABASE_URL``).
        cache_ttl_seconds: how long cached reads live (``AURUM_CACHE_TTL_SECONDS``).
        request_timeout_seconds: the timeout of outgoing requests
            (``AURUM_REQUEST_TIMEOUT_SECONDS``).
        trino: the Trino connection (``AURUM_TRINO__*``).
    """

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter=NESTED_DELIMITER,
        env_ignore_empty=True,
        extra="ignore",
        frozen=True,
    )

    @classmethod
    def settings_customise_sources(cls, settings_cls: Any, init_settings: Any, env_settings: Any,
                                   dotenv_settings: Any, file_secret_settings: Any
                                   ) -> tuple[Any, ...]:
        # Arguments and the process environment only: a .env file or a secrets directory would be
        # a second, silent source the legacy loader never read.
        return (init_settings, env_settings)

    environment: Environment = "development"
    debug: bool = False
    log_level: LogLevel = "INFO"
    api_host: str = "127.0.0.1"
    api_port: int = Field(default=8000, ge=1, le=65535)
    database_url: SecretStr | None = None
    cache_ttl_seconds: float = Field(default=300.0, ge=0)
    request_timeout_seconds: float = Field(default=30.0, gt=0)
    trino: TrinoSettings = Field(default_factory=TrinoSettings)

    @field_validator("environment", mode="before")
    @classmethod
    def _environment_case(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("log_level", mode="before")
    @classmethod
    def _level_case(cls, value: Any) -> Any:
        return value.strip().upper() if isinstance(value, str) else value

    @classmethod
    def from_env(cls) -> AurumSettings:
        """Read the settings from the environment.

        Raises:
            ConfigurationError: a variable holds a value that is not allowed; the error names
                the variable and the allowed values, and shows ``<redacted>`` for secrets.
        """
        try:
            return cls()
        except ValidationError as exc:
            raise _configuration_error(exc) from None
        except SettingsError as exc:
            # pydantic-settings raises this when a JSON-valued variable does not parse.
            raise _settings_error(exc) from None

    @property
    def trino_configured(self) -> bool:
        """Whether the environment (or the caller) named a Trino host, not just the default."""
        return "host" in self.trino.model_fields_set


def variable_name(path: tuple[str, ...]) -> str:
    """The environment variable of a field path: ``("trino", "port")`` -> ``AURUM_TRINO__PORT``."""
    return ENV_PREFIX + NESTED_DELIMITER.join(part.upper() for part in path)


def _field_path(loc: tuple[int | str, ...]) -> tuple[str, ...]:
    # loc may go past the field into union members ("verify", "bool"); keep the field part.
    path: list[str] = []
    model: Any = AurumSettings
    for part in loc:
        if model is None or not isinstance(part, str):
            break
        name = _field_name(model, part)
        if name is None:
            break
        path.append("schema" if name == "schema_name" else name)
        annotation = model.model_fields[name].annotation
        model = annotation if isinstance(annotation, type) and issubclass(
            annotation, BaseModel
        ) else None
    return tuple(path)


def _field_name(model: Any, part: str) -> str | None:
    fields = model.model_fields
    if part in fields:
        return part
    for name, info in fields.items():
        alias = info.validation_alias
        if isinstance(alias, AliasChoices) and part in alias.choices:
            return str(name)
    return None


def _configuration_error(exc: ValidationError) -> ConfigurationError:
    error = exc.errors()[0]
    path = _field_path(tuple(error["loc"])) or ("value",)
    variable = variable_name(path)
    if path in _SECRET_PATHS:
        value: object = REDACTED
    else:
        value = os.environ.get(variable, error.get("input"))
    allowed = _ALLOWED.get(path, str(error["msg"]))
    return ConfigurationError(variable, value, allowed)


def _settings_error(exc: SettingsError) -> ConfigurationError:
    text = str(exc)
    field = text.split('"')[1] if text.count('"') >= 2 else "value"
    variable = variable_name((field,))
    value = REDACTED if (field,) in _SECRET_PATHS else os.environ.get(variable, "")
    return ConfigurationError(variable, value, _ALLOWED.get((field,), "a valid JSON value"))
