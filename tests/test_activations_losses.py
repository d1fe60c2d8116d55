"""Every activation and loss against central finite differences, in float64."""

import numpy as np
import pytest

from scratch import activations, losses
from tests.conftest import finite_difference, relative_error

RTOL = 1e-6
rng = np.random.default_rng(0)
ACTIVATIONS = ["linear", "sigmoid", "tanh", "relu", "leaky_relu", {"name": "leaky_relu",
               "negative_slope": 0.1}, "softmax"]


@pytest.mark.parametrize("name", ACTIVATIONS, ids=str)
def test_activation_jacobian_matches_finite_differences(name):
    act = activations.get(name)
    z = rng.normal(size=6)
    assert relative_error(act.jacobian(z), numeric_jacobian(act, z)) < RTOL


def numeric_jacobian(act, z: np.ndarray) -> np.ndarray:
    """dA/dZ of one sample by central differences: independent of the activation's own
    derivative, vjp and jacobian."""
    return np.stack([(act(z + h) - act(z - h)) / 2e-6 for h in np.eye(len(z)) * 1e-6], axis=1)


@pytest.mark.parametrize("name", ACTIVATIONS, ids=str)
def test_vjp_is_grad_times_jacobian(name):
    """The shortcut's closed form equals the row vector times the Jacobian, here taken by
    finite differences, so that no activation checks its vjp against itself."""
    act = activations.get(name)
    z, grad = rng.normal(size=(4, 6)), rng.normal(size=(4, 6))
    explicit = np.stack([g @ numeric_jacobian(act, row) for g, row in zip(grad, z)])
    assert relative_error(act.vjp(z, act(z), grad), explicit) < RTOL


@pytest.mark.parametrize("name", [a for a in ACTIVATIONS if a != "softmax"], ids=str)
def test_elementwise_derivative_is_jacobian_diagonal(name):
    """f'(z) against a central difference of f, and the Jacobian is diagonal with it."""
    act = activations.get(name)
    z = rng.normal(size=5)
    numeric = (act(z + 1e-6) - act(z - 1e-6)) / 2e-6
    assert relative_error(act.derivative(z), numeric) < RTOL
    np.testing.assert_allclose(act.jacobian(z), np.diag(numeric), rtol=RTOL, atol=1e-9)


def test_softmax_jacobian_rows_sum_to_zero_and_is_symmetric():
    j = activations.get("softmax").jacobian(rng.normal(size=7))
    np.testing.assert_allclose(j.sum(axis=1), 0, atol=1e-15)
    np.testing.assert_array_equal(j, j.T)


def test_sigmoid_is_stable_for_large_inputs():
    with np.errstate(over="raise"):
        s = activations.get("sigmoid")(np.array([-1000.0, 0.0, 1000.0]))
    np.testing.assert_array_equal(s, [0.0, 0.5, 1.0])


def _targets(name, n, k):
    if name == "sparse_categorical_crossentropy":
        return rng.integers(0, k, n)
    if name == "categorical_crossentropy":
        return np.eye(k)[rng.integers(0, k, n)]
    return rng.random((n, k))


@pytest.mark.parametrize("name", sorted(losses.LOSSES))
def test_loss_gradient_matches_finite_differences(name):
    loss = losses.get(name)
    y_pred = rng.uniform(0.1, 0.9, (5, 4))  # inside the clip range, where the value is smooth
    y_true = _targets(name, 5, 4)
    numeric, = finite_difference(lambda: loss(y_true, y_pred), [y_pred])
    assert relative_error(loss.gradient(y_true, y_pred), numeric) < RTOL


@pytest.mark.parametrize("name", sorted(losses.LOSSES))
def test_loss_values_match_keras(name, twins):
    import keras

    y_pred = activations.get("softmax")(rng.normal(size=(6, 3)))
    y_pred[0] = [1.0, 0.0, 0.0]  # a saturated row: Keras' clipping decides this one
    y_true = _targets(name, 6, 3)
    expected = keras.losses.get(name)(y_true, y_pred).numpy()
    # Keras computes in float32, whose spacing near 1 is 1.2e-7: the saturated row's loss,
    # -log(1 - 1e-7), is 1e-7 here and 1e-7 or 2e-7 there, as its label falls.
    np.testing.assert_allclose(losses.get(name).per_sample(y_true, y_pred), expected, rtol=1e-6,
                               atol=2.5e-7)


def test_one_hot_and_sparse_agree():
    labels = np.array([2, 0, 1])
    s = activations.get("softmax")(rng.normal(size=(3, 3)))
    cce, scce = losses.get("categorical_crossentropy"), losses.get("sparse_categorical_crossentropy")
    assert cce(losses.one_hot(labels, 3), s) == pytest.approx(scce(labels, s))


def closed_form_from_logits(name: str, y_true: np.ndarray, z: np.ndarray) -> float:
    """The textbook formulas in extended precision, where exp(+-90) is finite: written
    apart from the library's overflow-free forms, so the comparison is not circular."""
    z = z.astype(np.longdouble)
    if name == "binary_crossentropy":  # -[y log s + (1 - y) log(1 - s)], s = 1/(1 + e^-z)
        return float(np.mean(y_true * np.log1p(np.exp(-z)) + (1 - y_true) * np.log1p(np.exp(z))))
    log_sum = np.log(np.exp(z).sum(axis=1))
    labels = y_true if name == "sparse_categorical_crossentropy" else y_true.argmax(axis=1)
    return float(np.mean(log_sum - z[np.arange(len(z)), labels]))


@pytest.mark.parametrize("name", ["binary_crossentropy", "categorical_crossentropy",
                                  "sparse_categorical_crossentropy"])
def test_loss_value_from_logits_is_the_mean_of_the_per_sample_losses(name, twins):
    import keras

    loss = losses.get(name)
    z = rng.normal(scale=30, size=(6, 3))  # large logits: softmax outputs underflow
    y_true = _targets(name, 6, 3)
    value = loss.value_from_logits(y_true, z)
    assert value == pytest.approx(closed_form_from_logits(name, y_true, z), rel=1e-12)
    keras_loss = {"binary_crossentropy": keras.losses.BinaryCrossentropy,
                  "categorical_crossentropy": keras.losses.CategoricalCrossentropy,
                  "sparse_categorical_crossentropy": keras.losses.SparseCategoricalCrossentropy}
    expected = keras_loss[name](from_logits=True)(y_true, z).numpy()
    assert value == pytest.approx(float(expected), rel=1e-6)
