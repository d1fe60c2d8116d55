"""SGD and Adam with Keras 3's exact update formulas, so trajectories can match.

Keras keeps the learning rate in a float32 variable, and on TensorFlow casts the
momentum and the betas through float32 too (0.9 becomes 0.8999999762). ``keras_value``
rounds them the same way, so that float64 trajectories agree to 1e-10, not 1e-7.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from functools import lru_cache

import numpy as np


@lru_cache(maxsize=64)
def keras_value(x: float) -> float:
    """x as Keras' optimizer uses it: rounded to float32."""
    return float(np.float32(x))


class Optimizer(ABC):
    name: str

    def __init__(self, learning_rate: float):
        if not learning_rate > 0:
            raise ValueError(f"learning_rate must be positive, got {learning_rate}.")
        self.learning_rate = float(learning_rate)
        self.iterations = 0

    def gradient_scale(self) -> float:
        """A factor the model may fold into the gradients it computes (see ``apply``)."""
        return 1.0

    def apply(self, params: list[np.ndarray], grads: list[np.ndarray],
              scaled: bool = False) -> None:
        """Update every parameter in place from its gradient.

        ``scaled``: the gradients come already multiplied by ``gradient_scale()``.
        """
        # Scaled gradients already hold the learning rate (SGD); converting it costs time.
        lr = None if scaled else params[0].dtype.type(keras_value(self.learning_rate))
        for i, (p, g) in enumerate(zip(params, grads, strict=True)):
            self.update(i, p, g, lr, scaled)
        self.iterations += 1

    @abstractmethod
    def update(self, i: int, p: np.ndarray, g: np.ndarray, lr: np.generic | None,
               scaled: bool) -> None:
        """Update parameter number i in place; ``lr`` is the learning rate in p's dtype
        (None when ``scaled``)."""

    def get_config(self) -> dict:
        return {"name": self.name, "learning_rate": self.learning_rate}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v}" for k, v in self.get_config().items() if k != "name")
        return f"{self.name}({args})"


class SGD(Optimizer):
    """w -= lr g; with momentum m = mu m - lr g, then w += m (or mu m - lr g for Nesterov)."""

    name = "sgd"

    def __init__(self, learning_rate: float = 0.01, momentum: float = 0.0, nesterov: bool = False):
        super().__init__(learning_rate)
        if not 0 <= momentum <= 1:
            raise ValueError(f"momentum must lie in [0, 1], got {momentum}.")
        self.momentum, self.nesterov = float(momentum), bool(nesterov)
        self.velocities: dict[int, np.ndarray] = {}

    def gradient_scale(self) -> float:
        # The update is linear in lr * g, so the model can compute lr * g directly.
        return keras_value(self.learning_rate)

    def update(self, i, p, g, lr, scaled):
        step = g if scaled else g * lr  # lr * g
        if self.momentum == 0:
            p -= step
            return
        mu = p.dtype.type(keras_value(self.momentum))
        m = self.velocities.setdefault(i, np.zeros_like(p))
        m *= mu
        m -= step
        if self.nesterov:
            p += mu * m - step
        else:
            p += m

    def get_config(self):
        return {**super().get_config(), "momentum": self.momentum, "nesterov": self.nesterov}


class Adam(Optimizer):
    """Keras' Adam: epsilon is added to sqrt(v), and the bias corrections fold into the step."""

    name = "adam"

    def __init__(self, learning_rate: float = 0.001, beta_1: float = 0.9, beta_2: float = 0.999,
                 epsilon: float = 1e-7):
        super().__init__(learning_rate)
        self.beta_1, self.beta_2, self.epsilon = float(beta_1), float(beta_2), float(epsilon)
        self.moments: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def update(self, i, p, g, lr, scaled):
        t = self.iterations + 1
        beta_1_power, beta_2_power = keras_value(self.beta_1) ** t, keras_value(self.beta_2) ** t
        alpha = float(lr) * np.sqrt(1 - beta_2_power) / (1 - beta_1_power)
        m, v = self.moments.setdefault(i, (np.zeros_like(p), np.zeros_like(p)))
        m += (g - m) * p.dtype.type(1 - self.beta_1)
        v += (g * g - v) * p.dtype.type(1 - self.beta_2)
        p -= p.dtype.type(alpha) * m / (np.sqrt(v) + p.dtype.type(self.epsilon))

    def get_config(self):
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2,
                "epsilon": self.epsilon}


OPTIMIZERS = {cls.name: cls for cls in (SGD, Adam)}


def get(identifier: str | dict | Optimizer) -> Optimizer:
    """An optimizer from a Keras name ('sgd', 'adam'), a config dict or an instance."""
    if isinstance(identifier, Optimizer):
        return identifier
    config = dict(identifier) if isinstance(identifier, dict) else {"name": identifier}
    name = str(config.pop("name")).lower()
    if name not in OPTIMIZERS:
        raise ValueError(f"Unknown optimizer {name!r}; choose one of {sorted(OPTIMIZERS)}.")
    return OPTIMIZERS[name](**config)
