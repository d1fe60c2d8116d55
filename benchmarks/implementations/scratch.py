"""The from-scratch network: NumPy, closed-form (shortcut) or explicit-Jacobian backprop."""

from __future__ import annotations

import tracemalloc

from benchmarks.implementations.base import Implementation, scratch_model, shuffled_epochs
from benchmarks.implementations.timer import Monitor
from scratch import MLP


class Scratch(Implementation):
    framework = "numpy"

    def __init__(self, backprop: str):
        self.backprop = backprop
        self.identity_samples = 4 if backprop == "jacobian" else None
        self.name = f"scratch-{backprop}"
        self.description = {"shortcut": "NumPy, closed-form batched backprop",
                            "jacobian": "NumPy, explicit per-sample Jacobians"}[backprop]

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

    def predict(self, model, x):
        return model.predict(x)

    def gradients(self, model, x, y):
        return model.gradients(x, y)

    def train_step(self, model, x, y):
        return model.train_step(x, y)

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
