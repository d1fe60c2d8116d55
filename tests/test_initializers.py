"""The initializers' distributions, as Keras defines them, on large samples."""

import numpy as np
import pytest

from scratch import initializers


def test_he_normal_is_a_normal_of_variance_2_over_fan_in_truncated_at_two_sigma():
    fan_in, fan_out = 400, 250
    w = initializers.he_normal((fan_in, fan_out), np.random.default_rng(0))
    assert w.dtype == np.float32 and w.shape == (fan_in, fan_out)
    # Keras' scale: the untruncated normal's sigma is sqrt(2 / fan_in) / 0.8796..., the
    # standard deviation of a unit normal truncated to [-2, 2]; so the result's is sqrt(2 / fan_in).
    sigma = np.sqrt(2 / fan_in) / 0.87962566103423978
    assert np.abs(w).max() <= 2 * sigma * (1 + 1e-6)
    assert np.abs(w).max() > 1.9 * sigma  # truncated at 2 sigma, not before
    assert w.std() == pytest.approx(np.sqrt(2 / fan_in), rel=0.01)
    assert abs(w.mean()) < 5 * w.std() / np.sqrt(w.size)
    # Small kernels too: each is truncated, whether or not its first draw went beyond 3 sigma.
    rng = np.random.default_rng(1)
    small = np.stack([initializers.he_normal((4, 3), rng) for _ in range(300)])
    assert np.abs(small).max() <= 2 * np.sqrt(2 / 4) / 0.87962566103423978 * (1 + 1e-6)
    # Every redrawn value is drawn on its own (float32 repeats a few values by chance).
    assert np.unique(w, return_counts=True)[1].max() < 10


def test_glorot_uniform_and_uniform_bounds():
    rng = np.random.default_rng(0)
    w = initializers.glorot_uniform((300, 100), rng)
    limit = np.sqrt(6 / 400)
    assert w.dtype == np.float32 and np.abs(w).max() <= limit and np.abs(w).max() > 0.99 * limit
    assert initializers.uniform((2, 2), rng).dtype == np.float32  # the default
    assert initializers.uniform((2, 2), rng, "float32").dtype == np.float32
    u = initializers.uniform((300, 100), rng, "float64")
    assert u.dtype == np.float64 and np.abs(u).max() <= 1 and np.abs(u).max() > 0.99
    b = initializers.glorot_uniform((500,), rng)  # a bias: fan_in = fan_out = its length
    assert np.abs(b).max() <= np.sqrt(6 / 1000) and np.abs(b).max() > 0.95 * np.sqrt(6 / 1000)
    assert initializers.zeros((3,)).dtype == np.float32 and not initializers.zeros((3,)).any()
