"""``groundup bench-peers``: each peer as the suite runs it, against the minimal training loop
an expert writes in its framework (tests/minimal/), on XOR and on MNIST batch 32.

A peer is timed as the harness's worker times a run: ``build``, ``warm_up`` (untimed), then
``train`` with a ``Monitor`` whose checks fall every ``check_interval`` of the task's full
epochs, so that JAX's compiled calls and keras-tuned's executions are as long as in a
full run; the figure is ``monitor.elapsed()`` a step. The minimal loop is timed around its
``run``. Both start from scratch's initial weights and see the same batches.

Each peer runs in a process of its own (Keras picks its backend once a process). After
warm-up, each round times a block of steps of each side, in a fresh random order each
round, until the interval of the ratio is narrow or the task's time is spent. The ratio
is the median of the rounds' ratios of time a step (peer / minimal), with the
order-statistic 95% interval of that median.
"""

from __future__ import annotations

import argparse
import csv
import functools
import io
import json
import math
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.table import Column, Table

from benchmarks import implementations
from benchmarks.errors import UsageError
from benchmarks.files import write_atomic
from benchmarks.implementations import IMPLEMENTATIONS, Monitor, missing_packages
from benchmarks.implementations.base import largest_divisor
from benchmarks.implementations.timer import check_interval

ROOT = Path(__file__).resolve().parent.parent
PEERS = [name for name in implementations.PEERS  # every framework peer (not scratch)
         if IMPLEMENTATIONS[name].framework in ("jax", "torch", "keras")]
TASKS = ("xor", "mnist")
MNIST_SAMPLES = 200 * 32  # an epoch of 200 steps of batch 32
# XOR epochs a block is a multiple of: whole compiled calls of JAX (500 epochs in a full run)
# and executions of keras-tuned (1000 steps).
UNIT_EPOCHS = {"xor": 1000, "mnist": 1}
SEED = 0
LIMIT = 1.5
MIN_ROUNDS, MAX_ROUNDS = 7, 15
NARROW = 0.10  # stop once the interval's width is this fraction of the ratio
TASK_S = 12.0  # rounds stop once they have taken this long, past MIN_ROUNDS
MIN_SIDE_S = 0.05  # the faster side's block lasts at least this long, where it can
MAX_ROUND_S = 2.0  # unless a round (both sides) would then last longer than this
WIDTH = 130  # the table's, where the output is no terminal
ROW = "@@row"  # the prefix of a result line on a worker's stdout
COLUMNS = ("peer", "task", "peer_steps", "minimal_steps", "rounds", "peer_us", "minimal_us",
           "ratio", "ratio_low", "ratio_high", "verdict", "settings")


def median_interval(values: list[float]) -> tuple[float, float, float]:
    """The median and its distribution-free 95% interval: the k-th smallest and k-th largest
    values, for the largest k with P(Binomial(n, 1/2) < k) <= 2.5% (at least 1)."""
    n, ordered = len(values), sorted(values)
    k, below = 1, 1 / 2**n  # below: P(Binomial(n, 1/2) < k)
    while k < n // 2 and below + math.comb(n, k) / 2**n <= 0.025:
        below += math.comb(n, k) / 2**n
        k += 1
    return statistics.median(ordered), ordered[k - 1], ordered[n - k]


def verdict(low: float, high: float) -> str:
    if high <= LIMIT:
        return f"within {LIMIT}x"
    return f"over {LIMIT}x" if low > LIMIT else "undecided"


def measure(impl, loops, task: str) -> dict:
    """One row: ``impl`` and its framework's minimal loop on ``task``, in rounds."""
    from tests.minimal import setup

    cfg, weights, x, y = setup(task, MNIST_SAMPLES if task == "mnist" else None, SEED)
    model = impl.build(cfg, weights, "float32", SEED)
    impl.warm_up(model, x, y, cfg, cfg.epochs)
    loop = loops.make(task, weights, x, y)
    steps_per_epoch = len(x) // cfg.batch_size

    def peer(epochs: int, budget_s: float = 1e9) -> tuple[float, int]:
        """Seconds a step, and steps: the suite's training time over the steps it took."""
        monitor = Monitor(budget_s, lambda predict: False, epochs, check_interval(cfg.epochs))
        impl.train(model, x, y, cfg, epochs, SEED, monitor)
        return monitor.elapsed() / monitor.steps_done, monitor.steps_done

    def minimal(epochs: int) -> tuple[float, int]:
        start = time.perf_counter()
        loop.run(epochs)
        return (time.perf_counter() - start) / (epochs * steps_per_epoch), epochs * steps_per_epoch

    sides = blocks(peer, minimal, UNIT_EPOCHS[task], steps_per_epoch)
    seconds: dict[str, list[float]] = {"peer": [], "minimal": []}
    steps: dict[str, list[int]] = {"peer": [], "minimal": []}
    ratios: list[float] = []
    rng = random.Random(SEED)
    started = time.perf_counter()
    while len(ratios) < MAX_ROUNDS:
        for side in rng.sample(list(sides), 2):
            per_step, done = sides[side]()
            seconds[side].append(per_step)
            steps[side].append(done)
        ratios.append(seconds["peer"][-1] / seconds["minimal"][-1])
        ratio, low, high = median_interval(ratios)
        if len(ratios) >= MIN_ROUNDS and (high - low <= NARROW * ratio
                                          or time.perf_counter() - started > TASK_S):
            break
    return {"peer": impl.name, "task": task, "peer_steps": round(statistics.median(steps["peer"])),
            "minimal_steps": steps["minimal"][0], "rounds": len(ratios),
            "peer_us": 1e6 * statistics.median(seconds["peer"]),
            "minimal_us": 1e6 * statistics.median(seconds["minimal"]),
            "ratio": ratio, "ratio_low": low, "ratio_high": high,
            "verdict": verdict(low, high), "settings": json.dumps(impl.settings(model))}


