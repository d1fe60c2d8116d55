"""One new implementation is one class and one registry line: a NumPy network defined here,
under a name of its own, runs through every experiment with no edit elsewhere.

Every process of a run imports the registry afresh, so the test names this module in
GROUNDUP_IMPLEMENTATIONS, as a user's own package would be named; the registry loads it
last, so that it may import the registry's names."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.errors import UsageError
from benchmarks.implementations import SCRATCH
from benchmarks.implementations.base import Implementation, scratch_model


class PlainNumpy(Implementation):
    """scratch's network trained one batch at a time by its own train_step: the smallest
    implementation the harness takes."""

    name = "plain-numpy"
    description = f"NumPy, {SCRATCH}'s step called batch by batch"
    framework = "numpy"
    why_fast = "a loop over scratch's own step"

    def build(self, cfg, weights, dtype, seed):
        model = scratch_model(cfg, dtype, seed)
        model.set_weights(weights)
        return model

    def train(self, model, x, y, cfg, epochs, seed, monitor):
        from scratch import epoch_order

        batch = min(cfg.batch_size, len(x))
        monitor.start()
        for epoch in range(epochs):
            with monitor.paused():
                order = epoch_order(len(x), epoch, seed) if cfg.shuffle else np.arange(len(x))
            losses = [model.train_step(x[order[i:i + batch]], y[order[i:i + batch]])
                      for i in range(0, len(x), batch)]
            if monitor.batch_end(len(losses)) | monitor.epoch_end(float(np.mean(losses)),
                                                                  model.predict):
                return

    def predict(self, model, x):
        return model.predict(x)

    def warm_up(self, model, x, y, cfg, epochs):
        model.gradients(x[:1], y[:1])

    def gradients(self, model, x, y):
        return model.gradients(x, y)

    def train_step(self, model, x, y):
        return model.train_step(x, y)


PLAIN = PlainNumpy()


def test_a_new_implementation_runs_through_every_experiment(tmp_path, monkeypatch):
    import pandas as pd

    from benchmarks.cli import main
    from benchmarks.implementations import IMPLEMENTATIONS, PLUGINS

    monkeypatch.setitem(IMPLEMENTATIONS, PLAIN.name, PLAIN)  # this process's registry
    monkeypatch.setenv(PLUGINS, "tests.test_extend:PLAIN")    # and every worker's
    experiments = ["compare", "speed", "scaling", "xor-atlas", "generalisation"]
    out = tmp_path / "run"
    assert main(["run", *experiments, "--profile", "smoke", "--impl", PLAIN.name,
                 "--seeds", "1", "--task", "xor", "--out", str(out)]) == 0  # scaling: MNIST
    for stem in ("compare", "speed_runs", "scaling_runs", "atlas_runs", "generalisation"):
        rows = pd.read_csv(out / f"{stem}.csv")
        assert set(rows["impl"]) == {PLAIN.name}, stem
        assert (rows["status"] == "ok").all(), rows[["config", "status", "error"]]
        assert (rows["identity_rel_diff"] < 1e-5).all(), stem  # scratch's network, step by step
        assert (rows["framework"] == "numpy").all()
    assert set(pd.read_csv(out / "compare.csv")["task"]) == {"xor"}
    assert len(pd.read_csv(out / "scaling.csv")) == 2  # smoke: two cells
    atlas = pd.read_csv(out / "atlas_runs.csv")
    assert atlas["converged"].notna().all() and len(atlas) == 2  # 2 cells x 1 seed


def test_an_implementation_that_cannot_be_loaded_is_one_line(tmp_path, monkeypatch, capsys):
    import pandas as pd

    from benchmarks.cli import main
    from benchmarks.implementations import PLUGINS, _plugins

    monkeypatch.setenv(PLUGINS, "tests.no_such_module:PLAIN")
    out = tmp_path / "run"
    assert main(["run", "--profile", "smoke", "--task", "xor", "--impl", "scratch-shortcut",
                 "--out", str(out)]) == 0  # the run ends, its row says what went wrong
    assert "cannot load 'tests.no_such_module:PLAIN'" in capsys.readouterr().out
    row = pd.read_csv(out / "compare.csv").iloc[0]
    assert row["status"] == "error" and "No module named 'tests.no_such_module'" in row["error"]
    with pytest.raises(UsageError, match="no attribute 'NOTHING'"):
        _plugins("tests.test_extend:NOTHING")
    # Where the command itself loads the registry: one line, no traceback
    import os
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "benchmarks.cli", "list"], text=True,
                          capture_output=True, env={**os.environ, PLUGINS: "nope:X"})
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "cannot load 'nope:X'" in done.stderr
