"""The experiments: one module each, and the one registry the harness runs them from.

``python -m benchmarks.experiments SPECS.json RESULTS_DIR`` is the worker process
of a run or a group of runs (see ``benchmarks.harness.worker``).
"""

from __future__ import annotations

from dataclasses import replace

from benchmarks.experiments import (
    atlas,
    compare,
    generalisation,
    jacobian,
    scaling,
    softmax,
    speed,
)
from benchmarks.harness.experiment import Experiment
from benchmarks.harness.specs import PROFILES, RunSpec, Selection

WORKER = __name__  # `python -m benchmarks.experiments`: the runs' worker process

EXPERIMENTS: dict[str, Experiment] = {e.name: e for e in [
    Experiment("compare", "every implementation on every task, side by side",
               compare.specs, compare.measure, tasks=compare.TASKS),
    Experiment("generalisation", "reversal: trained on a leading 0, tested on a leading 1",
               generalisation.specs, generalisation.measure, generalisation.configure,
               generalisation.load, generalisation.COLUMNS, generalisation.report,
               (generalisation.plot,), tasks=generalisation.TASKS, timed=False,
               group_size=10,  # scratch's 20 seeds (seed-batched) in 2 groups, a peer's 5 in 1
               options=(generalisation.VARIANTS_OPTION,)),
    Experiment("jacobian", "explicit Jacobians against the shortcut, MNIST 784-H-10",
               jacobian.specs, jacobian.measure, jacobian.configure, columns=jacobian.COLUMNS,
               report=jacobian.report, plots=(jacobian.plot,), tasks=jacobian.TASKS),
    Experiment("speed", "scratch's speed targets against Keras and the matmul limit",
               speed.specs, speed.measure, speed.configure,
               columns=speed.COLUMNS, report=speed.report, summary=speed.write_summary,
               runs_name="speed_runs", between_epochs=speed.between_epochs,
               tasks=speed.TASKS, rounds=speed.rounds, parts=speed.parts),
    Experiment("xor-atlas", "how often a 2-H-1 XOR net converges: 1000 seeds a cell",
               atlas.specs, atlas.measure, atlas.configure, columns=atlas.COLUMNS,
               report=atlas.report, plots=(atlas.plot,), summary=atlas.write_summary,
               runs_name="atlas_runs", tasks=atlas.TASKS, timed=False, group_size=1000,
               curves=False),
    Experiment("softmax-form", "Keras' default softmax form against the logits, per backend",
               softmax.specs, softmax.measure, report=softmax.report, tasks=softmax.TASKS,
               timed=False),
    Experiment("scaling", "where each implementation wins: batch size x hidden width",
               scaling.specs, scaling.measure, scaling.configure, columns=scaling.COLUMNS,
               report=scaling.report, plots=(scaling.plot_throughput, scaling.plot_winners),
               summary=scaling.write_summary, runs_name="scaling_runs", tasks=scaling.TASKS,
               rounds=scaling.rounds, between_epochs=scaling.between_epochs,
               warm_rounds=1, curves=False, time_plots=False),
]}


# Every experiment's own options, by name (Selection.options holds their values).
OPTIONS = {o.name: o for e in EXPERIMENTS.values() for o in e.options}


def plan(selection: Selection) -> list[RunSpec]:
    """Every run that a selection asks for, experiment by experiment; the memory budget is
    every run's (an implementation that refuses a run over it says so)."""
    profile = PROFILES[selection.profile]
    return [replace(s, memory_budget_mib=selection.memory_budget_mib)
            for e in selection.experiments for s in EXPERIMENTS[e].specs(profile, selection)]


__all__ = ["EXPERIMENTS", "OPTIONS", "WORKER", "Experiment", "plan"]
