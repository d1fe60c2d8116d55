"""`groundup repeat DIR DIR ...`: speed's verdicts, intervals and medians, run to run."""

import math
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from benchmarks.cli import main
from benchmarks.harness.rounds import median_interval
from benchmarks.reporting import repeat

RUNS = Path(__file__).resolve().parent.parent / "results" / "repeatability"


def test_a_metric_fails_each_check_on_its_own():
    steady = repeat.Metric("MNIST a / b", 1.0, [(0.80, 0.78, 0.82, "met")] * 3)
    assert not steady.failing and steady.spread == 1.0
    flip = repeat.Metric("xor a / b", 1.0, [(0.9, 0.8, 0.95, "met"), (1.1, 1.05, 1.2, "missed")])
    assert flip.flips and flip.outside and flip.apart
    assert not flip.wide  # only MNIST ratios are held to +-10%
    wide = repeat.Metric("MNIST a / b", 1.0, [(1.0, 0.85, 1.05, "undecided"),
                                              (1.0, math.nan, math.nan, "undecided")])
    assert wide.wide == [0, 1] and not wide.flips  # no interval at all is not narrow
    # inside the other's interval one way, not the other; the intervals still overlap
    lean = repeat.Metric("MNIST a / b", 1.0, [(1.00, 0.99, 1.01, "missed"),
                                              (1.02, 0.95, 1.05, "undecided")])
    assert lean.outside == [(1, 0)] and not lean.apart
    assert lean.failing == ["medians"]
    assert repeat.failed([steady, flip, wide, lean]) == {
        "verdicts": 1, "intervals": 2, "medians": 3, "overlap": 1}


def test_a_steady_machine_fails_the_medians_check_by_chance():
    """Two runs of one distribution: the other's median lies inside a 95% interval only
    about 5 times in 6 (both medians scatter), while the intervals overlap almost always.
    So the medians check fails by chance alone over dozens of metrics; overlap does not."""
    rng = np.random.default_rng(0)
    inside = overlap = 0
    draws = 600
    for _ in range(draws):
        (m1, lo1, hi1), (m2, lo2, hi2) = (median_interval(rng.lognormal(0, 0.1, 58))
                                          for _ in "ab")
        inside += lo1 <= m2 <= hi1
        overlap += not (hi1 < lo2 or hi2 < lo1)
    assert 0.75 < inside / draws < 0.92
    assert overlap / draws > 0.99  # about 1 pair in 250 does not (0.996 in 4000 draws)


def test_the_same_run_thrice_agrees_with_itself(tmp_path, capsys):
    """The published repeatability runs: run 1 against itself holds every check but the
    width of its intervals, which is its own."""
    frames, found, left_out = repeat.repeat([RUNS / "run1"] * 3)
    counts = repeat.failed(found)
    assert counts["verdicts"] == counts["medians"] == counts["overlap"] == 0
    assert counts["intervals"] > 0 and not left_out and len(found) == 63
    md = tmp_path / "same.md"
    assert main(["repeat", *[str(RUNS / "run1")] * 3, "--md", str(md)]) == 1  # wide ones
    assert "**verdicts**" in md.read_text() and "| b32      | scratch-shortcut |" in md.read_text()
    assert "medians: each run's median lies inside every other run's interval: holds" in (
        capsys.readouterr().out)


def test_two_runs_that_disagree_are_named(capsys):
    """Runs 1 and 2 put batch 32's scratch / keras-jax at 0.72 and 0.56, each interval
    about +-6%: they do not overlap."""
    _, found, _ = repeat.repeat([RUNS / "run1", RUNS / "run2"])
    metric = next(m for m in found if m.name == "MNIST batch 32: s per epoch, scratch / keras-jax")
    assert metric.apart == [(0, 1)] and metric.spread > 1.2
    assert main(["repeat", str(RUNS / "run1"), str(RUNS / "run2")]) == 1
    assert "scratch / keras-jax: 0.723 / 0.561" in capsys.readouterr().out


def test_a_fastest_peer_that_changes_between_runs_is_still_compared():
    """At batch 128 the fastest peer was keras-jax in run 1 and jax in run 2: one metric,
    both winners named, not two metrics each left out."""
    _, found, left_out = repeat.repeat([RUNS / "run1", RUNS / "run2"])
    names = [m.name for m in found]
    assert "MNIST batch 128, file order: s per epoch, scratch / fastest peer (keras-jax / jax)" \
        in names and not left_out


def test_a_side_missing_from_one_run_is_named_as_left_out(tmp_path, capsys):
    rows = pd.read_csv(RUNS / "run1" / "speed_runs.csv")
    (tmp_path / "less").mkdir()
    rows[rows["impl"] != "keras-jax"].to_csv(tmp_path / "less" / "speed_runs.csv", index=False)
    _, found, left_out = repeat.repeat([RUNS / "run1", tmp_path / "less"])
    assert "MNIST batch 32: s per epoch, scratch / keras-jax" in left_out
    assert not any(m.name.endswith("/ keras-jax") for m in found)
    main(["repeat", str(RUNS / "run1"), str(tmp_path / "less")])
    assert f"{len(left_out)} metrics not measured in every run, left out" in (
        capsys.readouterr().out)


def test_runs_without_mnist_still_write_their_page(tmp_path):
    rows = pd.read_csv(RUNS / "run1" / "speed_runs.csv")
    for name in "ab":
        (tmp_path / name).mkdir()
        rows[rows["task"] != "mnist"].to_csv(tmp_path / name / "speed_runs.csv", index=False)
    md = tmp_path / "tiny.md"
    assert main(["repeat", str(tmp_path / "a"), str(tmp_path / "b"), "--md", str(md)]) == 0
    assert "xor: ms per step" in md.read_text() and "unit time" not in md.read_text()


@pytest.mark.parametrize("given, message", [
    (["run1"], "two or more run folders"),
    (["run1", "nowhere"], "holds no speed_runs.csv"),
])
def test_bad_folders_get_one_line(given, message, capsys, tmp_path):
    shutil.copytree(RUNS / "run1", tmp_path / "run1")
    assert main(["repeat", *[str(tmp_path / g) for g in given]]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
