"""Speed targets for the from-scratch network, each a ratio measured in one suite run.

1. MNIST 784-512-10, float32, SGD 0.1, batch 32: scratch epoch <= 0.4 x Keras fit's.
2. MNIST, batch 128: scratch epoch <= 1.5 x the matmul limit, the time the epoch's
   own matrix products take alone, measured between the same run's epochs.
3. Time to 98% MNIST test accuracy, same configuration both sides (SGD lr 0.2,
   batch 32, shuffled): scratch <= 1/3.
4. XOR and reverse4: scratch step <= 1/5 of keras-tuned's step; Keras fit called per
   epoch, as the blog wrote it, is reported beside them.
5. MNIST batch 32 and batch 128: scratch <= 1.0 x the fastest Keras backend's epoch, and
   (the moonshot) <= 1.0 x the fastest peer of any kind.

Every MNIST metric and the tiny tasks' step time are also reported against each peer,
and against the fastest peer, whose name the metric gives. ``speed.csv`` has one row
per metric: metric, scratch, reference, ratio, target, met, and the ratio's interval.

The MNIST runs of a configuration train side by side in interleaved rounds, each in its
own process (``harness.interleaved``): a quarter of an epoch of each a round (its steps'
own time, without Keras fit's per-call setup), in a shuffled order, and batch 128's
matmul limit over the same quarter as a unit of its own. A ratio is then the median of
the rounds' ratios, with its 95% interval, and its verdict reads the interval against
the target (``harness.rounds``). The rounds end once every interval is within 10% of its
median, or the time limit is spent. Time to 98% is the crossing epochs' ratio (a property
of the training, not of the clock) times the rounds' time ratio.
"""

from __future__ import annotations

import json
import math
import statistics
import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from benchmarks.data.tasks import TaskConfig, get_config
from benchmarks.files import write_atomic
from benchmarks.harness import schema
from benchmarks.harness.rounds import Ratio, epoch_part
from benchmarks.harness.specs import Profile, RunSpec, Selection
from scratch import MNIST

if TYPE_CHECKING:  # pandas is for the reports: a run's worker process never imports it
    import pandas as pd

EPOCHS = {"b32": 3, "b128": 5, "to98": 15}
# Plain SGD crosses 98% with a margin on both sides for seed 0 (test accuracy by epoch:
# 96.77 97.50 97.46 97.71 98.20), so float32 drift between the two sides cannot move the
# crossing by an epoch. With momentum 0.9, lr 0.05, batch 64 (the speed anchor's) epoch 5
# ends at 97.98%, and the two sides crossed an epoch apart.
TO98 = {"name": "sgd", "learning_rate": 0.2}
TO98_BATCH = 32
TINY_BUDGET_S = {"quick": 3, "full": 3, "smoke": 2}  # thousands of steps for the median
# The sides of the tiny tasks' targets (PAIRED: scratch and keras-tuned, scratch-numba and
# jax): 6 pairs, the fewest whose median has a 95% interval; the other step peers,
# reported with no target and no interval, run the first (a run is a process of its own:
# 3 seeds of each took 3 of the publish's minutes)
TINY_SEEDS = 6
PEER_TINY_SEEDS = 1
SMOKE_SAMPLES = 2048
# The MNIST configurations' rounds: at most this many epochs, each PARTS units (a round's
# unit a part of an epoch: rounds a quarter as long pair the sides closer in time, and
# four times as many narrow the intervals: scratch / torch at batch 32 measured +-33% in 7
# epoch rounds, +-5% in 21 quarter rounds of the same 4 minutes), and the seconds after
# which no new round starts (MIN_ROUNDS at the least)
PARTS = {"smoke": 1, "quick": 4, "full": 4}
ROUNDS = {"smoke": 1, "quick": 2, "full": 20}
ROUNDS_LIMIT_S = {"smoke": 2.0, "quick": 120.0, "full": 600.0}
# The most epochs to the target (every run of the configuration crosses by epoch 5); the
# time limit counts only once every run has reached it
TO98_EPOCHS = 15
TASKS = ("mnist", *(f"mnist/{c}" for c in EPOCHS), "xor", "xor/blog", "reverse4", "reverse4/blog")
# The peers of the MNIST metrics (each as the reference examples run it), and the compiled
# ones of the tiny tasks' step time; a peer whose framework is missing is skipped.
KERAS_BACKENDS = ("keras", "keras-jax", "keras-torch")
PEERS = (*KERAS_BACKENDS, "jax", "torch")
STEP_PEERS = ("keras-tuned", "keras-jax-tuned", "keras-torch-tuned", "jax", "torch")
# The compiled from-scratch engine (scratch/compiled.py): in batch 32's and 128's rounds and
# the tiny tasks' steps, with targets of its own (summarize): at most the fastest peer's
# MNIST epoch, and on the tiny tasks at most jax's step and 1/100 of scratch's.
COMPILED = "scratch-numba"
PAIRED = ("scratch-shortcut", "keras-tuned", COMPILED, "jax")
COLUMNS = tuple(schema.SPEED_RUNS)  # described in benchmarks/harness/schema.py


