"""Where phases live: one module per concept, every arrow pointing down.

``base`` (the PhaseSource/PhaseStore protocols and do-nothing bases) and ``model`` (records,
transitions, snapshots) are the floor; ``files`` holds the file primitives; the backends build on
those only: ``file`` (the default), ``redis`` (+ ``redis_codec``, ``redis_transitions``,
``redis_reader``, ``redis_connection``) and ``openfeature`` (+ ``openfeature_flags``,
``openfeature_overrides``). ``url`` alone knows every backend: it turns ``AURUM_STATE_URL`` into a
store, importing an optional backend only when the URL names it.

``aurum_otel.store``, ``aurum_otel.redis_store`` and ``aurum_otel.openfeature_source`` re-export the
public names (the import paths users already have).
"""
