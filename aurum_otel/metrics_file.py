"""Deprecated: the metrics file moved to :mod:`aurum_otel.guide.metrics_file` (the writer) and
:mod:`aurum_otel.guide.file_source` (the file as this process sees it). Kept for old imports."""

from aurum_otel.guide.file_source import (
    FILE_NAME,
    FileHealthSource,
    current_step,
    default_path,
    read_metrics_file,
    section_name,
)
from aurum_otel.guide.metrics_file import MetricsFileWriter, empty_section, merge

__all__ = ["FILE_NAME", "FileHealthSource", "MetricsFileWriter", "current_step", "default_path",
           "empty_section", "merge", "read_metrics_file", "section_name"]
