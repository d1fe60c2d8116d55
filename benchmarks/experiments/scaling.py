"""scaling: where each implementation wins, over batch size x hidden width.

MNIST 784-H-10, ReLU/softmax, cross-entropy, SGD 0.01, float32, file order, on a
prefix of real MNIST. Each cell of the map is an ordinary run of the harness, timed
by the same code as every other run: a fresh copy of the same seeded network,
identity-checked and warmed up (compiled, calibrated) outside the timer, then
trained on epochs of EPOCH_SAMPLES samples (at least two batches) until CELL_EPOCHS
epochs or the cell's time budget are spent, whichever comes first; a cell's step time
is its median step. An implementation's cells share one process, in turn. The process
also times a large float32 GEMM through NumPy's BLAS once: the machine's peak, the
roofline every cell is held to.

``scaling_runs.csv`` has one row per implementation x width x batch, and
``scaling.csv`` its columns of the map. Per implementation, t_step = overhead + FLOPs /
throughput is fitted to its cells (least squares on the relative error), FLOPs by
``scratch.cost``: the matrix products of forward and backward, the same useful work for
every implementation.
"""

from __future__ import annotations

import functools
import json
import math
import statistics
import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from benchmarks.data.tasks import TaskConfig, get_config
from benchmarks.files import save_figure, write_atomic
from benchmarks.harness import schema
from benchmarks.harness.specs import Profile, RunSpec, Selection
from scratch import MNIST
from scratch.cost import backprop_cost

if TYPE_CHECKING:  # pandas is for the reports: a run's worker process never imports it
    import pandas as pd

WIDTHS = {"full": (32, 128, 512, 2048), "quick": (32, 128, 512), "smoke": (32,)}
BATCHES = {"full": (1, 8, 32, 128, 512, 2048), "quick": (1, 8, 32), "smoke": (1, 32)}
CELL_S = {"full": 1.0, "quick": 0.25, "smoke": 0.05}  # a cell's training budget
EPOCH_SAMPLES = 4096
CELL_EPOCHS = 25
PEAK_N = 2048  # the roofline: an N x N x N float32 GEMM
# keras-torch-tuned is not among them: on minibatches its calibration has one candidate,
# plain fit (PyTorch's trainer takes one step per execution; no XLA), so it would run
# keras-torch again.
IMPLS = ("scratch-shortcut", "scratch-numba", "keras", "keras-tuned", "keras-jax",
         "keras-jax-tuned", "keras-torch", "jax", "torch")
# The quick profile: scratch against each framework at its best settings (the tuned Keras
# backends, whose calibration is most of their time), within 2 minutes.
QUICK_IMPLS = ("scratch-shortcut", "scratch-numba", "keras-tuned", "keras-jax-tuned",
               "keras-torch", "jax", "torch")
SMOKE_IMPLS = ("scratch-shortcut",)  # the others' training: tests/test_peers.py
TASKS = ("mnist",)
COLUMNS = tuple(schema.SCALING_RUNS)  # described in benchmarks/harness/schema.py
# What an older run (the whole map in one row) measured of itself, not of a cell: its cells
# keep these of it.
RUN_WIDE = ("experiment", "task", "impl", "framework", "framework_version", "backend", "seed",
            "status", "error", "dataset", "profile", "optimizer", "learning_rate",
            "optimizer_config", "dtype", "identity_steps", "identity_rel_diff")


def cell_config(hidden: int, batch: int) -> TaskConfig:
    base = get_config("mnist", "tf-tutorial")
    return replace(base, config=f"h{hidden}-b{batch}", batch_size=batch, shuffle=False,
                   arch=MNIST.replace(sizes=(784, hidden, 10), dropout=0.0),
                   optimizer={"name": "sgd", "learning_rate": 0.01}, epochs=CELL_EPOCHS,
                   target="", target_accuracy=1.0)


