# groundup: `make test` and `make run` bootstrap .venv/ on a machine with only Python 3.10+ and make.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: test run bench data clean

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
	$(BIN)/python -m pytest benchmarks/bench_ops.py -q -p no:cacheprovider --benchmark-only \
		--benchmark-autosave --benchmark-storage=file://results/benchmarks \
		--benchmark-columns=median,iqr,rounds --benchmark-sort=name
	$(BIN)/python -m benchmarks.bench_report results/benchmarks

clean:
	rm -rf $(VENV) .pytest_cache
