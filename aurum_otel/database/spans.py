"""Client spans for database statements, per the OpenTelemetry database semantic conventions.

``opentelemetry-instrumentation-dbapi`` was the first choice, but it records the statement as
written (literals and all), emits the stable ``db.*`` names only under an opt-in variable, and
pins an exact ``opentelemetry-semantic-conventions`` release that conflicts with the SDK's. This
helper is small and emits what the conventions ask: ``db.system.name``, ``db.namespace``,
``db.operation.name``, ``server.address``/``server.port`` and ``db.query.text`` with every literal
replaced by ``?``; on failure ``error.type`` and ``db.response.status_code``. No exception message
is recorded: driver messages can quote the statement's values.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer, TracerProvider

from aurum_otel.database.config import ConnectionConfig
from aurum_otel.database.errors import error_name
from aurum_otel.database.sql import operation_name, sanitize
from aurum_otel.errors import error_type
from aurum_otel.registry import generation, get_registry

SCOPE = "aurum_otel.database"
DB_SYSTEM_NAME = "db.system.name"
DB_NAMESPACE = "db.namespace"
DB_OPERATION_NAME = "db.operation.name"
DB_QUERY_TEXT = "db.query.text"
DB_RESPONSE_STATUS_CODE = "db.response.status_code"
DB_RESPONSE_RETURNED_ROWS = "db.response.returned_rows"
SERVER_ADDRESS = "server.address"
SERVER_PORT = "server.port"
ERROR_TYPE = "error.type"


class DatabaseSpans:
    """Opens one client span per statement, as a child of the current span.

    Args:
        config: the connection (its system, namespace and server go on every span).
        tracer_provider: default: the aurum-otel registry's provider, else the global one.
    """

    def __init__(
        self, config: ConnectionConfig, *, tracer_provider: TracerProvider | None = None
    ) -> None:
        self._provider = tracer_provider
        self._tracer: Tracer | None = None
        self._generation = -1
        attributes: dict[str, Any] = {
            DB_SYSTEM_NAME: config.system,
            DB_NAMESPACE: config.namespace,
        }
        if config.system != "sqlite":
            attributes[SERVER_ADDRESS] = config.host
            attributes[SERVER_PORT] = config.port
        self._attributes = attributes
        self._namespace = config.namespace

    @property
    def tracer(self) -> Tracer:
        # Follow aurum_otel.configure()/testing.capture(): they replace the registry's provider.
        if self._tracer is None or (self._provider is None and self._generation != generation()):
            provider = self._provider or get_registry().tracer_provider
            self._tracer = trace.get_tracer(SCOPE, tracer_provider=provider)
            self._generation = generation()
        return self._tracer

    @contextmanager
    def statement(self, sql: str) -> Iterator[Span]:
        """A client span around one statement; records the error type if the block raises."""
        operation = operation_name(sql)
        with self.tracer.start_as_current_span(
            f"{operation} {self._namespace}" if operation else self._namespace,
            kind=SpanKind.CLIENT,
            attributes=self._attributes,
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            if span.is_recording():
                if operation:
                    span.set_attribute(DB_OPERATION_NAME, operation)
                span.set_attribute(DB_QUERY_TEXT, sanitize(sql))
            try:
                yield span
            except BaseException as exc:
                if span.is_recording():
                    span.set_attribute(ERROR_TYPE, error_type(exc))
                    code = error_name(exc)
                    if code:
                        span.set_attribute(DB_RESPONSE_STATUS_CODE, code)
                    span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
                raise
