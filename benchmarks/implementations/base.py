"""What every implementation provides, and the seeded network all of them start from.

Every implementation starts from the scratch network's initial weights (seeded)
and sees the same batches in the same order: unshuffled configurations use the
file order, shuffled ones use ``scratch.epoch_order(n, epoch, seed)`` for all.
A ``Monitor`` times the training alone: checking the target is excluded.
"""

from __future__ import annotations

import functools
import importlib.util
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version

import numpy as np

from benchmarks.data.tasks import TaskConfig
from benchmarks.implementations.timer import Monitor
from scratch import MLP, activations, epoch_order


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
    _final_twin: MLP | None = field(default=None, init=False, repr=False)

    def final_weights(self) -> list[np.ndarray]:
        return self.impl.get_weights(self.model)

    def scratch_twin(self, weights: list[np.ndarray] | None = None) -> MLP:
        """A scratch network holding ``weights`` (default: the final ones, built once a run),
        so that every implementation's loss and gradients are computed one way."""
        if weights is None and self._final_twin is not None:
            return self._final_twin
        model = scratch_model(self.cfg, self.spec.dtype, self.spec.seed)
        model.set_weights(self.final_weights() if weights is None else weights)
        if weights is None:
            self._final_twin = model
        return model


class Implementation(ABC):
    name: str
    description: str
    framework: str
    requires: tuple[str, ...] = ()  # the packages it imports
    # Whether it is written by hand here (scratch's maths), not a framework's
    from_scratch = False
    # Why it is no peer, where it trains another network by design (Keras' default softmax
    # form): then no experiment runs it unless named, and its rows show the difference.
    finding = ""
    # The most samples its run-time identity check may train on (None: 20 batches): the
    # explicit-Jacobian mode costs a second a sample on MNIST.
    identity_samples: int | None = None
    install = "pip install -e ."  # what installs them
    # What makes it fast, stated once: the reports say who wins, and this says why.
    why_fast = ""
    # Its seed-batched trainer (a SeedBatched), or None: S seeds of an accuracy-only
    # experiment trained at once as one network.
    seed_batched: type[SeedBatched] | None = None
    # The Keras backend of a process that runs it beside other implementations (Keras has one
    # backend a process, and torch.compile cannot share one with TensorFlow): the operation
    # benchmarks run once per backend, and a smoke publish's timed runs share a process
    # per backend.
    process_backend = "tensorflow"

    def missing(self) -> list[str]:
        """The required packages this environment lacks (none: the implementation runs)."""
        return [p for p in self.requires if importlib.util.find_spec(p) is None]

    def activate(self) -> None:
        """Run first in a run's process, before the framework is imported."""

    def settings(self, model) -> dict:
        """The implementation's own settings for this run, recorded in its row."""
        return {}

    def chose(self, settings: dict) -> str:
        """What a calibrated run (its ``settings`` hold a "calibration") chose, in words."""
        return ""

    def runs_as(self, cfg: TaskConfig, n: int) -> str:
        """The implementation a run of ``cfg`` on ``n`` samples would really be: this one,
        or for a tuned variant whose calibration has no candidate there but its plain
        twin's settings, that twin."""
        return self.name

    def refuses(self, cfg: TaskConfig, dtype: str, batch: int, memory_budget_mib: float) -> str:
        """Why it will not start this run (and what to do instead), or '' when it will."""
        return ""

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

    def predict(self, model, x: np.ndarray) -> np.ndarray:
        """Inference on a whole test set, timed by the caller (by default the model's own
        ``predict``, as for every model below that speaks scratch's verbs)."""
        return model.predict(x)

    @abstractmethod
    def warm_up(self, model, x: np.ndarray, y: np.ndarray, cfg: TaskConfig, epochs: int) -> None:
        """Everything done once before the timer starts; leaves the weights unchanged."""

    def gradients(self, model, x: np.ndarray, y: np.ndarray) -> tuple[float, list[np.ndarray]]:
        """The batch loss and its gradients [dW1, db1, ...], by the framework's own means."""
        return model.gradients(x, y)

    def train_step(self, model, x: np.ndarray, y: np.ndarray) -> float:
        """One optimizer step on (x, y); the loss before it."""
        return model.train_step(x, y)

    def get_weights(self, model) -> list[np.ndarray]:
        """[W1, b1, W2, b2, ...] in Keras' layout."""
        return model.get_weights()

    def set_weights(self, model, weights: list[np.ndarray]) -> None:
        """Set [W1, b1, W2, b2, ...] (Keras' layout); the optimizer's state stays."""
        model.set_weights(weights)

    def traced_peak_mib(self, model, x: np.ndarray, y: np.ndarray) -> float | None:
        """tracemalloc's peak over one training step, where tracemalloc sees the memory."""
        return None

    def untimed(self, cfg: TaskConfig, x: np.ndarray, epochs: int) -> None:
        """Before the warm-up of a run whose times say nothing (the smoke profile's, a tiny
        benchmark suite's): an implementation that calibrates its settings by timing them
        takes one untimed instead, for training on ``x`` for ``epochs``."""

    # The operation benchmarks (benchmarks/bench_ops.py) ask these.
    def bench_skip(self, operation: str, task: str) -> str:
        """Why the operation benchmark ``operation`` ("forward", "step", "epoch") on
        ``task`` is not run, or '' when it is."""
        return ""

    def bench_step(self, model) -> Callable[[np.ndarray, np.ndarray], object]:
        """One training step on (x, y), the framework's own way."""
        return functools.partial(self.train_step, model)

    def bench_epoch(self, model, x: np.ndarray, y: np.ndarray,
                    cfg: TaskConfig) -> Callable[[], object]:
        """One epoch over (x, y) in file order, as the implementation trains one."""
        return functools.partial(self.train_epoch, model, x, y, cfg)

    def train_epoch(self, model, x: np.ndarray, y: np.ndarray, cfg: TaskConfig) -> None:
        """One epoch as a run trains it (``train``, its own Monitor, no target, no budget)."""
        self.train(model, x, y, cfg, 1, 0, Monitor(float("inf"), lambda predict: False, 1))


