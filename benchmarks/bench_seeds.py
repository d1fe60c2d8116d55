"""``groundup bench-seeds``: XOR 2-2-1 trained for many seeds at once: scratch's two
seed-batched networks against JAX.

Scratch's ``SeedBatchedMLP`` (one set of NumPy calls a step for every seed), the compiled
``CompiledSeedBatchedMLP`` (scratch-numba's: one compiled call, the seeds in the innermost
loop) and native JAX's compiled training loop under ``jax.vmap``, from the same stacked
initial weights on the same full batch, at each seed count. The three are timed in
interleaved rounds (benchmarks/harness/rounds.py): each round trains every side once, in a
fresh random order, from the same start; compilation is done before the first. The figure
is microseconds per seed-step (one SGD step of one seed), and each ratio to JAX is the
median of the rounds' ratios with its 95% interval; the target is at most 1.0x JAX.
"""

from __future__ import annotations

import time

import numpy as np
from rich.console import Console
from rich.table import Table

from benchmarks.data.tasks import get_config, load_task
from benchmarks.harness.rounds import Ratio, interleave
from benchmarks.implementations import IMPLEMENTATIONS
from scratch import MLP
from scratch.compiled import CompiledSeedBatchedMLP
from scratch.seeds import SeedBatchedMLP

SEED_COUNTS = (20, 1000)
UNIT_SECONDS = 0.2   # each side's unit of a round trains about this long
TIME_LIMIT_S = 30.0  # rounds for one seed count, once the fewest have run
TARGET = 1.0         # at most JAX's time per seed-step
CHECK_EPOCHS = 100


