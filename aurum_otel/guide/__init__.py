"""The Aurum migration guide's surface, on top of aurum-otel.

- :mod:`~aurum_otel.guide.metrics_file`: the guide's ``migration_metrics.json``, kept by a writer
  the registry owns (it takes its aggregator, phase lookup and path as arguments);
- :mod:`~aurum_otel.guide.file_source`: that file as this process sees it (path and steps from
  the registry), for the guide's functions and the CLI;
- :mod:`~aurum_otel.guide.api`: the guide's functions under the guide's names.

Nothing is imported here, so the writer (below the registry) and the rest (above it) each load
only what they need.
"""
