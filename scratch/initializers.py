"""Weight initializers, seeded through ``numpy.random.Generator``.

Each takes ``(shape, rng, dtype)``; ``shape`` is ``(fan_in, fan_out)`` for a kernel.
"""

from __future__ import annotations

import numpy as np


def _fans(shape: tuple[int, ...]) -> tuple[int, int]:
    return (shape[0], shape[1]) if len(shape) == 2 else (shape[0], shape[0])


def glorot_uniform(shape, rng: np.random.Generator, dtype="float32") -> np.ndarray:
    """Keras' default: U(-l, l) with l = sqrt(6 / (fan_in + fan_out))."""
    limit = np.sqrt(6 / sum(_fans(shape)))
    return rng.uniform(-limit, limit, shape).astype(dtype)


def uniform(shape, rng: np.random.Generator, dtype="float32") -> np.ndarray:
    """U(-1, 1), the blog's initialisation."""
    return rng.uniform(-1, 1, shape).astype(dtype)


def he_normal(shape, rng: np.random.Generator, dtype="float32") -> np.ndarray:
    """Keras' he_normal: a normal truncated at 2 standard deviations, of variance 2 / fan_in."""
    # 0.8796... is the standard deviation of a unit normal truncated to [-2, 2].
    stddev = np.sqrt(2 / _fans(shape)[0]) / 0.87962566103423978
    values = rng.standard_normal(shape)
    outside = np.abs(values) > 2
    while outside.any():
        values[outside] = rng.standard_normal(outside.sum())
        outside = np.abs(values) > 2
    return (values * stddev).astype(dtype)


def standard_normal(shape, rng: np.random.Generator, dtype="float32") -> np.ndarray:
    """N(0, 1), untruncated and unscaled (Keras' RandomNormal(0, 1))."""
    return rng.standard_normal(shape).astype(dtype)


def zeros(shape, rng: np.random.Generator | None = None, dtype="float32") -> np.ndarray:
    return np.zeros(shape, dtype=dtype)


INITIALIZERS = {f.__name__: f for f in (glorot_uniform, uniform, he_normal, standard_normal, zeros)}


def get(name: str):
    if name not in INITIALIZERS:
        raise ValueError(f"Unknown initializer {name!r}; choose one of {sorted(INITIALIZERS)}.")
    return INITIALIZERS[name]
