"""The pure routing core: from a phase, a rollout and a routing key to a :class:`Decision`.

Nothing here knows about wrapt, OpenTelemetry or the environment, so every branch can be tested
as a plain function.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass

from aurum_otel.phase import Implementation, Phase, PhaseState

BUCKETS = 10_000


@dataclass(frozen=True, slots=True)
class Decision:
    """What one call does.

    Attributes:
        phase: the phase in force.
        authoritative: the implementation whose result the caller gets.
        shadow: the implementation that also runs, off the request path, for comparison.
        fallback: if simplified is authoritative and raises, serve legacy instead.
    """

    phase: Phase
    authoritative: Implementation
    shadow: Implementation | None = None
    fallback: bool = False


# Every possible decision, built once: the call path allocates none.
_DECISIONS = {
    (phase, auth, shadow, fallback): Decision(phase, auth, shadow, fallback)
    for phase in Phase
    for auth in Implementation
    for shadow in (None, auth.other)
    for fallback in (False, True)
}
LEGACY = _DECISIONS[(Phase.LEGACY, Implementation.LEGACY, None, False)]
SIMPLIFIED = _DECISIONS[(Phase.SIMPLIFIED, Implementation.SIMPLIFIED, None, False)]


def key_digest(name: str, key: object) -> int:
    """A routing key's 64-bit digest within a migration: its bucket, and its identity when the
    distinct keys of a step are counted (the key itself is never kept)."""
    # surrogatepass: a key decoded with surrogateescape (os.fsdecode) is text too, and sticky
    digest = hashlib.blake2b(f"{name}\x00{key}".encode("utf-8", "surrogatepass"),
                             digest_size=8).digest()
    return int.from_bytes(digest, "big")


def context_id(digest: int, secret: bytes) -> str:
    """The hashed ``feature_flag.context.id`` of a routing key (by its :func:`key_digest`): a keyed
    hash, so a span never carries the key, nor anything a dictionary of likely keys can reverse
    without ``secret``."""
    return hashlib.blake2b(digest.to_bytes(8, "big"), key=secret, digest_size=8).hexdigest()


def secret_of(text: str | None) -> bytes:
    """The key of :func:`context_id` from ``AURUM_CONTEXT_ID_SECRET`` (any length), or a random
    one (this process only) when it is unset."""
    if not text:
        return secrets.token_bytes(32)
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=32).digest()


def bucket(name: str, key: object) -> int:
    """The sticky bucket (0-9999) of a routing key within a migration.

    A key is served by simplified when its bucket is below ``percent * 100``, so raising the
    percent only ever adds keys (monotonic), and the same key lands in the same bucket in every
    process (the hash is not Python's randomized ``hash``).
    """
    return key_digest(name, key) % BUCKETS


def decide(
    state: PhaseState,
    *,
    name: str,
    key: object | None,
    rand: Callable[[], float],
    shadow_allowed: bool = True,
    digest: int | None = None,
) -> Decision:
    """Route one call.

    Args:
        state: the resolved phase and rollout.
        name: the migration (salts the bucket, so migrations split independently).
        key: the routing key, or ``None`` to split per call.
        rand: a uniform [0, 1) source, injected for tests.
        shadow_allowed: ``False`` for writes that did not opt in to shadowing.
        digest: ``key_digest(name, key)`` when the caller computed it already.
    """
    phase = state.phase
    if phase is Phase.LEGACY:
        return LEGACY
    if phase is Phase.SIMPLIFIED:
        return SIMPLIFIED
    rollout = state.rollout
    threshold = rollout.percent * (BUCKETS / 100)
    if threshold <= 0:
        simplified = False
    elif threshold >= BUCKETS:
        simplified = True
    elif key is None:
        simplified = rand() * BUCKETS < threshold
    else:
        if digest is None:
            digest = key_digest(name, key)
        simplified = digest % BUCKETS < threshold
    authoritative = Implementation.SIMPLIFIED if simplified else Implementation.LEGACY
    shadow = None
    if shadow_allowed and rollout.compare > 0 and (
        rollout.compare >= 100 or rand() * 100 < rollout.compare
    ):
        shadow = authoritative.other
    return _DECISIONS[(phase, authoritative, shadow, rollout.fallback and simplified)]


def without_shadow(decision: Decision) -> Decision:
    """The same decision with no shadow (``run_if`` said no)."""
    return _DECISIONS[(decision.phase, decision.authoritative, None, decision.fallback)]


def with_shadow(decision: Decision) -> Decision:
    """The same decision with the other implementation as its shadow (a dual write)."""
    return _DECISIONS[(decision.phase, decision.authoritative, decision.authoritative.other,
                       decision.fallback)]
