"""xor-atlas: how often a 2-2-1 XOR net really converges, over 1000 seeds a cell.

The folklore says 80-90% of XOR nets train; 20 seeds of the blog's configuration, in
compare's full run before the atlas, converged in fewer than half. The atlas sweeps
hidden width (2, 3, 4), learning rate (0.01, 0.1, 0.5, 1.0) and initializer (Keras'
glorot_uniform, the blog's U(-1, 1), N(0, 1)), each cell trained for 100000 full-batch
SGD epochs on MSE as the blog trained it, by scratch-numba's seed-batched network
(ENGINE: scratch's maths compiled, a group of seeds a process, every seed in the
innermost loop; folders written before it hold scratch-shortcut's, the same maths in
NumPy, and the reports read either). A seed converged when all four outputs are right
after rounding, checked every 1/200 of the epochs; it then stops training and leaves the
stack, so that the group's cost falls as its seeds converge. (In the full run before
seeds stopped, results/published at b31c6a6, none of 36,000 seeds that reached
convergence had lost it by the end.) A seed that did not converge is in a **local
minimum** when its final gradient norm is below LOCAL_MINIMUM_GRAD and its loss no
longer falls; on a **plateau** when its loss fell by more than FALLING (relative) over
the last tenth of training; otherwise **stalled** (neither: a gradient too large for a
minimum, a loss that does not fall).
"""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from benchmarks.data.tasks import TaskConfig, get_config
from benchmarks.files import save_figure, write_atomic
from benchmarks.harness import schema
from benchmarks.harness.specs import Profile, RunSpec, Selection
from benchmarks.implementations import IMPLEMENTATIONS
from scratch import XOR

if TYPE_CHECKING:  # pandas is for the reports: a run's worker process never imports it
    import pandas as pd

HIDDEN = (2, 3, 4)
RATES = (0.01, 0.1, 0.5, 1.0)
INITIALIZERS = {"glorot_uniform": "glorot", "uniform": "U(-1,1)", "standard_normal": "N(0,1)"}
SEEDS = {"full": 1000, "quick": 100, "smoke": 4}
EPOCHS = {"full": 100_000, "quick": 10_000, "smoke": 200}  # quick: a sweep to try
SMOKE_CELLS = 2
CROSS_CHECK = (2, 0.5, "uniform")  # the cell jax trains too (smoke: the first cell)
# keras-tuned trains one seed a run, about 0.25 ms a step here (25 s for 100000 epochs): a
# few hundred seeds of a cell whose seeds converge fast, each stopped once it converged.
KERAS_CHECK = (3, 1.0, "standard_normal")
KERAS_SEEDS = {"full": 200, "quick": 20, "smoke": 0}
BLOG = (2, 0.01, "glorot_uniform")  # the blog's XOR: Keras' default initializer, SGD 0.01
LOCAL_MINIMUM_GRAD = 1e-4  # the gradient's L2 norm, over every weight and bias
FALLING = 1e-3             # relative fall of the loss over the last tenth of the epochs
Z95 = 1.959963984540054
TASKS = ("xor",)
ENGINE = "scratch-numba"  # 11x scratch-shortcut's training speed here, the same outcomes
COLUMNS = tuple(schema.ATLAS_RUNS)  # described in benchmarks/harness/schema.py


def cells(profile: str) -> list[tuple[int, float, str]]:
    every = [(h, lr, init) for h in HIDDEN for lr in RATES for init in INITIALIZERS]
    return every[:SMOKE_CELLS] if profile == "smoke" else every


def cell_name(hidden: int, lr: float, init: str) -> str:
    return f"h{hidden}-lr{lr:g}-{init}"