def _timed(run) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def _epochs_for(run_epochs) -> int:
    """Epochs a unit needs to last about UNIT_SECONDS, from a probe of 100."""
    probe = max(_timed(lambda: run_epochs(100)), 1e-6)
    return max(100, int(100 * UNIT_SECONDS / probe) // 100 * 100)


def _stack(cls, cfg, seeds: int):
    arch = cfg.arch
    return cls(arch.sizes, arch.activations, arch.loss, cfg.optimizer, seeds=range(seeds),
               dtype="float32")


def _scratch_side(stack, flat: np.ndarray, x, y):
    """A seed-batched network's epochs, each call from the same start (plain SGD keeps no
    optimizer state: the weights are the whole start)."""
    start = flat.copy()

    def train(epochs: int):
        flat[...] = start
        return stack.fit(x, y, epochs=epochs)

    return train


def _jax_side(cfg, x, y, numpy_stack):
    jax = __import__("jax")
    impl = IMPLEMENTATIONS["jax"]
    model = impl.build(cfg, numpy_stack.seed_weights(0), "float32", 0)
    batches, rest = impl.device_batches(model, x, y, cfg)
    params = [jax.numpy.asarray(np.stack(w)) for w in zip(
        *(numpy_stack.seed_weights(i) for i in range(len(numpy_stack.seeds))), strict=True)]
    keys = jax.vmap(jax.random.PRNGKey)(jax.numpy.arange(len(numpy_stack.seeds)))
    compiled: dict = {}

    def train(epochs: int):
        if epochs not in compiled:  # compiled outside any unit's time
            init, run = model.seeds_runner(epochs)
            compiled[epochs] = (init, run.lower(params, init(params), keys, batches,
                                                rest).compile())
        init, run = compiled[epochs]
        return jax.block_until_ready(run(params, init(params), keys, batches, rest))

    return train


def measure(seeds: int, cfg, data, rng: np.random.Generator) -> dict:
    """Each side's microseconds per seed-step, every ratio to JAX, and how far each side's
    weights are from scratch's SeedBatchedMLP after CHECK_EPOCHS epochs."""
    if cfg.optimizer.get("name") != "sgd" or cfg.optimizer.get("momentum"):
        raise ValueError(f"bench-seeds resets the weights before each unit, which is the whole "
                         f"start of plain SGD only; got {cfg.optimizer}")
    x, y = data.x, data.y
    numpy_stack, compiled = _stack(SeedBatchedMLP, cfg, seeds), _stack(CompiledSeedBatchedMLP,
                                                                      cfg, seeds)
    sides = {"numpy": _scratch_side(numpy_stack, numpy_stack.flat_params, x, y),
             "numba": _scratch_side(compiled, compiled.flat, x, y)}
    if not IMPLEMENTATIONS["jax"].missing():
        sides["jax"] = _jax_side(cfg, x, y, numpy_stack)
    checked = {name: train(CHECK_EPOCHS) for name, train in sides.items()}  # compiles too
    want = [np.stack([numpy_stack.seed_weights(i)[k] for i in range(seeds)]) for k in range(4)]
    got = {"numba": [np.stack([compiled.seed_weights(i)[k] for i in range(seeds)])
                     for k in range(4)]}
    if "jax" in checked:
        got["jax"] = [np.asarray(p) for p in checked["jax"][0]]
    epochs = {name: _epochs_for(train) for name, train in sides.items()}
    for name, train in sides.items():
        train(epochs[name])  # JAX compiles for these epochs here, before the rounds
    units = {name: (lambda t=train, e=epochs[name]: _timed(lambda: t(e)) / (e * seeds))
             for name, train in sides.items()}
    reference = "jax" if "jax" in sides else "numpy"
    pairs = [(name, reference) for name in sides if name != reference]
    times = interleave(units, pairs, rng, time_limit_s=TIME_LIMIT_S)
    row = {"seeds": seeds, "rounds": len(times["numpy"]),
           **{f"{name}_us": 1e6 * float(np.median(t)) for name, t in times.items()},
           **{f"{name}_diff": max(float(np.abs(g.reshape(w.shape) - w).max())
                                  for g, w in zip(weights, want, strict=True))
              for name, weights in got.items()}}
    if "jax" in sides:
        row.update({f"{name}_ratio": Ratio.of(times[name], times["jax"]) for name, _ in pairs})
    return row


def _ratio(row: dict, name: str) -> str:
    ratio = row.get(f"{name}_ratio")
    if ratio is None:
        return "JAX not installed"
    return f"{ratio.median:.2f} [{ratio.low:.2f}, {ratio.high:.2f}] {ratio.verdict(TARGET)}"


def main() -> int:
    cfg = get_config("xor")
    data = load_task(cfg, "float32")
    console = Console()
    single = MLP(cfg.arch.sizes, cfg.arch.activations, cfg.arch.loss, cfg.optimizer)
    steps = 20_000
    one = _timed(lambda: single.fit(data.x, data.y, epochs=steps, batch_size=None,
                                    shuffle=False)) / steps
    table = Table("seeds", "numpy", "numba", "jax", "numpy / jax", "numba / jax",
                  "max diff: numba, jax",
                  title=f"XOR 2-2-1 seeds at once, SGD, full batch, float32: us per "
                        f"seed-step in interleaved rounds; ratio: median [95%], target "
                        f"{TARGET:g}x",
                  caption="numpy: scratch's SeedBatchedMLP; numba: CompiledSeedBatchedMLP "
                          f"(scratch-numba's); jax: jax.vmap. Max diff: weights after "
                          f"{CHECK_EPOCHS} epochs against numpy's. scratch's MLP, one seed "
                          f"at a time: {1e6 * one:.3g} us a step.")
    rng = np.random.default_rng(0)
    for seeds in SEED_COUNTS:
        row = measure(seeds, cfg, data, rng)
        table.add_row(f"{seeds}, {row['rounds']} rounds", f"{row['numpy_us']:.3g}",
                      f"{row['numba_us']:.3g}",
                      f"{row['jax_us']:.3g}" if "jax_us" in row else "not installed",
                      _ratio(row, "numpy"), _ratio(row, "numba"),
                      f"{row['numba_diff']:.1e}, " + (f"{row['jax_diff']:.1e}"
                                                      if "jax_diff" in row else "-"))
    console.print(table)
    return 0
