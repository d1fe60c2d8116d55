"""The pytest-benchmark suite runs, untimed and tiny, so that it cannot rot unnoticed."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd

from benchmarks import bench_report

ROOT = Path(__file__).resolve().parent.parent


def test_benchmark_suite_runs_untimed_on_tiny_sizes():
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "benchmarks/bench_ops.py", "-q", "-p",
         "no:cacheprovider", "--benchmark-disable"],
        cwd=ROOT, capture_output=True, text=True, timeout=900,
        env={**os.environ, "GROUNDUP_BENCH_TINY": "1"})
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert " passed" in run.stdout and "failed" not in run.stdout


def test_ratio_table_from_a_saved_run(tmp_path):
    run = tmp_path / "Linux-CPython" / "0001_abc.json"
    run.parent.mkdir()
    bench = [{"group": "xor: one training step", "name": f"test_train_step[xor-{impl}]",
              "stats": {"median": t, "iqr": 0, "mean": t, "stddev": 0, "min": t, "max": t,
                        "rounds": 5},
              "extra_info": {"impl": impl, "task": "xor", "correct": True}}
             for impl, t in (("keras", 2e-3), ("scratch-shortcut", 1e-4))]
    run.write_text(json.dumps({"benchmarks": bench}))
    assert bench_report.main([str(tmp_path)]) == 0
    csv = pd.read_csv(run.with_suffix(".csv"))
    assert set(csv.columns) >= {"group", "median_s", "impl", "correct"}
    ratios = run.with_name("0001_abc_ratios.md").read_text()
    assert "| xor: one training step |" in ratios and "0.05 " in ratios
