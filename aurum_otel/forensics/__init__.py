"""Mismatch forensics: captured examples, signatures, replay and export to pytest (issue 15)."""
