"""aurum-otel's pytest plugin (test mode): see ``pytest --help`` under "aurum-otel"."""

from __future__ import annotations
