"""The telemetry contract: every span, attribute and metric name aurum-otel emits.

These names are an API. Dashboards, generated Prometheus rules and users' queries depend on them;
change them only deliberately, together with the README and ``collector-config/``.
"""

from __future__ import annotations

from typing import Final

INSTRUMENTATION_SCOPE: Final = "aurum_otel"

# Spans
SPAN_MIGRATE: Final = "migrate {name}"
SPAN_SHADOW: Final = "shadow {name}"

# Span and metric attributes
ATTR_NAME: Final = "aurum.migration.name"
ATTR_PHASE: Final = "aurum.migration.phase"
ATTR_IMPLEMENTATION: Final = "aurum.migration.implementation"
ATTR_OUTCOME: Final = "aurum.migration.outcome"
ATTR_ROLE: Final = "aurum.migration.role"
ATTR_COMPARISON: Final = "aurum.migration.comparison"
ATTR_PHASE_SOURCE: Final = "aurum.migration.phase_source"
ATTR_CONFIG_ERROR: Final = "aurum.migration.config_error"
ATTR_FROM: Final = "aurum.migration.from"
ATTR_TO: Final = "aurum.migration.to"
ATTR_REASON: Final = "aurum.migration.reason"
ATTR_ACTOR: Final = "aurum.migration.actor"
ATTR_DIFFERENCES: Final = "aurum.migration.differences"
ATTR_PERCENT: Final = "aurum.migration.percent"
ATTR_COMPARE: Final = "aurum.migration.compare"
ATTR_PREFIX: Final = "aurum.migration."
SPAN_TRANSITION: Final = "transition {name}"
ATTR_COMPARISON_REASON: Final = "aurum.migration.comparison.reason"
# A shadow pair's sides: which failed (``none|legacy|simplified|both``), which took longer
# (``simplified|legacy|tie``)
ATTR_FAILED: Final = "aurum.migration.failed"
ATTR_SLOWER: Final = "aurum.migration.slower"
# The upper bound of a cumulative bucket, spelt as Prometheus spells it (``0.5``, ``+Inf``), so
# ``histogram_quantile`` reads the pair-ratio counter as a histogram
ATTR_LE: Final = "le"
EVENT_FALLBACK: Final = "aurum.migration.fallback"
ATTR_ERROR_TYPE: Final = "error.type"

# The OpenTelemetry feature-flag semantic conventions
EVENT_FEATURE_FLAG: Final = "feature_flag.evaluation"
ATTR_FF_KEY: Final = "feature_flag.key"
ATTR_FF_VARIANT: Final = "feature_flag.result.variant"
ATTR_FF_PROVIDER: Final = "feature_flag.provider.name"
ATTR_FF_REASON: Final = "feature_flag.result.reason"
ATTR_FF_CONTEXT_ID: Final = "feature_flag.context.id"  # a keyed hash of the routing key
FF_PROVIDER: Final = "aurum-otel"
FF_KEY: Final = "aurum.migration.{name}.phase"

EVENT_TRANSITION: Final = "aurum.migration.transition"

# Metrics (OTel name -> Prometheus name after the collector's translation)
METRIC_CALLS: Final = "aurum.migration.calls"  # aurum_migration_calls_total
# Latency is derived from the spans by the collector's span_metrics connector (see README):
# traces_span_metrics_duration_seconds_* with the aurum_migration_* dimensions. In process, the
# aggregator keeps the same buckets for health. (The name below labels that derived histogram.)
METRIC_DURATION: Final = "aurum.migration.duration"
METRIC_COMPARISONS: Final = "aurum.migration.comparisons"  # aurum_migration_comparisons_total
METRIC_TRANSITIONS: Final = "aurum.migration.transitions"  # aurum_migration_transitions_total
METRIC_ROLLOUT_PERCENT: Final = "aurum.migration.rollout.percent"  # aurum_migration_rollout_percent
# Distinct routing keys per implementation in the current step (a gauge, per process)
METRIC_ROUTING_KEYS: Final = "aurum.migration.routing.keys"  # aurum_migration_routing_keys
# Shadowed calls whose two sides finished, by which side failed and which was slower
METRIC_PAIRS: Final = "aurum.migration.pairs"  # aurum_migration_pairs_total
# The same pairs, cumulatively by simplified/legacy duration ratio: pairs whose ratio is <= le
METRIC_PAIR_RATIOS: Final = "aurum.migration.pair.ratios"  # aurum_migration_pair_ratios_total

# Prometheus names, for the PromQL health source and generated rules
PROM_CALLS: Final = "aurum_migration_calls_total"
PROM_DURATION_BUCKET: Final = "traces_span_metrics_duration_seconds_bucket"
PROM_COMPARISONS: Final = "aurum_migration_comparisons_total"
PROM_TRANSITIONS: Final = "aurum_migration_transitions_total"
PROM_ROLLOUT_PERCENT: Final = "aurum_migration_rollout_percent"
PROM_ROUTING_KEYS: Final = "aurum_migration_routing_keys"
PROM_PAIRS: Final = "aurum_migration_pairs_total"
PROM_PAIR_RATIOS: Final = "aurum_migration_pair_ratios_total"
PROM_LABEL_NAME: Final = "aurum_migration_name"
PROM_LABEL_IMPLEMENTATION: Final = "aurum_migration_implementation"
PROM_LABEL_OUTCOME: Final = "aurum_migration_outcome"
PROM_LABEL_ROLE: Final = "aurum_migration_role"
PROM_LABEL_COMPARISON: Final = "aurum_migration_comparison"
PROM_LABEL_PHASE: Final = "aurum_migration_phase"
PROM_LABEL_FAILED: Final = "aurum_migration_failed"
PROM_LABEL_SLOWER: Final = "aurum_migration_slower"
PROM_LABEL_LE: Final = "le"

# Explicit bucket boundaries (seconds) of the duration histogram, for p95 from the backend
DURATION_BUCKETS: Final = (
    0.0005, 0.001, 0.0025, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0,
    2.5, 5.0, 7.5, 10.0,
)