def specs(profile: Profile, chosen: Selection) -> list[RunSpec]:
    name = profile.name
    impls = chosen.impls or {"smoke": SMOKE_IMPLS, "quick": QUICK_IMPLS}.get(name, IMPLS)
    return [RunSpec("scaling", "mnist", f"h{hidden}-b{batch}", impl, 0, name, CELL_EPOCHS,
                    budget_s=CELL_S[name], timeout_s=profile.timeout_s,
                    train_samples=max(EPOCH_SAMPLES, 2 * batch), data_dir=chosen.data_dir,
                    extra={"hidden": hidden, "batch": batch})
            for impl in impls for hidden in WIDTHS[name] for batch in BATCHES[name]]


def configure(spec: RunSpec) -> TaskConfig:
    return cell_config(spec.extra["hidden"], spec.extra["batch"])


def same_process(spec: RunSpec) -> tuple:
    """An implementation's cells train in one process, one after another (its framework
    imported once)."""
    return (spec.impl,)


@functools.lru_cache(maxsize=1)
def peak_gflops(n: int = PEAK_N, repeats: int = 5) -> float:
    """The machine's float32 GEMM rate through NumPy's BLAS: the median of ``repeats``;
    measured once a process."""
    rng = np.random.default_rng(0)
    a, b = rng.random((n, n), dtype=np.float32), rng.random((n, n), dtype=np.float32)
    np.dot(a, b)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        np.dot(a, b)
        times.append(time.perf_counter() - start)
    return 2 * n**3 / statistics.median(times) / 1e9


def measure(t) -> dict:
    """The cell's throughput, against the roofline measured in the same process."""
    hidden, batch = t.spec.extra["hidden"], t.spec.extra["batch"]
    step = statistics.median(t.monitor.step_times)
    flops = batch * backprop_cost((784, hidden, 10), "float32").shortcut_flops_per_sample()
    peak = peak_gflops()
    return {"hidden": hidden, "batch": batch, "steps": t.monitor.steps_done,
            "us_per_sample": 1e6 * step / batch, "samples_per_s": batch / step,
            "gflops": flops / step / 1e9, "fraction_of_peak": flops / step / 1e9 / peak,
            "peak_gflops": peak}


def cells(df: pd.DataFrame) -> pd.DataFrame:
    """scaling.csv: the map's columns of the runs that finished, one row per cell. A run
    folder written before the cells were runs (one row per implementation, its cells in a
    JSON ``cells`` column) is read as the rows it would be now."""
    if "cells" in df.columns:
        df = from_cells(df)
    return df.loc[df["status"] == "ok", list(schema.SCALING)].reset_index(drop=True)


def from_cells(df: pd.DataFrame) -> pd.DataFrame:
    """The long rows of the older layout: each cell a row with its run's columns, those
    the cell measured (the rest, measured of the run as a whole, left empty)."""
    import pandas as pd

    context = list(schema.COLUMNS)[list(schema.COLUMNS).index("python"):]
    rows = []
    for _, run in df.iterrows():
        packed = run["cells"] if isinstance(run["cells"], str) and run["cells"] else "[]"
        for cell in json.loads(packed):
            hidden, batch = cell["hidden"], cell["batch"]
            step = cell["step_time_ms"] / 1e3
            rows.append({
                **{k: run.get(k) for k in RUN_WIDE}, **{k: run.get(k) for k in context},
                "architecture": f"784-{hidden}-10 relu/softmax",
                "train_samples": max(EPOCH_SAMPLES, 2 * batch),
                "config": f"h{hidden}-b{batch}", "epochs": CELL_EPOCHS, "batch_size": batch,
                "steps": cell["steps"], "step_time_ms": cell["step_time_ms"],
                "peak_rss_mib": cell["peak_rss_mib"], "warmup_s": cell["warmup_s"],
                "settings": json.dumps(cell["settings"]), "hidden": hidden, "batch": batch,
                "us_per_sample": 1e6 * step / batch, "samples_per_s": batch / step,
                "gflops": cell["gflops"], "fraction_of_peak": cell["gflops"] / run["peak_gflops"],
                "peak_gflops": run["peak_gflops"]})
    return pd.DataFrame(rows).reindex(columns=[*schema.COLUMNS, *schema.SCALING_RUNS])


