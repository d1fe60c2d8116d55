"""Operation benchmarks with pytest-benchmark: `make bench` runs them.

One short test per (operation, task), parametrised over the implementations. Data
is built once per session, models in untimed setup; ``benchmark.extra_info``
records the configuration and a correctness check. Not collected by `make test`
(which runs tests/ only); tests/test_bench_smoke.py runs them once, untimed and
tiny, so they cannot rot. ``GROUNDUP_BENCH_TINY=1`` shrinks every size.
"""

from __future__ import annotations

import functools
import os

import numpy as np
import pytest

from benchmarks.data.tasks import get_config, load_task
from benchmarks.implementations import IMPLEMENTATIONS, scratch_model

TINY = os.environ.get("GROUNDUP_BENCH_TINY") == "1"
MNIST_SUBSET = 256 if TINY else 6000     # samples in the "one MNIST epoch" benchmark
MNIST_PREDICT = 256 if TINY else 10_000  # test images in the predict benchmark
# Keras has one backend a process (KERAS_BACKEND, TensorFlow by default), so the suite
# runs once per backend, each implementation in the one its ``process_backend`` names.
# Missing frameworks are left out.
KERAS_BACKEND = os.environ.get("KERAS_BACKEND", "tensorflow")
IMPLS = [name for name, impl in IMPLEMENTATIONS.items()
         if not impl.missing() and not impl.finding and impl.process_backend == KERAS_BACKEND]
# Tiny runs try every operation x implementation once: the batch operations on xor
# (reverse4's and MNIST's take the same paths), MNIST in its own predict and epoch.
TASKS = ["xor"] if TINY else ["xor", "reverse4", "mnist"]
SMALL_TASKS = [t for t in TASKS if t != "mnist"]


def skip_unless_run(impl: str, operation: str, task: str) -> None:
    """Skip where the implementation says this benchmark is not run, with its reason."""
    reason = IMPLEMENTATIONS[impl].bench_skip(operation, task)
    if reason:
        pytest.skip(reason)


@pytest.fixture(scope="session")
def tasks():
    """Each task's configuration and data, built once."""
    out = {}
    for name in {*TASKS, "mnist"}:
        cfg = get_config(name)
        data = load_task(cfg, "float32", MNIST_SUBSET if name == "mnist" else None)
        out[name] = (cfg, data)
    return out


def build(impl: str, cfg, data, epochs: int = 1):
    """The implementation's model from the seeded initial weights, warmed up (untimed)."""
    implementation = IMPLEMENTATIONS[impl]
    model = implementation.build(cfg, scratch_model(cfg, "float32", 0).get_weights(), "float32", 0)
    if TINY:  # tried, not timed: no calibration
        implementation.untimed(cfg, data.x, epochs)
    implementation.warm_up(model, data.x, data.y, cfg, epochs)
    return implementation, model


def reference_outputs(cfg, x):
    return scratch_model(cfg, "float32", 0).predict(x)


def record(benchmark, impl: str, cfg, operation: str, samples: int, **check) -> None:
    benchmark.extra_info.update({"impl": impl, "task": cfg.task, "config": cfg.config,
                                 "operation": operation, "samples": samples,
                                 "batch_size": cfg.batch_size, **check})


def loss_of(cfg, implementation, model, x, y) -> float:
    """The loss of the implementation's weights, computed by scratch for every one."""
    twin = scratch_model(cfg, "float32", 0)
    twin.set_weights(implementation.get_weights(model))
    return twin.evaluate(x, y)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("task", TASKS)
def test_forward(benchmark, tasks, task, impl):
    skip_unless_run(impl, "forward", task)
    cfg, data = tasks[task]
    x = data.x[: cfg.batch_size]
    benchmark.group = f"{task}: forward pass on a batch"
    implementation, model = build(impl, cfg, data)
    outputs = benchmark(implementation.predict, model, x)
    diff = float(np.abs(outputs - reference_outputs(cfg, x)).max())
    record(benchmark, impl, cfg, "forward pass on a batch", len(x),
           max_abs_diff_vs_scratch=diff, correct=diff < 1e-4)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("task", TASKS)
def test_train_step(benchmark, tasks, task, impl):
    skip_unless_run(impl, "step", task)
    cfg, data = tasks[task]
    x, y = data.x[: cfg.batch_size], data.y[: cfg.batch_size]
    benchmark.group = f"{task}: one training step"
    implementation, model = build(impl, cfg, data)
    step = implementation.bench_step(model)
    before = loss_of(cfg, implementation, model, x, y)
    benchmark(step, x, y)
    after = loss_of(cfg, implementation, model, x, y)
    record(benchmark, impl, cfg, "one training step", len(x), loss_before=before,
           loss_after=after, correct=after < before)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("task", SMALL_TASKS)
def test_epoch_small(benchmark, tasks, task, impl):
    """One epoch as each implementation runs it (``bench_epoch``): plain Keras' is one
    fit(epochs=1) call, the blog's way; a tuned one's is one compiled step (the epoch is
    one full batch)."""
    skip_unless_run(impl, "epoch", task)
    cfg, data = tasks[task]
    benchmark.group = f"{task}: one full epoch"
    implementation, model = build(impl, cfg, data)
    epoch = implementation.bench_epoch(model, data.x, data.y, cfg)
    before = loss_of(cfg, implementation, model, data.x, data.y)
    benchmark(epoch)
    after = loss_of(cfg, implementation, model, data.x, data.y)
    record(benchmark, impl, cfg, "one full epoch", len(data.x), loss_before=before,
           loss_after=after, correct=after < before)


@pytest.mark.parametrize("impl", IMPLS)
def test_mnist_predict(benchmark, tasks, impl):
    skip_unless_run(impl, "forward", "mnist")
    cfg, data = tasks["mnist"]
    x = data.x_test[:MNIST_PREDICT]
    benchmark.group = f"mnist: predict {len(x)} test images"
    implementation, model = build(impl, cfg, data)
    outputs = benchmark(implementation.predict, model, x)
    diff = float(np.abs(outputs - reference_outputs(cfg, x)).max())
    accuracy = float((outputs.argmax(axis=1) == data.y_test[:MNIST_PREDICT]).mean())
    record(benchmark, impl, cfg, f"predict {len(x)} test images", len(x),
           max_abs_diff_vs_scratch=diff, accuracy_untrained=accuracy, correct=diff < 1e-4)


@pytest.mark.parametrize("impl", IMPLS)
def test_mnist_epoch(benchmark, tasks, impl):
    """One epoch over a fixed subset, file order, the blog configuration's batches."""
    skip_unless_run(impl, "epoch", "mnist")
    cfg, data = tasks["mnist"]
    benchmark.group = f"mnist: one epoch of {len(data.x)} samples"
    implementation, model = build(impl, cfg, data)
    epoch = functools.partial(implementation.train_epoch, model, data.x, data.y, cfg)
    before = loss_of(cfg, implementation, model, data.x, data.y)
    benchmark.pedantic(epoch, rounds=1 if TINY else 3, iterations=1, warmup_rounds=0)
    after = loss_of(cfg, implementation, model, data.x, data.y)
    record(benchmark, impl, cfg, f"one epoch of {len(data.x)} samples", len(data.x),
           loss_before=before, loss_after=after, correct=after < before)
