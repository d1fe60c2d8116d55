"""The benchmark report: the ratio table from a saved run, and its failure exit.

The suite itself runs tiny in tests/test_end_to_end.py, inside the smoke publish, in
TensorFlow's process; the other Keras backends' processes run its step and epoch here."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from benchmarks.reporting import bench_report


def saved_run(folder: Path, correct: bool = True) -> Path:
    run = folder / "Linux-CPython" / "0001_abc.json"
    run.parent.mkdir()
    bench = [{"group": "xor: one training step", "name": f"test_train_step[xor-{impl}]",
              "stats": {"median": t, "iqr": 0, "mean": t, "stddev": 0, "min": t, "max": t,
                        "rounds": 5},
              "extra_info": {"impl": impl, "task": "xor", "correct": correct or impl == "keras"}}
             for impl, t in (("keras", 2e-3), ("scratch-shortcut", 1e-4))]
    run.write_text(json.dumps({"benchmarks": bench}))
    return run


def test_ratio_table_from_a_saved_run(tmp_path):
    run = saved_run(tmp_path)
    assert bench_report.main([str(tmp_path)]) == 0
    csv = pd.read_csv(run.with_suffix(".csv"))
    assert set(csv.columns) >= {"group", "median_s", "impl", "correct"}
    ratios = run.with_name("0001_abc_ratios.md").read_text()
    assert "| xor: one training step |" in ratios and "0.05 " in ratios


def test_a_wrong_result_fails_the_report(tmp_path, capsys):
    saved_run(tmp_path, correct=False)
    assert bench_report.main([str(tmp_path)]) == 1
    assert "1 benchmarks failed their correctness check: test_train_step[xor-scratch-shortcut]" \
        in capsys.readouterr().out


@pytest.mark.parametrize("backend", [b for b in bench_report.backends() if b != "tensorflow"])
def test_the_other_backends_step_and_epoch_benchmarks_run(backend):
    """Each implementation's bench_step and bench_epoch in its backend's process, once."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_XDIST")}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "benchmarks/bench_ops.py", "-q", "-p",
         "no:cacheprovider", "-o", "addopts=", "--benchmark-disable", "-k",
         "train_step or epoch_small"], cwd=bench_report.ROOT, capture_output=True, text=True,
        env={**env, "KERAS_BACKEND": backend, "GROUNDUP_BENCH_TINY": "1"}, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:]
    summary = done.stdout.strip().splitlines()[-1]
    assert " passed" in summary and "failed" not in summary and "error" not in summary
