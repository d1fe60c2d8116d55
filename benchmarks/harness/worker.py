"""Runs in a fresh process: ``python -m benchmarks.experiments SPECS.json RESULTS_DIR``.

It trains each listed (experiment, task, config, impl, seed) in turn (one run, or the
group that ``runner.groups`` made: an accuracy-only experiment's seeds, a scaling
implementation's cells), measures it, and writes its result row as JSON. Progress
goes to stdout as ``@@progress DONE TOTAL`` lines.
"""

from __future__ import annotations

import ctypes
import json
import math
import os
import signal
import statistics
import sys
import time
import traceback
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from benchmarks.data.tasks import target_reached
from benchmarks.harness import environment
from benchmarks.harness.experiment import Experiment
from benchmarks.harness.rounds import epoch_part
from benchmarks.harness.schema import PREFIX_SCORES
from benchmarks.harness.specs import PROFILES, RunSpec
from benchmarks.implementations import (
    IMPLEMENTATIONS,
    Monitor,
    Trained,
    implementation_columns,
    scratch_model,
)
from benchmarks.implementations.base import largest_divisor
from benchmarks.implementations.timer import check_interval
from scratch import epoch_order

PROGRESS = "@@progress"
PARENT = "GROUNDUP_PARENT_PID"  # the runner's PID, so that the worker dies with it
PR_SET_PDEATHSIG = 1
MEMORY_BUDGET_FRACTION = 0.5  # of the available memory, unless --memory-budget says


class Refused(Exception):
    """A run its implementation will not start; the message says why and what to do."""


def check_refused(impl, spec: RunSpec, cfg) -> None:
    """Raise Refused where the implementation refuses the run (the jacobian mode, over the
    memory budget: --memory-budget, or half the available memory)."""
    batch = min(cfg.batch_size, spec.train_samples or cfg.batch_size)
    budget = spec.memory_budget_mib or MEMORY_BUDGET_FRACTION * environment.available_mib()
    reason = impl.refuses(cfg, spec.dtype, batch, budget)
    if reason:
        raise Refused(reason)


IDENTITY_STEPS = 20
# How far a step of the same network may be from scratch's, relative: its loss, and its
# update of the weights (the norm of the difference against the norm of scratch's update,
# every layer as one vector). float32 rounding alone, measured on the three tasks, every
# peer and 8 seeds: at most 7e-3 (XLA, mnist/blog: a ReLU unit at its kink flips);
# Keras' default softmax form, and the jacobian mode in float32, on mnist/blog: 0.7 or
# more. float64 allows for Keras on PyTorch, whose float64 products are float32's
# (tests/test_peers.py): 1e-5 at most.
IDENTITY_RTOL = {"float32": 5e-2, "float64": 1e-4}


