"""``groundup drift``: does this machine keep its speed? Fixed work, timed over minutes.

Four fixed pieces of work, each of the kind an epoch is made of, run in turn, again and
again, in this one process, with a short sleep between turns:

- ``matmul``: 20 float32 products of a 128 x 784 batch by 784 x 512 weights (BLAS);
- ``copy``: one copy of 64 MB (memory bandwidth);
- ``python``: a Python loop of 200,000 additions (the interpreter);
- ``gather``: 200 minibatches of 32 rows drawn from a 60000 x 784 array (MNIST's shape).

Nothing about the work changes, so on a steady machine each piece takes the same time
from start to end. The report gives each piece's median, and the median of each window
of ``WINDOW_S`` seconds over it: a window that is 10% faster than the whole is the
machine's speed moving, and where the pieces move by different amounts, a ratio of two
implementations that lean on them differently moves too (``groundup repeat``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

WINDOW_S = 30.0
PAUSE_S = 0.5


def workloads(seed: int = 0) -> dict[str, Callable[[], object]]:
    rng = np.random.default_rng(seed)
    batch = rng.random((128, 784), dtype=np.float32)
    weights = rng.random((784, 512), dtype=np.float32)
    source = np.ones(16_000_000, dtype=np.float32)
    target = np.empty_like(source)
    images = rng.random((60_000, 784), dtype=np.float32)
    order = rng.permutation(60_000)

    def matmul():
        for _ in range(20):
            batch @ weights

    def python():
        total = 0
        for i in range(200_000):
            total += i
        return total

    def gather():
        for start in range(0, 6400, 32):
            images[order[start:start + 32]]

    return {"matmul": matmul, "copy": lambda: np.copyto(target, source),
            "python": python, "gather": gather}


def measure(seconds: float, on_turn: Callable[[float], None] = lambda elapsed: None,
            pause_s: float = PAUSE_S) -> pd.DataFrame:
    """Turns of every workload for ``seconds``: a row a workload a turn (t_s: when the
    turn began, from the start; seconds: its time)."""
    work = workloads()
    for run in work.values():  # first touch of the arrays, BLAS's threads: untimed
        run()
    rows, start = [], time.perf_counter()
    while (began := time.perf_counter() - start) < seconds:
        for name, run in work.items():
            mark = time.perf_counter()
            run()
            rows.append({"t_s": began, "workload": name, "seconds": time.perf_counter() - mark})
        on_turn(began)
        time.sleep(pause_s)
    return pd.DataFrame(rows, columns=["t_s", "workload", "seconds"])


def windows(samples: pd.DataFrame, window_s: float = WINDOW_S) -> pd.DataFrame:
    """Each workload's median time in each window, over its median for the whole run
    (1.10: that window ran 10% slower)."""
    window = (samples["t_s"] // window_s * window_s).rename("window_s")
    medians = samples.groupby("workload", sort=False)["seconds"].median()
    by_window = samples.groupby([window, "workload"], sort=False)["seconds"].median()
    return (by_window / medians.reindex(by_window.index.get_level_values("workload")).to_numpy()
            ).unstack("workload")


def summary(samples: pd.DataFrame, window_s: float = WINDOW_S) -> pd.DataFrame:
    """A row a workload: its median (ms), turns, and its slowest and fastest windows."""
    relative = windows(samples, window_s)
    grouped = samples.groupby("workload", sort=False)["seconds"]
    return pd.DataFrame({"median_ms": grouped.median() * 1e3, "turns": grouped.size(),
                         "fastest_window": relative.min(), "slowest_window": relative.max(),
                         "spread": relative.max() / relative.min()})


def markdown(samples: pd.DataFrame, context: dict, window_s: float = WINDOW_S) -> str:
    relative = windows(samples, window_s)
    relative.index = [f"{t:g}" for t in relative.index]
    return "\n".join([
        "# Fixed work, timed over minutes (`groundup drift`)", "",
        ", ".join(f"{k}: {v}" for k, v in context.items()), "",
        summary(samples, window_s).reset_index().to_markdown(index=False, floatfmt=".3f"), "",
        f"Each {window_s:g}-second window's median over the workload's median (1.10: 10% "
        "slower than the whole run):", "",
        relative.rename_axis("window from (s)").reset_index().to_markdown(
            index=False, floatfmt=".3f"), ""])


def write(samples: pd.DataFrame, csv: Path, md: Path, context: dict) -> None:
    from benchmarks.files import write_atomic

    write_atomic(csv, lambda f: samples.to_csv(f, index=False))
    text = markdown(samples, context)
    write_atomic(md, lambda f: f.write(text.encode()))