def fit_cost_model(flops: np.ndarray, seconds: np.ndarray) -> dict:
    """t = overhead + flops / throughput, least squares on the relative error (each
    cell's equation divided by its own time, so that the fast cells count as much as the
    slow ones), neither term negative. Returns overhead (s), throughput (FLOP/s; inf
    when the fit finds no cost per FLOP) and the median relative error of the fit."""
    from scipy.optimize import nnls

    flops, seconds = np.asarray(flops, float), np.asarray(seconds, float)
    # in units near 1 (µs and GFLOP), and neither term negative
    design = np.stack([1e-6 / seconds, flops / 1e9 / seconds], axis=1)
    (overhead_us, per_gflop), _ = nnls(design, np.ones_like(seconds))
    overhead, per_flop = overhead_us * 1e-6, per_gflop * 1e-9
    fitted = overhead + per_flop * flops
    return {"overhead_s": float(overhead),
            "throughput": float(1 / per_flop) if per_flop > 0 else math.inf,
            "fit_error": float(np.median(np.abs(fitted / seconds - 1)))}


def fits(cells: pd.DataFrame) -> pd.DataFrame:
    """Each implementation's fitted overhead and throughput, and which term dominates
    where (the batch x width at which the two terms are equal, for the widest H)."""
    import pandas as pd

    rows = []
    for impl, part in cells.groupby("impl"):
        if len(part) < 2:
            continue
        flops = part["gflops"] * 1e9 * part["step_time_ms"] / 1e3
        fit = fit_cost_model(flops, part["step_time_ms"] / 1e3)
        rows.append({"impl": impl, "overhead_us": 1e6 * fit["overhead_s"],
                     "sustained_gflops": fit["throughput"] / 1e9,
                     "fit_median_error": fit["fit_error"],
                     "flops_where_equal": fit["overhead_s"] * fit["throughput"]})
    return pd.DataFrame(rows)


def winners(cells: pd.DataFrame) -> pd.DataFrame:
    """The fastest implementation of each cell, with scratch's time over the fastest's."""
    import pandas as pd

    rows = []
    for (hidden, batch), part in cells.groupby(["hidden", "batch"]):
        best = part.loc[part["step_time_ms"].idxmin()]
        scratch = part[part["impl"] == "scratch-shortcut"]["step_time_ms"]
        rows.append({"hidden": hidden, "batch": batch, "fastest": best["impl"],
                     "fastest_ms": best["step_time_ms"],
                     "scratch_over_fastest": (float(scratch.iloc[0]) / best["step_time_ms"]
                                              if len(scratch) else math.nan)})
    return pd.DataFrame(rows)


def head_to_head(cells: pd.DataFrame, impl: str, fit: pd.DataFrame) -> tuple[int, int, int]:
    """In the cells both ran: how many ``impl`` is faster in than scratch-shortcut (a tie
    is not faster), of how many, and in how many the two fitted lines (``fit``, by impl)
    pick the side the grid does."""
    times = cells.pivot_table(index=["hidden", "batch"], columns="impl", values="step_time_ms")
    both = times[["scratch-shortcut", impl]].dropna()
    ours = cells[cells["impl"] == "scratch-shortcut"].set_index(["hidden", "batch"])
    flops = (ours["gflops"] * 1e6 * ours["step_time_ms"]).reindex(both.index)  # a step's

    def fitted(name):  # µs a step
        row = fit.loc[name]
        return row["overhead_us"] + flops / (row["sustained_gflops"] * 1e3)

    faster = both[impl] < both["scratch-shortcut"]
    called = (fitted(impl) < fitted("scratch-shortcut")) == faster
    return int(faster.sum()), len(both), int(called.sum())