def configure(spec: RunSpec) -> TaskConfig:
    if spec.task in ("xor", "reverse4"):
        return get_config(spec.task)
    base = replace(get_config("mnist", "tf-tutorial"), arch=MNIST, epochs=EPOCHS[spec.config],
                   optimizer={"name": "sgd", "learning_rate": 0.1})
    if spec.config == "b32":
        return replace(base, config="b32", batch_size=32)
    if spec.config == "b128":  # file order: the epoch is its steps, as the limit is
        return replace(base, config="b128", batch_size=128, shuffle=False)
    return replace(base, config="to98", batch_size=TO98_BATCH, optimizer=TO98,
                   target="98% test accuracy", target_accuracy=0.98)


def specs(profile: Profile, chosen: Selection) -> list[RunSpec]:
    smoke = profile.name == "smoke"
    mnist = {"timeout_s": profile.timeout_s, "budget_s": ROUNDS_LIMIT_S[profile.name],
             "train_samples": SMOKE_SAMPLES if smoke else None, "data_dir": chosen.data_dir}
    # The smoke profile runs each of speed's paths once: the peers' file-order and shuffled
    # training is proven in tests/test_peers.py (jax's compiled tiny steps run in compare).
    peers, step_peers = ((), STEP_PEERS[:1]) if smoke else ((*PEERS, COMPILED),
                                                            (*STEP_PEERS, COMPILED))
    to98 = PEERS[:1] if smoke else PEERS
    named = [i for i in chosen.impls or ()
             if i not in ("scratch-shortcut", *PEERS, *STEP_PEERS, COMPILED)]
    if named:  # an implementation --impl names runs where the peers do
        peers, step_peers, to98 = (*peers, *named), (*step_peers, *named), (*to98, *named)
    rounds = ROUNDS[profile.name]
    runs = [RunSpec("speed", "mnist", config, impl, 0, profile.name, rounds, **mnist)
            for config in ("b32", "b128") for impl in ("scratch-shortcut", *peers)]
    runs += [RunSpec("speed", "mnist", "to98", impl, 0, profile.name,
                     1 if smoke else TO98_EPOCHS, **mnist,
                     stop_at_target=True)
             for impl in ("scratch-shortcut", *to98)]
    for task in ("xor", "reverse4"):
        epochs = 100 if smoke else get_config(task).epochs
        # Seed by seed, the two sides in turn: a slow spell of the shared machine then
        # falls on both sides of a ratio, not on one. A scratch run of reverse4 lasts
        # half a second, so one spell could swing a single pair; the median of five does not.
        runs += [RunSpec("speed", task, "blog", impl, seed, profile.name, epochs,
                         TINY_BUDGET_S[profile.name], profile.timeout_s)
                 for seed in range(chosen.seeds or (1 if smoke else TINY_SEEDS))
                 for impl in ("scratch-shortcut", *step_peers)
                 if chosen.seeds or seed < PEER_TINY_SEEDS or impl in PAIRED]
        # Keras fit called once per epoch, the blog's way: its per-epoch overhead, reported.
        runs.append(RunSpec("speed", task, "blog", "keras", 0, profile.name, epochs,
                            TINY_BUDGET_S[profile.name] / 2, profile.timeout_s))
    # --task and --impl narrow the suite; a ratio with a side left out is not measured.
    return [r for r in runs if (r.task in chosen.tasks or f"{r.task}/{r.config}" in chosen.tasks)
            and (chosen.impls is None or r.impl in chosen.impls)]


