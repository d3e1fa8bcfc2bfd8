"""``python -m aurum_otel.cli``: the ``aurum-migrate`` command."""

from aurum_otel.cli import main

main()