def verdict(cells: pd.DataFrame) -> str:
    """In plain words, from the grid: where scratch wins, and against each framework in how
    many cells. The fitted cost model (overhead + FLOPs / throughput) says why, quoted with
    its median error, and only where its two lines pick the grid's winner in every cell
    both ran; elsewhere the sentence says in how many cells they do."""
    best, fit = winners(cells), fits(cells).set_index("impl")
    ours = best["fastest"] == "scratch-shortcut"
    lines = [f"scratch-shortcut is the fastest in {int(ours.sum())} of {len(best)} cells"]
    for hidden, part in best.groupby("hidden"):
        wins = part.loc[part["fastest"] == "scratch-shortcut", "batch"].tolist()
        others = part.loc[part["fastest"] != "scratch-shortcut", "fastest"].unique().tolist()
        if not wins:
            lines.append(f"H {hidden}: {', '.join(others)} at every batch size")
        else:
            lines.append(f"H {hidden}: scratch wins at batch {', '.join(map(str, wins))}"
                         + (f"; elsewhere {', '.join(others)}" if others else ""))
    if "scratch-shortcut" not in fit.index:
        return ". ".join(lines) + "."
    lines.append("Why, fitted per step (overhead + FLOPs / throughput, and the fit's median "
                 "error): " + "; ".join(
                     f"{impl} {row['overhead_us']:.0f} µs + FLOPs / "
                     f"{row['sustained_gflops']:.3g} GFLOP/s ({row['fit_median_error']:.0%})"
                     for impl, row in fit.iterrows()))
    ours = fit.loc["scratch-shortcut"]
    per_sample = backprop_cost((784, 512, 10), "float32").shortcut_flops_per_sample()
    for impl, row in fit.drop(index="scratch-shortcut").iterrows():
        faster_in, shared, called = head_to_head(cells, impl, fit)
        if not shared:
            continue
        grid = (f"{impl} is faster than scratch in {faster_in} of {shared} cells"
                if 0 < faster_in < shared else
                f"{impl} is faster than scratch in all {shared} cells" if faster_in else
                f"scratch is faster than {impl} in all {shared} cells")
        if called < shared:
            lines.append(f"{grid}; the two fitted lines pick the grid's winner in only {called} "
                         f"of the {shared}, so they do not say why")
            continue
        more = row["overhead_us"] - ours["overhead_us"]  # µs a step
        faster = row["sustained_gflops"] > ours["sustained_gflops"]
        if (more > 0) != faster or not 0 < faster_in < shared:
            lines.append(f"{grid}: its overhead and its throughput both say so")
            continue
        # where the fitted lines cross, inside the grid: o_s + F / r_s = o_i + F / r_i
        flops = more * 1e3 / (1 / ours["sustained_gflops"] - 1 / row["sustained_gflops"])
        lines.append(f"{grid}: it pays {abs(more):.0f} µs {'more' if more > 0 else 'less'} a "
                     f"step, and is {'faster' if faster else 'slower'} above {flops:.3g} FLOPs "
                     f"a step (batch {flops / per_sample:.3g} at H 512)")
    return ". ".join(lines) + "."


def winners_grid(cells: pd.DataFrame) -> str:
    """H in rows, batch sizes in columns: the fastest, and scratch's time over it."""
    best = winners(cells)
    grid = best.assign(cell=[f"{w} ({r:.2f}x)" for w, r in
                             zip(best["fastest"], best["scratch_over_fastest"], strict=True)])
    grid = grid.pivot(index="hidden", columns="batch", values="cell")
    grid.columns = [f"batch {b}" for b in grid.columns]
    return grid.to_markdown()


def write_summary(df: pd.DataFrame, out_dir: Path) -> list[Path]:
    path = out_dir / "scaling.csv"
    write_atomic(path, lambda f: cells(df).to_csv(f, index=False))
    return [path]


