"""What a rollout's control keeps beside the phase store: pauses, gate releases, waits, the plan.

``aurum-migrate pause``/``resume``/``approve`` run in other processes than ``watch``, and a
restarted ``watch`` must find them, so this state lives with the phase store: a
``control.json`` beside the file store's state file (same lock, atomic replace, 0600), or a
``<prefix>:control:<name>`` key on the Redis store's server.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

from aurum_otel.errors import StateError
from aurum_otel.stores.files import check_trusted_dir, locked, read_json, write_json_atomic

CONTROL_FILE = "control.json"


@dataclass(frozen=True, slots=True)
class Mark:
    """Who did something, why and when (Unix seconds)."""

    by: str
    reason: str
    at: float

    def to_dict(self) -> dict[str, Any]:
        return {"by": self.by, "reason": self.reason, "at": self.at}

    @classmethod
    def from_dict(cls, data: Any) -> Mark | None:
        if not isinstance(data, Mapping):
            return None
        return cls(str(data.get("by", "")), str(data.get("reason", "")),
                   float(data.get("at", 0.0)))


@dataclass(frozen=True)
class ControlState:
    """One migration's control state.

    Attributes:
        paused: a hold put by ``aurum-migrate pause`` (lasts until ``resume``).
        released: gates (``pause``, ``approve``) released for the step begun by
            ``released_for`` (a transition id): resuming or approving lets *the next* step in.
        waiting: the gate the controller waits at (``pause``, ``approve``, ``confirm``), with the
            step it would enter; kept so that ``plan show`` can say it and an event is sent once.
        plan: the plan document ``watch --plan`` runs (``None``: the built-in plan).
        verdicts: the verdict history (see :mod:`aurum_otel.control.verdicts`), oldest first.
    """

    paused: Mark | None = None
    released_for: str | None = None
    released: Mapping[str, Mark] = field(default_factory=dict)
    waiting: Mapping[str, Any] | None = None
    plan: Mapping[str, Any] | None = None
    plan_source: str = "built-in"
    verdicts: tuple[Mapping[str, Any], ...] = ()

    def released_gate(self, gate: str, transition_id: str) -> Mark | None:
        return self.released.get(gate) if self.released_for == transition_id else None

    def release(self, gate: str, transition_id: str, mark: Mark) -> ControlState:
        kept = dict(self.released) if self.released_for == transition_id else {}
        return replace(self, released_for=transition_id, released={**kept, gate: mark})

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {}
        if self.paused is not None:
            data["paused"] = self.paused.to_dict()
        if self.released_for is not None:
            data["released_for"] = self.released_for
            data["released"] = {k: v.to_dict() for k, v in self.released.items()}
        if self.waiting is not None:
            data["waiting"] = dict(self.waiting)
        if self.plan is not None:
            data["plan"] = dict(self.plan)
            data["plan_source"] = self.plan_source
        if self.verdicts:
            data["verdicts"] = [dict(v) for v in self.verdicts]
        return data

    @classmethod
    def from_dict(cls, data: Any) -> ControlState:
        if not isinstance(data, Mapping):
            return cls()
        released = data.get("released")
        marks = {str(k): m for k, v in (released.items() if isinstance(released, Mapping) else ())
                 if (m := Mark.from_dict(v)) is not None}
        waiting = data.get("waiting")
        plan = data.get("plan")
        verdicts = data.get("verdicts")
        return cls(Mark.from_dict(data.get("paused")),
                   str(data["released_for"]) if data.get("released_for") is not None else None,
                   marks, dict(waiting) if isinstance(waiting, Mapping) else None,
                   dict(plan) if isinstance(plan, Mapping) else None,
                   str(data.get("plan_source", "built-in")),
                   tuple(dict(v) for v in verdicts if isinstance(v, Mapping))
                   if isinstance(verdicts, list) else ())


class ControlStore(Protocol):
    """Where control state is kept."""

    @property
    def location(self) -> str: ...

    def load(self, name: str) -> ControlState: ...

    def update(self, name: str, change: Callable[[ControlState], ControlState]) -> ControlState:
        """Apply ``change`` atomically (no update between another process's read and write)."""
        ...


class FileControlStore:
    """Control state in ``control.json`` in the state directory."""

    def __init__(self, directory: Path) -> None:
        self.path = Path(directory) / CONTROL_FILE

    @property
    def location(self) -> str:
        return str(self.path)

    def _all(self) -> dict[str, Any]:
        try:
            return read_json(self.path) or {}
        except StateError:
            raise
        except (OSError, ValueError) as exc:
            raise StateError(f"cannot read {self.path} ({exc}); move it aside to start the "
                             "control state afresh", path=str(self.path)) from None

    def load(self, name: str) -> ControlState:
        return ControlState.from_dict(self._all().get(name))

    def update(self, name: str, change: Callable[[ControlState], ControlState]) -> ControlState:
        check_trusted_dir(self.path.parent)
        with locked(self.path):
            everything = self._all()
            state = change(ControlState.from_dict(everything.get(name)))
            everything[name] = state.to_dict()
            write_json_atomic(self.path, everything)
        return state


class RedisControlStore:
    """Control state under ``<prefix>:control:<name>`` (a JSON string, changed optimistically)."""

    def __init__(self, client: Any, prefix: str = "aurum", location: str = "redis") -> None:
        self.client, self.prefix, self._location = client, prefix, location

    @property
    def location(self) -> str:
        return self._location

    def key(self, name: str) -> str:
        return f"{self.prefix}:control:{name}"

    def load(self, name: str) -> ControlState:
        raw = self.client.get(self.key(name))
        return ControlState.from_dict(json.loads(raw) if raw else None)

    def update(self, name: str, change: Callable[[ControlState], ControlState]) -> ControlState:
        key = self.key(name)

        def run(pipe: Any) -> ControlState:
            raw = pipe.get(key)
            state = change(ControlState.from_dict(json.loads(raw) if raw else None))
            pipe.multi()
            pipe.set(key, json.dumps(state.to_dict()))
            return state

        result: ControlState = self.client.transaction(run, key, value_from_callable=True)
        return result


class MemoryControlStore:
    """Control state in this process only (tests, and stores that cannot keep it)."""

    location = "memory"

    def __init__(self) -> None:
        self._states: dict[str, ControlState] = {}
        self._lock = threading.Lock()

    def load(self, name: str) -> ControlState:
        with self._lock:
            return self._states.get(name, ControlState())

    def update(self, name: str, change: Callable[[ControlState], ControlState]) -> ControlState:
        with self._lock:
            state = self._states[name] = change(self._states.get(name, ControlState()))
            return state
