"""The benchmark report: the ratio table from a saved run, and its failure exit.

The suite itself runs tiny in tests/test_end_to_end.py, inside the smoke publish."""

import json
from pathlib import Path

import pandas as pd

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
