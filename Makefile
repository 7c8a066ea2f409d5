# Two commands matter: `make demo` and `make test`. Both set the machine up first (idempotent).
PYTHON := .venv/bin/python
PYTEST := $(PYTHON) -m pytest -n 2 -q

.PHONY: setup test test-all demo fuzz clean
FUZZ_SECONDS ?= 600

setup:
	@bash scripts/setup.sh

test: setup
	$(PYTEST) -m "not slow"

test-all: setup
	$(PYTEST)

demo: setup
	.venv/bin/tinyml demo

# Coverage-guided fuzzing of the loader and the compile path (atheris); findings go to tests/fuzz/corpus/.
fuzz: setup
	$(PYTHON) tests/fuzz/fuzz.py --seconds $(FUZZ_SECONDS)
	$(PYTHON) tests/fuzz/fuzz.py --summary

clean:
	rm -rf build out .pytest_cache *.egg-info
	find toolchain tests -name __pycache__ -type d -prune -exec rm -rf {} +
