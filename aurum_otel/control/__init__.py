"""Rollout control: the controller, plans and their gates, webhooks, leases.

``from aurum_otel.control import Controller, Step, DEFAULT_PLAN, ...`` keeps working: the parts
live in :mod:`~aurum_otel.control.controller`, :mod:`~aurum_otel.control.plan`,
:mod:`~aurum_otel.control.gates`, :mod:`~aurum_otel.control.state`,
:mod:`~aurum_otel.control.webhooks` and :mod:`~aurum_otel.control.lease`.
"""

from __future__ import annotations

from aurum_otel.control.backends import control_store_for, lease_for
from aurum_otel.control.controller import Controller
from aurum_otel.control.lease import FileLease, Holder, LeaseKeeper, LeaseLostError, RedisLease
from aurum_otel.control.plan import DEFAULT_PLAN, EVENTS, Plan, Step, Webhook, plan_position
from aurum_otel.control.state import ControlState, FileControlStore, Mark, MemoryControlStore
from aurum_otel.control.transitions import (
    DEFAULT_GIVE_UP_AFTER,
    MAX_RETRY_DELAY,
    EvaluationError,
    Tick,
    record_transition,
)
from aurum_otel.control.webhooks import Confirmation, Confirmer, Notifier

__all__ = [
    "DEFAULT_GIVE_UP_AFTER",
    "DEFAULT_PLAN",
    "EVENTS",
    "MAX_RETRY_DELAY",
    "Confirmation",
    "Confirmer",
    "ControlState",
    "Controller",
    "EvaluationError",
    "FileControlStore",
    "FileLease",
    "Holder",
    "LeaseKeeper",
    "LeaseLostError",
    "Mark",
    "MemoryControlStore",
    "Notifier",
    "Plan",
    "RedisLease",
    "Step",
    "Tick",
    "Webhook",
    "control_store_for",
    "lease_for",
    "plan_position",
    "record_transition",
]
