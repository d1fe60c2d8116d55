"""compare: every implementation on every task, side by side."""

from __future__ import annotations

import csv
import statistics
import time
from pathlib import Path

from benchmarks.data.tasks import CONFIGS, load_task, score
from benchmarks.harness import environment
from benchmarks.harness.specs import PROFILES, Profile, RunSpec, Selection
from benchmarks.implementations import IMPLEMENTATIONS, PEERS, SCRATCH, Trained

SMOKE_EPOCHS = {"xor": 50, "reverse4": 50, "mnist": 1}
SMOKE_MNIST_SAMPLES = 500
# The smoke profile runs each of compare's paths once: Keras fit in file order on mnist/blog,
# and Keras' calibrated fit (keras-tuned) on xor. The other backends' plain and calibrated
# fit train in tests/test_peers.py (their calibration in tests/test_bench_smoke.py too):
# a process for each here would import its framework again to repeat them.
SMOKE_SKIP = {("xor", "keras"), ("mnist", "keras-tuned")} | {
    (task, f"keras-{backend}{variant}") for task in ("xor", "mnist")
    for backend in ("jax", "torch") for variant in ("", "-tuned")}
# The full profile's seeds for scratch's shortcut; every framework, and the jacobian mode,
# runs seed 0 alone. tests/test_peers.py, test_keras_twins.py and test_backprop.py prove
# each the same network and gradients as the shortcut's, so their other seeds would
# repeat its accuracies; their times need one seed, and 3 seeds each would take the full
# publish past its 90 minutes (the jacobian mode's MNIST seeds alone were 5 minutes).
# How often XOR converges is the xor-atlas's question (1000 seeds a setting), not this.
REFERENCE = ("scratch-shortcut",)
PEER_SEEDS = 1
# XOR's and reverse4's budget-limited runs (Keras fit per epoch, PyTorch per step) are
# extrapolated from this much training: thousands of steps, or hundreds of fit calls, for
# the per-step time (speed measures those steps in interleaved rounds). MNIST keeps the
# profile's budget, which lets most runs finish.
TINY_BUDGET_S = 10
# The quick profile's MNIST epoch trains in full, so that `make run` answers with accuracies:
# its slowest peers take 6-18 s an epoch here (Keras fit on TensorFlow and PyTorch).
QUICK_MNIST_BUDGET_S = 30
# The blog's U(-1, 1) weights saturate MNIST's softmax: in float32 an output underflows to
# 0, and the jacobian mode's -y/S chain loses the gradient there (its identity check says
# `differs` from step 0; tests/test_identity.py). In float64 the chain is the shortcut's
# maths to 1e-15, so compare runs that configuration's jacobian row in float64.
FLOAT64 = {("mnist/blog", "scratch-jacobian")}
TASKS = (*sorted({c.task for c in CONFIGS.values()}), *CONFIGS)
# Under the MNIST table on the Results page (docs/results.md).
MNIST_CAVEATS = (
    "scratch-jacobian trains on a small prefix of MNIST (a full epoch would take hours), "
    "and the time budget stops some runs: their time per epoch is extrapolated, and "
    "their accuracy, that of a prefix, is no result (the CSV keeps it as "
    "measured_accuracy). "
    "Calibrated settings: what a tuned run chose (keras-torch-tuned is not run on "
    "MNIST: on minibatches its calibration's one candidate is plain fit, which "
    "keras-torch's row measures).")
DIVERGED = ("Runs that diverged: their messages are in compare.md. (With the blog's U(-1, 1) "
            "weights in float32, the jacobian mode's dL/dS = -y/S overflows where a softmax "
            "output underflows to 0, which the fused shortcut never divides by.)")


# `make run` (the quick profile) answers the README's headline question on the user's own
# machine: MNIST at batch 32 (mnist/tf-tutorial, one epoch) for scratch and the peers that
# were fastest there in the published speed table (``fastest_published``).
QUICK_B32 = "mnist/tf-tutorial"
QUICK_B32_PEERS = 2
PUBLISHED_SPEED = environment.ROOT / "results" / "published" / "speed_runs.csv"


