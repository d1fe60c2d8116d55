"""Dense and Dropout at their edges: dtypes kept, dL/dx returned only when asked, and
Dropout as the identity wherever it does not drop."""

import numpy as np
import pytest

from scratch import activations
from scratch.layers import Dense, Dropout, _dz_dw

rng = np.random.default_rng(0)


def dense(dtype="float32"):
    return Dense(rng.standard_normal((3, 2)).astype(dtype), np.zeros(2, dtype),
                 activations.get("sigmoid"))


def test_dz_dw_is_kron_of_x_and_the_identity_in_xs_dtype():
    x = np.array([1.0, 2.0, 3.0], dtype=np.float32)
    got = _dz_dw(x, 2)
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, np.kron(x, np.eye(2)))


def test_repr():
    assert repr(dense()) == "Dense(3->2, sigmoid)"
    assert repr(Dropout(0.25, rng)) == "Dropout(0.25)"


def test_a_fresh_dropout_passes_gradients_through():
    grad = rng.random((2, 3))
    np.testing.assert_array_equal(Dropout(0.5, rng).backward(grad), grad)


def test_backward_jacobian_returns_dl_dx_unless_told_not_to():
    layer = dense()
    layer.forward(rng.standard_normal((4, 3)).astype("float32"))
    grad = np.ones((1, 2), dtype="float32")
    dx = layer.backward_jacobian(grad, 0)  # input_grad defaults to True
    z = layer.z[0]
    s = 1 / (1 + np.exp(-z))
    np.testing.assert_allclose(dx, (grad * s * (1 - s)) @ layer.kernel.T, rtol=1e-5, atol=1e-7)
    assert dx.dtype == np.float32
    assert layer.backward_jacobian(grad, 0, input_grad=False) is None
    assert layer.backward(grad, input_grad=False) is None


@pytest.mark.parametrize("rate", [0.0, 0.5])
def test_dropout_is_the_identity_at_inference_and_at_rate_zero(rate):
    x = rng.random((4, 5)).astype("float32")
    grad = rng.random((4, 5)).astype("float32")
    layer = Dropout(rate, np.random.default_rng(1))
    for training in ([False, True] if rate == 0 else [False]):
        np.testing.assert_array_equal(layer.forward(x, training), x)
        np.testing.assert_array_equal(layer.backward(grad), grad)
        np.testing.assert_array_equal(layer.backward_jacobian(grad[1:2], 1), grad[1:2])
    np.testing.assert_array_equal(layer.forward(x), x)  # training defaults to False


def test_dropout_keeps_float32_and_its_jacobian_is_the_mask():
    x = np.ones((4, 5), dtype="float32")
    layer = Dropout(0.5, np.random.default_rng(1))
    out = layer.forward(x, training=True)
    assert out.dtype == np.float32
    assert set(np.unique(out)) == {0.0, 2.0}
    grad = rng.random((1, 5)).astype("float32")
    np.testing.assert_allclose(layer.backward_jacobian(grad, 2), grad * out[2], rtol=1e-7)


@pytest.mark.parametrize("rate", [-0.1, 1.0])
def test_dropout_refuses_a_rate_outside_0_1(rate):
    with pytest.raises(ValueError, match=r"Dropout rate must lie in \[0, 1\)"):
        Dropout(rate, rng)


def test_dense_backward_by_default_returns_dl_dx_and_fills_the_gradients():
    layer = dense("float64")
    kernel = layer.kernel.copy()
    x = rng.standard_normal((4, 3))
    layer.forward(x)
    grad = rng.standard_normal((4, 2))
    dx = layer.backward(grad)  # input_grad defaults to True
    s = layer.a
    dz = grad * s * (1 - s)
    np.testing.assert_allclose(dx, dz @ kernel.T, atol=1e-14)
    np.testing.assert_allclose(layer.grads[0], x.T @ dz, atol=1e-14)
    np.testing.assert_array_equal(layer.kernel, kernel)  # not updated
