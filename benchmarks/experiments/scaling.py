"""scaling: where each implementation wins, over batch size x hidden width.

MNIST 784-H-10, ReLU/softmax, cross-entropy, SGD 0.01, float32, file order, on a
prefix of real MNIST. Each cell of the map is a stage of interleaved rounds
(``harness.interleaved``): every implementation's copy of the same seeded network,
identity-checked and warmed up (compiled, calibrated) outside the timer, trains one unit
a round (``unit_steps``: 256 steps at batch 1, 2 at batch 2048), in a freshly shuffled
order, after a warm round whose times are discarded; the reference's process times the
machine's peak (a float32 GEMM through NumPy's BLAS) as a unit of the same rounds. A
unit's time is its steps' own, without a framework's per-call setup (Keras fit's). The
rounds end once every implementation's ratio to scratch's is within 10% of its median
(at ``rounds.MIN_ROUNDS`` at the least, so that one slow round makes no tie), or the
cell's time is spent. An implementation's cells are one lane: one process, its framework
imported once.

``scaling_runs.csv`` has one row per implementation x width x batch, with its rounds'
times; ``scaling.csv`` the map: each cell's step times, and each implementation's time
over the cell's fastest and over scratch's, the median of the rounds' ratios with its 95%
interval. The fastest and every implementation whose interval reaches 1 are tied. Per
implementation, t_step = overhead + FLOPs / throughput is fitted to its cells (least
squares on the relative error), FLOPs by ``scratch.cost``: the matrix products of forward
and backward, the same useful work for every implementation.
"""

from __future__ import annotations

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
from benchmarks.harness.rounds import Ratio
from benchmarks.harness.specs import Profile, RunSpec, Selection
from scratch import MNIST
from scratch.cost import backprop_cost

if TYPE_CHECKING:  # pandas is for the reports: a run's worker process never imports it
    import pandas as pd

WIDTHS = {"full": (32, 128, 512, 2048), "quick": (32, 128, 512), "smoke": (32,)}
BATCHES = {"full": (1, 8, 32, 128, 512, 2048), "quick": (1, 8, 32), "smoke": (1, 32)}
CELL_S = {"full": 8.0, "quick": 2.0, "smoke": 0.1}  # a cell's rounds: no new one after
CELL_ROUNDS = {"full": 30, "quick": 12, "smoke": 2}  # and at most this many
PEAK_N = 1024  # the roofline: an N x N x N float32 GEMM (2 GFLOP, 0.03 s at 70 GFLOP/s)
# keras-torch-tuned is not among them: on minibatches its calibration has one candidate,
# plain fit (PyTorch's trainer takes one step per execution; no XLA), so it would run
# keras-torch again.
IMPLS = ("scratch-shortcut", "scratch-numba", "keras", "keras-tuned", "keras-jax",
         "keras-jax-tuned", "keras-torch", "jax", "torch")
# The quick profile: scratch against each framework at its best settings (the tuned Keras
# backends, whose calibration is most of their time), within 2 minutes.
QUICK_IMPLS = ("scratch-shortcut", "scratch-numba", "keras-tuned", "keras-jax-tuned",
               "keras-torch", "jax", "torch")
REFERENCE = "scratch-shortcut"  # each cell's first lane: its rounds' ratios are to it
SMOKE_IMPLS = (REFERENCE,)  # the others' training: tests/test_peers.py
TASKS = ("mnist",)
COLUMNS = tuple(schema.SCALING_RUNS)  # described in benchmarks/harness/schema.py
# What an older run (the whole map in one row) measured of itself, not of a cell: its cells
# keep these of it.
RUN_WIDE = ("experiment", "task", "impl", "framework", "framework_version", "backend", "seed",
            "status", "error", "dataset", "profile", "optimizer", "learning_rate",
            "optimizer_config", "dtype", "identity_steps", "identity_rel_diff")


