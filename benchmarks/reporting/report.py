"""Tables and plots from an experiment's CSV: `groundup report DIR` rebuilds them."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from benchmarks.files import save_figure, write_atomic  # noqa: E402
from benchmarks.harness.runner import read_rows  # noqa: E402
from benchmarks.harness.schema import KEY, results_only  # noqa: E402
from benchmarks.harness.tables import plus_minus  # noqa: E402
from benchmarks.implementations import IMPLEMENTATIONS, REFERENCE, recorded_packages  # noqa: E402

METRICS = {  # column: (header, format)
    "accuracy": ("accuracy", "{:.4f}"),
    "final_loss": ("final loss", "{:.4g}"),
    "train_time_s": ("train s", "{:.3g}"),
    "epoch_time_s": ("s/epoch", "{:.3g}"),
    "step_time_ms": ("ms/step", "{:.3g}"),
    "predict_time_s": ("predict s", "{:.3g}"),
    "time_to_target_s": ("to target s", "{:.3g}"),
    "peak_rss_mib": ("peak MiB", "{:.1f}"),
}
GROUP = ["task", "config", "impl"]
UNFINISHED = "not trained in full"  # a table's score of a run stopped early or on a prefix


def summarize(df: pd.DataFrame) -> pd.DataFrame:
    """Mean ± std over seeds per task x config x impl, runs and statuses, ratios to keras.
    A task run on another dataset (--data-dir) is named after it: fashion, not mnist."""
    if "dataset" in df:
        other = df["dataset"].notna() & df["dataset"].ne(df["task"]) & df["task"].eq("mnist")
        df = df.assign(task=df["task"].where(~other, df["dataset"]))
    df = results_only(df)
    ok = df[df["status"] == "ok"]
    stats = ok.groupby(GROUP)[list(METRICS)].agg(["mean", "std"])
    table = pd.DataFrame(index=stats.index)
    for col, (header, fmt) in METRICS.items():
        mean, std = stats[(col, "mean")], stats[(col, "std")].fillna(0)
        table[header] = [plus_minus(m, s, fmt) for m, s in zip(mean, std, strict=True)]
    full = ok.groupby(GROUP)["trained_in_full"].agg(["sum", "size"])
    for col in ("accuracy", "final_loss"):  # a score of what a run not trained in full: none
        header = METRICS[col][0]
        table[header] = [
            v if n == size else UNFINISHED if not n else f"{v} ({n} of {size} trained in full)"
            for v, (n, size) in zip(table[header], full.loc[table.index].values, strict=True)]
    extrapolated = ok.groupby(GROUP)["extrapolated"].apply(lambda s: s.astype(str).eq("True").any())
    table["extrapolated"] = extrapolated.map({True: "yes", False: ""})
    for col, header in (("train_time_s", f"time / {REFERENCE}"),
                        ("peak_rss_mib", f"memory / {REFERENCE}")):
        means = stats[(col, "mean")]
        keras = (means.xs(REFERENCE, level="impl")
                 if REFERENCE in means.index.get_level_values("impl") else None)
        table[header] = [
            f"{m / keras.loc[(t, c)]:.3g}" if keras is not None and (t, c) in keras.index
            and keras.loc[(t, c)] > 0 else "" for (t, c, _), m in means.items()]
    runs = df.groupby(GROUP)["status"].agg(lambda s: ", ".join(f"{v} {k}" for k, v in
                                                               s.value_counts().items()))
    return table.join(runs.rename("runs"), how="outer").astype(object).fillna("").reset_index()


def versions(context) -> str:
    """The library versions a row or environment.json records, in words."""
    def version(package: str) -> str:
        found = context.get(package)
        return found if isinstance(found, str) and found else "not installed"  # NaN: missing

    return ", ".join([f"Python {context.get('python', '?')}",
                      *(f"{package} {version(package)}" for package in recorded_packages())])


def write_report(out_dir: Path, experiment: str, plots: bool = True) -> list[Path]:
    """``experiment``.md and, with ``plots``, its PNG plots, from the experiment's runs CSV
    in ``out_dir``."""
    from benchmarks.experiments import EXPERIMENTS

    own = EXPERIMENTS.get(experiment)
    stem = own.runs_stem if own else experiment
    every = read_rows(out_dir / f"{stem}.csv")
    df = results_only(every.drop_duplicates(KEY, keep="last"))  # a retried run: its latest
    superseded = len(every) - len(df)
    summary = summarize(df)
    md = out_dir / f"{experiment}.md"
    failed = df[df["status"] != "ok"]
    lines = [f"# {experiment}", "",
             f"{len(df)} runs, {len(failed)} not ok"
             + (f" ({superseded} earlier rows of retried runs not counted)" if superseded else "")
             + ". Mean ± std over seeds; times exclude "
             "warm-up; 'extrapolated' rows were measured on a prefix (see the CSV's "
             f"measured_* columns). Ratios divide by the `{REFERENCE}` row of the same task and "
             "config.",
             "", summary.to_markdown(index=False), ""]
    if own and own.report:
        lines += own.report(df)
    if len(failed):
        lines += ["## Runs that did not finish", "",
                  failed[["task", "config", "impl", "seed", "status", "error"]]
                  .to_markdown(index=False), ""]
    context = df.iloc[-1]
    lines += [f"Measured with {versions(context)} on {context['cpu']} ({context['cores']} "
              f"cores, {context['blas']}), commit {context['commit']}."]
    write_atomic(md, lambda f: f.write(("\n".join(lines) + "\n").encode()))
    files = own.summary(df, out_dir) if own and own.summary else []
    if not plots:
        return [md, *files]
    extra = [f(df, out_dir, experiment) for f in own.plots] if own else []
    standard = plot(df, out_dir, experiment, stem, own is None or own.time_plots)
    return [md, *files, *standard, *(p for p in extra if p)]


def colours(impls) -> dict[str, tuple]:
    """A colour an implementation, the same in every plot: tab20's, by its place in the
    registry (a Keras backend's plain fit and its tuned twin take a pair's dark and light
    shades); an implementation the registry does not hold takes the next ones."""
    order = list(IMPLEMENTATIONS)
    extra = [i for i in impls if i not in order]
    palette = plt.get_cmap("tab20")
    return {impl: palette((order + extra).index(impl) % 20) for impl in impls}


def plot(df: pd.DataFrame, out_dir: Path, experiment: str, stem: str,
         time_plots: bool = True) -> list[Path]:
    paths = []
    curves_path = out_dir / f"{stem}_curves.csv"
    if curves_path.exists() and curves_path.stat().st_size:
        curves = pd.read_csv(curves_path).drop_duplicates(KEY + ["epoch"], keep="last")
        groups = list(curves.groupby(["task", "config"]))
        colour = colours(sorted(curves["impl"].unique()))
        cols = min(4, len(groups))  # panels in rows of four, not a strip
        rows = -(-len(groups) // cols)
        fig, axes = plt.subplots(rows, cols, figsize=(4.5 * cols + 2, 3.6 * rows),
                                 squeeze=False, layout="constrained")
        for ax in axes.flat[len(groups):]:
            ax.set_visible(False)
        for ax, ((task, config), part) in zip(axes.flat, groups):
            for (impl, seed), run in part.groupby(["impl", "seed"]):
                ax.plot(run["epoch"], run["loss"], ["-", "--", ":", "-."][seed % 4],
                        color=colour[impl], label=impl, alpha=0.85)
            ax.set(title=f"{task}/{config}", xlabel="epoch", ylabel="training loss")
            ax.set_yscale("log")
        handles = {}  # an entry an implementation, its first seed's line
        for ax in axes.flat:
            for h, label in zip(*ax.get_legend_handles_labels(), strict=True):
                handles.setdefault(label, h)
        fig.suptitle(f"{experiment}: training loss by epoch (a colour an implementation, a "
                     "line style a seed)")
        fig.legend(handles.values(), handles.keys(), loc="outside right upper", fontsize=8)
        paths.append(save_figure(fig, out_dir / f"{experiment}_curves.png", tight=False))
    ok = df[df["status"] == "ok"] if time_plots else df.iloc[:0]
    for col, label, name in (("epoch_time_s", "seconds per epoch", "time"),
                             ("peak_rss_mib", "peak RSS during training, MiB", "memory")):
        if ok.empty:
            break
        means = ok.groupby(["task", "config", "impl"])[col].mean().unstack("impl")
        guessed = (ok.groupby(["task", "config", "impl"])["extrapolated"].any()
                   if name == "time" and "extrapolated" in ok else pd.Series(dtype=bool))
        fig, ax = plt.subplots(figsize=(9, 4), layout="constrained")
        bars(ax, means, guessed)
        # log: a task's figures span decades; memory's 0 MiB (no growth) sits at the base
        if name == "time":
            ax.set_yscale("log")
        else:
            ax.set_yscale("symlog", linthresh=1)
        ax.set(ylabel=f"{label} (log)", title=f"{experiment}: {label}" + (
            "; hatched: extrapolated from a prefix" if guessed.any() else ""))
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8)
        paths.append(save_figure(fig, out_dir / f"{experiment}_{name}.png", tight=False))
    return paths


def bars(ax, means: pd.DataFrame, guessed: pd.Series) -> None:
    """Grouped bars, a group a task/config (``means``' rows), a bar an implementation
    (its columns) in its colour; hatched where ``guessed`` (extrapolated) says so."""
    import numpy as np

    impls, colour = list(means.columns), colours(list(means.columns))
    width = 0.8 / len(impls)
    for j, impl in enumerate(impls):
        x = np.arange(len(means)) + (j - (len(impls) - 1) / 2) * width
        drawn = ax.bar(x, means[impl].to_numpy(), width, label=impl, color=colour[impl])
        for bar, key in zip(drawn, means.index, strict=True):
            if guessed.get((*key, impl), False):
                bar.set_hatch("///")
    ax.set_xticks(range(len(means)), [f"{t}/{c}" for t, c in means.index])


