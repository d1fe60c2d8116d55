"""The published results: every CSV parses and matches its documented schema, and the
README's headline, docs/results.md and results/README.md's schema are generated, not typed."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from benchmarks.cli import main
from benchmarks.harness import schema
from benchmarks.reporting import readme

ROOT = Path(__file__).resolve().parent.parent
PUBLISHED = ROOT / "results" / "published"
CSVS = sorted(PUBLISHED.rglob("*.csv"))


def check_csv(path: Path, folder: Path, newer: frozenset = frozenset()) -> None:
    """Parse one results CSV and hold it to its schema in benchmarks/harness/schema.py;
    ``newer``: columns it may lack, being older than them."""
    relative = path.relative_to(folder).as_posix()
    found = schema.schema_for(relative)
    assert found, f"{relative} is not documented in benchmarks/harness/schema.py"
    _, columns, every_column = found
    df = pd.read_csv(path)
    assert len(df) > 0, f"{relative} has no rows"
    if every_column:
        expected = [c for c in columns if c not in newer or c in df.columns]
        assert list(df.columns) == expected, f"{relative}: columns differ from the schema"
    else:
        undocumented = set(df.columns) - set(columns)
        assert not undocumented, f"{relative}: undocumented columns {sorted(undocumented)}"
        assert {"group", "name", "median_s", "rounds"} <= set(df.columns)
    for name in df.columns:
        unit, values = columns[name][0], df[name].dropna()
        if unit not in schema.NOT_NUMBERS:
            assert pd.api.types.is_numeric_dtype(values), f"{relative}: {name} is not numeric"
        elif unit == "bool":
            assert set(values.astype(str)) <= {"True", "False"}, f"{relative}: {name} not bool"
        elif unit == "JSON":
            for value in values:
                json.loads(value)


def test_the_published_folder_is_complete():
    for name in ("compare.csv", "generalisation.csv", "jacobian.csv", "speed_runs.csv",
                 "speed.csv", "environment.json", "compare.md", "compare_time.png"):
        assert (PUBLISHED / name).exists(), f"results/published/{name} is missing"
    assert list((PUBLISHED / "benchmarks").glob("*/*.json")), "no pytest-benchmark JSON"
    env = json.loads((PUBLISHED / "environment.json").read_text())
    assert env["profile"] == "full" and env["commit"] and env["wall_time_s"] > 0


@pytest.mark.parametrize("path", CSVS, ids=[p.relative_to(PUBLISHED).as_posix() for p in CSVS])
def test_every_published_csv_matches_its_schema(path):
    """The published run predates the columns in NEWER_THAN_PUBLISHED (new runs write
    them: tests/test_end_to_end.py holds its CSVs to the whole schema)."""
    check_csv(path, PUBLISHED, schema.NEWER_THAN_PUBLISHED)


def test_published_runs_are_the_full_profile_and_finished():
    for name in ("compare.csv", "generalisation.csv", "jacobian.csv", "speed_runs.csv"):
        df = pd.read_csv(PUBLISHED / name)
        assert set(df["profile"]) == {"full"}, name
        assert not df.duplicated(schema.KEY).any(), f"{name} has a run twice"


def test_the_schema_check_can_fail(tmp_path):
    (tmp_path / "speed.csv").write_text("metric,ratio\nx,0.1\n")
    with pytest.raises(AssertionError, match="columns differ"):
        check_csv(tmp_path / "speed.csv", tmp_path)
    (tmp_path / "mystery.csv").write_text("a\n1\n")
    with pytest.raises(AssertionError, match="not documented"):
        check_csv(tmp_path / "mystery.csv", tmp_path)


@pytest.mark.parametrize("column, value, match", [
    ("train_time_s", "fast", "train_time_s is not numeric"),
    ("extrapolated", "maybe", "extrapolated not bool"),
    ("optimizer_config", "{not json", "Expecting property name"),
])
def test_the_schema_check_fails_on_a_wrong_type(tmp_path, column, value, match):
    """A published CSV with one cell of the wrong type: the check names it."""
    df = pd.read_csv(PUBLISHED / "compare.csv")
    df[column] = df[column].astype(object)
    df.loc[0, column] = value
    df.to_csv(tmp_path / "compare.csv", index=False)
    with pytest.raises((AssertionError, ValueError), match=match):
        check_csv(tmp_path / "compare.csv", tmp_path, schema.NEWER_THAN_PUBLISHED)


def test_results_readme_documents_every_schema():
    text = (ROOT / "results" / "README.md").read_text()
    block = f"{readme.SCHEMA_BEGIN}\n\n{schema.markdown()}\n{readme.SCHEMA_END}"
    assert block in text, ("results/README.md's schema tables are out of date, or their "
                           "markers are gone: run `groundup report --readme`")


def test_the_readme_headline_and_the_results_page_are_generated_from_the_published_folder():
    assert readme.headline(PUBLISHED, "results/published", "docs/results.md") in \
        (ROOT / "README.md").read_text(), (
        "README.md's headline differs from what `groundup report --readme` generates")
    assert readme.section(PUBLISHED, "../results/published", "../") in \
        (ROOT / readme.RESULTS_PAGE).read_text(), (
        "docs/results.md differs from what `groundup report --readme` generates")


def test_the_readme_block_needs_its_markers(tmp_path):
    from benchmarks.errors import UsageError

    page = tmp_path / "README.md"
    page.write_text("# no markers\n")
    with pytest.raises(UsageError, match="no generated block"):
        readme._replace_block(page, readme.BEGIN, readme.END, "x")
    with pytest.raises(UsageError, match="make results"):
        readme.section(tmp_path, "x")
    # publish asks before its runs: a README without its Results page beside it is refused
    page.write_text(f"{readme.BEGIN}\n{readme.END}\n")
    with pytest.raises(UsageError, match="results.md has no generated block"):
        readme.pages(page)
    assert main(["publish", "--profile", "smoke", "--out", str(tmp_path / "out"),
                 "--readme", str(page)]) == 2
    assert not (tmp_path / "out.partial").exists()


def test_the_winners_table_ranks_by_the_median_over_seeds():
    """A slow outlier seed does not make the winner; scratch's place and ratio are its own."""
    rows = [("a", 1.0), ("a", 1.1), ("a", 9.0), ("scratch-shortcut", 2.0),
            ("scratch-shortcut", 2.2), ("jax", 1.5), ("jax", 1.6), ("keras", 0.1)]
    compare = pd.DataFrame([{"task": "mnist", "config": "blog", "impl": impl, "status": status,
                             "epoch_time_s": t} for impl, t in rows
                            for status in (["error"] if impl == "keras" else ["ok"])])
    table = readme.winners_table(compare, None).splitlines()
    assert len(table) == 3  # no reason is invented for an implementation it does not know
    cells = [c.strip() for c in table[2].split("|")[1:-1]]
    assert cells == ["mnist/blog, compare", "s per epoch", "a (1.1)", "jax (1.55, 1.41x)",
                     "#3 of 3, 1.91x"]
    compare.loc[compare["impl"] == "a", "status"] = "error"
    lines = readme.winners_table(compare, None).splitlines()
    assert lines[3:] == ["", "Why the fastest win:", "", f"- **jax**: {readme.why_fast('jax')}"]


