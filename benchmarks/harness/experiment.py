"""What an experiment is to the harness: its runs, what it measures, its own columns.

The experiments themselves live in ``benchmarks.experiments``, one module each and
one registry; the runner and the worker treat them all alike through this class.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from benchmarks.data.tasks import TaskConfig, TaskData, get_config, load_task
from benchmarks.harness.specs import Option, Profile, RunSpec, Selection
from benchmarks.implementations import Trained

if TYPE_CHECKING:
    import pandas as pd


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
    # (df, out_dir, experiment name) -> the PNG written, or None
    plots: tuple[Callable, ...] = field(default_factory=tuple)
    summary: Callable[[pd.DataFrame, Path], list[Path]] | None = None  # extra files
    runs_name: str = ""                     # the runs CSV's stem; default: the name
    # (spec, cfg, data, initial weights) -> a function run after every epoch, untimed, or None
    between_epochs: Callable | None = None
    tasks: tuple[str, ...] = ()             # what --task may name: tasks and task/config keys
    # Whether the experiment's verdicts rest on its times. A timed run has a process to
    # itself (unless same_process groups it, or its profile's times say nothing: the smoke
    # profile's runs share a process per Keras backend); the runs of an accuracy-only
    # experiment that share a task, configuration and implementation train in one process
    # (group_size at most): as one seed-batched network where the implementation has one,
    # else one after another, paying the framework's import and calibration once.
    timed: bool = True
    group_size: int = 20                    # an accuracy-only experiment's runs a process
    # spec -> key: runs with the same key share a process (group_size at a time, in order),
    # timed or not; None: the rule above
    same_process: Callable[[RunSpec], tuple] | None = None
    # spec -> key, or None: the runs with the same key train side by side in interleaved
    # rounds (interleaved.run_rounds), each in a process of its own; the first the reference
    rounds: Callable[[RunSpec], tuple | None] | None = None
    # spec -> how many units an epoch is in those rounds (its parts, a round's unit each;
    # shorter rounds pair the sides closer in time); None: 1, a unit an epoch
    parts: Callable[[RunSpec], int] | None = None
    # rounds of a stage run before its timed ones and discarded: first-touch costs (caches,
    # allocators, the first call of a cell's new shapes) that no later round pays. They
    # train too, so only an experiment that scores no accuracy has them.
    warm_rounds: int = 0
    curves: bool = True                     # write each run's loss curve to *_curves.csv
    time_plots: bool = True                 # plot time and memory per task and config
    options: tuple[Option, ...] = ()        # its own options (Selection.option reads them)

    @property
    def runs_stem(self) -> str:
        return self.runs_name or self.name

    def base_row(self, spec: RunSpec) -> dict:
        """The columns a run's settings fix, known before it runs."""
        cfg = self.configure(spec)
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
