"""``groundup bench-seeds``: XOR 2-2-1 trained for many seeds at once, scratch against JAX.

Scratch's ``SeedBatchedMLP`` (one set of NumPy calls a step for every seed) against
native JAX's compiled training loop under ``jax.vmap``, on the same stacked initial
weights and the same full batch, at each seed count; and scratch's ``MLP`` one seed at
a time for scale. Each side is timed on its own, compilation excluded (JAX compiles
before its clock starts), the median of ``REPEATS``. The figure is microseconds per
seed-step (one SGD step of one seed); the target is scratch <= 1.0 x JAX.
"""

from __future__ import annotations

import statistics
import time

import numpy as np
from rich.console import Console
from rich.table import Table

from benchmarks.data.tasks import get_config, load_task
from benchmarks.implementations import IMPLEMENTATIONS
from scratch import MLP
from scratch.seeds import SeedBatchedMLP

SEED_COUNTS = (20, 1000)
REPEATS = 3
MIN_SECONDS = 0.5  # each timed call trains at least about this long


def _median_seconds(run, repeats: int = REPEATS) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _epochs_for(run_epochs) -> int:
    """Epochs a timed call needs to last MIN_SECONDS, from a short probe of 100."""
    probe = max(_median_seconds(lambda: run_epochs(100), 1), 1e-6)
    return max(100, int(100 * MIN_SECONDS / probe) // 100 * 100)


def measure(seeds: int, cfg, data) -> dict:
    arch = cfg.arch
    stack = SeedBatchedMLP(arch.sizes, arch.activations, arch.loss, cfg.optimizer,
                           seeds=range(seeds), dtype="float32")
    initial = [p.copy() for p in stack.params]
    x, y = data.x, data.y
    epochs = _epochs_for(lambda e: stack.fit(x, y, epochs=e))
    scratch_s = _median_seconds(lambda: stack.fit(x, y, epochs=epochs))
    row = {"seeds": seeds, "scratch_epochs": epochs,
           "scratch_us": 1e6 * scratch_s / (epochs * seeds)}
    jax_impl = IMPLEMENTATIONS["jax"]
    if jax_impl.missing():
        return row
    import jax

    model = jax_impl.build(cfg, stack.seed_weights(0), "float32", 0)
    batches, rest = jax_impl.device_batches(model, x, y, cfg)
    params = [jax.numpy.asarray(p.reshape(seeds, *w.shape))
              for p, w in zip(initial, stack.seed_weights(0), strict=True)]
    keys = jax.vmap(jax.random.PRNGKey)(jax.numpy.arange(seeds))

    def jax_epochs(e: int):
        if e not in compiled:
            compiled[e] = model.seeds_runner(e)
        init, run = compiled[e]
        return jax.block_until_ready(run(params, init(params), keys, batches, rest))

    compiled: dict = {}
    jax_epochs(100)  # compiles: untimed
    epochs = _epochs_for(jax_epochs)
    jax_epochs(epochs)  # compiles for the timed epochs
    jax_s = _median_seconds(lambda: jax_epochs(epochs))
    # The same stacked start, the same batches: the two sides must agree.
    trained = jax_epochs(100)[0]
    check = SeedBatchedMLP(arch.sizes, arch.activations, arch.loss, cfg.optimizer,
                           seeds=range(seeds), dtype="float32")
    check.fit(x, y, epochs=100)
    diff = max(float(np.abs(np.asarray(t).reshape(p.shape) - p).max())
               for t, p in zip(trained, check.params, strict=True))
    return {**row, "jax_epochs": epochs, "jax_us": 1e6 * jax_s / (epochs * seeds),
            "max_abs_diff": diff}


def main() -> int:
    cfg = get_config("xor")
    data = load_task(cfg, "float32")
    console = Console()
    single = MLP(cfg.arch.sizes, cfg.arch.activations, cfg.arch.loss, cfg.optimizer)
    steps = 20_000
    one = _median_seconds(lambda: single.fit(data.x, data.y, epochs=steps, batch_size=None,
                                             shuffle=False))
    table = Table("seeds", "scratch MLP, one seed at a time", "scratch SeedBatchedMLP",
                  "JAX vmap", "scratch / JAX", "target", "weights after 100 epochs, max diff",
                  title="XOR 2-2-1, SGD 0.01, full batch, float32: microseconds per seed-step")
    for seeds in SEED_COUNTS:
        row = measure(seeds, cfg, data)
        ratio = row["scratch_us"] / row["jax_us"] if "jax_us" in row else None
        table.add_row(str(seeds), f"{1e6 * one / steps:.3g}", f"{row['scratch_us']:.3g}",
                      f"{row['jax_us']:.3g}" if ratio else "JAX not installed",
                      f"{ratio:.2f}x" if ratio else "",
                      "" if ratio is None else ("met" if ratio <= 1.0 else "missed"),
                      f"{row['max_abs_diff']:.1e}" if ratio else "")
    console.print(table)
    return 0
