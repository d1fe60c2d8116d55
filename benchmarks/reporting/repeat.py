"""``groundup repeat DIR DIR [DIR ...]``: do speed's verdicts hold from run to run?

Each folder is one ``groundup run speed`` (or results/published). Its targets' table is
recomputed from its rows (``speed.summarize``), and the folders are checked, metric by
metric, for what three back-to-back runs must show:

- **verdicts**: none goes from met to missed or back (undecided is allowed);
- **intervals**: every MNIST ratio's 95% interval is within +-10% of its median;
- **medians**: each run's median lies inside every other run's interval.

The command exits 1 where verdicts, intervals or overlap fails. The medians check is
reported but not counted there: it fails by chance even on a steady machine (another
run's median lies inside a 95% interval only about 5 times in 6), while two intervals of
one steady distribution fail to overlap about 1 time in 250.

A run's interval covers the spread of its own rounds, each implementation in one process.
The last table shows what it cannot cover: each implementation's median unit time run by
run, each run a fresh process, so a side's speed from one process to the next.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from benchmarks.errors import UsageError
from benchmarks.experiments import EXPERIMENTS, speed
from benchmarks.harness.rounds import NARROW
from benchmarks.harness.runner import read_rows
from benchmarks.harness.schema import KEY, results_only

CHECKS = ("verdicts", "intervals", "medians", "overlap")
DECIDING = ("verdicts", "intervals", "overlap")  # the exit status: medians fails by chance
RULES = {"verdicts": "no verdict goes from met to missed or back (undecided is allowed)",
         "intervals": f"every MNIST ratio's 95% interval is within ±{NARROW:.0%} of its median",
         "medians": "each run's median lies inside every other run's interval",
         "overlap": "every two runs' intervals overlap"}


@dataclass
class Metric:
    """One row of the targets' table, in every run: (median, low, high, verdict) a run."""

    name: str
    target: float
    runs: list[tuple[float, float, float, str]]

    @property
    def flips(self) -> bool:
        """met in one run and missed in another, or a measurement fault beside either."""
        verdicts = {v for *_, v in self.runs}
        return {"met", "missed"} <= verdicts or (
            "measurement fault" in verdicts and bool(verdicts & {"met", "missed"}))

    @property
    def wide(self) -> list[int]:
        """The runs whose interval is wider than +-NARROW of its median (none: too few
        rounds for one)."""
        if not self.name.startswith("MNIST"):
            return []
        return [i for i, (m, lo, hi, _) in enumerate(self.runs)
                if math.isnan(lo) or max(m - lo, hi - m) > NARROW * m]

    @property
    def outside(self) -> list[tuple[int, int]]:
        """(i, j): run i's median outside run j's interval, where j has one."""
        return [(i, j) for i, (m, *_) in enumerate(self.runs)
                for j, (_, lo, hi, _) in enumerate(self.runs)
                if i != j and not math.isnan(lo) and not lo <= m <= hi]

    @property
    def apart(self) -> list[tuple[int, int]]:
        """(i, j), i < j: two runs whose intervals do not overlap."""
        return [(i, j) for i, (_, lo, hi, _) in enumerate(self.runs)
                for j, (_, lo2, hi2, _) in enumerate(self.runs)
                if i < j and not math.isnan(lo) and not math.isnan(lo2)
                and (hi < lo2 or hi2 < lo)]

    @property
    def problems(self) -> dict[str, int]:
        """How often it fails each check (a flip once; the others a run or pair each)."""
        return {"verdicts": int(self.flips), "intervals": len(self.wide),
                "medians": len(self.outside), "overlap": len(self.apart)}

    @property
    def failing(self) -> list[str]:
        """The checks it fails."""
        return [c for c, n in self.problems.items() if n]

    @property
    def spread(self) -> float:
        """The largest median over the smallest."""
        medians = [m for m, *_ in self.runs]
        return max(medians) / min(medians)


def load(folder: Path) -> pd.DataFrame:
    path = folder / f"{EXPERIMENTS['speed'].runs_stem}.csv"
    if not path.exists():
        raise UsageError(f"{folder} holds no speed_runs.csv: give folders of `groundup run "
                         "speed` (or results/published).")
    return results_only(read_rows(path).drop_duplicates(KEY, keep="last"))


FASTEST = re.compile(r"(fastest [^(]*) \(([^)]*)\)$")  # "... / fastest peer (jax)"


def _by_metric(table: pd.DataFrame) -> dict[str, dict]:
    """A run's ratios by metric; a "fastest" metric under its name without the winner
    (which may differ from run to run), the winner kept as ``fastest``."""
    found = {}
    for _, row in table.iterrows():
        match = FASTEST.search(row["metric"])
        name = FASTEST.sub(r"\1", row["metric"]) if match else row["metric"]
        found[name] = {**row.to_dict(), "fastest": match.group(2) if match else ""}
    return found