def specs(profile: Profile, chosen: Selection) -> list[RunSpec]:
    """Every cell in ENGINE; the cross-checked cell in jax too (vmap over the same initial
    weights), and KERAS_CHECK's first KERAS_SEEDS in keras-tuned; --impl narrows or widens
    that. Every seed stops once it converged, but those of jax's seed-batched group: its
    compiled vmap trains the whole group to the end, so the cross-check also shows that
    seeds which reached convergence keep it (a lone jax run stops like the rest)."""
    seeds = chosen.seeds or SEEDS[profile.name]
    runs = []
    for cell in cells(profile.name):
        check = cell == CROSS_CHECK or (profile.name == "smoke" and cell == cells("smoke")[0])
        impls = chosen.impls or [ENGINE, *(["jax"] if check else [])]
        if not chosen.impls and cell == KERAS_CHECK and KERAS_SEEDS[profile.name]:
            impls = [*impls, "keras-tuned"]
        h, lr, init = cell
        for impl in impls:
            alone = IMPLEMENTATIONS[impl].seed_batched is None  # one seed a run
            count = KERAS_SEEDS[profile.name] if alone and not chosen.impls else seeds
            runs += [RunSpec("xor-atlas", "xor", cell_name(h, lr, init), impl, seed,
                             profile.name, EPOCHS[profile.name], math.inf, profile.timeout_s,
                             extra={"hidden": h, "learning_rate": lr, "initializer": init},
                             stop_at_target=True)
                     for seed in range(min(count, chosen.seeds or count))]
    # The one-seed-a-run implementations first: their group is the longest (keras-tuned's
    # 200 seeds, about 12 minutes), and started last it would finish long after the rest.
    return sorted(runs, key=lambda s: IMPLEMENTATIONS[s.impl].seed_batched is not None)


def configure(spec: RunSpec) -> TaskConfig:
    v = spec.extra
    return replace(get_config("xor"), config=spec.config,
                   arch=XOR.replace(sizes=(2, v["hidden"], 1)),
                   optimizer={"name": "sgd", "learning_rate": v["learning_rate"]},
                   kernel_initializer=v["initializer"], epochs=spec.epochs)


