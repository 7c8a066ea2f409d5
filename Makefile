# Two commands matter: `make demo` and `make test`. Both set the machine up first (idempotent).
PYTHON := .venv/bin/python
PYTEST := $(PYTHON) -m pytest -n 2 -q

.PHONY: setup test test-all demo clean

setup:
	@bash scripts/setup.sh

test: setup
	$(PYTEST) -m "not slow"

test-all: setup
	$(PYTEST)

demo: setup
	.venv/bin/tinyml demo

clean:
	rm -rf build out .pytest_cache *.egg-info
	find toolchain tests -name __pycache__ -type d -prune -exec rm -rf {} +
