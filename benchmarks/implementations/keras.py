"""Keras 3 on each backend: ``fit`` as the reference examples call it, and tuned.

Keras picks its backend once, when first imported: ``activate`` names it in the run's
own process before anything imports Keras.
"""

from __future__ import annotations

import os
import sys

import numpy as np

from benchmarks.data.tasks import TaskConfig
from benchmarks.implementations.base import Implementation, package_version, shuffled_epochs
from benchmarks.implementations.timer import Monitor, Predict

TUNED_STEPS = 50  # keras-tuned's steps_per_execution on minibatch tasks
BACKENDS = {"tensorflow": "tf", "jax": "jax", "torch": "torch"}
TITLES = {"tensorflow": "TensorFlow", "jax": "JAX", "torch": "PyTorch"}
BACKEND_PACKAGES = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}


class Keras(Implementation):
    """``fit`` as the reference examples call it, or (tuned) the fastest correct way here.

    Tuned: XLA-compiled steps, several steps per execution, and for the full-batch
    tasks one ``fit`` over the batch repeated, instead of one ``fit`` epoch per step.
    """

    framework = "keras"

    def __init__(self, tuned: bool, backend: str = "tensorflow"):
        self.tuned, self.backend = tuned, backend
        self.requires = ("keras", BACKEND_PACKAGES[backend])
        if backend == "torch":
            self.install = "make torch"
        suffix = "" if backend == "tensorflow" else f"-{BACKENDS[backend]}"
        self.name = "keras" + suffix + ("-tuned" if tuned else "")
        on = f" on {TITLES[backend]}" if suffix else ""
        self.description = (f"Keras{on}, XLA, steps_per_execution, repeated full batch"
                            if tuned else f"Keras{on}, fit() as the reference examples call it")

    def activate(self) -> None:
        """Choose the backend; refuses once Keras is imported with another."""
        if "keras" in sys.modules:
            import keras

            if keras.backend.backend() != self.backend:
                raise RuntimeError(f"{self.name} needs Keras on {self.backend}, but Keras is "
                                   f"already imported on {keras.backend.backend()} here.")
        os.environ["KERAS_BACKEND"] = self.backend
        if self.backend == "jax":
            from benchmarks.implementations.jax import _jax

            _jax()  # 64-bit mode, for the float64 runs

    def versions(self) -> dict:
        return {"framework_version": package_version("keras"),
                "backend": f"{self.backend} {package_version(BACKEND_PACKAGES[self.backend])}"}

    def build(self, cfg, weights, dtype, seed):
        import keras_models

        extra = {"jit_compile": True} if self.tuned else {}
        model = keras_models.build(cfg.arch, cfg.optimizer, dtype, **extra)
        model.set_weights(weights)
        return model

    @staticmethod
    def full_batch(cfg: TaskConfig, n: int) -> bool:
        return cfg.batch_size >= n and not cfg.shuffle

    @staticmethod
    def chunk(epochs: int) -> int:
        """Steps per ``fit`` epoch for a repeated full batch: the largest divisor <= 1000."""
        return max(d for d in range(1, min(epochs, 1000) + 1) if epochs % d == 0)

    def _repeated(self, x, y, cfg, epochs) -> tuple[np.ndarray, np.ndarray] | None:
        """For keras-tuned on a full-batch task: the batch repeated ``chunk(epochs)`` times,
        so that one ``fit`` epoch runs that many steps."""
        if not (self.tuned and self.full_batch(cfg, len(x))):
            return None
        chunk = self.chunk(epochs)
        return np.tile(x, (chunk, 1)), np.tile(y, (chunk, 1))

    def train(self, model, x, y, cfg, epochs, seed, monitor):
        n = len(x)
        predict = self._fast_predict(model)
        repeated = self._repeated(x, y, cfg, epochs)
        if repeated is not None:
            chunk = len(repeated[0]) // n
            callback = _keras_callback(monitor, predict, epochs_per_fit_epoch=chunk)
            monitor.start()
            model.fit(*repeated, batch_size=n, epochs=epochs // chunk, shuffle=False, verbose=0,
                      callbacks=[callback])
            return
        callback = _keras_callback(monitor, predict, epochs_per_fit_epoch=1)
        if not cfg.shuffle:
            monitor.start()
            model.fit(x, y, batch_size=cfg.batch_size, epochs=epochs, shuffle=False, verbose=0,
                      callbacks=[callback])
            return
        monitor.start()
        for _, xs, ys in shuffled_epochs(x, y, epochs, seed, monitor):
            model.fit(xs, ys, batch_size=cfg.batch_size, epochs=1, shuffle=False, verbose=0,
                      callbacks=[callback])
            if model.stop_training:
                break

    def gradients(self, model, x, y):
        import keras_models

        return keras_models.gradients(model, x, y)

    def train_step(self, model, x, y):
        import keras_models

        return keras_models.train_step(model, x, y)

    def warm_up(self, model, x, y, cfg, epochs):
        """Trace and compile the train step, then restore the weights and the optimizer."""
        weights = model.get_weights()
        repeated = self._repeated(x, y, cfg, epochs)
        if self.tuned:
            steps = len(repeated[0]) // len(x) if repeated is not None else TUNED_STEPS
            model.compile(optimizer=model.optimizer, loss=model.loss, jit_compile=True,
                          steps_per_execution=steps)
        if repeated is not None:
            model.fit(*repeated, batch_size=len(x), epochs=1, shuffle=False, verbose=0)
        else:
            b = min(cfg.batch_size, len(x))
            model.fit(x[:b], y[:b], batch_size=b, epochs=1, shuffle=False, verbose=0)
        model.set_weights(weights)
        for v in model.optimizer.variables:
            if v.name != "learning_rate":
                v.assign(np.zeros(v.shape, v.dtype))
        self.predict(model, x[:2])

    def _fast_predict(self, model) -> Predict:
        return lambda x: np.asarray(model(x, training=False))

    def predict(self, model, x):
        if self.tuned:
            return np.asarray(model.predict_on_batch(x))
        return model.predict(x, verbose=0)


def _keras_callback(monitor: Monitor, predict: Predict, epochs_per_fit_epoch: int):
    import keras

    class MonitorCallback(keras.callbacks.Callback):
        """Keras calls on_train_batch_end once per execution, with the index of its last step."""

        def on_epoch_begin(self, epoch, logs=None):
            self.seen = 0

        def on_train_batch_end(self, batch, logs=None):
            steps, self.seen = batch + 1 - self.seen, batch + 1
            if monitor.batch_end(steps):
                self.model.stop_training = True

        def on_epoch_end(self, epoch, logs=None):
            if monitor.epoch_end(float(logs["loss"]), predict, epochs_per_fit_epoch):
                self.model.stop_training = True

    return MonitorCallback()