def measure(t) -> dict:
    """Converged or not, when, and for a failure, whether it is a minimum or a plateau."""
    x, y = t.data.x, t.data.y
    twin = t.scratch_twin()
    loss, grads = twin.gradients(x, y)
    grad_norm = float(np.sqrt(sum(float(np.vdot(g, g)) for g in grads)))
    curve = t.monitor.curve
    last = curve[-1][0] if curve else 0
    earlier = [v for e, v in curve if e <= last - last // 10] or [loss]
    fall = (earlier[-1] - loss) / earlier[-1] if earlier[-1] > 0 else 0.0
    right = np.round(twin.predict(x)) == y
    converged = bool(right.all())
    if converged:
        failure = ""
    elif fall > FALLING:
        failure = "plateau"
    elif grad_norm < LOCAL_MINIMUM_GRAD:
        failure = "local minimum"
    else:
        failure = "stalled"
    v = t.spec.extra
    return {"hidden": v["hidden"], "initializer": v["initializer"], "converged": converged,
            "epochs_to_converge": t.monitor.epochs_to_target, "grad_norm": grad_norm,
            "loss_fall": fall, "failure": failure,
            "accuracy": float(right.mean())}


def wilson(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of a binomial proportion k / n."""
    if n == 0:
        return math.nan, math.nan
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def summarise(df: pd.DataFrame) -> pd.DataFrame:
    """One row per (implementation, cell): the rate, its interval, the median epoch and
    the failures by kind."""
    import pandas as pd

    ok = df[df["status"] == "ok"]
    rows = []
    for (impl, h, lr, init), runs in ok.groupby(["impl", "hidden", "learning_rate",
                                                 "initializer"]):
        done = runs[runs["converged"].astype(bool)]
        low, high = wilson(len(done), len(runs))
        failures = runs["failure"].fillna("").value_counts()
        rows.append({"impl": impl, "hidden": h, "learning_rate": lr, "initializer": init,
                     "seeds": len(runs), "converged": len(done), "rate": len(done) / len(runs),
                     "rate_low": low, "rate_high": high,
                     "median_epoch": done["epochs_to_converge"].median() if len(done) else None,
                     **{k.replace(" ", "_"): int(failures.get(k, 0))
                        for k in ("local minimum", "plateau", "stalled")}})
    return pd.DataFrame(rows, columns=list(schema.ATLAS))


def write_summary(df: pd.DataFrame, out_dir: Path) -> list[Path]:
    summary = summarise(df)
    path = out_dir / "atlas.csv"
    write_atomic(path, lambda f: summary.to_csv(f, index=False))
    return [path]


def report(df: pd.DataFrame) -> list[str]:
    summary = summarise(df)
    if summary.empty:
        return []
    table = summary.assign(
        initializer=summary["initializer"].map(INITIALIZERS),
        rate=[f"{r:.1%} [{lo:.1%}, {hi:.1%}]" for r, lo, hi in
              zip(summary["rate"], summary["rate_low"], summary["rate_high"])],
        median_epoch=summary["median_epoch"].map(lambda e: "" if e != e or e is None
                                                 else f"{e:,.0f}"))[
        ["impl", "hidden", "learning_rate", "initializer", "seeds", "rate", "median_epoch",
         "local_minimum", "plateau", "stalled"]]
    table.columns = ["impl", "hidden", "lr", "init", "seeds", "converged [Wilson 95%]",
                     "median epoch", "local minimum", "plateau", "stalled"]
    return ["## How often XOR converges", "",
            f"A seed converged when all four outputs are right after rounding (checked every "
            f"1/200 of the epochs), and then stopped training (but jax's, which train on to "
            f"the end). Of the rest: a local minimum has a final gradient norm "
            f"below {LOCAL_MINIMUM_GRAD:g} and a loss that fell by at most {FALLING:.1%} over "
            f"the last tenth of training; a plateau's loss fell by more; stalled is neither.",
            "", table.to_markdown(index=False), "", *cross_checks(df), ""]


def engine(df: pd.DataFrame) -> str:
    """The implementation whose rates the atlas reports: ENGINE, or in a folder written
    before it trained the atlas, scratch-shortcut."""
    return ENGINE if (df["impl"] == ENGINE).any() else "scratch-shortcut"


def cross_checks(df: pd.DataFrame) -> list[str]:
    """For each cell another implementation trained too: both rates with their intervals,
    and seed by seed, how many of the seeds both trained reached convergence in both or in
    neither (the same initial weights: the outcomes should match, not just the rates)."""
    ok = df[df["status"] == "ok"]
    lines, base = [], engine(df)
    for config, cell in ok.groupby("config"):
        ours = cell[cell["impl"] == base].set_index("seed")
        for impl, theirs in cell[cell["impl"] != base].groupby("impl"):
            if ours.empty:
                continue
            theirs = theirs.set_index("seed")
            reached = {name: runs["epochs_to_converge"].notna()
                       for name, runs in (("ours", ours), ("theirs", theirs))}
            rates = {}
            for name, hits in reached.items():
                low, high = wilson(int(hits.sum()), len(hits))
                rates[name] = (hits.mean(), low, high, len(hits))
            (a, a_lo, a_hi, n_a), (b, b_lo, b_hi, n_b) = rates["ours"], rates["theirs"]
            overlap = a_lo <= b_hi and b_lo <= a_hi
            both = reached["ours"].index.intersection(reached["theirs"].index)
            same = int((reached["ours"][both] == reached["theirs"][both]).sum())
            lines.append(
                f"Cross-check, {config}: {base} reached convergence in {a:.1%} [{a_lo:.1%}, "
                f"{a_hi:.1%}] of {n_a} seeds, {impl} in {b:.1%} [{b_lo:.1%}, {b_hi:.1%}] of "
                f"{n_b}, from the same initial weights: the intervals "
                f"{'overlap' if overlap else 'do NOT overlap'}; seed by seed, the outcome "
                f"matches in {same} of {len(both)}.")
    return lines


def rate_grid(summary: pd.DataFrame) -> str:
    """The engine's rates as a table: hidden width and initializer down, learning rate
    across."""
    ours = summary[summary["impl"] == engine(summary)]
    cell = [f"{r:.0%} [{lo:.0%}, {hi:.0%}]" for r, lo, hi in
            zip(ours["rate"], ours["rate_low"], ours["rate_high"])]
    grid = ours.assign(cell=cell, init=ours["initializer"].map(INITIALIZERS)).pivot(
        index=["hidden", "init"], columns="learning_rate", values="cell")
    grid.columns = [f"lr {c:g}" for c in grid.columns]
    return grid.reset_index().to_markdown(index=False)


def answer(summary: pd.DataFrame) -> str:
    """The folklore ("80-90% of XOR nets train") against the atlas, in numbers."""
    ours = summary[summary["impl"] == engine(summary)]
    if ours.empty:
        return ""
    keys = list(zip(ours["hidden"], ours["learning_rate"], ours["initializer"]))
    blog = ours[[k == BLOG for k in keys]]
    high = ours[ours["rate"] >= 0.8]
    fails = ours[["local_minimum", "plateau", "stalled"]].sum()
    by = {col: ", ".join(f"{k:g}: {v:.0%}" for k, v in
                         ours.groupby(col)["converged"].sum().div(
                             ours.groupby(col)["seeds"].sum()).items())
          for col in ("hidden", "learning_rate")}
    text = [f"{len(ours)} settings x {int(ours['seeds'].median())} seeds, "
            f"{int(ours['seeds'].sum()):,} nets in all."]
    if len(blog):
        b = blog.iloc[0]
        text.append(f"The blog's own setting (2 hidden units, glorot_uniform, SGD 0.01) "
                    f"converges in {b['rate']:.1%} [{b['rate_low']:.1%}, {b['rate_high']:.1%}] "
                    "of seeds within its 100000 epochs.")
    low = ours[ours["rate"] < 0.8]
    below = "; ".join(f"by {name}, " + ", ".join(f"{k:g} ({v})" for k, v in
                                                  low[col].value_counts().sort_index().items())
                      for name, col in (("hidden width", "hidden"),
                                        ("learning rate", "learning_rate")))
    text.append((f"The folklore's 80% holds in {len(high)} of {len(ours)} settings"
                 if len(high) else "No setting reaches the folklore's 80%")
                + (f"; the {len(low)} below it, {below}" if len(low) else ""))
    text[-1] += (f". Converged, by hidden width: {by['hidden']}; by learning rate: "
                 f"{by['learning_rate']}.")
    if fails.sum():
        text.append(f"Of the {int(fails.sum()):,} nets that did not converge, "
                    f"{int(fails['local_minimum']):,} sat in a local minimum, "
                    f"{int(fails['plateau']):,} were still on a plateau (loss falling), "
                    f"{int(fails['stalled']):,} stalled.")
    return " ".join(text)


def plot(df: pd.DataFrame, out_dir: Path, experiment: str) -> Path | None:
    """The convergence rate per cell: a heatmap per initializer, hidden width x rate."""
    import matplotlib.pyplot as plt

    summary = summarise(df)
    summary = summary[summary["impl"] == engine(summary)]
    if summary.empty:
        return None
    inits = [i for i in INITIALIZERS if i in set(summary["initializer"])]
    fig, axes = plt.subplots(1, len(inits), figsize=(4 * len(inits), 3.4), squeeze=False)
    for ax, init in zip(axes[0], inits):
        grid = summary[summary["initializer"] == init].pivot(
            index="hidden", columns="learning_rate", values="rate")
        image = ax.imshow(grid.to_numpy(), vmin=0, vmax=1, cmap="viridis", origin="lower")
        ax.set(xticks=range(grid.shape[1]), xticklabels=[f"{c:g}" for c in grid.columns],
               yticks=range(grid.shape[0]), yticklabels=grid.index, xlabel="learning rate",
               ylabel="hidden width", title=INITIALIZERS[init])
        for (i, j), rate in np.ndenumerate(grid.to_numpy()):
            ax.text(j, i, f"{rate:.0%}", ha="center", va="center",
                    color="white" if rate < 0.5 else "black", fontsize=8)
    fig.colorbar(image, ax=axes[0].tolist(), label="converged")
    return save_figure(fig, out_dir / f"{experiment}_rates.png", tight=False)
