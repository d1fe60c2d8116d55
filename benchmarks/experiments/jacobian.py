"""Jacobian against shortcut: how the explicit chain's cost grows with the hidden width.

MNIST 784-H-10 (relu/softmax, glorot, SGD 0.1, batch up to 32, file order) for
H = 8 ... 512, both backprop modes, float32 and float64. The jacobian mode trains
on as many samples as its time budget allows and is extrapolated to a 60000-sample
epoch. Every run records the cost model's prediction beside what was measured.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from benchmarks.data.tasks import TaskConfig, get_config
from benchmarks.files import save_figure
from benchmarks.harness import schema
from benchmarks.harness.specs import Profile, RunSpec, Selection
from scratch import MLP, MNIST
from scratch.cost import backprop_cost

if TYPE_CHECKING:  # pandas is for the reports: a run's worker process never imports it
    import pandas as pd

WIDTHS = (8, 16, 32, 64, 128, 256, 512)
DTYPES = ("float32", "float64")
MODES = ("scratch-shortcut", "scratch-jacobian")
BUDGET_S = {"quick": 3, "full": 20, "smoke": 1}
SHORTCUT_SAMPLES = {"quick": 6000, "full": 60000, "smoke": 256}
SMOKE_WIDTHS = (8, 16)
BYTES_PER_S = 5e8  # a conservative rate at which the jacobian mode writes its matrices
TASKS = ("mnist",)  # the experiment sweeps its own configurations
COLUMNS = tuple(schema.JACOBIAN)  # described in benchmarks/harness/schema.py


def arch_config(hidden: int) -> TaskConfig:
    base = get_config("mnist", "tf-tutorial")
    return replace(base, config=f"h{hidden}", arch=MNIST.replace(sizes=(784, hidden, 10),
                   dropout=0.0), optimizer={"name": "sgd", "learning_rate": 0.1},
                   batch_size=32, shuffle=False, epochs=1)


def jacobian_samples(hidden: int, dtype: str, budget_s: float) -> int:
    """As many samples as the budget allows at BYTES_PER_S, between 2 and 32."""
    per_sample = backprop_cost((784, hidden, 10), dtype).jacobian_sample_peak_bytes()
    return int(np.clip(budget_s * BYTES_PER_S / per_sample, 2, 32))


def specs(profile: Profile, chosen: Selection) -> list[RunSpec]:
    widths = SMOKE_WIDTHS if profile.name == "smoke" else WIDTHS
    budget = BUDGET_S[profile.name]
    runs = []
    for hidden in widths:
        for dtype in DTYPES:
            for impl in chosen.impls or MODES:
                samples = (jacobian_samples(hidden, dtype, budget) if impl == "scratch-jacobian"
                           else SHORTCUT_SAMPLES[profile.name])
                runs += [RunSpec("jacobian", "mnist", f"h{hidden}-{dtype}", impl, seed,
                                 profile.name, epochs=1, budget_s=budget * 10,
                                 timeout_s=profile.timeout_s, dtype=dtype, train_samples=samples,
                                 data_dir=chosen.data_dir,
                                 extra={"hidden": hidden})
                         for seed in range(chosen.seeds or 1)]
    return runs


def configure(spec: RunSpec) -> TaskConfig:
    return arch_config(spec.extra["hidden"])


def measure(t) -> dict:
    hidden, dtype = t.spec.extra["hidden"], t.spec.dtype
    cost = backprop_cost((784, hidden, 10), dtype)
    x, y = t.data.x, t.data.y
    batch = min(t.cfg.batch_size, len(x))
    jacobian = t.impl.name == "scratch-jacobian"
    predicted = cost.jacobian_peak_bytes(batch) if jacobian else cost.shortcut_peak_bytes(batch)
    samples = t.monitor.steps_done * batch
    agreement = mode_agreement(t, samples // batch, batch) if jacobian else {}
    traced = t.impl.traced_peak_mib(t.model, x[:batch], y[:batch])  # takes one more step
    row = {
        "hidden": hidden, "samples_trained": samples,
        "time_per_sample_ms": 1e3 * t.monitor.elapsed() / max(samples, 1),
        "flops_per_sample": (cost.jacobian_flops_per_sample() if jacobian
                             else cost.shortcut_flops_per_sample()),
        "predicted_peak_mib": predicted / 2**20, "traced_peak_mib": traced,
        "predicted_over_traced": predicted / 2**20 / traced,
        **agreement,
    }
    return row


def mode_agreement(t, steps: int, batch: int) -> dict:
    """Both modes from the same initial weights: the largest gradient difference on one
    sample, and the largest weight difference after the same ``steps`` steps."""
    def shortcut(weights) -> MLP:
        model = t.scratch_twin(weights)
        model.backprop = "shortcut"
        return model

    x, y = t.data.x, t.data.y
    jac = t.scratch_twin(t.initial)
    jac.backprop = "jacobian"
    grads_j = jac.gradients(x[:1], y[:1])[1]
    grads_s = shortcut(t.initial).gradients(x[:1], y[:1])[1]
    twin = shortcut(t.initial)
    for step in range(steps):
        twin.train_step(x[step * batch:(step + 1) * batch], y[step * batch:(step + 1) * batch])
    return {
        "grad_max_diff": max(float(np.abs(a - b).max()) for a, b in zip(grads_j, grads_s,
                                                                          strict=True)),
        "weights_max_diff": max(float(np.abs(a - b).max()) for a, b in
                                zip(t.final_weights(), twin.get_weights(), strict=True)),
    }


def growth(df: pd.DataFrame) -> pd.DataFrame:
    """Exponents k of time and memory ~ H^k, fitted per mode and dtype on log-log axes."""
    import pandas as pd

    ok = df[df["status"] == "ok"]
    rows = []
    for (impl, dtype), runs in ok.groupby(["impl", "dtype"]):
        if runs["hidden"].nunique() < 2:
            continue
        h = np.log(runs["hidden"].astype(float))
        rows.append({"impl": impl, "dtype": dtype,
                     "time exponent": np.polyfit(h, np.log(runs["time_per_sample_ms"]), 1)[0],
                     "memory exponent": np.polyfit(h, np.log(runs["traced_peak_mib"]), 1)[0]})
    return pd.DataFrame(rows)


def versus(jac: pd.DataFrame) -> str:
    """The shortcut against the jacobian mode at the widest H, per dtype, as markdown."""
    import pandas as pd

    ok = jac[jac["status"] == "ok"]
    widest = ok[ok["hidden"] == ok["hidden"].max()]
    rows = []
    for dtype, runs in widest.groupby("dtype"):
        by = runs.set_index("impl")
        if not {"scratch-shortcut", "scratch-jacobian"} <= set(by.index):
            continue
        short, slow = by.loc["scratch-shortcut"], by.loc["scratch-jacobian"]
        hours = f"{slow['epoch_time_s']:.4g} ({slow['epoch_time_s'] / 3600:.3g} h"
        rows.append({
            "H": int(runs["hidden"].iloc[0]), "dtype": dtype,
            "shortcut s per epoch": f"{short['epoch_time_s']:.3g}",
            "jacobian s per epoch": hours + (", extrapolated from "
               f"{int(slow['samples_trained'])} samples)" if str(slow["extrapolated"]) == "True"
               else ")"),
            "jacobian / shortcut": f"{slow['epoch_time_s'] / short['epoch_time_s']:,.0f}x",
            "jacobian ms per sample": f"{slow['time_per_sample_ms']:.4g}",
            "traced MiB per step (shortcut, jacobian)":
                f"{short['traced_peak_mib']:.3g}, {slow['traced_peak_mib']:.4g}",
            "largest gradient difference": f"{slow['grad_max_diff']:.2g}",
        })
    return pd.DataFrame(rows).to_markdown(index=False)


def report(df: pd.DataFrame) -> list[str]:
    ok = df[df["status"] == "ok"]
    if ok.empty:
        return []
    table = ok.assign(
        epoch_s=ok["epoch_time_s"].map("{:.3g}".format),
        per_sample_ms=ok["time_per_sample_ms"].map("{:.3g}".format),
        predicted=ok["predicted_peak_mib"].map("{:.3g}".format),
        traced=ok["traced_peak_mib"].map("{:.3g}".format),
        ratio=ok["predicted_over_traced"].map("{:.3f}".format),
        rss=ok["peak_rss_mib"].map("{:.3g}".format),
    ).sort_values(["dtype", "hidden", "impl"])[
        ["hidden", "dtype", "impl", "samples_trained", "per_sample_ms", "epoch_s", "extrapolated",
         "predicted", "traced", "ratio", "rss", "grad_max_diff", "weights_max_diff"]]
    table.columns = ["H", "dtype", "mode", "samples", "ms/sample", "s/epoch (60000)",
                     "extrapolated", "predicted MiB", "traced MiB", "predicted/traced",
                     "RSS MiB", "max grad diff", "max weight diff"]
    exponents = growth(df)
    lines = ["## Cost against hidden width", "", table.to_markdown(index=False), "",
             "Memory: what one training step allocates, predicted by `scratch.cost` and traced "
             "by tracemalloc; and the resident peak of the whole training run.", ""]
    if not exponents.empty:
        lines += ["## Growth exponents (time and memory ~ H^k)", "",
                  exponents.to_markdown(index=False, floatfmt=".2f"), ""]
    biggest = ok[ok["hidden"] == ok["hidden"].max()]
    for dtype, runs in biggest.groupby("dtype"):
        by = runs.set_index("impl")["epoch_time_s"]
        if {"scratch-jacobian", "scratch-shortcut"} <= set(by.index):
            short, jac = by["scratch-shortcut"], by["scratch-jacobian"]
            lines.append(f"At H={runs['hidden'].iloc[0]} in {dtype}, one 60000-sample epoch "
                         f"takes {short:.3g} s with the shortcut and {jac:.4g} s "
                         f"({jac / 3600:.3g} h) with explicit Jacobians: {jac / short:,.0f} "
                         "times longer.")
    return lines + [""]


def plot(df: pd.DataFrame, out_dir: Path, experiment: str) -> Path | None:
    import matplotlib.pyplot as plt

    ok = df[df["status"] == "ok"]
    if ok["hidden"].nunique() < 2:
        return None
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, col, label in ((axes[0], "time_per_sample_ms", "training time per sample, ms"),
                           (axes[1], "traced_peak_mib", "traced peak per step, MiB")):
        for (impl, dtype), runs in ok.groupby(["impl", "dtype"]):
            if runs["hidden"].nunique() < 2:
                continue
            runs = runs.sort_values("hidden")
            h, v = runs["hidden"].astype(float), runs[col]
            k, c = np.polyfit(np.log(h), np.log(v), 1)
            line = ax.loglog(h, v, "o", label=f"{impl} {dtype} (H^{k:.2f})")[0]
            ax.loglog(h, np.exp(c) * h**k, "--", color=line.get_color(), alpha=0.6)
        ax.set(xlabel="hidden width H", ylabel=label)
        ax.legend(fontsize=7)
    return save_figure(fig, out_dir / f"{experiment}_scaling.png")
