"""The tasks and their reference configurations (the blog series and TensorFlow's examples).

One entry per (task, config): adding a configuration means adding one entry.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from benchmarks.data import metrics
from scratch import MNIST, REVERSE4, XOR, Architecture


@dataclass(frozen=True)
class TaskConfig:
    """Everything both implementations need to train the same network the same way."""

    task: str
    config: str
    arch: Architecture
    optimizer: dict
    epochs: int
    batch_size: int
    kernel_initializer: str = "glorot_uniform"
    bias_initializer: str = "zeros"
    shuffle: bool = True
    target: str = ""
    target_accuracy: float = 1.0  # mnist: test accuracy; xor, reverse4: every pattern exact
    source: str = ""
    quick: dict = field(default_factory=dict)  # overrides for the quick profile

    @property
    def key(self) -> str:
        return f"{self.task}/{self.config}"


BLOG_MNIST = MNIST.replace(activations=({"name": "leaky_relu", "negative_slope": 0.1}, "softmax"))
CONFIGS = {c.key: c for c in [
    TaskConfig("xor", "blog", XOR, {"name": "sgd", "learning_rate": 0.01}, epochs=100_000,
               batch_size=4, shuffle=False, target="all four outputs right after rounding",
               source="XOR in Keras (2017): SGD 0.01, epochs=100000, batch_size=4"),
    TaskConfig("reverse4", "blog", REVERSE4, {"name": "sgd", "learning_rate": 0.1}, epochs=10_000,
               batch_size=8, shuffle=False, target="the training set reproduced exactly",
               source="Reversing 4-bit numbers (2018): SGD 0.1, epochs=10000, batch_size=8"),
    TaskConfig("mnist", "blog", BLOG_MNIST, {"name": "sgd", "learning_rate": 0.1}, epochs=5,
               batch_size=50, kernel_initializer="uniform", bias_initializer="uniform",
               shuffle=False, target="97% test accuracy", target_accuracy=0.97,
               source="MNIST from the ground up (2021): leaky ReLU 0.1, U(-1, 1), SGD 0.1, "
                      "batch 50, 5 epochs, file order",
               quick={"epochs": 1}),
    TaskConfig("mnist", "tf-tutorial", MNIST.replace(dropout=0.2), {"name": "adam"}, epochs=5,
               batch_size=32, target="97% test accuracy", target_accuracy=0.97,
               source="TensorFlow get-started: relu, dropout 0.2, Adam, batch 32, 5 epochs",
               quick={"epochs": 1}),
]}


def get_config(task: str, config: str | None = None) -> TaskConfig:
    """The configuration of a task; the task's first one when ``config`` is None.
    ``get_config("mnist/blog")`` is ``get_config("mnist", "blog")``."""
    if config is None and "/" in task:
        task, config = task.split("/", 1)
    keys = [k for k in CONFIGS if k.split("/")[0] == task]
    if not keys:
        tasks = sorted({c.task for c in CONFIGS.values()})
        raise ValueError(f"Unknown task {task!r}; choose one of {tasks}.")
    key = keys[0] if config is None else f"{task}/{config}"
    if key not in CONFIGS:
        raise ValueError(f"Unknown config {config!r} for {task}; choose one of "
                         f"{[k.split('/')[1] for k in keys]}.")
    return CONFIGS[key]


# The small tasks' data, generated in code.

def binary(numbers, width: int) -> np.ndarray:
    """Numbers as rows of bits, most significant first: binary([5], 4) = [[0, 1, 0, 1]]."""
    numbers = np.asarray(numbers)
    return ((numbers[:, None] >> np.arange(width - 1, -1, -1)) & 1).astype(np.float32)


def xor_data() -> tuple[np.ndarray, np.ndarray]:
    x = binary(range(4), 2)
    return x, (x[:, :1] != x[:, 1:]).astype(np.float32)


REVERSE4_TRAIN = [0b0000, 0b0001, 0b0010, 0b0101, 0b0110, 0b0111]
REVERSE4_HELD_OUT = [0b0011, 0b0100]        # first bit 0, not trained on: interpolation
REVERSE4_TEST = [0b1000, 0b1001, 0b1010, 0b1101, 0b1110, 0b1111]  # first bit 1: extrapolation


def reverse_data(numbers, width: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """Inputs and their bit-reversed targets."""
    x = binary(numbers, width)
    return x, x[:, ::-1].copy()


# Loading a task's data, scoring predictions.

@dataclass
class TaskData:
    """Training inputs and targets, the set accuracy is measured on, and the size of a
    full epoch (for extrapolating runs trained on a subset)."""

    name: str
    x: np.ndarray
    y: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    n_full: int
    splits: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)


def load_task(cfg: TaskConfig, dtype: str = "float32", train_samples: int | None = None,
              data_dir: str | None = None) -> TaskData:
    """xor and reverse4 are scored on their training patterns (the generalisation
    experiment has the held-out ones); mnist on its 10000 test images."""
    if cfg.task == "xor":
        x, y = xor_data()
        x, y = x.astype(dtype), y.astype(dtype)
        return TaskData("xor", x, y, x, y, len(x))
    if cfg.task == "reverse4":
        x, y = reverse_data(REVERSE4_TRAIN)
        x, y = x.astype(dtype), y.astype(dtype)
        return TaskData("reverse4", x, y, x, y, len(x))
    from benchmarks.data.datasets import load_mnist
    from scratch.losses import one_hot

    ds = load_mnist(data_dir, download=False)
    x, labels = ds.scaled("train", dtype, train_samples)  # a prefix: only it is scaled
    x_test, test_labels = ds.scaled("test", dtype)
    return TaskData(ds.name, x, one_hot(labels, 10, dtype), x_test, test_labels,
                    len(ds.y_train))


def score(task: str, y_true: np.ndarray, y_pred: np.ndarray) -> dict:
    """The task's metrics; mnist's y_true are labels, the others' are bit rows."""
    if task == "mnist":
        return metrics.classification_report(y_true, y_pred)
    return {"accuracy": metrics.exact_matches(y_true, y_pred) / len(y_true),
            "bit_accuracy": float(metrics.bit_accuracy(y_true, y_pred).mean())}


def target_reached(cfg: TaskConfig, y_true: np.ndarray, y_pred: np.ndarray) -> bool:
    if cfg.task == "mnist":
        return float((y_pred.argmax(axis=1) == y_true).mean()) >= cfg.target_accuracy
    return metrics.exact_matches(y_true, y_pred) == len(y_true)
