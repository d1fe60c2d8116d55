"""Losses as Keras defines them, each with its gradient.

Keras reduces a loss with "sum_over_batch_size": the per-sample losses of a batch
of ``n`` are averaged. So ``gradient`` returns dL/dY_pred of that *mean*, shape
``(n, K)``; row i is the vector dL/dS_i that the jacobian mode chains.

Probabilities are clipped to [eps, 1 - eps] (Keras' ``epsilon()`` = 1e-7) when a
value is computed, as Keras does. Gradients are the textbook formulas the blog's
chain rule writes, except that a probability they divide by is floored at the
dtype's smallest normal number: where a softmax output underflows to exactly 0,
-y/S would be infinite and the jacobian mode would chain it into NaN. Above that
floor nothing changes, and the jacobian mode equals the shortcut.

Keras itself, given the output of a softmax (sigmoid) layer, computes the
cross-entropy from that layer's logits and clips nothing. The cross-entropies
here do the same through ``per_sample_from_logits``, and ``delta_from_logits`` is
the fused gradient dL/dZ of the shortcut: (S - y) / n. Their ``scale`` multiplies
the gradient (the model folds SGD's learning rate in there).

Predictions may carry leading axes (a stack of networks, ``scratch.seeds``): a
batch's samples are always the second-to-last axis, its outputs the last.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

EPSILON = 1e-7


def _clip(p: np.ndarray) -> np.ndarray:
    return np.clip(p, EPSILON, 1 - EPSILON)


def _floor(p: np.ndarray) -> np.ndarray:
    """p, but never below the smallest normal number: what a gradient may divide by."""
    return np.maximum(p, np.finfo(p.dtype).tiny)


class Loss(ABC):
    name: str
    logits_activation: str | None = None  # the output activation this loss fuses with

    def __call__(self, y_true: np.ndarray, y_pred: np.ndarray) -> float:
        """The batch loss: the mean of the per-sample losses."""
        return float(np.mean(self.per_sample(y_true, y_pred)))

    @abstractmethod
    def per_sample(self, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        """Loss of every sample, (n,)."""

    @abstractmethod
    def gradient(self, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        """dL/dY_pred of the batch mean, (n, K)."""

    def value_and_gradient(self, y_true: np.ndarray, y_pred: np.ndarray, scale: float = 1.0
                           ) -> tuple[float, np.ndarray]:
        """The loss, and its gradient multiplied by ``scale``."""
        grad = self.gradient(y_true, y_pred)
        return self(y_true, y_pred), grad if scale == 1 else grad * grad.dtype.type(scale)

    def value_from_logits(self, y_true: np.ndarray, z: np.ndarray) -> float:
        """The batch loss from the output layer's logits (for a loss that fuses)."""
        return float(np.mean(self.per_sample_from_logits(y_true, z)))

    def check(self, y_true: np.ndarray, y_pred: np.ndarray) -> None:
        if y_true.shape != y_pred.shape:
            raise ValueError(
                f"{self.name}: targets have shape {y_true.shape} but predictions have shape "
                f"{y_pred.shape}; they must match (one-hot encode class labels, or use "
                "sparse_categorical_crossentropy)."
            )

    def __repr__(self) -> str:
        return self.name


class MeanSquaredError(Loss):
    name = "mean_squared_error"

    def __call__(self, y_true, y_pred):
        return self.value_and_gradient(y_true, y_pred)[0]

    def value_and_gradient(self, y_true, y_pred, scale=1.0):
        # One difference serves both. The mean over samples of per-sample means is the
        # mean over all entries.
        d = y_pred - y_true
        value = float(np.vdot(d, d)) / d.size
        d *= d.dtype.type(2 * scale / (d.shape[-2] * d.shape[-1]))  # a stack: per network
        return value, d

    def per_sample(self, y_true, y_pred):
        d = y_pred - y_true
        return np.add.reduce(d * d, axis=-1) / d.shape[-1]  # np.mean's arithmetic, faster

    def gradient(self, y_true, y_pred):
        n, k = y_pred.shape[-2:]
        return 2 * (y_pred - y_true) / (n * k)