def rounds(spec: RunSpec) -> tuple | None:
    """The MNIST runs of a configuration train in interleaved rounds together."""
    return (spec.task, spec.config) if spec.task == "mnist" else None


def parts(spec: RunSpec) -> int:
    """The units of an MNIST epoch in those rounds (at most its steps)."""
    steps = -(-(spec.train_samples or 60_000) // configure(spec).batch_size)
    return min(PARTS[spec.profile], steps)


def between_epochs(spec: RunSpec, cfg: TaskConfig, data, weights: list[np.ndarray]):
    """For batch 128: the matmul limit, each call one pass. In interleaved rounds it is a
    unit of its own (scratch's); a run outside them measures it after each epoch, untimed."""
    return (MatmulLimit(data.x, cfg.batch_size, weights, parts(spec)) if spec.config == "b128"
            else None)


def measure(t) -> dict:
    row = {}
    if t.spec.config == "b128":
        row.update(t.monitor.between_epochs.result(t.data.n_full))
    if t.cfg.task == "mnist":
        predictions = t.impl.predict(t.model, t.data.x_test)
        row["accuracy"] = float((predictions.argmax(axis=1) == t.data.y_test).mean())
    return row


class MatmulLimit:
    """The epoch's matrix products alone, in the shapes, layouts and calls the library
    uses: Z1 = X W1, Z2 = A1 W2, dW1 = X^T dZ1, dW2 = A1^T dZ2, dA1 = dZ2 W2^T.
    Each call times one part of a pass over ``x`` (of ``parts``, in turn, as the rounds'
    units are); ``result`` is the median step, scaled to an epoch of ``n_full`` samples."""

    def __init__(self, x: np.ndarray, batch: int, weights: list[np.ndarray], parts: int = 1):
        self.x, self.batch, self.w1, self.w2, self.parts = x, batch, weights[0], weights[2], parts
        rng = np.random.default_rng(0)
        self.a1 = rng.random((batch, self.w1.shape[1]), dtype=np.float32)
        self.dz1, self.dz2 = self.a1.copy(), rng.random((batch, self.w2.shape[1]), dtype=np.float32)
        self.steps = len(x) // batch  # whole batches: the products' shapes are fixed
        self.times: list[float] = []
        self.per_step: list[float] = []

    def __call__(self) -> None:
        w1, w2, a1, dz1, dz2 = self.w1, self.w2, self.a1, self.dz1, self.dz2
        lo, hi = epoch_part(len(self.x), self.batch, len(self.times) % self.parts, self.parts)
        steps = range(lo // self.batch, min(-(-hi // self.batch), self.steps))
        start = time.perf_counter()
        for i in steps:
            xb = self.x[i * self.batch:(i + 1) * self.batch]
            np.dot(xb, w1), np.dot(a1, w2), np.dot(xb.T, dz1), np.dot(a1.T, dz2), np.dot(dz2, w2.T)
        self.times.append(time.perf_counter() - start)
        self.per_step.append(self.times[-1] / max(len(steps), 1))

    def result(self, n_full: int) -> dict:
        if not self.times:  # trained for no whole epoch
            self()
        per_step = statistics.median(self.per_step[:len(self.times)])
        flops = 2 * self.batch * (2 * self.w1.size + 3 * self.w2.size)
        return {"matmul_epoch_s": per_step * n_full / self.batch,
                "matmul_gflops": flops / per_step / 1e9}


def summarize(df: pd.DataFrame) -> pd.DataFrame:
    """The targets' table: one row per metric, with the ratio's interval and verdict."""
    import pandas as pd

    ok = df[df["status"] == "ok"]
    medians = ok.groupby(["task", "config", "impl"]).median(numeric_only=True)

    def get(task, config, impl, col):  # the median over seeds
        try:
            return float(medians.loc[(task, config, impl), col])
        except KeyError:
            return math.nan

    def runs(task, config, impl) -> pd.DataFrame:
        return ok[(ok["task"] == task) & (ok["config"] == config) & (ok["impl"] == impl)]

    def rounds_of(task, config, impl) -> dict | None:
        found = runs(task, config, impl)
        if found.empty or "round_times_s" not in found or pd.isna(found["round_times_s"].iloc[-1]):
            return None
        return json.loads(found["round_times_s"].iloc[-1])

    def interval(task, config, peer, us="scratch-shortcut") -> Ratio | None:
        """``us`` / ``peer`` (None: its matmul limit), round by round within one group of
        rounds; the tiny tasks' by seed, the two sides run in turn; None: not paired."""
        if task != "mnist":
            a, b = (runs(task, config, i).set_index("seed")["step_time_ms"] for i in (us, peer))
            both = a.index.intersection(b.index)
            return Ratio.of(a[both].tolist(), b[both].tolist()) if len(both) else None
        ours = rounds_of(task, config, us)
        theirs = ours if peer is None else rounds_of(task, config, peer)
        if not ours or not theirs or ours["group"] != theirs["group"]:
            return None
        a, b = ours["epoch"], theirs["limit" if peer is None else "epoch"]
        n = min(len(a), len(b))
        if not n:
            return None
        ratio = Ratio.of(a[:n], b[:n])
        if config != "to98":
            return ratio
        if not (ours.get("target_epoch") and theirs.get("target_epoch")):
            return None
        k = ours["target_epoch"] / theirs["target_epoch"]  # the crossing epochs' ratio
        return Ratio(ratio.median * k, ratio.low * k, ratio.high * k, ratio.rounds)

    def row(label, task, config, column, peer, target=math.nan, scale=1.0, paired=True,
            us="scratch-shortcut"):
        return (label, scale * get(task, config, us, column),
                scale * get(task, config, peer, column), target,
                interval(task, config, peer, us) if paired else None)

    def against(label, task, config, column, peers, target=math.nan, fastest=(),
                us="scratch-shortcut"):
        """``us`` (scratch) against each peer (``target``: one for all, or one by peer);
        then against the fastest of each group in ``fastest`` ((name, peers, target)), the
        peer named in the metric."""
        ran = set(df.loc[(df["task"] == task) & (df["config"] == config), "impl"])
        found = {p: get(task, config, p, column) for p in peers if p in ran}
        name_us = "scratch" if us == "scratch-shortcut" else us
        goals = target if isinstance(target, dict) else dict.fromkeys(found, target)
        out = [row(f"{label}, {name_us} / {p}", task, config, column, p,
                   goals.get(p, math.nan), us=us) for p in found]
        for name, group, goal in fastest:
            times = {p: found[p] for p in group if p in found and not math.isnan(found[p])}
            if times:
                best = min(times, key=times.get)
                out.append(row(f"{label}, {name_us} / fastest {name} ({best})", task, config,
                               column, best, goal, us=us))
        return out

    def compiled(label, task, config, column, peers, goals):
        """The compiled engine's own rows, where it ran: against scratch, each peer and
        the fastest peer, ``goals`` the targets by name ("scratch", a peer's, "fastest")."""
        if math.isnan(get(task, config, COMPILED, column)):
            return []
        return [row(f"{label}, {COMPILED} / scratch", task, config, column, "scratch-shortcut",
                    goals.get("scratch", math.nan), us=COMPILED),
                *against(label, task, config, column, peers, goals, us=COMPILED,
                         fastest=(("peer", peers, goals.get("fastest", math.nan)),))]

    epoch_targets = (("Keras backend", KERAS_BACKENDS, 1.0), ("peer", PEERS, 1.0))
    limit = ("MNIST batch 128, file order: s per epoch, scratch / its matmuls alone",
             get("mnist", "b128", "scratch-shortcut", "epoch_time_s"),
             get("mnist", "b128", "scratch-shortcut", "matmul_epoch_s"), 1.5,
             interval("mnist", "b128", None))
    rows = [
        row("MNIST batch 32: s per epoch, scratch / keras fit", "mnist", "b32", "epoch_time_s",
            "keras", 0.4),
        *against("MNIST batch 32: s per epoch", "mnist", "b32", "epoch_time_s", PEERS[1:],
                 fastest=epoch_targets),
        limit,
        *against("MNIST batch 128, file order: s per epoch", "mnist", "b128", "epoch_time_s",
                 PEERS, fastest=epoch_targets),
        row(f"MNIST s to 98% test accuracy (SGD lr {TO98['learning_rate']}, batch {TO98_BATCH}, "
            "shuffled), scratch / keras", "mnist", "to98", "time_to_target_s", "keras", 1 / 3),
        *against("MNIST s to 98% test accuracy", "mnist", "to98", "time_to_target_s", PEERS[1:],
                 fastest=(("peer", PEERS, math.nan),)),
        *(row_ for config in ("b32", "b128") for row_ in compiled(
            f"MNIST batch {config[1:]}: s per epoch", "mnist", config, "epoch_time_s", PEERS,
            {"fastest": 1.0})),
    ]
    for task in ("xor", "reverse4"):
        rows.append(row(f"{task}: ms per step, scratch / keras-tuned", task, "blog",
                        "step_time_ms", "keras-tuned", 0.2))
        rows += against(f"{task}: ms per step", task, "blog", "step_time_ms", STEP_PEERS[1:],
                        fastest=(("peer", STEP_PEERS, math.nan),))
        rows.append(row(f"{task}: ms per epoch of Keras fit called per epoch (the blog's "
                        "way), scratch / keras", task, "blog", "epoch_time_s", "keras",
                        scale=1e3, paired=False))
        rows += compiled(f"{task}: ms per step", task, "blog", "step_time_ms", STEP_PEERS,
                         {"scratch": 0.01, "jax": 1.0})
    table = pd.DataFrame([r[:4] for r in rows], columns=["metric", "scratch", "reference",
                                                          "target"])
    paired = [r[4] for r in rows]
    # the median of the rounds' ratios where they pair, the figures' quotient where not
    table["ratio"] = [p.median if p else a / b for p, a, b in
                      zip(paired, table["scratch"], table["reference"], strict=True)]
    table["met"] = [("" if math.isnan(t) or math.isnan(r) else bool(r <= t)) for r, t in
                    zip(table["ratio"], table["target"], strict=True)]
    table["ratio_low"] = [p.low if p else math.nan for p in paired]
    table["ratio_high"] = [p.high if p else math.nan for p in paired]
    table["rounds"] = [p.rounds if p else math.nan for p in paired]
    floors = [1.0 if r is limit else None for r in rows]  # an epoch holds its own products
    table["verdict"] = [
        "" if math.isnan(t) or math.isnan(r) else
        (p.verdict(t, floor) if p else "undecided")
        for p, t, r, floor in zip(paired, table["target"], table["ratio"], floors, strict=True)]
    table = table[["metric", "scratch", "reference", "ratio", "target", "met", "ratio_low",
                   "ratio_high", "rounds", "verdict"]]
    last = df.iloc[-1]  # where and when the runs were measured, not when this was written
    return table.assign(cpu=last["cpu"], commit=last["commit"], timestamp=last["timestamp"])


def write_summary(df: pd.DataFrame, out_dir: Path) -> list[Path]:
    path = out_dir / "speed.csv"
    write_atomic(path, lambda f: summarize(df).to_csv(f, index=False))
    return [path]


def report(df: pd.DataFrame) -> list[str]:
    table = summarize(df).drop(columns=["cpu", "commit", "timestamp"])
    return ["## Speed targets", "", table.to_markdown(index=False, floatfmt=".4g"), "",
            "Each ratio divides two figures measured in this run; times exclude warm-up. "
            "The MNIST runs of a configuration trained side by side in interleaved rounds, "
            "each in its own process; the interval (ratio_low to ratio_high) holds the median "
            "of the rounds' ratios at 95%, the tiny tasks' that of the seeds' ratios (the two "
            "sides run in turn). The verdict reads the interval against the target: met, "
            "missed, or undecided where it straddles the target or there is none. Time to 98% "
            "is paired as the crossing epochs' ratio (the training's, not the clock's) times "
            "the rounds' epoch-time ratio.", ""]
