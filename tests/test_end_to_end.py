"""`make results` in miniature, run once for this module: every experiment on the smoke
profile (each experiment x implementation path once), the pytest-benchmark suite, the
reports, environment.json and the README block. The tests below read what it wrote.

Before it, the README's `make run` runs its recipe on the smoke profile, which runs
compare's smoke profile: the publish's compare runs. The publish then finds them in its
folder, as a publish interrupted after compare would, and resumes after them: they are
measured once, and the publish's resume is tried end to end."""

from __future__ import annotations

import contextlib
import io
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from benchmarks.cli import main
from benchmarks.experiments import atlas
from benchmarks.experiments.compare import SMOKE_SKIP
from benchmarks.harness.schema import COLUMNS
from benchmarks.harness.worker import IDENTITY_RTOL
from benchmarks.implementations import IMPLEMENTATIONS, PEERS
from benchmarks.reporting import bench_report, readme
from tests.test_published import check_csv

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def readme_run(tmp_path_factory) -> tuple[int, Path, str]:
    """The README's two commands: `make test` is this run; `make run` runs its Makefile
    recipe, here as written but for the profile, smoke instead of quick. Its exit code,
    folder and what it printed."""
    commands = re.findall(r"^make (\w+)", (ROOT / "README.md").read_text(), re.M)
    assert commands[:2] == ["test", "run"]
    recipe = re.search(r"^run: data\n\t\$\(BIN\)/groundup (.*)$",
                       (ROOT / "Makefile").read_text(), re.M).group(1).split()
    assert recipe == ["run", "--profile", "quick"]
    out = tmp_path_factory.mktemp("make-run") / "run"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        code = main([*recipe[:-1], "smoke", "--out", str(out)])
    return code, out, printed.getvalue()


def test_the_readmes_commands_run_on_the_smoke_profile(readme_run):
    code, out, printed = readme_run
    assert code == 0
    df = pd.read_csv(out / "compare.csv")
    assert sorted(zip(df["task"], df["impl"])) == smoke_compare_runs()
    assert (df["status"] == "ok").all()
    assert "compare: " in printed  # the summary's tables


@pytest.fixture(scope="module")
def published(tmp_path_factory, readme_run) -> tuple[Path, Path]:
    """The smoke publish's folder and the README page it rewrote."""
    from benchmarks.harness import folder
    from benchmarks.reporting import publish

    root = tmp_path_factory.mktemp("publish")
    page = root / "README.md"
    (root / "docs").mkdir()
    for path in (page, root / readme.RESULTS_PAGE):
        path.write_text(
            f"# title\n\nbefore\n\n{readme.BEGIN}\nthe stale block\n{readme.END}\n\nafter\n")
    out = root / "published"
    # A publish interrupted after its compare phase: its folder, with what compare's runs
    # wrote (rows, curves, logs and confusion matrices; the reports come after), which
    # `make run`'s recipe measured on the same profile.
    work = out.with_name("published.partial")
    work.mkdir()
    folder.create(work, publish.chosen_for("smoke"), [])
    code, made, said = readme_run
    assert code == 0, said[-3000:]
    for name in ("compare.csv", "compare_curves.csv"):
        shutil.copy(made / name, work)
    for name in ("logs", "confusion"):
        shutil.copytree(made / name, work / name)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        code = publish.publish(out, "smoke", page)
    assert code == 0, printed.getvalue()[-3000:]
    kept = len(pd.read_csv(made / "compare.csv"))
    assert f"compare.csv: {kept} rows kept, 0 to run" in " ".join(printed.getvalue().split())
    return out, page


