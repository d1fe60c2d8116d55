"""One run in a fresh process: ``python -m benchmarks.worker SPEC.json RESULT.json``.

It trains one (experiment, task, config, impl, seed), measures it, and writes the
result row as JSON. Progress goes to stdout as ``@@progress DONE TOTAL`` lines.
"""

from __future__ import annotations

import json
import os
import re
import statistics
import sys
import time
import traceback
from pathlib import Path

from benchmarks import environment
from benchmarks.implementations import IMPLEMENTATIONS, Monitor, scratch_model
from benchmarks.tasks import get_config, load_task, score, target_reached

PROGRESS = "@@progress"


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


def execute(spec: dict) -> dict:
    cfg = get_config(spec["task"], spec["config"])
    impl = IMPLEMENTATIONS[spec["impl"]]
    dtype, seed, epochs = spec["dtype"], spec["seed"], spec["epochs"]
    data = load_task(cfg, dtype, spec.get("train_samples"), spec.get("data_dir"))
    x, y = data.x, data.y
    initial = scratch_model(cfg, dtype, seed).get_weights()
    model = impl.build(cfg, initial, dtype, seed)

    started = time.perf_counter()
    impl.warm_up(model, x, y, cfg, epochs)
    warmup_s = time.perf_counter() - started

    def target(predict) -> bool:
        return target_reached(cfg.task, data.y_test, predict(data.x_test))

    check_every = max(1, epochs // 200)
    monitor = Monitor(spec["budget_s"], target, epochs, check_every, progress)
    before = reset_peak_rss()
    impl.train(model, x, y, cfg, epochs, seed, monitor)
    peak = rss_mib("VmHWM") - before
    measured = monitor.elapsed()

    impl.predict(model, data.x_test)
    predict_times = []
    for _ in range(3):
        t = time.perf_counter()
        predictions = impl.predict(model, data.x_test)
        predict_times.append(time.perf_counter() - t)

    # The loss of the final weights on the training set, computed one way for every
    # implementation (outside the timer): Keras' own logs average over the epoch.
    final = scratch_model(cfg, dtype, seed)
    final.set_weights(impl.get_weights(model))
    final_loss = final.evaluate(x, y, batch_size=10_000)

    batch = min(cfg.batch_size, len(x))
    samples_done = monitor.steps_done * batch
    extrapolated = samples_done < data.n_full * epochs
    per_sample = measured / max(samples_done, 1)
    scores = score(cfg.task, data.y_test, predictions)
    return {
        "dataset": data.name,
        "train_samples": len(x),
        "train_time_s": per_sample * data.n_full * epochs if extrapolated else measured,
        "epoch_time_s": per_sample * data.n_full if extrapolated else measured / epochs,
        "step_time_ms": 1e3 * statistics.median(monitor.step_times) if monitor.step_times else None,
        "predict_time_s": statistics.median(predict_times),
        "time_to_target_s": monitor.time_to_target,
        "measured_train_time_s": measured,
        "measured_epochs": samples_done / len(x),
        "warmup_s": warmup_s,
        "final_loss": final_loss,
        **{k: v for k, v in scores.items() if k != "confusion"},
        "peak_rss_mib": peak,
        "traced_peak_mib": impl.traced_peak_mib(model, x[:batch], y[:batch]),
        "extrapolated": extrapolated,
        "curve": monitor.curve,
        "confusion": scores["confusion"].tolist() if "confusion" in scores else None,
    }


def main(spec_path: str, result_path: str) -> int:
    spec = json.loads(Path(spec_path).read_text())
    row = {"status": "ok", "error": ""}
    try:
        row.update(execute(spec))
    except FloatingPointError as err:
        row.update(status="diverged", error=str(err))
    except MemoryError as err:
        row.update(status="oom", error=f"MemoryError: {err}")
    except Exception as err:  # any failure becomes a row; the suite goes on
        last = traceback.format_exc().strip().splitlines()[-1]
        row.update(status="error", error=f"{type(err).__name__}: {err}"[:500] or last)
    row.update(environment.context(), timestamp=environment.utc_now())
    tmp = Path(f"{result_path}.tmp")
    tmp.write_text(json.dumps(row))
    os.replace(tmp, result_path)
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
