# groundup: `make test` and `make run` bootstrap .venv/ on a machine with only Python 3.10+ and make.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: test run bench results data clean

# The editable install is redone only when pyproject.toml changes.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

# MNIST is fetched and verified once, then cached where Keras looks for it.
data: $(STAMP)
	$(BIN)/groundup data

test: data
	$(BIN)/python -m pytest tests

run: data
	$(BIN)/groundup run --profile quick

# pytest-benchmark over every task x implementation; JSON, CSV and ratios in results/benchmarks/.
bench: data
	$(BIN)/python -m benchmarks.bench_report --run results/benchmarks

# Every experiment's full profile and the benchmarks into results/published/ (about an
# hour), then the README's Results section from them.
results: data
	$(BIN)/groundup publish

clean:
	rm -rf $(VENV) .pytest_cache