def test_publish_writes_every_file_and_the_readme_block(published):
    out, page = published
    assert not out.with_name("published.partial").exists()
    assert not (out / ".lock").exists()  # the lock was the run's, not a result
    env = json.loads((out / "environment.json").read_text())
    assert env["profile"] == "smoke" and env["wall_time_s"] > 0 and env["resumed"]
    assert env["accuracy_only_workers"] == 0  # smoke: its few accuracy-only runs here
    assert {"generalisation", "xor-atlas", "compare"} <= set(env["phase_wall_time_s"])
    results = page.with_name("docs") / "results.md"
    for text in (page.read_text(), results.read_text()):
        assert text.startswith("# title\n\nbefore\n\n") and text.endswith("\n\nafter\n")
        assert "the stale block" not in text
    text = results.read_text()
    assert "### The reversal failure" in text
    assert "### How often XOR really converges" in text and "Cross-check, h2-lr0.01" in text
    # linked relative to each page
    assert readme.section(out, "../published") in text
    assert readme.headline(out, "published", "docs/results.md") in page.read_text()
    csvs = sorted(out.rglob("*.csv"))
    assert {p.name for p in csvs} >= {"compare.csv", "generalisation.csv", "jacobian.csv",
                                      "speed_runs.csv", "speed.csv", "atlas_runs.csv",
                                      "atlas.csv"}
    for path in csvs:
        check_csv(path, out)
    from keras_models import LOAD_NOISE  # what TensorFlow logs as it loads, without a GPU

    logs = [p.read_text() for p in (out / "logs").glob("*.log")]
    assert not [text for text in logs if LOAD_NOISE.search(text)]


def smoke_compare_runs() -> list[tuple[str, str]]:
    """(task, impl) of compare's smoke profile: every installed implementation on xor and
    mnist, but SMOKE_SKIP's paths, which run elsewhere in the tests."""
    available = [name for name in PEERS if not IMPLEMENTATIONS[name].missing()]
    return sorted({(t, i) for t in ("xor", "mnist") for i in available} - SMOKE_SKIP)


def test_compare_runs_every_implementation(published):
    out, _ = published
    df = pd.read_csv(out / "compare.csv")
    assert list(df.columns) == list(COLUMNS)
    assert sorted(zip(df["task"], df["impl"])) == smoke_compare_runs()
    assert {"jax", "keras-tuned"} <= set(df["impl"])
    assert (df["status"] == "ok").all(), df[["impl", "task", "error"]]
    mnist = df[df["task"] == "mnist"]
    # 500 samples of MNIST (the jacobian sees 2): not trained in full, so the scores are
    # measured_* only. Every run passed its identity check.
    trained = mnist[mnist["impl"] != "scratch-jacobian"]
    assert (trained["measured_accuracy"] > 0.5).all() and mnist["measured_f1"].notna().all()
    assert mnist["accuracy"].isna().all() and not mnist["trained_in_full"].any()
    assert df.loc[df["task"] == "xor", "trained_in_full"].all()
    assert (trained["identity_steps"] == 20).all() and (df["identity_rel_diff"] < 0.05).all()
    assert (df["train_time_s"] > 0).all() and (df["peak_rss_mib"] >= 0).all()
    numpy = df["framework"] == "numpy"  # tracemalloc sees NumPy's memory
    assert df.loc[numpy, "traced_peak_mib"].notna().all()
    assert df.loc[~numpy, "traced_peak_mib"].isna().all()
    assert (df["framework"] == df["impl"].map(lambda i: IMPLEMENTATIONS[i].framework)).all()
    assert df["framework_version"].notna().all() and df["backend"].notna().all()
    # each row's thread pools: NumPy's OpenBLAS in every process; SciPy's beside it where
    # Numba ran array code (it checks for its BLAS), idle: test_compiled shows the engine
    # calls NumPy's
    pools = df.set_index(["task", "impl"])["thread_pools"]
    assert pools.str.contains(r"openblas libscipy_openblas64_\S*: \d+ threads").all()
    assert pools.loc[("mnist", "scratch-numba")].count("openblas ") == 2
    # The smoke profile's times say nothing: a tuned run takes its settings untimed
    # (test_harness times a calibration)
    for _, row in df[df["impl"].str.endswith("-tuned")].iterrows():
        settings = json.loads(row["settings"])
        assert "calibration" not in settings and settings["steps_per_execution"] != 1
    jac = mnist[mnist["impl"] == "scratch-jacobian"].iloc[0]
    assert jac["train_samples"] == 2 and jac["extrapolated"]
    for name in ("compare.md", "compare_curves.csv", "compare_curves.png", "compare_time.png",
                 "compare_memory.png", "run.json"):
        assert (out / name).exists(), name
    assert len(list((out / "confusion").glob("mnist-blog-*-seed0.csv"))) == len(mnist)
    assert "| xor    | blog     | keras-tuned " in (out / "compare.md").read_text()


