"""The ``@migrated`` decorator and its two thin shells (sync and async): each call is decided by
the function's :class:`~aurum_otel.route.Router` and carried out by an
:class:`~aurum_otel.invocation.Invocation`."""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

from aurum_otel._wrapt import FunctionWrapper
from aurum_otel.compare import Comparator, deep_compare
from aurum_otel.errors import ConfigurationError, MigrationDefinitionError
from aurum_otel.invocation import Invocation
from aurum_otel.names import check_name
from aurum_otel.route import Options, Router, routing_key

P = ParamSpec("P")
R = TypeVar("R")
F = TypeVar("F", bound=Callable[..., Any])


def _sync_shell(router: Router) -> Callable[..., Any]:
    def call(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...],
             kwargs: dict[str, Any]) -> Any:
        invocation = router.begin(wrapped, instance, args, kwargs)
        if invocation.__class__ is not Invocation:
            return invocation(*args, **kwargs)  # type: ignore[operator]
        target = invocation.start()
        while True:
            try:
                result = target(*args, **kwargs)
            except BaseException as exc:
                target = invocation.failed(exc)  # the fallback target, or re-raises
                continue
            return invocation.succeeded(result)

    return call


def _async_shell(router: Router) -> Callable[..., Any]:
    async def call(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...],
                   kwargs: dict[str, Any]) -> Any:
        invocation = router.begin(wrapped, instance, args, kwargs)
        if invocation.__class__ is not Invocation:
            return await invocation(*args, **kwargs)  # type: ignore[operator]
        target = invocation.start()
        while True:
            try:
                result = await target(*args, **kwargs)
            except BaseException as exc:
                target = invocation.failed(exc)
                continue
            return invocation.succeeded(result)

    return call


class MigratedFunction(FunctionWrapper[P, R]):
    """A function routed between its legacy body and a simplified one.

    Keeps the legacy function's name, qualname, docstring, signature and async-ness.
    """

    def __init__(self, wrapped: Callable[P, R], name: str, options: Options) -> None:
        is_async = inspect.iscoroutinefunction(_unwrap_descriptor(wrapped))
        router = Router(name, options, is_async=is_async)
        shell = _async_shell(router) if is_async else _sync_shell(router)
        super().__init__(wrapped, shell, enabled=router.enabled)
        self._self_router = router
        self._self_is_async = is_async

    def simplified(self, function: F) -> F:
        """Register the simplified implementation (use as a decorator); returns it unchanged."""
        target = _unwrap_descriptor(function)
        if not callable(target):
            raise MigrationDefinitionError(
                f"{self._self_router.name!r}: the simplified implementation must be callable"
            )
        if inspect.iscoroutinefunction(target) != self._self_is_async:
            kinds = ("async", "sync") if self._self_is_async else ("sync", "async")
            raise MigrationDefinitionError(
                f"migration {self._self_router.name!r}: the legacy implementation is {kinds[0]} "
                f"but the simplified one is {kinds[1]}; make them both sync or both async"
            )
        self._self_router.simplified = target
        self._self_router.simplified_is_bound = inspect.ismethod(target) and not isinstance(
            target.__self__, type
        )
        return function

    @property
    def migration_name(self) -> str:
        return str(self._self_router.name)

    @property
    def options(self) -> Options:
        return self._self_router.options

    @property
    def legacy(self) -> Callable[P, R]:
        return self.__wrapped__

    @property
    def simplified_implementation(self) -> Callable[..., Any] | None:
        return self._self_router.simplified

    def with_options(self, **changes: Any) -> MigratedFunction[P, R]:
        """A new routed function with the same implementations and ``changes`` to its options."""
        clone: MigratedFunction[P, R] = MigratedFunction(
            self.__wrapped__, self.migration_name, dataclasses.replace(self.options, **changes)
        )
        if self.simplified_implementation is not None:
            clone.simplified(self.simplified_implementation)
        return clone


def migrated(
    name: str,
    *,
    key: Callable[..., object] | None = None,
    comparator: Comparator = deep_compare,
    writes: bool = False,
    shadow_writes: bool = False,
    fallback_writes: bool = False,
    shadow_timeout: float = 5.0,
    copy_args: bool = True,
    hooks: Any = None,
    tracer_provider: Any = None,
    meter_provider: Any = None,
    run_if: Callable[..., bool] | None = None,
    clean: Callable[[Any], Any] | None = None,
    ignore: Any = (),
    capture: bool = False,
    redact: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    dual_write: bool = False,
) -> Callable[[Callable[P, R]], MigratedFunction[P, R]]:
    """Route calls of the decorated (legacy) function by migration ``name``'s phase.

    Register the simplified implementation with ``@fn.simplified``. Every call is routed per
    the current phase and rollout, traced as ``migrate <name>`` and counted in the
    ``aurum.migration.*`` metrics. See :class:`Options` for the keyword arguments.

    Raises:
        MigrationDefinitionError: the name is not a valid migration name (lower-case ASCII
            letters, digits and ``_``, starting with a letter, at most 63 characters: see
            :mod:`aurum_otel.names`), or the options cannot work (reported at decoration time).
    """
    try:
        check_name(name)
    except ConfigurationError as exc:
        raise MigrationDefinitionError(str(exc)) from None
    options = Options(
        key=key, comparator=comparator, writes=writes, shadow_writes=shadow_writes,
        fallback_writes=fallback_writes, shadow_timeout=shadow_timeout, copy_args=copy_args, hooks=hooks,
        tracer_provider=tracer_provider, meter_provider=meter_provider, run_if=run_if,
        clean=clean, ignore=ignore, capture=capture, redact=redact, dual_write=dual_write,
    )

    def decorate(function: Callable[P, R]) -> MigratedFunction[P, R]:
        return MigratedFunction(function, name, options)

    return decorate


def _unwrap_descriptor(function: Any) -> Any:
    if isinstance(function, classmethod | staticmethod):
        return function.__func__
    return function


__all__ = ["MigratedFunction", "Options", "migrated", "routing_key"]
