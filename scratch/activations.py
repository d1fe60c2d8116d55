"""Activation functions, their derivatives and their Jacobians.

Each activation maps pre-activations ``Z: (n, K)`` to ``A: (n, K)``. Three
views of its derivative serve the two backprop modes:

- ``derivative(z)``: f'(z) elementwise (softmax has none: it mixes its inputs);
- ``vjp(z, a, grad)``: dL/dZ from dL/dA for a whole batch, in closed form;
- ``jacobian(z)``: the full (K, K) matrix dA/dZ of one sample, even when it is
  diagonal, because the jacobian mode multiplies whole matrices.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from functools import lru_cache

import numpy as np


class Activation(ABC):
    """An elementwise activation: subclasses define ``__call__`` and ``derivative``."""

    name: str

    @abstractmethod
    def __call__(self, z: np.ndarray) -> np.ndarray:
        """f(z), elementwise."""

    @abstractmethod
    def derivative(self, z: np.ndarray) -> np.ndarray:
        """f'(z), elementwise."""

    def vjp(self, z: np.ndarray, a: np.ndarray, grad: np.ndarray) -> np.ndarray:
        return grad * self.derivative(z)

    def jacobian(self, z: np.ndarray) -> np.ndarray:
        return np.diag(self.derivative(z))

    def get_config(self) -> dict:
        return {"name": self.name}

    def __repr__(self) -> str:
        return self.name


class Linear(Activation):
    name = "linear"

    def __call__(self, z):
        return z

    def derivative(self, z):
        return np.ones_like(z)


class Sigmoid(Activation):
    name = "sigmoid"

    def __call__(self, z):
        # 1 / (1 + exp(-z)) = (1 + tanh(z / 2)) / 2, which never overflows. The constants
        # are 0-d arrays of z's dtype: NumPy applies those faster than Python floats.
        half, one = _constants(z.dtype)
        s = np.multiply(z, half)
        np.tanh(s, out=s)
        s += one
        s *= half
        return s

    def derivative(self, z):
        s = self(z)
        return s * (1 - s)

    def vjp(self, z, a, grad):
        dz = _constants(a.dtype)[1] - a  # grad * a * (1 - a), in one new array
        dz *= a
        dz *= grad
        return dz


@lru_cache(maxsize=4)
def _constants(dtype: np.dtype) -> tuple[np.ndarray, np.ndarray]:
    """0.5 and 1 as 0-d arrays of ``dtype``."""
    return np.array(0.5, dtype), np.array(1, dtype)


class Tanh(Activation):
    name = "tanh"

    def __call__(self, z):
        return np.tanh(z)

    def derivative(self, z):
        return 1 - np.tanh(z) ** 2


class ReLU(Activation):
    name = "relu"

    def __call__(self, z):
        return np.maximum(z, 0)

    def derivative(self, z):
        # f'(0) = 0, as TensorFlow defines it.
        return (z > 0).astype(z.dtype)

    def vjp(self, z, a, grad):
        return grad * (z > 0)  # the boolean mask multiplies as 0/1, with no float copy


class LeakyReLU(Activation):
    """max(z, slope * z); Keras' default slope is 0.2, the blog's notebook used 0.1."""

    name = "leaky_relu"

    def __init__(self, negative_slope: float = 0.2):
        self.negative_slope = float(negative_slope)

    def __call__(self, z):
        return np.where(z > 0, z, z * z.dtype.type(self.negative_slope))

    def derivative(self, z):
        return np.where(z > 0, 1, self.negative_slope).astype(z.dtype)

    def get_config(self):
        return {"name": self.name, "negative_slope": self.negative_slope}

    def __repr__(self):
        return f"leaky_relu({self.negative_slope:g})"


class Softmax(Activation):
    name = "softmax"

    def __call__(self, z):
        # Shifting by the row maximum changes nothing but keeps exp() finite.
        e = np.exp(z - z.max(axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True)

    def derivative(self, z):
        """The stack of per-sample Jacobians, (n, K, K)."""
        return np.stack([self.jacobian(row) for row in np.atleast_2d(z)])

    def vjp(self, z, a, grad):
        # grad @ (diag(S) - S S^T) for every row at once, never forming the K x K matrix.
        return a * (grad - np.sum(grad * a, axis=-1, keepdims=True))

    def jacobian(self, z):
        s = self(z)
        return np.diag(s) - np.outer(s, s)


ACTIVATIONS = {cls.name: cls for cls in (Linear, Sigmoid, Tanh, ReLU, LeakyReLU, Softmax)}


def get(identifier: str | dict | Activation | None) -> Activation:
    """An activation from a Keras name ('relu'), a config dict or an instance."""
    if isinstance(identifier, Activation):
        return identifier
    config = dict(identifier) if isinstance(identifier, dict) else {"name": identifier or "linear"}
    name = config.pop("name")
    if name not in ACTIVATIONS:
        raise ValueError(f"Unknown activation {name!r}; choose one of {sorted(ACTIVATIONS)}.")
    return ACTIVATIONS[name](**config)