def test_a_calibrated_run_says_what_it_chose():
    tuned = {"jit_compile": True, "steps_per_execution": 50, "repeat": False, "calibration": []}
    assert readme.chosen("keras-tuned", json.dumps(tuned)) == "XLA, 50 steps per execution"
    plain = {"jit_compile": "auto", "steps_per_execution": 1, "repeat": False}
    assert readme.chosen("keras-jax-tuned", json.dumps(
        {**plain, "repeat": True, "calibration": []})) == "the batch repeated"
    assert "run-to-run noise" in readme.chosen("keras-tuned",
                                               json.dumps({**plain, "calibration": []}))
    assert readme.chosen("keras", json.dumps(plain)) == ""  # nothing calibrated
    assert readme.chosen("torch", json.dumps({"compile": True, "calibration": {}})) == \
        "torch.compile"
    assert readme.chosen("torch", "{}") == readme.chosen("keras", float("nan")) == ""
    assert readme.chosen("an-unknown-impl", json.dumps(tuned)) == ""


def test_the_bar_plots_colour_each_implementation_alike_and_hatch_extrapolated_bars():
    import matplotlib.pyplot as plt

    from benchmarks.implementations import IMPLEMENTATIONS
    from benchmarks.reporting import report

    every = report.colours(list(IMPLEMENTATIONS))
    assert len(set(every.values())) == len(every)  # no two alike
    assert report.colours(["jax", "plugin"])["jax"] == every["jax"]  # the same in every plot
    means = pd.DataFrame({"keras": [1.0, 2.0], "scratch-jacobian": [3.0, 4.0]},
                         index=pd.MultiIndex.from_tuples([("mnist", "blog"), ("xor", "blog")]))
    guessed = pd.Series({("mnist", "blog", "scratch-jacobian"): True,
                         ("mnist", "blog", "keras"): False})
    fig, ax = plt.subplots()
    report.bars(ax, means, guessed)
    hatched = [(p.get_height(), p.get_hatch()) for p in ax.patches]
    plt.close(fig)
    assert hatched == [(1.0, None), (2.0, None), (3.0, "///"), (4.0, None)]
