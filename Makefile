.PHONY: demo test unit bench rules clean mutation

# Set up and run the main job: the demo, on embedded defaults (sqlite, a temporary state dir).
demo:
	bash scripts/setup.sh
	.venv/bin/aurum-migrate demo

# Set up and pass every check and test, with the real servers (see scripts/test.sh).
test:
	bash scripts/test.sh

# Only the fast tests that need no server.
unit:
	AURUM_SKIP_SERVERS=1 bash scripts/test.sh tests/unit

bench:
	bash scripts/setup.sh bench
	.venv/bin/python benchmarks/run.py

# Mutation testing (mutmut) of the modules that hold the promises; slow, never part of `test`.
# MODULES="router shadow" limits it; scores in .mutation/scores.txt (see scripts/mutation.sh).
mutation:
	bash scripts/mutation.sh $(MODULES)

rules:
	.venv/bin/aurum-migrate rules -o collector-config/aurum-rules.yml

clean:
	rm -rf .venv .pytest_cache .mypy_cache .ruff_cache