def test_keras_softmax_form_differs_on_jax_and_the_readme_shows_it(published):
    """test_identity.py's check of each Keras backend's two forms, for JAX: the logits form
    passes all its steps, the softmax form differs at its first."""
    out, page = published
    df = pd.read_csv(out / "softmax-form.csv").set_index("impl")
    peer, default = df.loc["keras-jax"], df.loc["keras-jax-softmax"]
    assert peer["status"] == "ok" and peer["framework"] == "keras"
    assert peer["backend"].split()[0] == "jax"  # a row records its backend
    assert peer["identity_steps"] == 20 and peer["identity_rel_diff"] < IDENTITY_RTOL["float32"]
    assert default["status"] == "differs" and default["identity_steps"] == 1
    assert default["identity_rel_diff"] > 0.5 and "at step 0" in default["error"]
    text = (page.parent / readme.RESULTS_PAGE).read_text()
    assert "### Keras' softmax form: one model, three networks" in text
    assert "| JAX       | keras-jax-softmax" in text


def test_report_rebuilds_the_tables(published, tmp_path, capsys, monkeypatch):
    from rich.console import Console

    from benchmarks import commands

    monkeypatch.setattr(commands, "out", Console(width=200))
    copy = tmp_path / "copy"
    copy.mkdir()
    for name in ("compare.csv", "compare_curves.csv", "run.json"):
        (copy / name).write_bytes((published[0] / name).read_bytes())
    assert main(["report", str(copy)]) == 0
    assert "time/keras" in capsys.readouterr().out
    assert (copy / "compare.md").read_text() == (published[0] / "compare.md").read_text()


def test_generalisation_runs_scratchs_two_modes_and_every_kind_of_variant(published):
    """The smoke's blog runs are scratch's; the frameworks run in the full profile."""
    df = pd.read_csv(published[0] / "generalisation.csv")
    assert (df["status"] == "ok").all()
    blog = df[df["config"] == "blog"]
    assert set(blog["impl"]) == {"scratch-shortcut", "scratch-jacobian"}
    assert set(df["config"]) == {"blog", "baseline", "bits-6", "marcus-identity-8"}
    assert (df["dead_weight_max_move"] == 0).all()


def test_jacobian_records_prediction_and_agreement(published):
    out, _ = published
    df = pd.read_csv(out / "jacobian.csv")
    assert (df["status"] == "ok").all() and len(df) == 8
    jac = df[df["impl"] == "scratch-jacobian"]
    assert ((jac["predicted_over_traced"] - 1).abs() < 0.10).all()
    float64 = jac[jac["dtype"] == "float64"]
    assert (float64["grad_max_diff"] <= 1e-10).all()
    assert (float64["weights_max_diff"] <= 1e-10).all()
    assert (jac[jac["dtype"] == "float32"]["weights_max_diff"] <= 1e-5).all()
    assert jac["extrapolated"].all() and (jac["epoch_time_s"] > jac["measured_train_time_s"]).all()
    assert "Growth exponents" in (out / "jacobian.md").read_text()
    assert (out / "jacobian_scaling.png").exists()


def test_speed_writes_the_targets_table(published):
    out, _ = published
    runs = pd.read_csv(out / "speed_runs.csv")
    assert (runs["status"] == "ok").all() and set(runs["task"]) == {"mnist", "xor"}
    table = pd.read_csv(out / "speed.csv")
    assert list(table.columns[:6]) == ["metric", "scratch", "reference", "ratio", "target", "met"]
    # Smoke runs no peer but keras in to98 (one epoch: the target is not reached), and a
    # peer that did not run has no row.
    to98 = table[table["metric"].str.startswith("MNIST s to 98% test accuracy")]
    assert len(to98) == 1 and to98["ratio"].isna().all()
    assert len(table) == 7 and table["commit"].notna().all()
    b128 = runs[runs["config"] == "b128"].iloc[0]
    assert b128["matmul_epoch_s"] > 0 and b128["matmul_gflops"] > 0
    row = table[table["metric"].str.startswith("xor: ms per step")].iloc[0]
    assert row["ratio"] == pytest.approx(row["scratch"] / row["reference"])
    for metric in ("reverse4: ms per step", "MNIST batch 32"):  # not run: not measured
        left_out = table[table["metric"].str.startswith(metric)].iloc[0]
        assert pd.isna(left_out["ratio"]) and pd.isna(left_out["met"])
    assert "## Speed targets" in (out / "speed.md").read_text()


