"""Route every method call of a client object (a DB client, an API client) between two objects."""

from __future__ import annotations

import functools
import inspect
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from aurum_otel._wrapt import ObjectProxy
from aurum_otel.compare import Comparator, deep_compare
from aurum_otel.migrated import MigratedFunction, migrated
from aurum_otel.shadow import ShadowScope


class MigratedClient(ObjectProxy[Any]):
    """A proxy of the legacy client whose routed methods go to legacy or simplified per call.

    Attributes not listed in ``methods`` pass through to the legacy client. ``close()`` first
    lets the client's in-flight shadows finish (bounded by ``shadow_timeout``), cancels those
    not started, then closes both clients: a shadow never runs on a closed resource, and one cut
    off by the close is counted ``skipped`` (``closed``), never a mismatch.
    """

    def __init__(
        self,
        name: str,
        legacy: Any,
        simplified: Any,
        *,
        methods: Iterable[str],
        writes: Iterable[str] = (),
        comparators: Mapping[str, Comparator] | None = None,
        **options: Any,
    ) -> None:
        super().__init__(legacy)
        self._self_name = name
        self._self_simplified = simplified
        self._self_methods = frozenset(methods)
        self._self_writes = frozenset(writes)
        self._self_comparators = dict(comparators or {})
        self._self_options = options
        self._self_routed: dict[str, MigratedFunction[Any, Any]] = {}
        self._self_lock = threading.Lock()
        self._self_scope = ShadowScope()
        unknown = self._self_writes - self._self_methods
        if unknown:
            raise ValueError(f"writes names methods that are not routed: {sorted(unknown)}")

    def __getattr__(self, attribute: str) -> Any:
        if attribute.startswith("_self_") or attribute not in self._self_methods:
            return getattr(self.__wrapped__, attribute)
        routed = self._self_routed.get(attribute)
        if routed is None:
            with self._self_lock:
                routed = self._self_routed.get(attribute)
                if routed is None:
                    routed = self._route(attribute)
                    self._self_routed[attribute] = routed
        return routed

    def _route(self, attribute: str) -> MigratedFunction[Any, Any]:
        bound_legacy: Callable[..., Any] = getattr(self.__wrapped__, attribute)
        simplified_method: Callable[..., Any] = getattr(self._self_simplified, attribute)

        routed = migrated(
            self._self_name,
            writes=attribute in self._self_writes,
            comparator=self._self_comparators.get(attribute, deep_compare),
            **self._self_options,
        )(_unbound(bound_legacy))
        routed.simplified(simplified_method)
        routed._self_router.scope = self._self_scope
        return routed

    @property
    def legacy_client(self) -> Any:
        return self.__wrapped__

    @property
    def simplified_client(self) -> Any:
        return self._self_simplified

    def close(self, timeout: float | None = None) -> None:
        """Drain this client's shadows (at most ``timeout`` s, default its ``shadow_timeout``),
        then close both clients."""
        if timeout is None:
            timeout = float(self._self_options.get("shadow_timeout", 5.0))
        self._self_scope.close(timeout)
        errors: list[BaseException] = []
        for client in (self.__wrapped__, self._self_simplified):
            closer = getattr(client, "close", None)
            if closer is not None:
                try:
                    closer()
                except Exception as exc:
                    errors.append(exc)
        if errors:
            raise errors[0]

    def __enter__(self) -> MigratedClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _unbound(bound: Callable[..., Any]) -> Callable[..., Any]:
    """A plain function (sync or async, as ``bound`` is) around a bound method: wrapt then
    passes no instance, so the simplified callable (a bound method, a partial, a mock) is called
    as it is."""
    if inspect.iscoroutinefunction(bound):

        @functools.wraps(bound)
        async def call_async(*args: Any, **kwargs: Any) -> Any:
            return await bound(*args, **kwargs)

        return call_async

    @functools.wraps(bound)
    def call(*args: Any, **kwargs: Any) -> Any:
        return bound(*args, **kwargs)

    return call


def migrate_client(
    name: str,
    legacy: Any,
    simplified: Any,
    *,
    methods: Iterable[str],
    writes: Iterable[str] = (),
    comparators: Mapping[str, Comparator] | None = None,
    **options: Any,
) -> MigratedClient:
    """Wrap two clients with the same interface so each call of ``methods`` is routed.

    Args:
        name: the migration (its phase decides each call).
        legacy: the legacy client (also serves every attribute that is not routed).
        simplified: the simplified client.
        methods: the method names to route.
        writes: the routed methods that write: never shadowed.
        comparators: a comparator per method (default :func:`deep_compare`).
        **options: further ``@migrated`` options (``key``, ``shadow_timeout``, ``hooks``, ...).
    """
    return MigratedClient(
        name, legacy, simplified, methods=methods, writes=writes, comparators=comparators,
        **options,
    )
