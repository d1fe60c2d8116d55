"""Runs in a fresh process: ``python -m benchmarks.experiments SPECS.json RESULTS_DIR``.

It trains each listed (experiment, task, config, impl, seed) in turn (one, unless the
experiment is accuracy-only), measures it, and writes its result row as JSON. Progress
goes to stdout as ``@@progress DONE TOTAL`` lines.
"""

from __future__ import annotations

import ctypes
import json
import math
import os
import re
import signal
import statistics
import sys
import time
import traceback
from pathlib import Path

from benchmarks.data.tasks import target_reached
from benchmarks.harness import environment
from benchmarks.harness.experiment import Experiment
from benchmarks.harness.specs import RunSpec
from benchmarks.implementations import (
    IMPLEMENTATIONS,
    Monitor,
    Trained,
    implementation_columns,
    scratch_model,
)
from benchmarks.implementations.timer import check_interval

PROGRESS = "@@progress"
PARENT = "GROUNDUP_PARENT_PID"  # the runner's PID, so that the worker dies with it
PR_SET_PDEATHSIG = 1
JACOBIAN_BUDGET_FRACTION = 0.5  # of the available memory, unless --memory-budget says


class Refused(Exception):
    """A run the jacobian guard will not start; the message says why and what to do."""


def check_jacobian_memory(spec: RunSpec, cfg) -> None:
    """Refuse a jacobian-mode run whose predicted peak exceeds the memory budget."""
    if spec.impl != "scratch-jacobian":
        return
    from scratch.cost import backprop_cost

    cost = backprop_cost(cfg.arch.sizes, spec.dtype)
    batch = min(cfg.batch_size, spec.train_samples or cfg.batch_size)
    need = (cost.model_bytes(optimizer_slots=2) + cost.jacobian_peak_bytes(batch)) / 2**20
    budget = spec.memory_budget_mib or JACOBIAN_BUDGET_FRACTION * environment.available_mib()
    if need > budget:
        dzdw = max((j for j in cost.jacobians if j.name == "dZ/dW"), key=lambda j: j.bytes)
        raise Refused(
            f"scratch-jacobian on {'-'.join(map(str, cost.sizes))} in {spec.dtype} would need "
            f"about {need:,.0f} MiB for one step (layer {dzdw.layer}'s dZ/dW alone is "
            f"{dzdw.shape[0]} x {dzdw.shape[1]}, {dzdw.bytes / 2**20:,.0f} MiB per sample), over "
            f"the memory budget of {budget:,.0f} MiB. Use a smaller hidden width, fewer samples "
            f"per step{', or float32 (half the bytes)' if spec.dtype == 'float64' else ''}; or "
            "raise --memory-budget.")


def rss_mib(field: str = "VmRSS") -> float:
    match = re.search(rf"{field}:\s+(\d+) kB", Path("/proc/self/status").read_text())
    return int(match.group(1)) / 1024 if match else float("nan")


def reset_peak_rss() -> float:
    """Reset the kernel's high-water mark to the current RSS (Linux); return the RSS."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass  # then VmHWM still counts earlier peaks, and the figure is an upper bound
    return rss_mib()


def progress(done: int, total: int) -> None:
    print(f"{PROGRESS} {done} {total}", flush=True)


def execute(experiment: Experiment, spec: RunSpec) -> dict:
    cfg = experiment.configure(spec)
    check_jacobian_memory(spec, cfg)
    impl = IMPLEMENTATIONS[spec.impl]
    impl.activate()
    data = experiment.load(spec, cfg)
    x, y, epochs = data.x, data.y, spec.epochs
    initial = scratch_model(cfg, spec.dtype, spec.seed).get_weights()
    model = impl.build(cfg, initial, spec.dtype, spec.seed)

    started = time.perf_counter()
    impl.warm_up(model, x, y, cfg, epochs)
    warmup_s = time.perf_counter() - started

    def target(predict) -> bool:
        return target_reached(cfg, data.y_test, predict(data.x_test))

    between = experiment.between_epochs and experiment.between_epochs(spec, cfg, data, initial)
    monitor = Monitor(spec.budget_s, target, epochs, check_interval(epochs), progress,
                      stop_at_target=spec.extra.get("stop_at_target", False),
                      between_epochs=between)
    before = reset_peak_rss()
    impl.train(model, x, y, cfg, epochs, spec.seed, monitor)
    peak = rss_mib("VmHWM") - before
    measured = monitor.elapsed()
    trained = Trained(spec, cfg, impl, model, data, monitor, initial)

    # The loss of the final weights on the training set, computed one way for every
    # implementation (outside the timer): Keras' own logs average over the epoch.
    final_loss = trained.scratch_twin().evaluate(x, y, batch_size=10_000)
    batch = min(cfg.batch_size, len(x))
    samples_done = monitor.steps_done * batch
    # Stopped by the budget, or trained on a subset: the full run's times are extrapolated
    # from the time per sample. (A run that stopped at its target is not extrapolated.)
    extrapolated = monitor.over_budget or len(x) < data.n_full
    per_sample = measured / max(samples_done, 1)
    return {
        **diverged(final_loss),
        "dataset": data.name,
        "train_samples": len(x),
        "train_time_s": per_sample * data.n_full * epochs if extrapolated else measured,
        "epoch_time_s": per_sample * data.n_full if extrapolated
        else statistics.median(monitor.epoch_times),
        "step_time_ms": 1e3 * statistics.median(monitor.step_times) if monitor.step_times else None,
        "time_to_target_s": monitor.time_to_target,
        "measured_train_time_s": measured,
        "measured_epochs": samples_done / len(x),
        "warmup_s": warmup_s,
        "settings": json.dumps(impl.settings(model)),
        "final_loss": final_loss,
        "peak_rss_mib": peak,
        "extrapolated": extrapolated,
        "curve": monitor.curve,
        **experiment.measure(trained),
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


def main(experiments: dict[str, Experiment], specs_path: str, results_dir: str) -> int:
    """Run the specs listed in ``specs_path`` one after another, each with its experiment
    from ``experiments``; spec i's row goes to ``results_dir``/result-i.json as it ends."""
    die_with_parent()
    for i, fields in enumerate(json.loads(Path(specs_path).read_text())):
        row = run(experiments, RunSpec(**fields))
        path = Path(results_dir) / f"result-{i}.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(row))
        os.replace(tmp, path)
    return 0


def run(experiments: dict[str, Experiment], spec: RunSpec) -> dict:
    """One spec's row: its measurements, or the status and error of what went wrong."""
    row = {"status": "ok", "error": "", **implementation_columns(spec.impl)}
    try:
        row.update(execute(experiments[spec.experiment], spec))
    except Refused as err:
        row.update(status="refused", error=str(err))
    except FloatingPointError as err:
        row.update(status="diverged", error=str(err))
    except MemoryError as err:
        row.update(status="oom", error=f"MemoryError: {err}")
    except Exception as err:  # any failure becomes a row; the suite goes on
        last = traceback.format_exc().strip().splitlines()[-1]
        row.update(status="error", error=f"{type(err).__name__}: {err}"[:500] or last)
    row.update(environment.context(), timestamp=environment.utc_now())
    return row
