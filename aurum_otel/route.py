"""One decorated function's route: its options, its routing key, and the :class:`Router` that
decides each call (phase, rollout, key -> :class:`~aurum_otel.router.Decision`) and hands it to an
:class:`~aurum_otel.invocation.Invocation`. The sync and async shells of ``@migrated`` share it.
"""

from __future__ import annotations

import contextvars
import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import aurum_otel.registry as _registry_module
from aurum_otel import nesting, semconv
from aurum_otel.compare import Comparator, deep_compare
from aurum_otel.errors import MigrationDefinitionError
from aurum_otel.invocation import Invocation
from aurum_otel.phase import Implementation, Phase, PhaseState
from aurum_otel.registry import Resolved, generation, get_registry
from aurum_otel.router import context_id, decide, key_digest, with_shadow, without_shadow
from aurum_otel.shadow import InlineExecutor, ShadowScope
from aurum_otel.telemetry import Instruments

logger = logging.getLogger("aurum_otel")


_routing_key: contextvars.ContextVar[object | None] = contextvars.ContextVar(
    "aurum_otel_routing_key", default=None
)


class routing_key:
    """Route the calls made inside the block by ``key`` (sticky: same key, same implementation)."""

    __slots__ = ("_key", "_token")

    def __init__(self, key: object) -> None:
        self._key = key

    def __enter__(self) -> object:
        self._token = _routing_key.set(self._key)
        return self._key

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        _routing_key.reset(self._token)


@dataclass(frozen=True, slots=True)
class Options:
    """How one decorated function is routed (immutable; see ``fn.options`` and ``fn.with_options``).

    Attributes:
        key: extracts the routing key from the call's arguments (same signature as the function,
            without ``self``); default: the ``routing_key`` context, else split per call.
        comparator: judges the shadow's result against the authoritative one.
        writes: the function writes; it is never shadowed unless ``shadow_writes``, and a
            failed simplified write never falls back to legacy unless ``fallback_writes``.
        shadow_writes: shadow this writing function anyway (the shadow must be side-effect free).
        fallback_writes: the write is idempotent: in hybrid with fallback, legacy may run it
            again after simplified raised (which may be after simplified committed).
        shadow_timeout: seconds after which a shadow counts as ``timeout``.
        copy_args: give the shadow deep copies of the arguments and of the authoritative result,
            so neither side can see the other's mutations.
        hooks: a :class:`~aurum_otel.hooks.MigrationHooks` for mismatches and fallbacks.
        tracer_provider: default: the registry's, else the global one.
        meter_provider: default: the registry's, else the global one.
        run_if: decides per call whether to shadow it (same signature as the function, without
            ``self``); ``False`` or raising: no shadow (Scientist's ``run_if``).
        clean: normalises each result before it is compared and reported (both sides; e.g.
            drop a timestamp); raising makes the comparison an ``error``.
        ignore: predicates ``(authoritative, shadow) -> bool`` over the cleaned results; a
            difference any of them accepts is counted ``ignored`` (known and accepted, never a
            mismatch for health) instead of ``mismatch`` (Scientist's ``ignore``).
        capture: keep each mismatch's (and shadow error's) inputs and both results, redacted,
            for ``aurum-migrate mismatches``/``replay`` (also ``AURUM_MIGRATION_<NAME>_CAPTURE``).
        redact: a hook ``(example dict) -> example dict`` applied to a captured example before
            it leaves the process, after the built-in redaction of secret-looking keys.
        dual_write: the two implementations write to two different stores (a data migration):
            in hybrid every call writes to both, the authoritative first, then the other before
            the call returns; the other's failure is counted and reported, never raised.
            Implies ``writes``.
    """

    key: Callable[..., object] | None = None
    comparator: Comparator = deep_compare
    writes: bool = False
    shadow_writes: bool = False
    fallback_writes: bool = False
    shadow_timeout: float = 5.0
    copy_args: bool = True
    hooks: Any = None
    tracer_provider: Any = None
    meter_provider: Any = None
    run_if: Callable[..., bool] | None = None
    clean: Callable[[Any], Any] | None = None
    ignore: tuple[Callable[[Any, Any], bool], ...] = ()
    capture: bool = False
    redact: Callable[[dict[str, Any]], dict[str, Any]] | None = None
    dual_write: bool = False

    def __post_init__(self) -> None:
        if self.dual_write:
            object.__setattr__(self, "writes", True)
        if callable(self.ignore):  # one predicate given as it is
            object.__setattr__(self, "ignore", (self.ignore,))
        else:
            object.__setattr__(self, "ignore", tuple(self.ignore))
        for name in ("run_if", "clean"):
            if getattr(self, name) is not None and not callable(getattr(self, name)):
                raise MigrationDefinitionError(f"{name}= must be a callable")
        if not all(callable(predicate) for predicate in self.ignore):
            raise MigrationDefinitionError(
                "ignore= must be a callable (authoritative, shadow) -> bool, or a sequence of them")
        if self.shadow_timeout <= 0:
            raise MigrationDefinitionError(
                f"shadow_timeout must be a positive number of seconds, not {self.shadow_timeout!r}"
            )
        if self.key is not None and not callable(self.key):
            raise MigrationDefinitionError("key= must be a callable taking the call's arguments")

    @property
    def shadow_allowed(self) -> bool:
        return not self.writes or self.shadow_writes or self.dual_write

    @property
    def fallback_allowed(self) -> bool:
        return not self.writes or self.fallback_writes


