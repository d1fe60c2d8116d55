"""``groundup compare A B``: one run folder against another (results/published is one).

What differs in the environment first (CPU, cores, versions, commit); then, for every
experiment, task, configuration and implementation that both folders ran, the accuracy
and the time, old (A) and new (B), the ratio of the times, and whether the change is
beyond the noise; then the rows one folder has and the other has not.

The noise is judged from the samples both folders hold (one a seed): a bootstrap of the
ratio of the median times, and of the difference of the mean accuracies, each a 95%
percentile interval. A change is beyond the noise where its interval excludes no change;
with fewer than ``MIN_SAMPLES`` a side, it is undecided.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks.errors import UsageError
from benchmarks.experiments import EXPERIMENTS
from benchmarks.harness.environment import VERSIONED
from benchmarks.harness.runner import read_rows
from benchmarks.harness.schema import KEY, NEWER_THAN_PUBLISHED, results_only

ENVIRONMENT = ("profile", "cpu", "cores", "blas", *VERSIONED, "commit")
TIMES = {"epoch_time_s": "s per epoch", "step_time_ms": "ms per step",
         "train_time_s": "s of training"}  # the first that both sides measured
GROUP = ["experiment", "task", "config", "impl"]
ALONE = {"A": "in A only", "B": "in B only", "failed": "ok in A, failed in B"}
MIN_SAMPLES = 3
RESAMPLES = 2000
METHOD = (f"bootstrap ({RESAMPLES} resamples a side, seeded) of the ratio of median times "
          "and the difference of mean accuracies, 95% percentile intervals; at least "
          f"{MIN_SAMPLES} seeds a side, or undecided")


@dataclass
class Change:
    """One (experiment, task, config, impl) in both folders."""

    where: tuple
    measure: str
    old_time: float
    new_time: float
    ratio: float
    interval: tuple[float, float] | None  # of the ratio; None: too few samples
    old_accuracy: float
    new_accuracy: float
    accuracy_interval: tuple[float, float] | None  # of the difference

    @property
    def time_verdict(self) -> str:
        if self.interval is None:
            return "undecided"
        low, high = self.interval
        return "slower" if low > 1 else "faster" if high < 1 else "within noise"

    @property
    def accuracy_verdict(self) -> str:
        if np.isnan(self.old_accuracy) or np.isnan(self.new_accuracy):
            return ""
        if self.accuracy_interval is None:
            return "undecided"
        low, high = self.accuracy_interval
        return "higher" if low > 0 else "lower" if high < 0 else "within noise"


def label(where: tuple) -> str:
    """A group as the output names it: experiment task/config impl."""
    experiment, task, config, impl = where
    return f"{experiment} {task}/{config} {impl}"


def load(folder: Path) -> dict[str, pd.DataFrame]:
    """Each experiment's rows in ``folder`` (its latest row a run), by experiment name."""
    if not folder.is_dir():
        raise UsageError(f"{folder} is not a folder; give two run folders (groundup run's, or "
                         "results/published).")
    found = {name: results_only(read_rows(folder / f"{e.runs_stem}.csv")
                                .drop_duplicates(KEY, keep="last"))  # no prefix's score
             for name, e in EXPERIMENTS.items() if (folder / f"{e.runs_stem}.csv").exists()}
    if not found:
        raise UsageError(f"{folder} holds no results CSV: not a groundup run folder.")
    return found


def environment(frames: dict[str, pd.DataFrame]) -> dict[str, str]:
    """The environment the folder's rows record (its first row's)."""
    row = next(iter(frames.values())).iloc[0]
    return {k: "" if pd.isna(row.get(k)) else str(row.get(k)) for k in ENVIRONMENT if k in row}


def _interval(old: np.ndarray, new: np.ndarray, statistic, rng) -> tuple[float, float] | None:
    if min(len(old), len(new)) < MIN_SAMPLES:
        return None
    draws = statistic(rng.choice(old, (RESAMPLES, len(old))),  # a resample a row
                      rng.choice(new, (RESAMPLES, len(new))))
    low, high = np.percentile(draws, [2.5, 97.5])
    return float(low), float(high)


def _ratio(old, new):
    return np.median(new, axis=-1) / np.median(old, axis=-1)


def _difference(old, new):
    return np.mean(new, axis=-1) - np.mean(old, axis=-1)