def unit_steps(batch: int) -> int:
    """A unit's steps: 256 at batch 1, 256 / sqrt(batch) above (enough to time the fastest
    implementation), and at most 4096 samples, at least 2 steps (Keras at batch 1 takes
    2-7 ms a step, and a 784-2048-10 step at batch 2048 0.1-0.3 s)."""
    return max(2, min(4096 // batch, round(256 / math.sqrt(batch))))


def cell_config(hidden: int, batch: int) -> TaskConfig:
    base = get_config("mnist", "tf-tutorial")
    return replace(base, config=f"h{hidden}-b{batch}", batch_size=batch, shuffle=False,
                   arch=MNIST.replace(sizes=(784, hidden, 10), dropout=0.0),
                   optimizer={"name": "sgd", "learning_rate": 0.01},
                   epochs=CELL_ROUNDS["full"], target="", target_accuracy=1.0)


def specs(profile: Profile, chosen: Selection) -> list[RunSpec]:
    name = profile.name
    impls = chosen.impls or {"smoke": SMOKE_IMPLS, "quick": QUICK_IMPLS}.get(name, IMPLS)
    return [RunSpec("scaling", "mnist", f"h{hidden}-b{batch}", impl, 0, name, CELL_ROUNDS[name],
                    budget_s=CELL_S[name], timeout_s=profile.timeout_s,
                    train_samples=unit_steps(batch) * batch, data_dir=chosen.data_dir,
                    extra={"hidden": hidden, "batch": batch})
            for hidden in WIDTHS[name] for batch in BATCHES[name] for impl in impls]


def configure(spec: RunSpec) -> TaskConfig:
    return cell_config(spec.extra["hidden"], spec.extra["batch"])


def rounds(spec: RunSpec) -> tuple:
    """The whole map is one run of rounds: each cell a stage, each implementation a lane."""
    return ("map",)


class PeakGemm:
    """The machine's float32 GEMM rate through NumPy's BLAS, an N x N x N product a call
    (the reference's unit in each cell's rounds)."""

    def __init__(self, n: int = PEAK_N):
        self.n, self.times = n, []

    def __call__(self) -> None:
        if not hasattr(self, "a"):
            rng = np.random.default_rng(0)
            self.a, self.b = (rng.random((self.n, self.n), dtype=np.float32) for _ in "ab")
            np.dot(self.a, self.b)  # BLAS's threads and buffers, before the first timing
        start = time.perf_counter()
        np.dot(self.a, self.b)
        self.times.append(time.perf_counter() - start)

    def gflops(self) -> float:
        return 2 * self.n**3 / statistics.median(self.times) / 1e9 if self.times else math.nan


def between_epochs(spec: RunSpec, cfg: TaskConfig, data, weights) -> PeakGemm:
    return PeakGemm()


def measure(t) -> dict:
    """The cell's median step (over its rounds), and its throughput; the peak where this is
    the reference's process (``cells`` gives every row of the cell its reference's)."""
    hidden, batch = t.spec.extra["hidden"], t.spec.extra["batch"]
    step = statistics.median(t.monitor.epoch_times) / (len(t.data.x) // batch)
    flops = batch * backprop_cost((784, hidden, 10), "float32").shortcut_flops_per_sample()
    peak = t.monitor.between_epochs.gflops() if t.monitor.between_epochs else math.nan
    return {"hidden": hidden, "batch": batch, "steps": t.monitor.steps_done,
            "us_per_sample": 1e6 * step / batch, "samples_per_s": batch / step,
            "gflops": flops / step / 1e9, "fraction_of_peak": flops / step / 1e9 / peak,
            "peak_gflops": peak}


def cells(df: pd.DataFrame) -> pd.DataFrame:
    """scaling.csv: the map's columns of the runs that finished, one row per cell, each
    with its time over the cell's fastest and over scratch's (intervals from the rounds)
    and its place. A run folder written before the cells were runs (one row per
    implementation, its cells in a JSON ``cells`` column) is read as the rows it would be
    now; one written before the rounds has no intervals."""
    if "cells" in df.columns:
        df = from_cells(df)
    ok = df.loc[df["status"] == "ok"].reset_index(drop=True)
    rounds = [json.loads(r) if isinstance(r, str) and r else {}
              for r in ok.get("round_times_s", [None] * len(ok))]
    group = [r.get("group") for r in rounds]
    if any(group):  # every row of a cell has the peak its reference measured
        peak = ok["peak_gflops"].groupby(group).transform("max")
        ok = ok.assign(peak_gflops=peak, fraction_of_peak=ok["gflops"] / peak)
    times = {i: (r["group"], r["epoch"]) for i, r in enumerate(rounds) if r.get("epoch")}
    return ranked(ok, times)[list(schema.SCALING)]


def ranked(cells: pd.DataFrame, times: dict | None = None) -> pd.DataFrame:
    """``cells`` with each row's time over its cell's fastest and over scratch's, and its
    place: ``fastest``, ``tied`` (its interval over the fastest reaches 1) or empty. The
    ratios are the medians of the rounds' ratios with 95% intervals where ``times`` (by
    row: (group, unit times)) pairs the two rows' rounds, the step times' quotient (and no
    interval) where not."""
    cells, times = cells.reset_index(drop=True), times or {}
    out = {k: [math.nan] * len(cells) for k in
           ("rounds", "over_fastest", "over_fastest_low", "over_fastest_high",
            "over_scratch", "over_scratch_low", "over_scratch_high")}
    place = [""] * len(cells)

    def ratio(i: int, j: int) -> Ratio:
        (gi, a), (gj, b) = times.get(i, (None, [])), times.get(j, (None, []))
        n = min(len(a), len(b))
        if gi is not None and gi == gj and n:
            return Ratio.of(a[:n], b[:n])
        r = cells.at[i, "step_time_ms"] / cells.at[j, "step_time_ms"]
        return Ratio(r, math.nan, math.nan, 0)

    for _, part in cells.groupby(["hidden", "batch"]):
        fastest = part["step_time_ms"].idxmin()
        scratch = part.index[part["impl"] == REFERENCE]
        for i in part.index:
            for name, j in (("over_fastest", fastest),
                            ("over_scratch", scratch[0] if len(scratch) else None)):
                if j is None:
                    continue
                r = ratio(i, j)
                for end, value in (("", r.median), ("_low", r.low), ("_high", r.high)):
                    out[name + end][i] = value
                out["rounds"][i] = r.rounds or math.nan
            place[i] = ("fastest" if i == fastest else
                        "tied" if out["over_fastest_low"][i] <= 1 else "")
    return cells.assign(**out, place=place)


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
                "train_samples": max(4096, 2 * batch),  # the older layout's cells
                "config": f"h{hidden}-b{batch}", "epochs": 25, "batch_size": batch,
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
    """Each cell's fastest, those tied with it, the runner-up's time over the fastest's and
    scratch's, each with its interval."""
    import pandas as pd

    if "place" not in cells:
        cells = ranked(cells)
    rows = []
    for (hidden, batch), part in cells.groupby(["hidden", "batch"]):
        part = part.sort_values("over_fastest")
        best = part[part["place"] == "fastest"].iloc[0]
        second = part[part["place"] != "fastest"].head(1)
        scratch = part[part["impl"] == REFERENCE]

        def of(rows: pd.DataFrame, column: str) -> float:
            return float(rows[column].iloc[0]) if len(rows) else math.nan

        rows.append({"hidden": hidden, "batch": batch, "fastest": best["impl"],
                     "fastest_ms": best["step_time_ms"],
                     "tied": part.loc[part["place"] == "tied", "impl"].tolist(),
                     "runner_up": second["impl"].iloc[0] if len(second) else "",
                     **{f"runner_up_{k}": of(second, f"over_fastest{e}")
                        for k, e in (("ratio", ""), ("low", "_low"), ("high", "_high"))},
                     **{f"scratch_over_fastest{k}": of(scratch, f"over_fastest{k}")
                        for k in ("", "_low", "_high")}})
    return pd.DataFrame(rows)


def times_text(ratio: float, low: float, high: float) -> str:
    """1.35x [1.21, 1.52]; without the brackets where there is no interval."""
    return f"{ratio:.2f}x" + ("" if math.isnan(low) else f" [{low:.2f}, {high:.2f}]")


def decided(cells: pd.DataFrame, impl: str) -> pd.DataFrame:
    """The cells ``impl`` and scratch both ran, by (hidden, batch): whether ``impl`` is
    faster than scratch (its interval over scratch's wholly below 1), slower (wholly above)
    or tied."""
    if "over_scratch" not in cells:
        cells = ranked(cells)
    part = cells[cells["impl"] == impl].set_index(["hidden", "batch"])
    part = part[part["over_scratch"].notna()]
    low = part["over_scratch_low"].fillna(part["over_scratch"])  # no interval: the point
    high = part["over_scratch_high"].fillna(part["over_scratch"])
    return part.assign(faster=high < 1, slower=low > 1)


def head_to_head(cells: pd.DataFrame, impl: str, fit: pd.DataFrame) -> dict:
    """In the cells both ran: how many ``impl`` is faster in than scratch-shortcut, slower
    in, tied in, and of the cells the grid decides, in how many the two fitted lines
    (``fit``, by impl) pick the side the grid does."""
    both = decided(cells, impl)
    ours = cells[cells["impl"] == REFERENCE].set_index(["hidden", "batch"])
    flops = (ours["gflops"] * 1e6 * ours["step_time_ms"]).reindex(both.index)  # a step's

    def fitted(name):  # µs a step
        row = fit.loc[name]
        return row["overhead_us"] + flops / (row["sustained_gflops"] * 1e3)

    sure = both["faster"] | both["slower"]
    called = ((fitted(impl) < fitted(REFERENCE)) == both["faster"])[sure]
    return {"faster": int(both["faster"].sum()), "slower": int(both["slower"].sum()),
            "tied": int((~sure).sum()), "shared": len(both), "decided": int(sure.sum()),
            "called": int(called.sum())}


def verdict(cells: pd.DataFrame) -> str:
    """In plain words, from the grid: where scratch is the fastest (or tied), and against
    each framework in how many cells it is faster, slower or tied (by the intervals). The
    fitted cost model (overhead + FLOPs / throughput) says why, quoted with its median
    error, and only where its two lines pick the grid's side in every cell the grid
    decides; elsewhere the sentence says in how many they do."""
    if "place" not in cells:
        cells = ranked(cells)
    best, fit = winners(cells), fits(cells).set_index("impl")
    alone = (best["fastest"] == REFERENCE) & (best["tied"].str.len() == 0)
    tied = ~alone & best.apply(lambda b: REFERENCE in [b["fastest"], *b["tied"]], axis=1)
    lines = [f"{REFERENCE} is the fastest in {int(alone.sum())} of {len(best)} cells"
             + (f", and tied for the fastest in {int(tied.sum())} more" if tied.any() else "")]
    for hidden, part in best.assign(alone=alone, tie=tied).groupby("hidden"):
        wins, ties = (part.loc[part[k], "batch"].tolist() for k in ("alone", "tie"))
        others = part.loc[~part["alone"] & ~part["tie"], "fastest"].unique().tolist()
        if not wins and not ties:
            lines.append(f"H {hidden}: {', '.join(others)} at every batch size")
            continue
        said = [f"scratch is the fastest at batch {', '.join(map(str, wins))}"] if wins else []
        said += [f"tied at batch {', '.join(map(str, ties))}"] if ties else []
        lines.append(f"H {hidden}: {'; '.join(said)}"
                     + (f"; elsewhere {', '.join(others)}" if others else ""))
    if REFERENCE not in fit.index:
        return ". ".join(lines) + "."
    lines.append("Why, fitted per step (overhead + FLOPs / throughput, and the fit's median "
                 "error): " + "; ".join(
                     f"{impl} {row['overhead_us']:.0f} µs + FLOPs / "
                     f"{row['sustained_gflops']:.3g} GFLOP/s ({row['fit_median_error']:.0%})"
                     for impl, row in fit.iterrows()))
    ours = fit.loc[REFERENCE]
    per_sample = backprop_cost((784, 512, 10), "float32").shortcut_flops_per_sample()
    for impl, row in fit.drop(index=REFERENCE).iterrows():
        h = head_to_head(cells, impl, fit)
        shared, faster_in = h["shared"], h["faster"]
        if not shared:
            continue
        grid = (f"{impl} is faster than scratch in all {shared} cells" if faster_in == shared
                else f"scratch is faster than {impl} in all {shared} cells"
                if h["slower"] == shared else
                f"{impl} is faster than scratch in {faster_in} of {shared} cells"
                + (f", slower in {h['slower']}" if h["tied"] and h["slower"] else "")
                + (f", tied in {h['tied']}" if h["tied"] else ""))
        if h["called"] < h["decided"]:
            lines.append(f"{grid}; the two fitted lines pick the grid's winner in only "
                         f"{h['called']} of the {h['decided']}"
                         + (" it decides" if h["tied"] else "") + ", so they do not say why")
            continue
        if not h["decided"]:
            lines.append(grid)
            continue
        more = row["overhead_us"] - ours["overhead_us"]  # µs a step
        faster = row["sustained_gflops"] > ours["sustained_gflops"]
        if (more > 0) != faster or not 0 < faster_in < h["decided"]:
            lines.append(f"{grid}: its overhead and its throughput both say so")
            continue
        # where the fitted lines cross, inside the grid: o_s + F / r_s = o_i + F / r_i
        flops = more * 1e3 / (1 / ours["sustained_gflops"] - 1 / row["sustained_gflops"])
        lines.append(f"{grid}: it pays {abs(more):.0f} µs {'more' if more > 0 else 'less'} a "
                     f"step, and is {'faster' if faster else 'slower'} above {flops:.3g} FLOPs "
                     f"a step (batch {flops / per_sample:.3g} at H 512)")
    return ". ".join(lines) + "."


def winners_grid(cells: pd.DataFrame, scratch: bool = False) -> str:
    """H in rows, batch sizes in columns: the fastest (or the tied), and the runner-up's
    time over the fastest's with its interval; with ``scratch``, scratch's time over the
    fastest's instead."""
    best = winners(cells)

    def cell(b) -> str:
        if scratch:
            return times_text(*(b[f"scratch_over_fastest{k}"] for k in ("", "_low", "_high")))
        ratio = times_text(*(b[f"runner_up_{k}"] for k in ("ratio", "low", "high")))
        if b["tied"]:
            return f"tie: {' = '.join([b['fastest'], *b['tied']])} ({b['runner_up']} {ratio})"
        return f"{b['fastest']} ({b['runner_up']} {ratio})" if b["runner_up"] else b["fastest"]

    grid = best.assign(cell=[cell(b) for _, b in best.iterrows()])
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
    rounds = map_.groupby(["hidden", "batch"])["rounds"].max()
    counted = (f"Each cell ran {rounds.min():.0f}-{rounds.max():.0f} interleaved rounds "
               f"(median {rounds.median():.0f}). " if rounds.notna().all() else "")
    return ["## Where each implementation wins", "", verdict(map_), "",
            "## The fastest implementation per cell", "",
            "H (rows) x batch size (columns): the fastest, and (in brackets) the runner-up's "
            "step time over the fastest's: the median of the rounds' ratios and its 95% "
            "interval. A cell is a tie where an interval reaches 1: the implementations "
            "tied with the fastest are named with it.", "", winners_grid(map_), "",
            "scratch-shortcut's step time over the fastest's, and its interval:", "",
            winners_grid(map_, scratch=True), "",
            "## Overhead and throughput: t_step = overhead + FLOPs / throughput", "",
            fit.to_markdown(index=False, floatfmt=".4g"), "",
            f"{counted}The machine's peak (a {PEAK_N}^3 float32 GEMM through NumPy's BLAS, a "
            f"unit of every cell's rounds, median of the cells): {peak:.1f} GFLOP/s. "
            "Scratch's best fraction of it: "
            f"{map_.loc[map_['impl'] == REFERENCE, 'fraction_of_peak'].max():.2f}.",
            "flops_where_equal: the FLOPs per step at which the two terms are equal; below it "
            "the fixed overhead dominates, above it the throughput. A fit is a summary: "
            "where its lines and the grid disagree, the grid is the result.", ""]


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
    """The fastest implementation of each cell (and those tied with it), and scratch's time
    over it."""
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
    tied = best.assign(tied=best["tied"].map(", ".join)).pivot(index="hidden", columns="batch",
                                                               values="tied")
    for i in range(grid.shape[0]):
        for j in range(grid.shape[1]):
            also = f"\ntied: {tied.iat[i, j]}" if tied.iat[i, j] else ""
            ax.text(j, i, f"{grid.iat[i, j]}{also}\nscratch {ratio.iat[i, j]:.2f}x",
                    ha="center", va="center", fontsize=6 if also else 7)
    ax.set(xticks=range(grid.shape[1]), xticklabels=grid.columns, yticks=range(grid.shape[0]),
           yticklabels=grid.index, xlabel="batch size", ylabel="hidden width H",
           title="the fastest per cell (tied: within its interval), and scratch's time over it")
    return save_figure(fig, out_dir / f"{experiment}_winners.png")

