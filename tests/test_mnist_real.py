"""The real MNIST, from the cache that `make test` fills with `groundup data` before pytest."""

import numpy as np
import pytest

from benchmarks.data.datasets import DataError, load_mnist


@pytest.fixture(scope="module")
def mnist():
    try:
        return load_mnist(download=False)
    except DataError as err:
        pytest.fail(f"{err}\nRun `groundup data` first (`make test` does).")


def test_real_mnist_is_verified_and_laid_out_as_keras(mnist):
    assert mnist.name == "mnist" and mnist.verified == "sha256 (MNIST)"
    assert mnist.x_train.shape == (60000, 28, 28) and mnist.x_test.shape == (10000, 28, 28)
    assert mnist.x_train.dtype == mnist.y_train.dtype == np.uint8
    assert mnist.y_train[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert mnist.label_counts("test") == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def test_scaled_views(mnist):
    x, y = mnist.scaled("test", "float64")
    assert x.shape == (10000, 784) and x.dtype == np.float64 and y is mnist.y_test
    assert x.min() == 0 and x.max() == 1
    np.testing.assert_array_equal(x[0] * 255, mnist.x_test[0].ravel())