class Router:
    """Carries out decisions for one decorated function; the sync and async shells share it."""

    def __init__(self, name: str, options: Options, *, is_async: bool) -> None:
        self.name = name
        self.options = options
        self.is_async = is_async
        self.span_name = semconv.SPAN_MIGRATE.format(name=name)
        self.shadow_span_name = semconv.SPAN_SHADOW.format(name=name)
        self.simplified: Callable[..., Any] | None = None
        self.simplified_is_bound = False
        self.scope: ShadowScope | None = None  # a routed client's shadows, drained at close()
        self._key_warned = False
        self._generation = -1

    def bind(self) -> None:
        """(Re)attach to the registry after a configure/reset."""
        registry = get_registry()
        self.runtime = registry.migration(self.name)
        self.instruments: Instruments = registry.instruments(
            self.options.tracer_provider, self.options.meter_provider
        )
        # A dual write's second write completes before the call returns (on its own thread).
        self.shadows = InlineExecutor() if self.options.dual_write else registry.shadows
        self.mismatch_log = registry.mismatch_log
        self.rand = registry.rand
        self.context_secret = registry.context_secret
        self._context_ids: dict[int, str] = {}
        self._touched: Phase | None = None
        self._hint: Resolved | None = None
        self._generation = generation()

    def enabled(self) -> bool:
        """Whether calls need the shell at all: not when monitoring is off and legacy serves all.

        wrapt asks this before every call and, when it is ``False``, calls the legacy function
        directly, so a migration with monitoring off costs about what a plain decorator does.
        """
        if self._generation != _registry_module._generation:
            self.bind()
        runtime = self.runtime
        self._hint = runtime.resolved()
        return runtime.needs_shell

    def begin(
        self, wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> Invocation | Callable[..., Any]:
        """Decide this call: an :class:`Invocation`, or the target to call as it is (monitoring
        off and legacy serving, or a call nested in a routed call of the same migration)."""
        outer = nesting.current(self.name)
        if outer is not None:  # recursion: follow the outer call, neither re-routed nor shadowed
            return self.target(outer, wrapped, instance)
        if self._generation != _registry_module._generation:
            self.bind()
            resolved = self.runtime.resolved()
        else:
            # wrapt asked enabled() just before this call: reuse what it resolved (on any thread,
            # the same migration's state as of a moment ago) instead of resolving twice.
            resolved = self._hint or self.runtime.resolved()
        state = resolved.state
        if state.phase is not self._touched and resolved.monitoring:
            self._touched = state.phase
            self.instruments.aggregator.touch(self.name, state.phase)
        if self.simplified is None:
            state = NO_SIMPLIFIED
        key = self._key(args, kwargs)
        digest = None
        if key is not None and state.phase is Phase.HYBRID:
            digest = self._digest(key)
            if digest is None:
                key = None
        decision = decide(
            state,
            name=self.name,
            key=key,
            rand=self.rand,
            shadow_allowed=self.options.shadow_allowed and resolved.monitoring,
            digest=digest,
        )
        if digest is not None and resolved.monitoring:
            self.instruments.aggregator.record_key(
                self.name, state.rollout.percent,
                decision.authoritative is Implementation.SIMPLIFIED, digest, state.since)
        if self.options.dual_write and decision.phase is Phase.HYBRID:
            # Every write goes to both stores, monitored or not: it is the data, not telemetry.
            decision = with_shadow(decision)
        elif not resolved.monitoring and decision.authoritative is Implementation.LEGACY:
            return wrapped
        elif decision.shadow is not None and self.options.run_if is not None and not self._run_if(
                args, kwargs):
            decision = without_shadow(decision)
        return Invocation(self, decision, state, wrapped, instance, args, kwargs,
                          monitored=resolved.monitoring, is_async=self.is_async, digest=digest)

    def target(
        self, implementation: Implementation, wrapped: Callable[..., Any], instance: Any
    ) -> Callable[..., Any]:
        if implementation is Implementation.LEGACY or self.simplified is None:
            return wrapped
        if instance is None or self.simplified_is_bound:
            # A bound simplified (a client's method) already carries its own instance.
            return self.simplified
        return functools.partial(self.simplified, instance)

    def copies_instance(self, instance: Any) -> bool:
        """Whether a shadow of this call needs its own copy of ``instance`` (a method's
        ``self``; a class is shared, a client's bound simplified carries its own object)."""
        return (instance is not None and not isinstance(instance, type)
                and not self.simplified_is_bound)

    def _run_if(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> bool:
        try:
            return bool(self.options.run_if(*args, **kwargs))  # type: ignore[misc]
        except Exception:
            logger.warning("run_if of %r raised; this call is not shadowed", self.name,
                           exc_info=True)
            return False

    def _digest(self, key: object) -> int | None:
        """The key's digest, or ``None`` when the key cannot be spelt (its ``__format__``
        raised): that call is routed per call, never failed."""
        try:
            return key_digest(self.name, key)
        except Exception:
            if not self._key_warned:  # once per migration: a bad key type is every call's
                self._key_warned = True
                logger.warning("the routing key of %r (a %s) cannot be formatted as text; "
                               "routing per call", self.name, type(key).__name__, exc_info=True)
            return None

    def context_id(self, digest: int) -> str:
        """The hashed ``feature_flag.context.id`` of the routing key with ``digest`` (the last
        :data:`CONTEXT_IDS_KEPT` keys' are kept: a sticky key's calls hash it once)."""
        ids = self._context_ids
        found = ids.get(digest)
        if found is None:
            if len(ids) >= CONTEXT_IDS_KEPT:
                ids.clear()
            found = ids[digest] = context_id(digest, self.context_secret)
        return found

    def _key(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> object | None:
        extract = self.options.key
        if extract is None:
            return _routing_key.get()
        try:
            return extract(*args, **kwargs)
        except Exception:
            logger.warning("routing key extractor of %r raised; routing per call", self.name,
                           exc_info=True)
            return None


NO_SIMPLIFIED = PhaseState(source="no-simplified")
CONTEXT_IDS_KEPT = 4096


def context_id_of(name: str, key: object) -> str:
    """The ``feature_flag.context.id`` this process gives the calls of migration ``name`` routed
    by ``key``: to find a key's spans (the same in every process whose
    ``AURUM_CONTEXT_ID_SECRET`` is the same)."""
    return context_id(key_digest(name, key), get_registry().context_secret)


__all__ = ["NO_SIMPLIFIED", "Options", "Router", "context_id_of", "routing_key"]
