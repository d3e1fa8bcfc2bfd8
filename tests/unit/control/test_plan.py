"""Plans from YAML: what they hold, which rules judge a step, and errors that say what to change."""

from __future__ import annotations

from pathlib import Path

import pytest

from aurum_otel import FileStore, Phase, Rollout, testing
from aurum_otel.control import DEFAULT_PLAN, Controller, Plan
from aurum_otel.control.plan import default_document
from aurum_otel.errors import ConfigurationError
from aurum_otel.health.policy import HealthPolicy
from aurum_otel.health.rules import leaves
from aurum_otel.health.stats import SideStats, WindowStats


def test_the_built_in_plan_as_a_document_is_the_built_in_plan() -> None:
    plan = Plan.from_document(default_document(300))
    assert [(s.phase, s.rollout) for s in plan.steps] == [(s.phase, s.rollout)
                                                          for s in DEFAULT_PLAN]
    assert all(step.bake == 300 for step in plan.steps)


def test_a_step_names_rules_of_the_policy_or_a_kind_with_its_defaults() -> None:
    policy = HealthPolicy.from_yaml("rules:\n  - error_rate: {max_rate: 0.02}\n")
    plan = Plan.from_yaml("steps:\n  - {percent: 10, rules: [error_rate, mismatch_rate]}\n",
                          policy)
    rules = plan.steps[0].rules
    assert rules is not None
    error_rate, mismatch = leaves(rules)
    assert error_rate == next(iter(leaves(policy.rules)))  # the policy's, with max_rate 0.02
    assert mismatch.name == "mismatch_rate"


@pytest.mark.parametrize(("text", "where", "hint"), [
    ("steps: []", "steps", "non-empty list"),
    ("steps:\n  - {phase: legacy}", "steps[0].phase", "legacy is where every plan starts"),
    ("steps:\n  - {compare: 10}", "steps[0].percent", "every hybrid step names its percent"),
    ("steps:\n  - {phase: simplified, percent: 100}", "steps[0].percent", "only hybrid"),
    ("steps:\n  - {percent: 101}", "steps[0].percent", "from 0 to 100"),
    ("steps:\n  - {percent: 10, bake: -1}", "steps[0].bake", "from 0"),
    ("steps:\n  - {percent: 10, pause: yes please}", "steps[0].pause", "true or false"),
    ("steps:\n  - {phase: simplified}\n  - {percent: 50}", "steps[1]", "higher percent"),
    ("steps:\n  - {percent: 10, rules: [latency, nope]}", "steps[0].rules[1]", "error_rate"),
    ("steps:\n  - {percent: 10}\nwebhooks: {confirm: {url: ftp://x}}", "webhooks.confirm.url",
     "http://"),
    ("steps:\n  - {percent: 10}\nwebhooks: {notify: [{url: 'http://x', events: [oops]}]}",
     "webhooks.notify[0].events", "waiting_for_approval"),
    ("stepz: []", "stepz", "top-level keys"),
    ("- 1", "plan", "a mapping"),
])
def test_a_bad_plan_names_the_field_and_what_would_work(text: str, where: str, hint: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        Plan.from_yaml(text + "\n")
    assert where in str(caught.value) and hint in str(caught.value)


def test_a_missing_plan_file_says_so(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="a readable YAML plan file"):
        Plan.from_yaml(tmp_path / "nope.yml")


class Source:
    """10 % simplified errors against 0 % legacy, and every comparison a match."""

    name = "test"

    def stats(self, migration: str, window: float) -> WindowStats:
        return WindowStats(migration, window, legacy=SideStats(500, 0),
                           simplified=SideStats(500, 50), matches=500)


def test_the_step_s_rules_judge_the_step(tmp_path: Path) -> None:
    store = FileStore.in_dir(tmp_path)
    store.transition("svc", Phase.HYBRID, Rollout(10, 25), actor="t", reason="t")
    plan = Plan.from_yaml("steps:\n  - {percent: 0}\n  - {percent: 10, rules: [mismatch_rate]}\n"
                          "  - {percent: 50}\n")
    with testing.capture(store=store):
        lenient = Controller("svc", store=store, source=Source(), plan=plan, bake=0).tick()
        store.transition("svc", Phase.HYBRID, Rollout(0, 100), actor="t", reason="t")
        strict = Controller("svc", store=store, source=Source(), plan=plan, bake=0).tick()
    # At 10 % only the mismatch rate judges: healthy despite the errors; at 0 %, all rules do.
    assert lenient.action == "advanced", lenient.message
    assert strict.verdict.status.value == "unhealthy"