def test_the_benchmark_suite_ran_and_every_result_is_correct(published):
    """The suite's own correctness flags, not only pytest's exit code."""
    out, _ = published
    df = bench_report.to_frame(bench_report.newest(out / "benchmarks"))
    # one run, TensorFlow's (make results runs one a Keras backend)
    assert [p.stem.split("_")[-1] for p in bench_report.newest(out / "benchmarks")] == \
        ["tensorflow"]
    available = {name for name in PEERS if not IMPLEMENTATIONS[name].missing()
                 and IMPLEMENTATIONS[name].process_backend == "tensorflow"}
    assert len(df) >= 20 and set(df["impl"]) == available >= {"jax", "keras", "keras-tuned"}
    assert df["correct"].map(lambda v: v is True).all(), df[["name", "correct"]]


def test_scaling_writes_the_map(published):
    out, page = published
    runs = pd.read_csv(out / "scaling_runs.csv")  # long format: a row a cell
    assert (runs["status"] == "ok").all() and (runs["peak_gflops"] > 0).all()
    assert runs["config"].tolist() == ["h32-b1", "h32-b32"]  # smoke: scratch's two cells
    assert (runs["identity_steps"] == 20).all() and runs["step_time_ms"].gt(0).all()
    cells = pd.read_csv(out / "scaling.csv")
    assert len(cells) == len(runs)
    assert cells["step_time_ms"].tolist() == runs["step_time_ms"].tolist()
    assert (cells["step_time_ms"] > 0).all() and (cells["fraction_of_peak"] > 0).all()
    assert np.allclose(cells["samples_per_s"], cells["batch"] / cells["step_time_ms"] * 1e3)
    for name in ("scaling.md", "scaling_throughput.png", "scaling_winners.png"):
        assert (out / name).exists(), name
    results = (page.parent / readme.RESULTS_PAGE).read_text()
    assert "### Where each implementation wins: batch size x width" in results


def test_smoke_atlas_writes_rows_per_seed_and_a_row_per_cell(published):
    out, _ = published
    runs = pd.read_csv(out / "atlas_runs.csv")
    seeds = atlas.SEEDS["smoke"]
    assert len(runs) == (atlas.SMOKE_CELLS + 1) * seeds  # the first cell in jax too
    assert (runs["status"] == "ok").all()
    # jax's vmap from the same initial weights: the same seeds converge, the same losses
    cell = runs[runs["config"] == runs["config"].iloc[0]].set_index(["impl", "seed"])
    ours, theirs = cell.loc[atlas.ENGINE], cell.loc["jax"]
    assert (ours["converged"] == theirs["converged"]).all()
    pd.testing.assert_series_equal(ours["final_loss"], theirs["final_loss"], rtol=1e-4)
    assert {json.loads(s)["seed_batched"] for s in runs["settings"]} == {seeds}
    assert set(runs["failure"].fillna("")) <= {"", "local minimum", "plateau", "stalled"}
    assert (runs["converged"] == runs["failure"].isna()).all()
    assert not (out / "atlas_runs_curves.csv").exists()  # 1000s of seeds: no curves
    cells = pd.read_csv(out / "atlas.csv")
    assert len(cells) == atlas.SMOKE_CELLS + 1
    assert (cells["seeds"] == atlas.SEEDS["smoke"]).all()
    assert (cells["converged"] + cells[["local_minimum", "plateau", "stalled"]].sum(axis=1)
            == cells["seeds"]).all()
    assert "## How often XOR converges" in (out / "xor-atlas.md").read_text()
    assert (out / "xor-atlas_rates.png").stat().st_size > 0
