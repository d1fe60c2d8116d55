"""What every implementation provides, and the seeded network all of them start from.

Every implementation starts from the scratch network's initial weights (seeded)
and sees the same batches in the same order: unshuffled configurations use the
file order, shuffled ones use ``scratch.epoch_order(n, epoch, seed)`` for all.
A ``Monitor`` times the training alone: checking the target is excluded.
"""

from __future__ import annotations

import importlib.util
from abc import ABC, abstractmethod
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version

import numpy as np

from benchmarks.data.tasks import TaskConfig
from benchmarks.implementations.timer import Monitor
from scratch import MLP, epoch_order


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
    requires: tuple[str, ...] = ()  # the packages it imports
    # Why it is no peer, where it trains another network by design (Keras' default softmax
    # form): then no experiment runs it unless named, and its rows show the difference.
    finding = ""
    # The most samples its run-time identity check may train on (None: 20 batches): the
    # explicit-Jacobian mode costs a second a sample on MNIST.
    identity_samples: int | None = None
    install = "pip install -e ."  # what installs them

    def missing(self) -> list[str]:
        """The required packages this environment lacks (none: the implementation runs)."""
        return [p for p in self.requires if importlib.util.find_spec(p) is None]

    def activate(self) -> None:
        """Run first in a run's process, before the framework is imported."""

    def settings(self, model) -> dict:
        """The implementation's own settings for this run, recorded in its row."""
        return {}

    def runs_as(self, cfg: TaskConfig, n: int) -> str:
        """The implementation a run of ``cfg`` on ``n`` samples would really be: this one,
        or for a tuned variant whose calibration has no candidate there but its plain
        twin's settings, that twin."""
        return self.name

    def versions(self) -> dict:
        """framework_version and backend, for every row."""
        return {"framework_version": package_version(self.framework), "backend": "cpu"}

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

    @abstractmethod
    def gradients(self, model, x: np.ndarray, y: np.ndarray) -> tuple[float, list[np.ndarray]]:
        """The batch loss and its gradients [dW1, db1, ...], by the framework's own means."""

    @abstractmethod
    def train_step(self, model, x: np.ndarray, y: np.ndarray) -> float:
        """One optimizer step on (x, y); the loss before it."""

    def get_weights(self, model) -> list[np.ndarray]:
        """[W1, b1, W2, b2, ...] in Keras' layout."""
        return model.get_weights()

    def set_weights(self, model, weights: list[np.ndarray]) -> None:
        """Set [W1, b1, W2, b2, ...] (Keras' layout); the optimizer's state stays."""
        model.set_weights(weights)

    def traced_peak_mib(self, model, x: np.ndarray, y: np.ndarray) -> float | None:
        """tracemalloc's peak over one training step, where tracemalloc sees the memory."""
        return None


def largest_divisor(n: int, limit: int) -> int:
    """The largest divisor of ``n`` no greater than ``limit`` (at least 1): how many epochs
    one compiled call or one ``fit`` epoch can hold, with every epoch boundary kept."""
    return max(d for d in range(1, max(1, min(n, limit)) + 1) if n % d == 0)


def shuffled_epochs(x: np.ndarray, y: np.ndarray, epochs: int, seed: int, monitor: Monitor):
    """(epoch, x, y) with each epoch's samples in ``epoch_order``: the reordered copies
    are made outside the training time, the same way for every implementation."""
    for epoch in range(epochs):
        with monitor.paused():
            order = epoch_order(len(x), epoch, seed)
            xs, ys = x[order], y[order]
        yield epoch, xs, ys


def package_version(package: str) -> str:
    """The installed version of ``package``, or '' where it is not installed."""
    try:
        return version(package)
    except PackageNotFoundError:
        return ""


def scratch_model(cfg: TaskConfig, dtype: str, seed: int, backprop: str = "shortcut") -> MLP:
    """The seeded scratch network whose initial weights every implementation copies."""
    return MLP.from_architecture(cfg.arch, cfg.optimizer, dtype=dtype, seed=seed,
                                 backprop=backprop, kernel_initializer=cfg.kernel_initializer,
                                 bias_initializer=cfg.bias_initializer)