def changes(old: pd.DataFrame, new: pd.DataFrame, seed: int = 0) -> tuple[list[Change], list]:
    """The changes of every group both frames ran to the end, and the others as (side,
    group): "A" or "B" for a group one side alone ran, "failed" for one ok in A whose run
    in B did not end ok."""
    rng = np.random.default_rng(seed)
    ok = {side: df[df["status"] == "ok"] for side, df in (("A", old), ("B", new))}
    groups = {side: {g: rows for g, rows in df.groupby(GROUP)} for side, df in ok.items()}
    found = []
    for where in sorted(set(groups["A"]) & set(groups["B"])):
        a, b = groups["A"][where], groups["B"][where]
        column = next((c for c in TIMES if c in a and c in b
                       and a[c].notna().any() and b[c].notna().any()), None)
        if column is None:
            continue
        ta, tb = a[column].dropna().to_numpy(float), b[column].dropna().to_numpy(float)
        acc = [rows["accuracy"].dropna().to_numpy(float) for rows in (a, b)]
        found.append(Change(
            where, TIMES[column], float(np.median(ta)), float(np.median(tb)), _ratio(ta, tb),
            _interval(ta, tb, _ratio, rng),
            *(float(x.mean()) if len(x) else np.nan for x in acc),
            _interval(*acc, _difference, rng) if all(len(x) for x in acc) else None))
    ran = {g for g, _ in new.groupby(GROUP)}  # B's groups, whatever their status
    alone = [("failed" if side == "A" and g in ran else side, g)
             for side, other in (("A", "B"), ("B", "A"))
             for g in sorted(set(groups[side]) - set(groups[other]))]
    return found, alone


def check_schemas(a: Path, b: Path, old: dict, new: dict) -> list[str]:
    """The experiments both folders ran; refused where they share none, or where one
    experiment's CSVs differ in columns beyond those newer than results/published."""
    shared = [name for name in old if name in new]
    if not shared:
        raise UsageError(f"{a} and {b} share no experiment ({a.name}: {', '.join(old)}; "
                         f"{b.name}: {', '.join(new)}): nothing to compare.")
    for name in shared:
        differ = set(old[name].columns) ^ set(new[name].columns)
        if differ - NEWER_THAN_PUBLISHED:
            column = sorted(differ - NEWER_THAN_PUBLISHED)[0]
            side = a if column in old[name].columns else b
            raise UsageError(f"{name}'s CSVs have different columns ({column!r} only in "
                             f"{side}): written by different schemas of groundup; compare "
                             "folders of one schema.")
    return shared


def row_of(change: Change) -> dict:
    interval = ("" if change.interval is None
                else f"[{change.interval[0]:.2f}, {change.interval[1]:.2f}]")
    acc = "" if np.isnan(change.old_accuracy) else (
        f"{change.old_accuracy:.4f} → {change.new_accuracy:.4f}")
    return {"task": "/".join(change.where[1:3]), "impl": change.where[3], "accuracy": acc,
            "acc. change": change.accuracy_verdict, "time": change.measure,
            "A": f"{change.old_time:.3g}", "B": f"{change.new_time:.3g}",
            "B/A": f"{change.ratio:.2f}", "95% interval": interval,
            "time change": change.time_verdict}


def compare(a: Path, b: Path) -> tuple[dict, dict, dict[str, tuple[list[Change], list]]]:
    """(A's environment, B's, and each shared experiment's changes and lone rows)."""
    old, new = load(a), load(b)
    shared = check_schemas(a, b, old, new)
    return (environment(old), environment(new),
            {name: changes(old[name], new[name]) for name in shared})


def markdown(a: Path, b: Path, env_a: dict, env_b: dict, found: dict) -> str:
    """The comparison as a Markdown page."""
    lines = [f"# {b} against {a}", "", f"A: `{a}`; B: `{b}`. Noise: {METHOD}.", ""]
    differ = [(k, env_a.get(k, ""), env_b.get(k, "")) for k in ENVIRONMENT
              if env_a.get(k, "") != env_b.get(k, "")]
    lines += ["## Environment", ""]
    lines += ([pd.DataFrame(differ, columns=["field", "A", "B"]).to_markdown(index=False)]
              if differ else ["The same CPU, cores, versions and commit."])
    if env_a.get("cpu") != env_b.get("cpu") or env_a.get("cores") != env_b.get("cores"):
        lines += ["", "The machines differ: their times compare only as ratios, and a ratio "
                  "between machines says as much about the machines as about the code."]
    for name, (changed, alone) in found.items():
        lines += ["", f"## {name}", ""]
        lines += ([pd.DataFrame([row_of(c) for c in changed]).to_markdown(index=False)]
                  if changed else ["No run in both folders."])
        if alone:
            lines += ["", "Not in both, or not ok in both:", ""]
            lines += [f"- {label(g)}: {ALONE[side]}" for side, g in alone]
    return "\n".join(lines) + "\n"


def regressions(found: dict, fail_above: float) -> tuple[list[Change], list[Change]]:
    """The times that grew by more than ``fail_above`` percent beyond the noise (the whole
    interval of their ratio above 1 + fail_above / 100), and the undecided ones (too few
    seeds to tell) whose ratio alone is above it."""
    limit = 1 + fail_above / 100
    changed = [c for found_changes, _ in found.values() for c in found_changes]
    return ([c for c in changed if c.interval is not None and c.interval[0] > limit],
            [c for c in changed if c.interval is None and c.ratio > limit])