def blocks(peer, minimal, unit: int, steps_per_epoch: int) -> dict:
    """Each side's block of a round, as a call, after untimed runs that compile and touch
    everything: the same multiple of ``unit`` epochs on both sides, whose faster side lasts
    MIN_SIDE_S, within MAX_ROUND_S a round. Where one unit is too slow for that, the peer
    trains it with a time budget (stopped as the suite stops a run: its calls stay as long
    as in a full run) and the minimal loop trains the largest divisor of it that fits."""
    minimal(unit)  # compiles
    for _ in range(2):  # the first touches everything once
        peer_s = peer(unit, budget_s=MAX_ROUND_S / 2)[0]
    per_unit = [unit * steps_per_epoch * t for t in (peer_s, minimal(unit)[0])]
    if sum(per_unit) <= MAX_ROUND_S:
        epochs = unit * max(1, min(math.ceil(MIN_SIDE_S / min(per_unit)),
                                   int(MAX_ROUND_S / sum(per_unit))))
        peer_block, minimal_epochs = functools.partial(peer, epochs), epochs
    else:
        peer_block = functools.partial(peer, unit, budget_s=MAX_ROUND_S / 2)
        minimal_epochs = largest_divisor(unit, int(unit * MAX_ROUND_S / 2 / per_unit[1]))
    if minimal_epochs != unit:
        minimal(minimal_epochs)  # compiles for this block: JAX's scan, Keras' repeats
    peer_block()  # likewise (a JAX call of this block's many checks)
    return {"peer": peer_block, "minimal": functools.partial(minimal, minimal_epochs)}


def one(name: str) -> int:
    """Measure peer ``name`` on every task, in this process; a ``ROW`` line per task."""
    impl = IMPLEMENTATIONS[name]
    impl.activate()
    from tests.minimal import loop_module

    loops = loop_module(impl.framework)
    for task in TASKS:
        print(ROW, json.dumps(measure(impl, loops, task)), flush=True)
    return 0


def run_peer(name: str) -> list[dict]:
    """Peer ``name``'s rows, measured in a fresh process run from the source checkout."""
    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    done = subprocess.run([sys.executable, "-m", "benchmarks.bench_peers", "--one", name],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    if done.returncode:
        raise RuntimeError(done.stderr.strip()[-2000:] or f"exit status {done.returncode}")
    return [json.loads(line.removeprefix(ROW)) for line in done.stdout.splitlines()
            if line.startswith(ROW)]


def table(rows: list[dict]) -> Table:
    out = Table(Column("peer", no_wrap=True), "task", "steps a round", "rounds",
                "peer µs/step", "minimal µs/step", "peer / minimal",
                Column("95% interval", no_wrap=True),
                Column("verdict", no_wrap=True),
                title="Each peer as the suite runs it against the minimal loop in its framework "
                      "(tests/minimal), float32",
                caption="steps a round: peer / minimal where they differ (a peer too slow for "
                        "a whole block stops at a time budget, as the suite stops a run)")
    for r in rows:
        style = {"within": "green", "over": "red"}.get(r["verdict"].split()[0], "yellow")
        steps = r["peer_steps"], r["minimal_steps"]
        out.add_row(r["peer"], r["task"], " / ".join(map(str, dict.fromkeys(steps))),
                    str(r["rounds"]), _us(r["peer_us"]), _us(r["minimal_us"]),
                    f"{r['ratio']:.2f}x", f"{r['ratio_low']:.2f}-{r['ratio_high']:.2f}",
                    f"[{style}]{r['verdict']}[/]")
    return out


def _us(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:.3g}"


def main(out: str | None = None) -> int:
    if not (ROOT / "tests" / "minimal").is_dir():
        raise UsageError("bench-peers needs the source checkout: the minimal loops live in "
                         f"tests/minimal/, not found under {ROOT}.")
    console = Console()
    if not console.is_terminal:  # a file or a pipe: every column whole
        console = Console(width=WIDTH)
    rows, failed = [], []
    for name in PEERS:
        if IMPLEMENTATIONS[name].missing():
            console.print(f"[yellow]skipped[/] {missing_packages(name)}", soft_wrap=True)
            continue
        with console.status(f"{name}: warming up and timing {', '.join(TASKS)}"):
            try:
                rows += run_peer(name)
            except (RuntimeError, subprocess.TimeoutExpired) as err:
                failed.append(name)
                console.print(f"[bold red]{name} failed:[/] {err}", soft_wrap=True)
    console.print(table(rows))
    if out:
        text = io.StringIO()
        writer = csv.DictWriter(text, COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
        write_atomic(Path(out), lambda f: f.write(text.getvalue().encode()))
        console.print(f"Rows written to {out}")
    return 1 if failed else 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--one", choices=PEERS, required=True,
                        help="measure this peer here, printing its rows")
    sys.exit(one(parser.parse_args().one))
