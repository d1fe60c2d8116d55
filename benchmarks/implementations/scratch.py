"""The from-scratch network: NumPy, closed-form (shortcut) or explicit-Jacobian backprop."""

from __future__ import annotations

import tracemalloc

import numpy as np

from benchmarks.implementations.base import (
    Implementation,
    SeedBatched,
    scratch_model,
    shuffled_epochs,
)
from benchmarks.implementations.timer import Monitor
from scratch import MLP
from scratch.seeds import SeedBatchedMLP

FORWARD_SKIP = "the jacobian mode's forward pass is scratch-shortcut's"
MNIST_SKIP = ("infeasible: one 784-512-10 Jacobian chain takes about 1.5 s per sample (see "
              "`groundup run jacobian`)")


class Scratch(Implementation):
    framework = "numpy"
    from_scratch = True

    def __init__(self, backprop: str):
        self.backprop = backprop
        self.identity_samples = 4 if backprop == "jacobian" else None
        self.name = f"scratch-{backprop}"
        self.description = {"shortcut": "NumPy, closed-form batched backprop",
                            "jacobian": "NumPy, explicit per-sample Jacobians"}[backprop]
        self.why_fast = {"shortcut": "NumPy calls BLAS directly: nothing between steps but a "
                                     "few array calls",
                         "jacobian": "nothing: it builds every Jacobian explicitly"}[backprop]
        self.seed_batched = ScratchSeeds if backprop == "shortcut" else None

    def refuses(self, cfg, dtype, batch, memory_budget_mib):
        """The jacobian mode refuses a run whose predicted peak (scratch.cost) exceeds the
        memory budget."""
        if self.backprop != "jacobian":
            return ""
        from scratch.cost import backprop_cost

        cost = backprop_cost(cfg.arch.sizes, dtype)
        need = (cost.model_bytes(optimizer_slots=2) + cost.jacobian_peak_bytes(batch)) / 2**20
        if need <= memory_budget_mib:
            return ""
        dzdw = max((j for j in cost.jacobians if j.name == "dZ/dW"), key=lambda j: j.bytes)
        return (f"{self.name} on {'-'.join(map(str, cost.sizes))} in {dtype} would need about "
                f"{need:,.0f} MiB for one step (layer {dzdw.layer}'s dZ/dW alone is "
                f"{dzdw.shape[0]} x {dzdw.shape[1]}, {dzdw.bytes / 2**20:,.0f} MiB per sample), "
                f"over the memory budget of {memory_budget_mib:,.0f} MiB. Use a smaller hidden "
                "width, fewer samples per step"
                f"{', or float32 (half the bytes)' if dtype == 'float64' else ''}; or raise "
                "--memory-budget.")

    def bench_skip(self, operation, task):
        if self.backprop == "jacobian" and operation == "forward":
            return FORWARD_SKIP
        if self.backprop == "jacobian" and task == "mnist":
            return MNIST_SKIP
        return ""

    def bench_epoch(self, model, x, y, cfg):
        return lambda: model.fit(x, y, epochs=1, batch_size=cfg.batch_size, shuffle=False)

    def build(self, cfg, weights, dtype, seed):
        model = scratch_model(cfg, dtype, seed, self.backprop)
        model.set_weights(weights)
        return model

    def train(self, model, x, y, cfg, epochs, seed, monitor):
        callback = _ScratchCallback(model, monitor)
        monitor.start()
        if not cfg.shuffle:
            model.fit(x, y, epochs=epochs, batch_size=cfg.batch_size, shuffle=False,
                      callbacks=[callback])
            return
        for _, xs, ys in shuffled_epochs(x, y, epochs, seed, monitor):
            model.fit(xs, ys, epochs=1, batch_size=cfg.batch_size, shuffle=False,
                      callbacks=[callback])
            if callback.stopped:
                break

    def warm_up(self, model, x, y, cfg, epochs):
        model.gradients(x[:1], y[:1])  # touches every buffer once; no update

    def traced_peak_mib(self, model, x, y):
        """What one training step allocates; the model's own buffers already exist."""
        tracemalloc.start()
        try:
            model.train_step(x, y)
            return tracemalloc.get_traced_memory()[1] / 2**20
        finally:
            tracemalloc.stop()


class _ScratchCallback:
    def __init__(self, model: MLP, monitor: Monitor):
        self.model, self.monitor = model, monitor
        self.stopped = False

    def on_train_batch_end(self, batch, logs):
        if self.monitor.batch_end():
            self.model.stop_training = self.stopped = True

    def on_epoch_end(self, epoch, logs):
        if self.monitor.epoch_end(logs["loss"], self.model.predict):
            self.model.stop_training = self.stopped = True


class ScratchSeeds(SeedBatched):
    """S seeds of scratch as one SeedBatchedMLP (``network``)."""

    retires = True
    network = SeedBatchedMLP

    def __init__(self, impl, cfg, seeds, dtype, x, y, epochs_per_call):
        self.stack = self.network.from_architecture(
            cfg.arch, cfg.optimizer, seeds=seeds, dtype=dtype,
            kernel_initializer=cfg.kernel_initializer, bias_initializer=cfg.bias_initializer)
        self.x, self.y, self.batch = x, y, min(cfg.batch_size, len(x))
        self.whole, self.active = self.stack, list(range(len(seeds)))

    def warm_up(self) -> None:
        self.stack.gradients(self.x[:1], self.y[:1])  # touches every buffer; no update

    def train(self, epochs: int) -> np.ndarray:
        return self.stack.fit(self.x, self.y, epochs=epochs, batch_size=self.batch)[-1]

    def predict(self, x) -> np.ndarray:
        return self.stack.predict(x)

    def retire(self, done: set[int]) -> None:
        """Stop training the seeds ``done``: their weights stay as they are now, and the
        others train on as a smaller stack."""
        if not done & set(self.active):
            return
        self._gather()
        keep = [p for p, i in enumerate(self.active) if i not in done]
        self.active = [self.active[p] for p in keep]
        self.stack = self.stack.subset(keep)

    def _gather(self) -> None:
        """The active seeds' weights back into the whole group's stack."""
        if self.stack is not self.whole:
            for whole, part in zip(self.whole.params, self.stack.params, strict=True):
                whole[self.active] = part

    def finish(self) -> None:
        """Every seed's last weights in the whole group's stack, which answers from now on."""
        self._gather()
        self.stack = self.whole
        self.active = list(range(len(self.whole.seeds)))

    def seed_weights(self, i: int) -> list[np.ndarray]:
        return self.stack.seed_weights(i)