def metrics(frames: list[pd.DataFrame]) -> tuple[list[Metric], list[str]]:
    """The metrics with a ratio in every run, in the first run's order, and those left out:
    missing from a run, or with no ratio in one (a side that did not run)."""
    runs = [_by_metric(speed.summarize(df)) for df in frames]
    every = list(dict.fromkeys(n for run in runs for n in run))
    kept = [n for n in every if all(n in run and not math.isnan(run[n]["ratio"]) for run in runs)]
    found = []
    for n in kept:
        winners = [run[n]["fastest"] for run in runs]
        name = f"{n} ({' / '.join(winners)})" if any(winners) else n
        found.append(Metric(name, float(runs[0][n]["target"]),
                            [(float(run[n]["ratio"]), float(run[n]["ratio_low"]),
                              float(run[n]["ratio_high"]), str(run[n]["verdict"]))
                             for run in runs]))
    return found, [n for n in every if n not in kept]


def unit_times(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """Each MNIST configuration's implementations: the median unit time (s) in each run."""
    found = {}
    for i, df in enumerate(frames):
        rows = df[(df["task"] == "mnist") & (df["status"] == "ok") & df["round_times_s"].notna()]
        for row in rows.itertuples():
            units = json.loads(row.round_times_s)["epoch"]
            found.setdefault((row.config, row.impl), {})[i] = float(pd.Series(units).median())
    if not found:
        return pd.DataFrame()
    table = pd.DataFrame.from_dict(found, orient="index").reindex(columns=range(len(frames)))
    table.index.names = ["config", "impl"]
    return table.dropna()


def failed(found: list[Metric]) -> dict[str, int]:
    """How many metrics (or run pairs) fail each check."""
    return {c: sum(m.problems[c] for m in found) for c in CHECKS}


def _cell(run: tuple[float, float, float, str]) -> str:
    m, lo, hi, verdict = run
    interval = "" if math.isnan(lo) else f" [{lo:.3g}, {hi:.3g}]"
    return f"{m:.3g}{interval} {verdict}".strip()


def markdown(folders: list[Path], frames: list[pd.DataFrame], found: list[Metric],
             left_out: list[str]) -> str:
    names = [f"run {i + 1}" for i in range(len(folders))]
    runs = pd.DataFrame([{"run": n, "folder": f"`{f}`", "commit": df["commit"].iloc[-1],
                          "first row": df["timestamp"].min(), "last row": df["timestamp"].max(),
                          "cpu": df["cpu"].iloc[-1]}
                         for n, f, df in zip(names, folders, frames)])
    counts = failed(found)
    mnist = sum(m.name.startswith("MNIST") for m in found) * len(frames)
    with_interval = [sum(not math.isnan(r[1]) for r in m.runs) for m in found]
    totals = {"verdicts": f"{len(found)} metrics", "intervals": f"{mnist} MNIST intervals",
              "medians": f"{sum(k * (len(frames) - 1) for k in with_interval)} medians set "
                         "against another run's interval",
              "overlap": f"{sum(k * (k - 1) // 2 for k in with_interval)} pairs of intervals"}
    lines = ["# Speed verdicts, run to run", "", runs.to_markdown(index=False), "",
             "## Checks", ""]
    lines += [f"- **{c}**: {RULES[c]}: **{'holds' if not counts[c] else 'fails'}** "
              f"({counts[c]} failing, of {totals[c]})." for c in CHECKS]
    if left_out:
        lines += ["", f"Left out, not measured in every run ({len(left_out)}): "
                  + "; ".join(left_out) + "."]
    rows = [{"metric": m.name, "target": "" if math.isnan(m.target) else f"{m.target:.3g}",
             **{n: _cell(r) for n, r in zip(names, m.runs)},
             "largest / smallest median": f"{m.spread:.3f}",
             "fails": ", ".join(m.failing)}
            for m in found]
    lines += ["", "## The targets' ratios, run by run", "",
              "Median [95% interval] verdict, each from its run's own rows.", "",
              pd.DataFrame(rows).to_markdown(index=False)]
    units = unit_times(frames)
    if not units.empty:
        units.columns = names
        units["largest / smallest"] = units[names].max(axis=1) / units[names].min(axis=1)
        lines += ["", "## Each implementation's unit time, run by run (s, median)", "",
                  "A unit is a part of an epoch (speed's PARTS); each run measures it in "
                  "fresh processes, so a row's spread is the implementation's speed from one "
                  "process, and one stretch of the machine's time, to the next. The rounds' "
                  "pairing cancels what the processes share, not this.", "",
                  units.reset_index().to_markdown(index=False, floatfmt=".3f")]
    return "\n".join(lines) + "\n"


def repeat(folders: list[Path]) -> tuple[list[pd.DataFrame], list[Metric], list[str]]:
    if len(folders) < 2:
        raise UsageError("give two or more run folders of `groundup run speed`: a check "
                         "of repeatability needs runs to compare.")
    frames = [load(f) for f in folders]
    found, left_out = metrics(frames)
    if not found:
        raise UsageError("the folders share no speed metric with a ratio in each: run "
                         "`groundup run speed` with the same tasks in each.")
    return frames, found, left_out
