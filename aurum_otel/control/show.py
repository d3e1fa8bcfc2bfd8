"""Plans as text: ``plan validate`` and ``plan show`` (lines of plain strings and styled parts)."""

from __future__ import annotations

import time
from collections.abc import Sequence

from aurum_otel.control.lease import Holder
from aurum_otel.control.plan import Plan, Step, plan_position
from aurum_otel.control.state import ControlState
from aurum_otel.health.rules import leaves
from aurum_otel.store import MigrationRecord

Part = str | tuple[str, str]


def _when(at: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(at))


def step_details(step: Step, default_bake: float | None) -> str:
    details = []
    bake = step.bake if step.bake is not None else default_bake
    if bake is not None:
        details.append(f"bake {bake:g} s")
    if step.rollout.fallback:
        details.append("fallback")
    if step.rules is not None:
        details.append("rules " + ", ".join(leaf.name for leaf in leaves(step.rules)))
    details.extend(f"{gate} gate" for gate in step.gates)
    return "; ".join(details)


def plan_lines(plan: Plan, *, position: int | None = None,
               default_bake: float | None = None) -> list[list[Part]]:
    """One line per step (``>`` marks ``position``), then the webhooks."""
    lines: list[list[Part]] = []
    for index, step in enumerate(plan.steps):
        here = position == index
        details = step_details(step, default_bake)
        lines.append([("> " if here else "  ", "bold"), f"{index}  ",
                      (step.label, "bold" if here else ""), f"  {details}" if details else ""])
    if plan.confirm is not None:
        lines.append([f"confirmation hook: {plan.confirm.url} (timeout "
                      f"{plan.confirm.timeout:g} s; no 2xx = wait)"])
    for hook in plan.notify:
        lines.append([f"notifications: {hook.url} ({', '.join(sorted(hook.events))})"])
    return lines


def status_lines(name: str, plan: Plan, record: MigrationRecord, state: ControlState,
                 holder: Holder | None, default_bake: float) -> list[list[Part]]:
    """Where ``name`` is in ``plan``, what comes next and what holds it."""
    steps: Sequence[Step] = plan.steps
    position = plan_position(steps, record.phase, record.rollout)
    lines: list[list[Part]] = [[("plan of ", ""), (name, "bold"), f" ({plan.source}): "
                                f"{record.phase.value} at {record.rollout.percent:g}%"
                                + (f" since {_when(record.updated_at)}" if record.updated_at
                                   else "")]]
    lines.extend(plan_lines(plan, position=position, default_bake=default_bake))
    if position + 1 >= len(steps):
        lines.append(["next: nothing (the plan's last step)"])
    else:
        step = steps[position + 1]
        waiting = state.waiting or {}
        gate = waiting.get("gate") if waiting.get("transition_id") == record.transition_id \
            else None
        if gate in ("pause", "approve") and waiting.get("step") == position + 1:
            what = "waiting for approval" if gate == "approve" else "paused by the plan"
            command = (f"aurum-migrate approve {name} --reason ..." if gate == "approve"
                       else f"aurum-migrate resume {name}")
            lines.append([f"next: {step.label}: ", (what, "yellow"),
                          f" since {_when(float(waiting.get('since', 0)))}; `{command}`"])
        elif gate == "confirm":
            lines.append([f"next: {step.label}: ", ("waiting for the confirmation hook", "yellow")])
        else:
            pending = [g for g in step.gates
                       if state.released_gate(g, record.transition_id) is None]
            tail = f" (then the {' and '.join(pending)} gate)" if pending else ""
            own = steps[position].bake if position >= 0 else None
            bake = default_bake if own is None else own
            lines.append([f"next: {step.label} when healthy for {bake:g} s{tail}"])
    if state.paused is not None:
        mark = state.paused
        lines.append([("paused", "yellow"), f" by {mark.by}: {mark.reason} "
                      f"({_when(mark.at)}); `aurum-migrate resume {name}` releases it"])
    lines.append(["watch: " + (f"held by {holder.describe()}" if holder else "no watch holds "
                                                                             "the lease")])
    return lines
