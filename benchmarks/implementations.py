"""The implementations, one registry entry each, all trained the same way.

Every implementation starts from the scratch network's initial weights (seeded)
and sees the same batches in the same order: unshuffled configurations use the
file order, shuffled ones use ``scratch.epoch_order(n, epoch, seed)`` for both.
A ``Monitor`` times the training alone: checking the target is excluded.
"""

from __future__ import annotations

import math
import time
import tracemalloc
from abc import ABC, abstractmethod
from array import array
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from benchmarks.tasks import TaskConfig
from scratch import MLP, epoch_order

Predict = Callable[[np.ndarray], np.ndarray]
TUNED_STEPS = 50  # keras-tuned's steps_per_execution on minibatch tasks


class Monitor:
    """Step and epoch times, the loss curve, time to target and the time budget.

    Args:
        budget_s: stop (and extrapolate) once this much training time is spent.
        target: given a predict function, whether the task's target is reached.
        total_epochs: the epochs the configuration asks for.
        check_every: check the target every this many epochs.
        progress: called with (epochs done, total) now and then.
        stop_at_target: end training once the target is met.
        between_epochs: called after every epoch, outside the training time.
    """

    def __init__(self, budget_s: float, target: Callable[[Predict], bool], total_epochs: int,
                 check_every: int = 1, progress: Callable[[int, int], None] | None = None,
                 stop_at_target: bool = False, between_epochs: Callable[[], None] | None = None):
        self.budget_s, self.target, self.total_epochs = budget_s, target, total_epochs
        self.stop_at_target, self.between_epochs = stop_at_target, between_epochs
        self.check_every, self.progress = max(1, check_every), progress
        self.step_times = array("d")  # 8 bytes a step: 100000 steps cost 0.8 MB, not 3
        self.epoch_times = array("d")
        self.curve: list[tuple[int, float]] = []  # (epoch, loss) at every target check
        self.epochs_done = self.steps_done = 0
        self.time_to_target: float | None = None
        self.over_budget = False
        self.excluded = 0.0
        self._last_progress = 0.0

    def start(self) -> None:
        self.t0 = self.mark = self.epoch_start = time.perf_counter()

    def elapsed(self) -> float:
        """Training time so far, without the time spent checking the target."""
        return time.perf_counter() - self.t0 - self.excluded

    def batch_end(self, steps: int = 1) -> bool:
        """Record ``steps`` training steps; True when the budget is spent."""
        now = time.perf_counter()
        if steps == 1:
            self.step_times.append(now - self.mark)
        else:
            self.step_times.extend(array("d", [(now - self.mark) / steps]) * steps)
        self.mark = now
        self.steps_done += steps
        self.over_budget = now - self.t0 - self.excluded > self.budget_s  # self.elapsed()
        return self.over_budget

    def epoch_end(self, loss: float, predict: Predict, epochs: int = 1) -> bool:
        """Record ``epochs`` finished epochs; True when training should stop."""
        now = time.perf_counter()
        self.epoch_times.extend(array("d", [(now - self.epoch_start) / epochs]) * epochs)
        self.epochs_done += epochs
        if not math.isfinite(loss):
            raise FloatingPointError(f"The loss became {loss} after {self.epochs_done} epochs: "
                                     "training diverged. Lower the learning rate.")
        self.over_budget = self.over_budget or self.elapsed() > self.budget_s
        due = (self.epochs_done % self.check_every < epochs or self.over_budget
               or self.epochs_done >= self.total_epochs)
        if due:
            self.curve.append((self.epochs_done, float(loss)))
        if self.time_to_target is None and due:
            trained = self.elapsed()
            if self.target(predict):
                self.time_to_target = trained
        if self.progress and (now - self._last_progress > 0.2):
            self.progress(self.epochs_done, self.total_epochs)
            self._last_progress = now
        if self.between_epochs:
            self.between_epochs()
        self.excluded += time.perf_counter() - now
        self.mark = self.epoch_start = time.perf_counter()
        return self.over_budget or (self.stop_at_target and self.time_to_target is not None)