def identity(impl, cfg, dtype: str, seed: int, initial: list[np.ndarray], x, y) -> dict:
    """The identity check, run before the timer: IDENTITY_STEPS of ``impl``'s own training
    step on the run's first batches (epoch 0's order), each from the weights scratch's
    network has at that step, against scratch's step. Each step starts from scratch's
    weights, so rounding cannot grow into chaos (on mnist/blog's saturated start it moves
    float32 losses by 20% within 20 free steps), while a different loss, gradient or update
    shows at its step. Beyond IDENTITY_RTOL the row's status is ``differs``. Not checked
    where dropout draws each framework's own masks."""
    if cfg.arch.dropout:
        return {"identity_steps": 0, "identity_rel_diff": None}
    cap = impl.identity_samples
    batch = min(cfg.batch_size, len(x), cap // 2 if cap else len(x))
    steps = min(IDENTITY_STEPS, cap // batch) if cap else IDENTITY_STEPS
    order = epoch_order(len(x), 0, seed) if cfg.shuffle else np.arange(len(x))
    reference = scratch_model(cfg, dtype, seed)
    reference.set_weights(initial)
    model = impl.build(cfg, [w.copy() for w in initial], dtype, seed)
    worst, tolerance = 0.0, IDENTITY_RTOL[dtype]
    for k in range(steps):
        b = order[(k * batch) % len(x):][:batch]
        before = reference.get_weights()
        impl.set_weights(model, before)
        got, want = impl.train_step(model, x[b], y[b]), reference.train_step(x[b], y[b])
        after = reference.get_weights()
        # An update of about nothing (a zero gradient) is measured against rounding's scale
        moved = max(norm(a - w for a, w in zip(after, before)),
                    float(np.finfo(dtype).eps) * norm(before))
        off = norm(g - a for g, a in zip(impl.get_weights(model), after, strict=True))
        loss_off = 0.0 if got == want else abs(got - want) / max(abs(want), 1e-12)
        diff = max(loss_off, off / moved)
        worst = max(worst, diff) if diff == diff else float("nan")
        if not diff <= tolerance:  # NaN differs too
            return {"identity_steps": k + 1, "identity_rel_diff": worst, "status": "differs",
                    "error": f"not the network scratch trains: at step {k} its loss is "
                             f"{got:.6g} against scratch's {want:.6g}, and its loss or update "
                             f"is {diff:.3g} off (tolerance {tolerance:g})"}
    return {"identity_steps": steps, "identity_rel_diff": worst}


def norm(arrays) -> float:
    """The Euclidean norm of several arrays taken as one vector (every layer's weights)."""
    return math.sqrt(sum(float(np.sum(np.square(a, dtype=np.float64))) for a in arrays))


def reset_peak_rss() -> float:
    """Reset the kernel's high-water mark to the current RSS (Linux); return the RSS."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass  # then VmHWM still counts earlier peaks, and the figure is an upper bound
    return environment.rss_mib()


def progress(done: int, total: int) -> None:
    print(f"{PROGRESS} {done} {total}", flush=True)


@dataclass
class Prepared:
    """A run up to its training: checked against scratch, built and warmed up."""

    experiment: Experiment
    spec: RunSpec
    cfg: object
    impl: object
    data: object
    initial: list[np.ndarray]
    same: dict      # the identity check's columns
    model: object
    warmup_s: float

    def target(self, predict) -> bool:  # a configuration without a target has none to reach
        cfg, data = self.cfg, self.data
        return bool(cfg.target) and target_reached(cfg, data.y_test, predict(data.x_test))

    def between(self):
        """The experiment's work between epochs (the matmul limit), or None."""
        e = self.experiment
        return e.between_epochs and e.between_epochs(self.spec, self.cfg, self.data, self.initial)


def prepare(experiment: Experiment, spec: RunSpec, epochs: int | None = None,
            parts: int = 1) -> Prepared:
    """``spec``'s run up to its training, compiled and calibrated for calls of ``epochs``
    epochs (default: the run's, in one go), each of a part of an epoch (of ``parts``:
    each length they come in)."""
    cfg = experiment.configure(spec)
    epochs = epochs or spec.epochs
    impl = IMPLEMENTATIONS[spec.impl]
    check_refused(impl, spec, cfg)
    impl.activate()
    data = experiment.load(spec, cfg)
    initial = scratch_model(cfg, spec.dtype, spec.seed).get_weights()
    same = identity(impl, cfg, spec.dtype, spec.seed, initial, data.x, data.y)
    model = impl.build(cfg, initial, spec.dtype, spec.seed)
    if PROFILES[spec.profile].times_say_nothing:  # no calibration: its times say nothing
        impl.untimed(cfg, data.x, epochs)
    started = time.perf_counter()
    bounds = (epoch_part(len(data.x), cfg.batch_size, p, parts) for p in range(parts))
    for lo, hi in {hi - lo: (lo, hi) for lo, hi in bounds}.values():
        impl.warm_up(model, data.x[lo:hi], data.y[lo:hi], cfg, epochs)
    return Prepared(experiment, spec, cfg, impl, data, initial, same, model,
                    time.perf_counter() - started)


def execute(experiment: Experiment, spec: RunSpec) -> dict:
    run = prepare(experiment, spec)
    cfg, impl, model, data, epochs = run.cfg, run.impl, run.model, run.data, spec.epochs
    monitor = Monitor(spec.budget_s, run.target, epochs, check_interval(epochs), progress,
                      stop_at_target=spec.stop_at_target, between_epochs=run.between())
    before = reset_peak_rss()
    impl.train(model, data.x, data.y, cfg, epochs, spec.seed, monitor)
    peak = environment.rss_mib(field="VmHWM") - before
    timed = times(monitor, data, epochs, min(cfg.batch_size, len(data.x)))
    trained = Trained(spec, cfg, impl, model, data, monitor, run.initial)
    return assemble(experiment, trained, run.same, timed, run.warmup_s,
                    json.dumps(impl.settings(model)), peak, monitor.time_to_target)


def assemble(experiment: Experiment, trained: Trained, same: dict, timed: dict, warmup_s: float,
             settings: str, peak_mib: float, time_to_target_s: float | None, **more) -> dict:
    """A run's row from what it measured, and the experiment's own columns. Its final loss
    is that of its final weights on the training set, computed one way for every
    implementation (outside the timer): Keras' own logs average over the epoch."""
    data, monitor = trained.data, trained.monitor
    final_loss = trained.scratch_twin().evaluate(data.x, data.y, batch_size=10_000)
    return unfinished(monitor, trained.spec.epochs, data, {
        **diverged(final_loss),
        **same,  # another network, whatever else it did
        "dataset": data.name,
        "train_samples": len(data.x),
        **timed,
        "time_to_target_s": time_to_target_s,
        "warmup_s": warmup_s,
        "settings": settings,
        "final_loss": final_loss,
        "peak_rss_mib": peak_mib,
        "curve": monitor.curve if experiment.curves else None,
        **more,
        **experiment.measure(trained),
    })


def unfinished(monitor: Monitor, epochs: int, data, row: dict) -> dict:
    """A run that did not train the configuration in full (the time budget stopped it
    before its last epoch, or it trained on a prefix of the data) keeps its scores only as
    measured_* columns: they are no result of the configuration."""
    stopped = monitor.over_budget and row["measured_epochs"] < epochs - 1e-9  # mid-epoch too
    full = not stopped and len(data.x) >= data.n_full
    row["trained_in_full"] = full
    for column in () if full else PREFIX_SCORES:
        if column in row:
            row[f"measured_{column}"] = row.pop(column)
    return row


def times(monitor: Monitor, data, epochs: int, batch: int, share: int = 1) -> dict:
    """The time columns of a run just trained; with ``share`` S, a seed's 1/S of a group's.
    Stopped by the budget, or trained on a subset: the full run's times are extrapolated
    from the time per sample. (A run that stopped at its target is not extrapolated.)"""
    measured = monitor.elapsed()
    samples_done = monitor.steps_done * batch
    extrapolated = monitor.over_budget or len(data.x) < data.n_full
    per_sample = measured / max(samples_done, 1)
    steps = 1e3 * statistics.median(monitor.step_times) / share if monitor.step_times else None
    return {
        "train_time_s": (per_sample * data.n_full * epochs if extrapolated else measured) / share,
        "epoch_time_s": (per_sample * data.n_full if extrapolated
                         else statistics.median(monitor.epoch_times)) / share,
        "step_time_ms": steps,
        "measured_train_time_s": measured / share,
        "measured_epochs": samples_done / len(data.x),
        "extrapolated": extrapolated,
    }


def diverged(final_loss: float) -> dict:
    """A run whose last step left non-finite weights diverged, though it kept its times."""
    if math.isfinite(final_loss):
        return {}
    return {"status": "diverged",
            "error": f"The final weights give a training loss of {final_loss}. Lower the "
                     "learning rate, or train in float64."}


def die_with_parent() -> None:
    """Have the kernel kill this worker when the runner dies, however it dies, kill -9
    included (Linux's PR_SET_PDEATHSIG); and exit now if it died before this took effect."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):  # not Linux: the runner's own handlers still kill it
        pass
    parent = os.environ.get(PARENT)
    if parent and os.getppid() != int(parent):
        sys.exit(1)


def seed_batchable(experiment: Experiment, specs: list[RunSpec]) -> bool:
    """Whether ``specs`` train at once as one seed-batched network: an accuracy-only
    experiment's runs of an implementation with a seed-batched trainer that differ in their
    seed alone, unshuffled and without dropout."""
    if (experiment.timed or len(specs) < 2
            or IMPLEMENTATIONS[specs[0].impl].seed_batched is None):
        return False
    first = asdict(replace(specs[0], seed=0))
    cfg = experiment.configure(specs[0])
    return (all(asdict(replace(s, seed=0)) == first for s in specs)
            and not cfg.shuffle and not cfg.arch.dropout)


class _SeedView:
    """Seed i of a group, as a model: what ``Implementation.predict`` and ``get_weights``
    call, answered by the group (its predictions computed once for all seeds, in
    ``cache``)."""

    def __init__(self, seeds, i: int, cache: dict):
        self.seeds, self.i, self.cache = seeds, i, cache

    def predict(self, x) -> np.ndarray:
        if id(x) not in self.cache:
            self.cache.clear()
            self.cache[id(x)] = (x, self.seeds.predict(x))  # x kept: its id stays its own
        return self.cache[id(x)][1][self.i]

    def get_weights(self) -> list[np.ndarray]:
        return self.seeds.seed_weights(self.i)


def execute_seeds(experiment: Experiment, specs: list[RunSpec]) -> list[dict]:
    """Train ``specs`` (seed_batchable) at once, about check_interval epochs a call; one
    row per seed, each measured as ``execute`` measures a run alone. Each seed's loss and target
    are checked between calls, outside the training time. A row's times are its share
    (1/S) of the group's, and its settings say so; its peak memory is the group's."""
    spec = specs[0]
    cfg = experiment.configure(spec)
    impl = IMPLEMENTATIONS[spec.impl]
    check_refused(impl, spec, cfg)
    data = experiment.load(spec, cfg)
    x, y, epochs, n = data.x, data.y, spec.epochs, len(specs)
    chunk = largest_divisor(epochs, check_interval(epochs))  # whole calls, each a check
    seeds = impl.seed_batched(impl, cfg, [s.seed for s in specs], spec.dtype, x, y, chunk)
    # A seed stopped at its target leaves the group where the trainer can retire it (a
    # compiled group trains to the end), and the rest train on with fewer seeds.
    at_target = spec.stop_at_target and seeds.retires
    initial = [seeds.seed_weights(i) for i in range(n)]
    # The implementation's own step on the group's first seed (tests/test_seeds.py proves
    # each seed of a stack the network it would be alone)
    same = identity(impl, cfg, spec.dtype, spec.seed, initial[0], x, y)
    started = time.perf_counter()
    seeds.warm_up()
    warmup_s = time.perf_counter() - started
    monitor = Monitor(spec.budget_s, lambda predict: False, epochs, chunk, progress)
    batch = min(cfg.batch_size, len(x))
    steps = -(-len(x) // batch) * chunk
    curves: list[list] = [[] for _ in specs]
    reached: list[tuple] = [(None, None)] * n  # (training time, epochs) at the target
    before = reset_peak_rss()
    monitor.start()
    for _ in range(0, epochs, chunk):
        losses = seeds.train(chunk)
        monitor.batch_end(steps)
        finite = losses[np.isfinite(losses)]
        stop = monitor.epoch_end(float(finite.mean()) if len(finite) else float("nan"), None,
                                 chunk)
        with monitor.paused():  # every call ends at a check: each seed's loss and target
            trained = monitor.elapsed()
            predictions = seeds.predict(data.x_test)
            for i, loss, prediction in zip(seeds.active, losses, predictions, strict=True):
                curves[i].append((monitor.epochs_done, float(loss)))
                if reached[i][0] is None and target_reached(cfg, data.y_test, prediction):
                    reached[i] = (trained, monitor.epochs_done)
            if at_target:
                seeds.retire({i for i in seeds.active if reached[i][0] is not None})
        if stop or not seeds.active:
            break
    seeds.finish()
    peak = environment.rss_mib(field="VmHWM") - before
    timed = times(monitor, data, epochs, batch, share=n)
    settings = json.dumps({"seed_batched": n, "group_train_time_s":
                           round(timed["measured_train_time_s"] * n, 4),
                           **({"stopped_at_target": True} if at_target else {})})
    rows, context = [], environment.run_context()
    cache: dict = {}
    for i, spec in enumerate(specs):
        monitor.curve = curves[i]
        monitor.time_to_target, monitor.epochs_to_target = reached[i]
        trained = Trained(spec, cfg, impl, _SeedView(seeds, i, cache), data, monitor,
                          initial[i])
        rows.append({"status": "ok", "error": "", **implementation_columns(spec.impl),
                     **assemble(experiment, trained, same, timed, warmup_s / n, settings, peak,
                                None if reached[i][0] is None else reached[i][0] / n,
                                **({"measured_epochs": reached[i][1]}
                                   if at_target and reached[i][1] else {})),
                     **context})
    return rows


READY, UNIT = "@@ready", "@@unit"  # a served run's replies to the runner


class Served:
    """A run trained in interleaved rounds (``interleaved.run_rounds``): one unit at a time, at
    the runner's command, each timed alone. A unit is the next part of an epoch (the
    experiment's ``parts`` of it; by default the whole), in the epoch's own order
    (reordered here, outside the timer) and trained by the implementation's own loop, or
    the experiment's work between epochs (the matmul limit, the peak GEMM). A unit's time
    is its steps' own (``Monitor.steps_time``: no framework's per-call setup). The target
    is checked after each epoch, untimed; the time to it is the sum of the units up to it."""

    def __init__(self, run: Prepared):
        self.run, self.limit = run, run.between()
        experiment = run.experiment
        self.parts = experiment.parts(run.spec) if experiment.parts else 1
        self.monitor = Monitor(math.inf, run.target, run.spec.epochs)  # the run's record
        self.monitor.between_epochs = self.limit
        self.units: list[float] = []
        self.ordered: tuple = (None, None, None)  # (epoch, x, y) in its order
        self.before = reset_peak_rss()

    def epoch(self) -> str:
        """The next unit: part p of epoch e."""
        run, monitor = self.run, self.monitor
        e, p = divmod(len(self.units), self.parts)
        unit, seconds = self.unit(e, p)
        self.units.append(seconds)
        monitor.step_times.extend(unit.step_times)
        monitor.steps_done += unit.steps_done
        if p == self.parts - 1:  # the epoch ends: its loss, and the target checked
            monitor.epoch_times.append(sum(self.units[-self.parts:]))
            monitor.epochs_done = e + 1
            monitor.curve.append((e + 1, unit.curve[-1][1]))
            if monitor.time_to_target is None and run.target(
                    lambda inputs: run.impl.predict(run.model, inputs)):
                monitor.time_to_target, monitor.epochs_to_target = sum(self.units), e + 1
        return f"{seconds!r}" + (" target" if monitor.time_to_target is not None else "")

    def unit(self, e: int, p: int) -> tuple[Monitor, float]:
        """Train part ``p`` of epoch ``e`` (in its order): its Monitor, and its time."""
        run = self.run
        if self.ordered[0] != e:
            x, y = run.data.x, run.data.y
            if run.cfg.shuffle:
                order = epoch_order(len(x), e, run.spec.seed)
                x, y = x[order], y[order]
            self.ordered = (e, x, y)
        _, x, y = self.ordered
        lo, hi = epoch_part(len(x), run.cfg.batch_size, p, self.parts)
        unit = Monitor(math.inf, lambda predict: False, 1)
        run.impl.train(run.model, x[lo:hi], y[lo:hi], replace(run.cfg, shuffle=False), 1,
                       run.spec.seed, unit)
        return unit, unit.steps_time()

    def warm(self) -> str:
        """A unit whose time is discarded (a warm round): epoch 0's first part again."""
        return f"{self.unit(0, 0)[1]!r}"

    def between(self) -> str:
        self.limit()
        return f"{self.limit.times[-1]!r}"

    def finish(self, group: str, rounds: int) -> dict:
        """The row, of the ``rounds`` whole rounds the group trained (a unit of a round that
        a failure cut short is left out). Its epoch time is the rounds' median unit times the
        parts of an epoch; the configuration's epochs (cfg.epochs) scale the training time."""
        run, monitor, spec, cfg = self.run, self.monitor, self.run.spec, self.run.cfg
        del self.units[rounds:]
        epochs = rounds // self.parts  # whole epochs
        del monitor.epoch_times[epochs:], monitor.curve[epochs:]
        if self.limit:
            del self.limit.times[rounds:]
        if (monitor.epochs_to_target or 0) > epochs:
            monitor.time_to_target = monitor.epochs_to_target = None
        data = run.data
        peak = environment.rss_mib(field="VmHWM") - self.before
        scale = data.n_full / len(data.x)  # a prefix of the data: the full epoch, per sample
        epoch = statistics.median(self.units) * self.parts
        steps = -(-len(data.x) // min(cfg.batch_size, len(data.x)))
        reached = spec.stop_at_target and monitor.time_to_target is not None
        n = rounds / self.parts
        monitor.over_budget = n < cfg.epochs and not reached  # ended before the configuration
        timed = {"train_time_s": epoch * scale * cfg.epochs, "epoch_time_s": epoch * scale,
                 "step_time_ms": 1e3 * epoch / steps, "measured_train_time_s": sum(self.units),
                 "measured_epochs": n,
                 "extrapolated": scale != 1 or (n < cfg.epochs and not reached)}
        rounds_s = {"group": group, "epoch": self.units,
                    **({"parts": self.parts} if self.parts > 1 else {}),
                    **({"limit": self.limit.times} if self.limit and self.limit.times else {}),
                    **({"target_epoch": monitor.epochs_to_target}
                       if monitor.epochs_to_target else {})}
        trained = Trained(spec, run.cfg, run.impl, run.model, data, monitor, run.initial)
        return assemble(run.experiment, trained, run.same, timed, run.warmup_s,
                        json.dumps(run.impl.settings(run.model)), peak, monitor.time_to_target,
                        round_times_s=json.dumps(rounds_s))


def serve(experiments: dict[str, Experiment], specs_path: str, results_dir: str) -> int:
    """The worker of runs in interleaved rounds, the specs listed in ``specs_path`` one
    after another (a scaling implementation's cells): for each, ``@@ready`` once it is
    prepared (with `` limit`` where it has the experiment's work between epochs), then one
    line a command read from stdin: ``epoch`` and ``limit`` run a unit and reply ``@@unit
    SECONDS`` (with `` target`` once the target is reached); ``end GROUP ROUNDS`` writes
    spec k's row, of the group's ROUNDS whole rounds, to ``results_dir``/result-k.json,
    and goes on to the next. A run that fails writes its row and ends the process."""
    die_with_parent()
    specs = [RunSpec(**fields) for fields in json.loads(Path(specs_path).read_text())]
    for k, spec in enumerate(specs):
        row = guarded(spec, lambda s=spec: _serve(experiments[s.experiment], s))
        write_row(Path(results_dir) / f"result-{k}.json", row)
        if row["status"] != "ok":
            break
    return 0


def _serve(experiment: Experiment, spec: RunSpec) -> dict:
    parts = experiment.parts(spec) if experiment.parts else 1
    served = Served(prepare(experiment, spec, epochs=1, parts=parts))  # a unit a call
    print(READY + (" limit" if served.limit else ""), flush=True)
    for line in sys.stdin:
        command, *rest = line.split()
        if command == "end":
            return served.finish(rest[0], int(rest[1]))
        reply = {"epoch": served.epoch, "warm": served.warm, "limit": served.between}[command]
        print(f"{UNIT} {reply()}", flush=True)
    raise RuntimeError("the runner closed the rounds without ending them")


def write_row(path: Path, row: dict) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(row))
    os.replace(tmp, path)


def main(experiments: dict[str, Experiment], specs_path: str, results_dir: str) -> int:
    """Run the specs listed in ``specs_path``, each with its experiment from
    ``experiments``: one after another, or as one seed-batched network where
    ``seed_batchable``. Spec i's row goes to ``results_dir``/result-i.json as it ends."""
    die_with_parent()
    specs = [RunSpec(**fields) for fields in json.loads(Path(specs_path).read_text())]
    experiment = experiments[specs[0].experiment]
    if seed_batchable(experiment, specs):
        rows = iter(guarded(specs[0], lambda: execute_seeds(experiment, specs), many=len(specs)))
    else:
        rows = (guarded(spec, lambda s=spec: execute(experiments[s.experiment], s))
                for spec in specs)
    for i, row in enumerate(rows):
        write_row(Path(results_dir) / f"result-{i}.json", row)
    return 0


def failure(experiment: Experiment, spec: RunSpec, status: str, error: str) -> dict:
    """The row of a run whose worker did not write one (killed, timed out, crashed)."""
    return {**experiment.base_row(spec), "status": status, "error": error,
            **implementation_columns(spec.impl), **environment.context(),
            "timestamp": environment.utc_now()}


def guarded(spec: RunSpec, work, many: int = 0):
    """``work()``'s row (or rows, ``many`` of them); where it raises, the status and error
    of what went wrong, for every row it would have made."""
    row = {"status": "ok", "error": "", **implementation_columns(spec.impl)}
    try:
        result = work()
        if many:
            return result
        row.update(result)
    except Refused as err:
        row.update(status="refused", error=str(err))
    except FloatingPointError as err:
        row.update(status="diverged", error=str(err))
    except MemoryError as err:
        row.update(status="oom", error=f"MemoryError: {err}")
    except Exception as err:  # any failure becomes a row; the suite goes on
        last = traceback.format_exc().strip().splitlines()[-1]
        row.update(status="error", error=f"{type(err).__name__}: {err}"[:500] or last)
    row.update(environment.run_context())
    return [row] * many if many else row
