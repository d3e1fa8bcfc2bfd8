"""``mismatches`` and ``replay``: from captured mismatch examples to a fix and a regression test."""

from __future__ import annotations
