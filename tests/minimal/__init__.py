"""Minimal training loops, one per framework: what an expert in it writes in about 15
lines, as the yardstick for the suite's peers (``groundup bench-peers``).

Each module ``<framework>_loop`` has ``make(task, weights, x, y) -> Loop``, where ``weights``
are [W1 (n_in, n_out), b1, W2, b2] in float32, Keras' layout, and ``x``, ``y`` the training
data in file order, a whole number of batches. The two tasks:

- ``xor``: 2-2-1, sigmoid/sigmoid, mean squared error, SGD 0.01, the full batch of 4;
- ``mnist``: 784-512-10, relu/softmax, categorical cross-entropy, SGD 0.1, batches of 32.

Keras reads its backend from KERAS_BACKEND once, when first imported: set it first.
"""

from __future__ import annotations

import importlib
from dataclasses import replace
from typing import Protocol

import numpy as np

from benchmarks.data.tasks import TaskConfig, get_config, load_task
from benchmarks.implementations import scratch_model
from scratch import MNIST

BATCH = {"xor": 4, "mnist": 32}
LEARNING_RATE = {"xor": 0.01, "mnist": 0.1}
# The suite's configurations of the same training: TensorFlow's get-started MNIST without
# its dropout and Adam, so that every step is deterministic and plain SGD, in file order.
TASKS: dict[str, TaskConfig] = {
    "xor": get_config("xor"),
    "mnist": replace(get_config("mnist", "tf-tutorial"), config="sgd-32", arch=MNIST,
                     optimizer={"name": "sgd", "learning_rate": LEARNING_RATE["mnist"]},
                     batch_size=BATCH["mnist"], shuffle=False),
}
# What tests/test_minimal_loops.py trains: (epochs, samples); 5 steps and 4 steps.
CHECKS = {"xor": (5, None), "mnist": (2, 2 * BATCH["mnist"])}


class Loop(Protocol):
    def run(self, epochs: int) -> None:
        """Train ``epochs`` passes over the batches in order (XOR: one step each); returns
        when the work is done, not merely queued."""

    def weights(self) -> list[np.ndarray]:
        """[W1, b1, W2, b2] in Keras' layout."""


def setup(task: str, samples: int | None = None, seed: int = 0):
    """(cfg, initial weights, x, y): scratch's seeded float32 start and the task's data,
    the first ``samples`` training samples of MNIST."""
    cfg = TASKS[task]
    data = load_task(cfg, "float32", samples)
    return cfg, scratch_model(cfg, "float32", seed).get_weights(), data.x, data.y


def loop_module(framework: str):
    """The minimal loop of ``framework`` (an Implementation's ``framework``: jax, torch,
    keras)."""
    return importlib.import_module(f"tests.minimal.{framework}_loop")


def trained(framework: str, task: str) -> list[np.ndarray]:
    """The weights of ``framework``'s minimal loop after ``CHECKS[task]``."""
    epochs, samples = CHECKS[task]
    _, weights, x, y = setup(task, samples)
    loop = loop_module(framework).make(task, weights, x, y)
    loop.run(epochs)
    return loop.weights()