def report(df: pd.DataFrame) -> list[str]:
    map_ = cells(df)
    if map_.empty:
        return []
    fit = fits(map_)
    peak = map_["peak_gflops"].median()
    return ["## Where each implementation wins", "", verdict(map_), "",
            "## The fastest implementation per cell", "",
            "H (rows) x batch size (columns): the fastest, and (in brackets) scratch-shortcut's "
            "step time over the fastest's.", "", winners_grid(map_), "",
            "## Overhead and throughput: t_step = overhead + FLOPs / throughput", "",
            fit.to_markdown(index=False, floatfmt=".4g"), "",
            f"The machine's peak (a {PEAK_N}^3 float32 GEMM through NumPy's BLAS, median of "
            f"the runs): {peak:.1f} GFLOP/s. Scratch's best fraction of it: "
            f"{map_.loc[map_['impl'] == 'scratch-shortcut', 'fraction_of_peak'].max():.2f}.",
            "flops_where_equal: the FLOPs per step at which the two terms are equal; below it "
            "the fixed overhead dominates, above it the throughput.", ""]


def plot_throughput(df: pd.DataFrame, out_dir: Path, experiment: str) -> Path | None:
    """Samples per second against batch size, a panel per width, the roofline drawn."""
    import matplotlib.pyplot as plt

    map_ = cells(df)
    if map_.empty:
        return None
    widths = sorted(map_["hidden"].unique())
    fig, axes = plt.subplots(1, len(widths), figsize=(4 * len(widths), 3.6), squeeze=False,
                             sharey=True)
    peak = map_["peak_gflops"].median() * 1e9
    for ax, hidden in zip(axes[0], widths, strict=True):
        part = map_[map_["hidden"] == hidden]
        for impl, runs in part.groupby("impl"):
            runs = runs.sort_values("batch")
            ax.loglog(runs["batch"], runs["samples_per_s"], "o-", label=impl, markersize=3)
        batches = np.array(sorted(part["batch"].unique()), float)
        per_sample = backprop_cost((784, hidden, 10), "float32").shortcut_flops_per_sample()
        ax.loglog(batches, np.full_like(batches, peak / per_sample), "k--", label="roofline")
        ax.set(title=f"784-{hidden}-10", xlabel="batch size")
    axes[0][0].set_ylabel("samples per second")
    axes[0][-1].legend(fontsize=6)
    return save_figure(fig, out_dir / f"{experiment}_throughput.png")


def plot_winners(df: pd.DataFrame, out_dir: Path, experiment: str) -> Path | None:
    """The fastest implementation of each cell, and scratch's time over it."""
    import matplotlib.pyplot as plt

    map_ = cells(df)
    if map_.empty:
        return None
    best = winners(map_)
    names = sorted(best["fastest"].unique())
    grid = best.pivot(index="hidden", columns="batch", values="fastest")
    fig, ax = plt.subplots(figsize=(1.3 * grid.shape[1] + 2, 0.8 * grid.shape[0] + 1.5))
    ax.imshow(grid.map(names.index).to_numpy(), cmap="tab10", vmin=0, vmax=9, aspect="auto")
    ratio = best.pivot(index="hidden", columns="batch", values="scratch_over_fastest")
    for i in range(grid.shape[0]):
        for j in range(grid.shape[1]):
            ax.text(j, i, f"{grid.iat[i, j]}\nscratch {ratio.iat[i, j]:.2f}x", ha="center",
                    va="center", fontsize=7)
    ax.set(xticks=range(grid.shape[1]), xticklabels=grid.columns, yticks=range(grid.shape[0]),
           yticklabels=grid.index, xlabel="batch size", ylabel="hidden width H",
           title="the fastest per cell, and scratch's time over it")
    return save_figure(fig, out_dir / f"{experiment}_winners.png")

