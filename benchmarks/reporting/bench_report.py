"""The newest pytest-benchmark run under results/benchmarks, as a CSV and a ratio table.

``python -m benchmarks.reporting.bench_report [--run] [STORAGE]`` writes, beside the saved
JSON, a CSV with one row per benchmark (its statistics and its extra_info) and a
markdown table of each implementation's median time over keras' in the same group.
``--run`` first runs the suite (``make bench``) into STORAGE.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from benchmarks.files import write_atomic
from benchmarks.harness.environment import ROOT
from benchmarks.implementations import REFERENCE

STATS = ["median", "iqr", "mean", "stddev", "min", "max", "rounds"]


def backends() -> list[str]:
    """Keras' backends installed here, TensorFlow first: Keras has one backend a process,
    so the suite runs once for each."""
    from benchmarks.implementations.keras import BACKEND_PACKAGES

    return [b for b, package in BACKEND_PACKAGES.items() if importlib.util.find_spec(package)]


def run_suite(storage: Path, tiny: bool = False) -> int:
    """Run benchmarks/bench_ops.py once per Keras backend, save each run's JSON under
    ``storage`` (named by the backend), then report them together.

    ``tiny``: small inputs and short rounds (GROUNDUP_BENCH_TINY), and TensorFlow's process
    alone, to try the suite (the smoke publish), not to time it: the other backends' runs
    are the same code on other implementations."""
    options = ["--benchmark-max-time=0.05", "--benchmark-min-rounds=1"] if tiny else []
    # Outside the tests' xdist (its addopts, and a worker's environment when a test runs
    # this): pytest-benchmark times nothing under xdist.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_XDIST")}
    env.update({"GROUNDUP_BENCH_TINY": "1"} if tiny else {})
    for backend in backends()[:1] if tiny else backends():  # each its own implementations
        code = subprocess.call([
            sys.executable, "-m", "pytest", "benchmarks/bench_ops.py", "-q", "-p",
            "no:cacheprovider", "-o", "addopts=", "--benchmark-only",
            f"--benchmark-save={backend}", f"--benchmark-storage=file://{storage}",
            "--benchmark-columns=median,iqr,rounds", "--benchmark-sort=name", *options],
            cwd=ROOT, env={**env, "KERAS_BACKEND": backend})
        if code:
            return code
    return main([str(storage)])


def newest(storage: Path) -> list[Path]:
    """The newest suite run: its TensorFlow JSON and the other backends' saved after it,
    by pytest-benchmark's run counter (a JSON not named by its backend is a run alone)."""
    runs = sorted(storage.glob("*/*.json"), key=lambda p: p.name)
    if not runs:
        raise SystemExit(f"No pytest-benchmark JSON under {storage}: run `make bench` first.")
    named = [i for i, p in enumerate(runs) if p.stem.endswith("_tensorflow")]
    later = runs[named[-1] + 1:] if named else []
    if not named or not all(p.stem.endswith(("_jax", "_torch")) for p in later):
        return [runs[-1]]
    return [runs[named[-1]], *later]


def to_frame(runs: list[Path]) -> pd.DataFrame:
    rows = []
    for run in runs:
        data = json.loads(run.read_text())
        rows += [{"group": b["group"], "name": b["name"],
                  **{f"{k}_s" if k != "rounds" else k: b["stats"][k] for k in STATS},
                  **b["extra_info"]} for b in data["benchmarks"]]
    return pd.DataFrame(rows)


def ratios(df: pd.DataFrame) -> pd.DataFrame:
    """Median time of each implementation over the reference's (keras') median, per group."""
    table = df.pivot_table(index="group", columns="impl", values="median_s")
    return table.div(table[REFERENCE], axis=0).round(4) if REFERENCE in table else table


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["--run"]:
        return run_suite(Path((args[1:] or ["results/benchmarks"])[0]).resolve())
    storage = Path((args or ["results/benchmarks"])[0])
    runs = newest(storage)
    run = runs[0]
    df = to_frame(runs)
    csv, md = run.with_suffix(".csv"), run.with_name(run.stem + "_ratios.md")
    write_atomic(csv, lambda f: df.to_csv(f, index=False))
    table = ratios(df)
    text = (f"# Median time / the median of {REFERENCE}, per group\n\n"
            f"From {', '.join(r.name for r in runs)}."
            "\n\n" + table.to_markdown() + "\n")
    write_atomic(md, lambda f: f.write(text.encode()))
    console = Console()
    view = Table("group", *table.columns, title=f"median time / {REFERENCE}")
    for group, row in table.iterrows():
        view.add_row(group, *("" if pd.isna(v) else f"{v:.3g}" for v in row))
    console.print(view)
    for path in (*runs, csv, md):
        console.print(f"wrote {path}", soft_wrap=True)
    bad = df[~df["correct"].astype(bool)]
    if len(bad):
        console.print(f"[red]{len(bad)} benchmarks failed their correctness check:[/] "
                      + escape(", ".join(bad["name"])), soft_wrap=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
