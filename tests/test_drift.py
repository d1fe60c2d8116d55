"""`groundup drift`: fixed work timed over minutes, and its windows."""

import pandas as pd
import pytest

from benchmarks import drift
from benchmarks.cli import main


def test_a_slow_window_shows_against_the_whole_run():
    """Synthetic turns: matmul 10 ms throughout but 12 ms in the second window; copy
    steady. The windows say so, each against its workload's own median."""
    rows = [{"t_s": t, "workload": "matmul", "seconds": 0.012 if 30 <= t < 60 else 0.010}
            for t in range(0, 90, 3)]
    rows += [{"t_s": t, "workload": "copy", "seconds": 0.005} for t in range(0, 90, 3)]
    samples = pd.DataFrame(rows)
    relative = drift.windows(samples)
    assert list(relative.index) == [0.0, 30.0, 60.0]
    assert relative["matmul"].tolist() == pytest.approx([1.0, 1.2, 1.0])
    assert relative["copy"].tolist() == pytest.approx([1.0, 1.0, 1.0])
    summary = drift.summary(samples)
    assert summary.loc["matmul", "spread"] == pytest.approx(1.2)
    assert summary.loc["matmul", "median_ms"] == pytest.approx(10.0)
    assert summary.loc["copy", "turns"] == 30


def test_every_workload_is_timed_each_turn():
    samples = drift.measure(0.2, pause_s=0.0)
    turns = samples.groupby("workload").size()
    assert set(turns.index) == {"matmul", "copy", "python", "gather"}
    assert turns.nunique() == 1 and (samples["seconds"] > 0).all()


def test_the_command_writes_every_turn_and_its_windows(tmp_path, capsys):
    assert main(["drift", "--minutes", "0.004", "--out", str(tmp_path)]) == 0
    samples = pd.read_csv(tmp_path / "drift.csv")
    assert list(samples.columns) == ["t_s", "workload", "seconds"] and len(samples) >= 4
    md = (tmp_path / "drift.md").read_text()
    assert "| matmul " in md and "window from (s)" in md
    assert "wrote" in capsys.readouterr().out


def test_minutes_must_be_positive(capsys):
    with pytest.raises(SystemExit):
        main(["drift", "--minutes", "0"])
    assert "must be a positive number" in capsys.readouterr().err