class SeedBatched(ABC):
    """S seeds of one configuration trained at once (``Implementation.seed_batched``),
    from the seeded scratch network's initial weights, on the same batches. ``active``
    lists the seeds still training (indices into the group)."""

    retires = False  # whether a seed can leave the group once it reached its target
    active: list[int]

    @abstractmethod
    def __init__(self, impl: Implementation, cfg: TaskConfig, seeds: list[int], dtype: str,
                 x: np.ndarray, y: np.ndarray, epochs_per_call: int):
        """The group, built (not yet compiled)."""

    @abstractmethod
    def warm_up(self) -> None:
        """Everything done once before the timer starts."""

    @abstractmethod
    def train(self, epochs: int) -> np.ndarray:
        """Train the active seeds ``epochs`` epochs; their last losses, in ``active``'s order."""

    @abstractmethod
    def predict(self, x: np.ndarray) -> np.ndarray:
        """Every seed's outputs, stacked on a leading seed axis."""

    @abstractmethod
    def seed_weights(self, i: int) -> list[np.ndarray]:
        """Seed ``i``'s weights in Keras' layout."""

    def retire(self, done: set[int]) -> None:
        """Stop training the seeds ``done`` (where ``retires``)."""

    def finish(self) -> None:
        """Called once training ends."""


# scratch's activations (Keras' names, which the Keras twins use as they are) and what the
# other frameworks call them: JAX's jax.nn function, and PyTorch's torch.nn module with its
# own keywords. The rest of an activation's config (leaky_relu's negative_slope) passes on.
ACTIVATIONS = {
    "linear": ("identity", ("Identity", {})),
    "sigmoid": ("sigmoid", ("Sigmoid", {})),
    "tanh": ("tanh", ("Tanh", {})),
    "relu": ("relu", ("ReLU", {})),
    "softmax": ("softmax", ("Softmax", {"dim": -1})),
    "leaky_relu": ("leaky_relu", ("LeakyReLU", {})),
}


def activation(identifier, namespace, framework: str) -> Callable:
    """scratch's activation ``identifier`` in ``framework`` ("jax" or "torch"): the function
    (or module class) of that name in ``namespace`` (jax.nn, torch.nn), its config bound."""
    config = activations.get(identifier).get_config()
    jax_name, (torch_name, own) = ACTIVATIONS[config.pop("name")]
    name, keywords = (jax_name, {}) if framework == "jax" else (torch_name, own)
    return functools.partial(getattr(namespace, name), **keywords, **config)


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


@functools.cache  # a row records it: looked up once a process, not once a row (2 ms each)
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