def fastest_published(config: str = "b32", count: int = QUICK_B32_PEERS,
                      path: Path = PUBLISHED_SPEED) -> list[str]:
    """The ``count`` framework peers (none from scratch) with the shortest median seconds
    per epoch at the speed experiment's ``config`` in the published runs; [] where none
    was published."""
    times: dict[str, list[float]] = {}
    try:
        with path.open(newline="") as f:
            for row in csv.DictReader(f):
                if row["config"] == config and row["status"] == "ok" and row["epoch_time_s"]:
                    times.setdefault(row["impl"], []).append(float(row["epoch_time_s"]))
    except (OSError, KeyError, ValueError):
        return []
    ranked = sorted((statistics.median(t), impl) for impl, t in times.items()
                    if impl in PEERS and not IMPLEMENTATIONS[impl].from_scratch)
    return [impl for _, impl in ranked[:count]]


def specs(profile: Profile, chosen: Selection) -> list[RunSpec]:
    runs, planned = [], set()
    impls = chosen.impls or PEERS
    for cfg in CONFIGS.values():
        first = next(c for c in CONFIGS.values() if c.task == cfg.task) is cfg
        chosen_cfg = cfg.key in chosen.tasks or (
            cfg.task in chosen.tasks and (profile.all_configs or first))
        headline = (not chosen_cfg and profile.name == "quick" and cfg.key == QUICK_B32
                    and cfg.task in chosen.tasks)
        if not chosen_cfg and not headline:
            continue
        cfg_impls = [i for i in impls if i in (SCRATCH, *fastest_published())] if headline \
            else impls  # the headline's rows, not every peer's
        overrides = cfg.quick if profile.name == "quick" else {}
        epochs = overrides.get("epochs", cfg.epochs)
        samples = overrides.get("train_samples")
        if profile.name == "smoke":
            epochs, samples = SMOKE_EPOCHS[cfg.task], SMOKE_MNIST_SAMPLES
        for impl in cfg_impls:
            if profile.name == "smoke" and (cfg.task, impl) in SMOKE_SKIP and not chosen.impls:
                continue
            n = samples
            if impl == "scratch-jacobian" and cfg.task == "mnist":
                n = profile.jacobian_mnist_samples
            if not chosen.impls:  # a tuned variant with only plain settings to try runs as its twin
                impl = IMPLEMENTATIONS[impl].runs_as(cfg, train_size(cfg, n))
            if (cfg.key, impl) in planned:
                continue
            planned.add((cfg.key, impl))
            seeds = chosen.seeds or (profile.seeds if impl in REFERENCE else PEER_SEEDS)
            budget = (max(profile.budget_s, QUICK_MNIST_BUDGET_S) if profile.name == "quick"
                      else profile.budget_s) if cfg.task == "mnist" else min(profile.budget_s,
                                                                              TINY_BUDGET_S)
            for seed in range(seeds):
                runs.append(RunSpec("compare", cfg.task, cfg.config, impl, seed, profile.name,
                                     epochs, budget, profile.timeout_s,
                                     train_samples=n if cfg.task == "mnist" else None,
                                     data_dir=chosen.data_dir,
                                     dtype="float64" if (cfg.key, impl) in FLOAT64
                                     else "float32"))
    return runs


def train_size(cfg, samples: int | None) -> int:
    """The samples a run trains on: XOR's 4 patterns, reverse4's 6, MNIST's prefix or its
    60000 images."""
    if cfg.task == "mnist":
        return samples or 60_000
    return len(load_task(cfg).x)


def measure(t: Trained) -> dict:
    """Inference time (the median of three calls after a warm-up; one call on the smoke
    profile, whose times say nothing), the task's metrics and NumPy's traced peak."""
    data, impl, model = t.data, t.impl, t.model
    once = PROFILES[t.spec.profile].times_say_nothing
    if not once:
        impl.predict(model, data.x_test)
    times = []
    for _ in range(1 if once else 3):
        start = time.perf_counter()
        predictions = impl.predict(model, data.x_test)
        times.append(time.perf_counter() - start)
    scores = score(t.cfg.task, data.y_test, predictions)
    batch = min(t.cfg.batch_size, len(data.x))
    confusion = scores.pop("confusion", None)
    return {"predict_time_s": statistics.median(times), **scores,
            "traced_peak_mib": impl.traced_peak_mib(model, data.x[:batch], data.y[:batch]),
            "confusion": confusion.tolist() if confusion is not None else None}
