"""scratch's network compiled with Numba (scratch/compiled.py): the same hand-written maths
as scratch-shortcut, with no framework and no Python between steps."""

from __future__ import annotations

import numpy as np

from benchmarks.implementations.base import Implementation, largest_divisor
from benchmarks.implementations.scratch import ScratchSeeds
from benchmarks.implementations.timer import Monitor
from scratch import epoch_order

MAX_EPOCHS_PER_CALL = 1000


class ScratchNumba(Implementation):
    name = "scratch-numba"
    description = "Numba, scratch-shortcut's maths compiled as loops"
    framework = "numba"
    from_scratch = True
    requires = ("numba",)
    why_fast = ("each call trains a whole check interval (an epoch where epochs are "
                "shuffled) in compiled loops: no Python between steps, BLAS for the large "
                "products")

    def build(self, cfg, weights, dtype, seed):
        from scratch.compiled import CompiledMLP

        model = CompiledMLP.from_architecture(
            cfg.arch, cfg.optimizer, dtype=dtype, seed=seed,
            kernel_initializer=cfg.kernel_initializer, bias_initializer=cfg.bias_initializer)
        model.set_weights(weights)
        return model

    @staticmethod
    def epochs_per_call(cfg, epochs: int, check_every: int) -> int:
        """Epochs one compiled call trains: one where each epoch is shuffled (its order is
        drawn outside the timer), else the largest divisor of ``epochs`` up to the check
        interval, so that every check falls between two calls."""
        if cfg.shuffle:
            return 1
        return largest_divisor(epochs, min(check_every, MAX_EPOCHS_PER_CALL))

    def warm_up(self, model, x, y, cfg, epochs):
        """Load (or compile) the compiled functions for these shapes and dtype, on a copy:
        the weights and the optimizer stay as they are."""
        batch = min(cfg.batch_size, len(x))
        copy = self.build(cfg, model.get_weights(), model.dtype.name, model.seed)
        copy.fit(x[:batch], y[:batch], epochs=1, batch_size=batch, shuffle=False)
        copy.predict(x[:2])

    def train(self, model, x, y, cfg, epochs, seed, monitor: Monitor):
        chunk = self.epochs_per_call(cfg, epochs, monitor.check_every)
        model.epochs_per_call = chunk
        batch = min(cfg.batch_size, len(x))
        steps = -(-len(x) // batch) * chunk
        x, y = model.reference._check(x, y)  # once: the calls below check nothing
        orders = np.tile(np.arange(len(x)), (chunk, 1))  # file order
        monitor.start()
        for first in range(0, epochs, chunk):
            if cfg.shuffle:
                with monitor.paused():
                    orders = np.stack([epoch_order(len(x), e, seed)
                                       for e in range(first, first + chunk)])
            losses, finished = model.run(x, y, orders, batch)
            done = chunk if finished == chunk else finished + 1  # the epoch that diverged
            if monitor.batch_end(steps) | monitor.epoch_end(losses[done - 1], model.predict,
                                                            done):
                return

    def settings(self, model):
        return {"epochs_per_call": getattr(model, "epochs_per_call", None)}


class CompiledSeeds(ScratchSeeds):
    """S seeds of scratch-numba as one CompiledSeedBatchedMLP: every call of ``train`` one
    compiled call, and the seeds that reached their target leave the group as scratch's."""

    @property
    def network(self):
        from scratch.compiled import CompiledSeedBatchedMLP

        return CompiledSeedBatchedMLP

    def warm_up(self) -> None:
        """Load (or compile) the compiled functions, on a one-seed copy: the group's weights
        and optimizer state stay as they are."""
        part = self.stack.subset([0])
        part.fit(self.x, self.y, epochs=1, batch_size=self.batch)
        part.predict(self.x[:1])


ScratchNumba.seed_batched = CompiledSeeds