@dataclass
class Trained:
    """A finished training run, handed to the experiment's ``measure``."""

    spec: object            # the RunSpec
    cfg: TaskConfig
    impl: Implementation
    model: object
    data: object            # the TaskData
    monitor: Monitor
    initial: list[np.ndarray]

    def final_weights(self) -> list[np.ndarray]:
        return self.impl.get_weights(self.model)

    def scratch_twin(self, weights: list[np.ndarray] | None = None) -> MLP:
        """A scratch network holding ``weights`` (default: the final ones), so that every
        implementation's loss and gradients are computed one way."""
        model = scratch_model(self.cfg, self.spec.dtype, self.spec.seed)
        model.set_weights(self.final_weights() if weights is None else weights)
        return model


class Implementation(ABC):
    name: str
    description: str
    framework: str

    @abstractmethod
    def build(self, cfg: TaskConfig, weights: list[np.ndarray], dtype: str, seed: int):
        """A model of ``cfg.arch`` holding ``weights``."""

    @abstractmethod
    def train(self, model, x: np.ndarray, y: np.ndarray, cfg: TaskConfig, epochs: int,
              seed: int, monitor: Monitor) -> None:
        """Train ``model`` in place; ``monitor`` may stop it early."""

    @abstractmethod
    def predict(self, model, x: np.ndarray) -> np.ndarray:
        """Inference on a whole test set, timed by the caller."""

    @abstractmethod
    def warm_up(self, model, x: np.ndarray, y: np.ndarray, cfg: TaskConfig, epochs: int) -> None:
        """Everything done once before the timer starts; leaves the weights unchanged."""

    def get_weights(self, model) -> list[np.ndarray]:
        """[W1, b1, W2, b2, ...] in Keras' layout."""
        return model.get_weights()

    def traced_peak_mib(self, model, x: np.ndarray, y: np.ndarray) -> float | None:
        """tracemalloc's peak over one training step, where tracemalloc sees the memory."""
        return None


def scratch_model(cfg: TaskConfig, dtype: str, seed: int, backprop: str = "shortcut") -> MLP:
    """The seeded scratch network whose initial weights every implementation copies."""
    return MLP.from_architecture(cfg.arch, cfg.optimizer, dtype=dtype, seed=seed,
                                 backprop=backprop, kernel_initializer=cfg.kernel_initializer,
                                 bias_initializer=cfg.bias_initializer)


class Scratch(Implementation):
    framework = "numpy"

    def __init__(self, backprop: str):
        self.backprop = backprop
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
        model.fit(x, y, epochs=epochs, batch_size=cfg.batch_size, shuffle=cfg.shuffle, seed=seed,
                  callbacks=[callback])

    def predict(self, model, x):
        return model.predict(x)

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

    def on_train_batch_end(self, batch, logs):
        if self.monitor.batch_end():
            self.model.stop_training = True

    def on_epoch_end(self, epoch, logs):
        if self.monitor.epoch_end(logs["loss"], self.model.predict):
            self.model.stop_training = True


class Keras(Implementation):
    """``fit`` as the reference examples call it, or (tuned) the fastest correct way here.

    Tuned: XLA-compiled steps, several steps per execution, and for the full-batch
    tasks one ``fit`` over the batch repeated, instead of one ``fit`` epoch per step.
    """

    framework = "keras"

    def __init__(self, tuned: bool):
        self.tuned = tuned
        self.name = "keras-tuned" if tuned else "keras"
        self.description = ("Keras, XLA, steps_per_execution, repeated full batch" if tuned
                            else "Keras fit() as the reference examples call it")

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
        for epoch in range(epochs):
            order = epoch_order(n, epoch, seed)
            model.fit(x[order], y[order], batch_size=cfg.batch_size, epochs=1, shuffle=False,
                      verbose=0, callbacks=[callback])
            if model.stop_training:
                break

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


IMPLEMENTATIONS: dict[str, Implementation] = {
    impl.name: impl for impl in (Scratch("shortcut"), Scratch("jacobian"), Keras(tuned=False),
                                 Keras(tuned=True))
}
