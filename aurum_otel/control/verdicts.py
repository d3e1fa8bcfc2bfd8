"""Verdict history: the verdicts a controller judged, kept with the phase store.

Every verdict the controller acts on (an advance, a rollback) is kept, with the ids of the
verdicts that led to it (the unhealthy streak behind a rollback, the healthy bake behind an
advance) and the id of the transition it caused; the others are kept too, bounded: when the
history is full the oldest verdict nobody acted on goes first. ``aurum-migrate verdicts NAME``
shows them.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from typing import Any

from aurum_otel.health.verdict import Verdict

MAX_KEPT = 200
ACTED = frozenset({"advanced", "rolled_back"})
STREAK_KEPT = 20  # at most this many earlier verdicts named as a cause


def entry(verdict: Verdict, *, action: str, message: str, at: float,
          transition_id: str | None, caused_by: Sequence[str]) -> dict[str, Any]:
    """One verdict as it is kept: what was judged, on which figures, and what it led to."""
    return {
        "id": secrets.token_hex(6),
        "at": at,
        "status": verdict.status.value,
        "action": action,
        "message": message,
        "source": verdict.source,
        "transition_id": transition_id,
        "caused_by": list(caused_by),
        "results": [result.to_dict() for result in verdict.results],
    }


def causes(history: Sequence[Mapping[str, Any]], action: str) -> list[str]:
    """The ids of the verdicts behind ``action``: the run of the same status since the last one
    that differed (unhealthy for a rollback, healthy for an advance), newest last."""
    wanted = "unhealthy" if action == "rolled_back" else "healthy"
    run: list[str] = []
    for item in reversed(history):
        if item.get("status") != wanted or item.get("action") in ACTED:
            break
        run.append(str(item.get("id")))
        if len(run) >= STREAK_KEPT:
            break
    return list(reversed(run))


def appended(history: Sequence[Mapping[str, Any]], item: Mapping[str, Any],
             limit: int = MAX_KEPT) -> tuple[dict[str, Any], ...]:
    """``history`` with ``item`` at its end, at most ``limit`` long: the oldest verdict nobody
    acted on goes first, one that caused a transition only when nothing else is left."""
    kept = [dict(x) for x in history] + [dict(item)]
    while len(kept) > limit:
        for index, old in enumerate(kept):
            if old.get("action") not in ACTED:
                del kept[index]
                break
        else:
            del kept[0]
    return tuple(kept)