class BinaryCrossentropy(Loss):
    name = "binary_crossentropy"
    logits_activation = "sigmoid"

    def per_sample(self, y_true, y_pred):
        p = _clip(y_pred)
        return -np.mean(y_true * np.log(p) + (1 - y_true) * np.log(1 - p), axis=-1)

    def gradient(self, y_true, y_pred):
        n, k = y_pred.shape[-2:]
        return (y_pred - y_true) / _floor(y_pred * (1 - y_pred)) / (n * k)

    def per_sample_from_logits(self, y_true, z):
        # max(z, 0) - z y + log(1 + exp(-|z|)): TensorFlow's overflow-free form.
        return np.mean(np.maximum(z, 0) - z * y_true + np.log1p(np.exp(-np.abs(z))), axis=-1)

    def delta_from_logits(self, y_true, s, scale=1.0):
        n, k = s.shape[-2:]
        return (s - y_true) * s.dtype.type(scale / (n * k))


class CategoricalCrossentropy(Loss):
    """-sum(y log S). Keras also divides S by its sum, the identity for softmax outputs."""

    name = "categorical_crossentropy"
    logits_activation = "softmax"

    def per_sample(self, y_true, y_pred):
        return -np.sum(y_true * np.log(_clip(y_pred)), axis=-1)

    def gradient(self, y_true, y_pred):
        return -y_true / _floor(y_pred) / y_pred.shape[-2]

    def per_sample_from_logits(self, y_true, z):
        return -np.sum(y_true * log_softmax(z), axis=-1)

    def value_from_logits(self, y_true, z):
        return -float(np.vdot(y_true, log_softmax(z))) / len(z)  # one call, not four

    def delta_from_logits(self, y_true, s, scale=1.0):
        return (s - y_true) * s.dtype.type(scale / s.shape[-2])


class SparseCategoricalCrossentropy(Loss):
    """Categorical cross-entropy with integer labels (n,) instead of one-hot rows."""

    name = "sparse_categorical_crossentropy"
    logits_activation = "softmax"

    def check(self, y_true, y_pred):
        if y_true.shape != y_pred.shape[:1]:
            raise ValueError(
                f"{self.name}: labels have shape {y_true.shape} but predictions have shape "
                f"{y_pred.shape}; expected labels of shape ({y_pred.shape[0]},)."
            )
        check_labels(y_true, y_pred.shape[1])

    def per_sample(self, y_true, y_pred):
        return -np.log(_clip(y_pred[..., np.arange(y_pred.shape[-2]), y_true]))

    def gradient(self, y_true, y_pred):
        return CategoricalCrossentropy().gradient(one_hot(y_true, y_pred.shape[1]), y_pred)

    def per_sample_from_logits(self, y_true, z):
        return -log_softmax(z)[..., np.arange(z.shape[-2]), y_true]

    def delta_from_logits(self, y_true, s, scale=1.0):
        delta = s.copy()
        delta[..., np.arange(s.shape[-2]), y_true] -= 1
        delta *= s.dtype.type(scale / s.shape[-2])
        return delta


def log_softmax(z: np.ndarray) -> np.ndarray:
    shifted = z - z.max(axis=-1, keepdims=True)
    return shifted - np.log(np.sum(np.exp(shifted), axis=-1, keepdims=True))


def check_labels(labels: np.ndarray, num_classes: int) -> None:
    if not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"Class labels must be integers, got dtype {labels.dtype}.")
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(
            f"Class labels must lie in [0, {num_classes - 1}]; "
            f"got values from {labels.min()} to {labels.max()}."
        )


def one_hot(labels: np.ndarray, num_classes: int, dtype="float32") -> np.ndarray:
    """Integer labels (n,) to one-hot rows (n, num_classes), like keras.utils.to_categorical."""
    labels = np.asarray(labels)
    check_labels(labels, num_classes)
    return np.eye(num_classes, dtype=dtype)[labels]


LOSSES = {
    cls.name: cls
    for cls in (MeanSquaredError, BinaryCrossentropy, CategoricalCrossentropy,
                SparseCategoricalCrossentropy)
}
ALIASES = {"mse": "mean_squared_error"}


def get(identifier: str | Loss) -> Loss:
    """A loss from a Keras name ('mean_squared_error', 'mse', ...) or an instance."""
    if isinstance(identifier, Loss):
        return identifier
    name = ALIASES.get(identifier, identifier)
    if name not in LOSSES:
        raise ValueError(f"Unknown loss {identifier!r}; choose one of {sorted(LOSSES)}.")
    return LOSSES[name]()
