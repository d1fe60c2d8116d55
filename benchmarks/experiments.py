"""The experiments: which runs each makes, and what it measures after training.

One entry per experiment in ``EXPERIMENTS``; the harness (runner, worker, CLI)
treats them all alike.
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from benchmarks import generalisation, jacobian, speed
from benchmarks.implementations import IMPLEMENTATIONS, Trained
from benchmarks.specs import PROFILES, Profile, RunSpec, Selection
from benchmarks.tasks import CONFIGS, TaskConfig, TaskData, get_config, load_task, score


def default_config(spec: RunSpec) -> TaskConfig:
    return get_config(spec.task, spec.config)


def default_load(spec: RunSpec, cfg: TaskConfig) -> TaskData:
    return load_task(cfg, spec.dtype, spec.train_samples, spec.data_dir)


@dataclass(frozen=True)
class Experiment:
    name: str
    description: str
    specs: Callable[[Profile, Selection], list[RunSpec]]
    measure: Callable[[Trained], dict]
    configure: Callable[[RunSpec], TaskConfig] = default_config
    load: Callable[[RunSpec, TaskConfig], TaskData] = default_load
    columns: tuple[str, ...] = ()           # the experiment's own CSV columns
    report: Callable[[pd.DataFrame], list[str]] | None = None   # extra .md sections
    plots: tuple[Callable, ...] = field(default_factory=tuple)  # (df, out_dir) -> path
    summary: Callable[[pd.DataFrame, Path], list[Path]] | None = None  # extra files
    runs_name: str = ""                     # the runs CSV's stem; default: the name
    # (spec, cfg, data, initial weights) -> a function run after every epoch, untimed, or None
    between_epochs: Callable | None = None

    @property
    def runs_stem(self) -> str:
        return self.runs_name or self.name


# compare: every implementation on every task.

SMOKE_EPOCHS = {"xor": 50, "reverse4": 50, "mnist": 1}
SMOKE_MNIST_SAMPLES = 500
# The full profile's convergence rate of XOR (a 2-2-1 sigmoid net can stick in a local
# minimum): scratch-shortcut runs 100000 epochs in seconds, so it runs this many seeds;
# the other implementations, on the same initial weights, run the profile's seeds.
XOR_CONVERGENCE_SEEDS = 20


def compare_specs(profile: Profile, chosen: Selection) -> list[RunSpec]:
    specs = []
    impls = chosen.impls or list(IMPLEMENTATIONS)
    for cfg in CONFIGS.values():
        first = next(c for c in CONFIGS.values() if c.task == cfg.task) is cfg
        if cfg.key not in chosen.tasks and not (
                cfg.task in chosen.tasks and (profile.all_configs or first)):
            continue
        overrides = cfg.quick if profile.name == "quick" else {}
        epochs = overrides.get("epochs", cfg.epochs)
        samples = overrides.get("train_samples")
        if profile.name == "smoke":
            epochs, samples = SMOKE_EPOCHS[cfg.task], SMOKE_MNIST_SAMPLES
        for impl in impls:
            n = samples
            if impl == "scratch-jacobian" and cfg.task == "mnist":
                n = profile.jacobian_mnist_samples
            seeds = chosen.seeds or profile.seeds
            if profile.name == "full" and cfg.task == "xor" and impl == "scratch-shortcut":
                seeds = max(seeds, XOR_CONVERGENCE_SEEDS)
            for seed in range(seeds):
                specs.append(RunSpec("compare", cfg.task, cfg.config, impl, seed, profile.name,
                                     epochs, profile.budget_s, profile.timeout_s,
                                     train_samples=n if cfg.task == "mnist" else None,
                                     data_dir=chosen.data_dir,
                                     memory_budget_mib=chosen.memory_budget_mib))
    return specs


def measure_compare(t: Trained) -> dict:
    """Inference time, the task's metrics and NumPy's traced peak."""
    data, impl, model = t.data, t.impl, t.model
    impl.predict(model, data.x_test)
    times = []
    for _ in range(3):
        start = time.perf_counter()
        predictions = impl.predict(model, data.x_test)
        times.append(time.perf_counter() - start)
    scores = score(t.cfg.task, data.y_test, predictions)
    batch = min(t.cfg.batch_size, len(data.x))
    confusion = scores.pop("confusion", None)
    return {"predict_time_s": statistics.median(times), **scores,
            "traced_peak_mib": impl.traced_peak_mib(model, data.x[:batch], data.y[:batch]),
            "confusion": confusion.tolist() if confusion is not None else None}


EXPERIMENTS: dict[str, Experiment] = {e.name: e for e in [
    Experiment("compare", "every implementation on every task, side by side",
               compare_specs, measure_compare),
    Experiment("generalisation", "reverse 4-bit numbers trained on a leading 0, tested on a "
               "leading 1, and why it fails (--variants: how far it holds)",
               generalisation.specs, generalisation.measure, generalisation.configure,
               generalisation.load, generalisation.COLUMNS, generalisation.report,
               (generalisation.plot,)),
    Experiment("jacobian", "explicit Jacobians against the shortcut on MNIST 784-H-10, "
               "H = 8 ... 512: time, memory, the cost model, equal gradients",
               jacobian.specs, jacobian.measure, jacobian.configure, columns=jacobian.COLUMNS,
               report=jacobian.report, plots=(jacobian.plot,)),
    Experiment("speed", "the from-scratch network's speed targets against Keras and the "
               "matmul limit (speed.csv)", speed.specs, speed.measure, speed.configure,
               columns=speed.COLUMNS, report=speed.report, summary=speed.write_summary,
               runs_name="speed_runs", between_epochs=speed.between_epochs),
]}


def base_row(spec: RunSpec) -> dict:
    """The columns a run's settings fix, known before it runs."""
    cfg = EXPERIMENTS[spec.experiment].configure(spec)
    acts = "/".join(a if isinstance(a, str) else a["name"] + str(a.get("negative_slope", ""))
                    for a in cfg.arch.activations)
    default_lr = {"sgd": 0.01, "adam": 0.001}[cfg.optimizer["name"]]
    return {
        "experiment": spec.experiment, "task": spec.task, "config": spec.config,
        "impl": spec.impl, "seed": spec.seed, "profile": spec.profile, "epochs": spec.epochs,
        "batch_size": cfg.batch_size, "optimizer": cfg.optimizer["name"],
        "learning_rate": cfg.optimizer.get("learning_rate", default_lr),
        "optimizer_config": json.dumps(cfg.optimizer, sort_keys=True),
        "architecture": f"{cfg.arch} {acts}" + (f" dropout {cfg.arch.dropout:g}"
                                                if cfg.arch.dropout else ""),
        "dtype": spec.dtype, "train_samples": spec.train_samples,
    }


__all__ = ["EXPERIMENTS", "PROFILES", "Experiment", "base_row"]
