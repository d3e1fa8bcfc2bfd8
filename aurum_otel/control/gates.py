"""What holds a healthy, baked step from advancing: a pause, an approval gate, the confirmation hook.

Gates only ever hold an advance; a rollback on unhealthy verdicts goes through whatever they say.
Each wait is written once to the control state (so ``plan show`` can say it) and announced once
to the notification hooks.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from aurum_otel.control.state import ControlState, Mark
from aurum_otel.control.transitions import Tick
from aurum_otel.control.webhooks import Confirmer, Notifier
from aurum_otel.errors import AurumOtelError
from aurum_otel.health.verdict import Verdict
from aurum_otel.store import MigrationRecord, Transition

if TYPE_CHECKING:
    from aurum_otel.control.controller import Controller

logger = logging.getLogger("aurum_otel.control")

_GATE_EVENT = {"pause": "paused", "approve": "waiting_for_approval"}
_PASS_EVENT = {"pause": "resumed", "approve": "approved"}
_GATE_HINT = {"pause": "`aurum-migrate resume {name}` lets it in",
              "approve": "`aurum-migrate approve {name} --reason ...` lets it in"}


class Gates:
    """The gates of one controller."""

    def __init__(self, controller: Controller, confirmer: Confirmer | None,
                 notifier: Notifier | None) -> None:
        self.controller = controller
        self.confirmer = confirmer
        self.notifier = notifier
        self._state = ControlState()

    @property
    def name(self) -> str:
        return self.controller.name

    def payload(self, record: MigrationRecord, verdict: Verdict | None, message: str,
                change: Transition | None = None, index: int | None = None) -> dict[str, Any]:
        plan = self.controller.plan
        body: dict[str, Any] = {
            "migration": self.name, "at": self.controller.wall_clock(),
            "phase": record.phase.value, "percent": record.rollout.percent,
            "compare": record.rollout.compare, "message": message,
        }
        if index is not None and 0 <= index < len(plan):
            body["next_step"] = {"index": index, "label": plan[index].label}
        if verdict is not None:
            body["verdict"] = {"status": verdict.status.value, "reasons": list(verdict.reasons)}
        if change is not None:
            body["transition"] = change.to_dict()
        return body

    def event(self, event: str, record: MigrationRecord, verdict: Verdict | None, message: str,
              change: Transition | None = None, index: int | None = None,
              mark: Mark | None = None) -> None:
        if self.notifier is None:
            return
        body = self.payload(record, verdict, message, change, index)
        if mark is not None:
            body["by"], body["reason"] = mark.by, mark.reason
        self.notifier.notify(event, body)

    def _load(self) -> ControlState | str:
        try:
            self._state = self.controller.control.load(self.name)
        except AurumOtelError as exc:
            return (f"cannot read the control state ({exc}); holding the step: a pause or a gate "
                    "may be set")
        return self._state

    def _set_waiting(self, waiting: dict[str, Any] | None) -> bool:
        """Record the wait; ``True`` when it is new (so its event is sent once)."""
        current = self._state.waiting
        same = (current is None and waiting is None) or (
            current is not None and waiting is not None
            and all(current.get(k) == v for k, v in waiting.items() if k != "since"))
        if same:
            return False
        try:
            self._state = self.controller.control.update(
                self.name, lambda state: replace(state, waiting=waiting))
        except AurumOtelError as exc:
            logger.warning("migration %s: could not record the wait in the control state (%s)",
                           self.name, exc)
        return True

    def paused(self, record: MigrationRecord, verdict: Verdict) -> Tick | None:
        """A hold put by ``aurum-migrate pause``, or ``None``."""
        state = self._load()
        if isinstance(state, str):
            return Tick(verdict, "held", state)
        if state.paused is not None:
            mark = state.paused
            if self._set_waiting({"gate": "hold", "transition_id": record.transition_id,
                                  "since": self.controller.wall_clock()}):
                self.event("paused", record, verdict, f"paused by {mark.by}: {mark.reason}",
                           mark=mark)
            return Tick(verdict, "paused", f"paused by {mark.by}: {mark.reason}; "
                                           f"`aurum-migrate resume {self.name}` releases it")
        if state.waiting is not None and state.waiting.get("gate") == "hold":
            self._set_waiting(None)
            self.event("resumed", record, verdict, "resumed")
        return None

    def before(self, record: MigrationRecord, verdict: Verdict, index: int) -> Tick | None:
        """The gate that holds the advance into step ``index``, or ``None`` when it may go."""
        step = self.controller.plan[index]
        for gate in step.gates:
            if self._state.released_gate(gate, record.transition_id) is None:
                waiting = {"gate": gate, "step": index, "transition_id": record.transition_id,
                           "since": self.controller.wall_clock()}
                message = (f"waiting before {step.label} ({gate} gate): "
                           + _GATE_HINT[gate].format(name=self.name))
                if self._set_waiting(waiting):
                    self.event(_GATE_EVENT[gate], record, verdict, message, index=index)
                return Tick(verdict, "paused" if gate == "pause" else "waiting", message)
        if self.confirmer is not None:
            body = self.payload(record, verdict, f"confirm the advance to {step.label}",
                                index=index)
            answer = self.confirmer.confirm({"event": "confirm_advance", **body})
            if not answer.confirmed:
                self._set_waiting({"gate": "confirm", "step": index,
                                   "transition_id": record.transition_id,
                                   "since": self.controller.wall_clock()})
                return Tick(verdict, "held", f"before {step.label}: {answer.message}")
        return None

    def passed(self, record: MigrationRecord, verdict: Verdict, change: Transition,
               index: int) -> None:
        """Announce the advance (and the gates it went through) and forget the wait."""
        for gate in self.controller.plan[index].gates:
            mark = self._state.released_gate(gate, record.transition_id)
            if mark is not None:
                self.event(_PASS_EVENT[gate], record, verdict, f"{gate} gate released by "
                           f"{mark.by}: {mark.reason}", index=index, mark=mark)
        self.event("transition", record, verdict, change.reason, change, index)
        self._set_waiting(None)
