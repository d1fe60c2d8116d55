"""`groundup compare A B`: one run folder against another, beyond the noise."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from benchmarks.cli import main
from benchmarks.reporting import versus

NOISE = np.array([1.00, 1.04, 0.97, 1.02, 0.99])  # five seeds' spread


def folder(path: Path, slower: dict[str, float] | None = None, cpu: str = "CPU X",
           stem: str = "compare", **extra) -> Path:
    """A run folder of synthetic rows: two implementations on xor, five seeds each, every
    time of the implementations in ``slower`` multiplied by its factor."""
    path.mkdir()
    rows = [{"experiment": stem, "task": "xor", "config": "blog", "impl": impl, "seed": seed,
             "status": "ok", "error": "", "final_loss": 0.01, "accuracy": 1.0,
             "train_time_s": 2.0 * t * (slower or {}).get(impl, 1.0),
             "epoch_time_s": base * t * (slower or {}).get(impl, 1.0), "peak_rss_mib": 50.0,
             "cpu": cpu, "cores": 2, "commit": "abc", **extra}
            for impl, base in (("scratch-shortcut", 1e-4), ("jax", 2e-7))
            for seed, t in enumerate(NOISE)]
    pd.DataFrame(rows).to_csv(path / f"{stem}.csv", index=False)
    return path


def test_a_folder_against_itself_changes_nothing(tmp_path, capsys):
    a = folder(tmp_path / "a")
    assert main(["compare", str(a), str(a), "--fail-above", "0"]) == 0
    printed = capsys.readouterr().out
    assert "The same CPU, cores, versions and commit." in printed
    assert "compare: 2 in both; time 2 within noise" in printed
    assert (a / "versus_a.md").exists()  # beside the tables, by default


def test_thirty_percent_slower_in_every_sample_is_flagged_and_fails_above_ten(tmp_path, capsys):
    a = folder(tmp_path / "a")
    b = folder(tmp_path / "b", slower={"scratch-shortcut": 1.3})
    _, _, found = versus.compare(a, b)
    (changed, alone), = found.values()
    verdicts = {c.where[3]: (c.time_verdict, c.ratio) for c in changed}
    assert verdicts["jax"] == ("within noise", 1.0) and not alone
    assert verdicts["scratch-shortcut"][0] == "slower"
    assert verdicts["scratch-shortcut"][1] == pytest.approx(1.3)
    md = tmp_path / "out.md"
    assert main(["compare", str(a), str(b), "--md", str(md)]) == 0  # reported, not failed
    assert main(["compare", str(a), str(b), "--fail-above", "10", "--md", str(md)]) == 1
    printed = capsys.readouterr().out
    assert printed.count("slower beyond 10%") == 1 and "xor/blog scratch-shortcut" in printed
    assert main(["compare", str(a), str(b), "--fail-above", "40", "--md", str(md)]) == 0
    assert "| xor/blog | scratch-shortcut |" in md.read_text()


def test_too_few_samples_are_undecided_and_lone_rows_are_listed(tmp_path):
    a = folder(tmp_path / "a")
    df = pd.read_csv(a / "compare.csv")
    b = tmp_path / "b"
    b.mkdir()
    df[(df["impl"] == "jax") & (df["seed"] < 2)].to_csv(b / "compare.csv", index=False)
    (changed, alone), = versus.compare(a, b)[2].values()
    assert [c.time_verdict for c in changed] == ["undecided"]
    assert alone == [("A", ("compare", "xor", "blog", "scratch-shortcut"))]
    assert main(["compare", str(a), str(b), "--fail-above", "0"]) == 0  # missing: no failure


def test_a_run_that_fails_in_b_fails_the_check_and_an_undecided_growth_is_named(tmp_path,
                                                                                capsys):
    a = folder(tmp_path / "a")
    df = pd.read_csv(a / "compare.csv")
    b = tmp_path / "b"
    b.mkdir()
    df.loc[df["impl"] == "scratch-shortcut", "status"] = "error"
    one = (df["impl"] == "jax") & (df["seed"] == 0)
    df.loc[one, "epoch_time_s"] *= 2  # one seed: too few to decide
    df[(df["impl"] == "scratch-shortcut") | one].to_csv(b / "compare.csv", index=False)
    assert main(["compare", str(a), str(b), "--fail-above", "10"]) == 1
    printed = capsys.readouterr().out
    assert "ok in A, failed in B: compare xor/blog scratch-shortcut" in printed
    assert "undecided, B/A 2.00" in printed and "xor/blog jax" in printed


def test_other_machines_and_versions_are_named_first(tmp_path, capsys):
    a = folder(tmp_path / "a", numpy="2.4.6")
    b = folder(tmp_path / "b", cpu="CPU Y", numpy="2.5.0")
    assert main(["compare", str(a), str(b), "--md", str(tmp_path / "x.md")]) == 0
    printed = capsys.readouterr().out
    assert "CPU X" in printed and "CPU Y" in printed and "2.5.0" in printed
    assert "The machines differ: times compare only as ratios." in printed


@pytest.mark.parametrize("make, message", [
    (lambda t: t / "nowhere", "is not a folder"),
    (lambda t: (t / "empty").mkdir() or t / "empty", "holds no results CSV"),
    (lambda t: folder(t / "other", stem="generalisation"), "share no experiment"),
    (lambda t: folder(t / "newer", foo=1), "different columns ('foo' only in"),
])
def test_what_cannot_be_compared_is_one_line(tmp_path, capsys, make, message):
    a = folder(tmp_path / "a")
    assert main(["compare", str(a), str(make(tmp_path))]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
