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


def closed_form_from_logits(name: str, y_true: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Per-sample losses by the textbook formulas in extended precision, where exp(+-90) is
    finite: written apart from the library's overflow-free forms, so the comparison is not
    circular."""
    z = z.astype(np.longdouble)
    if name == "binary_crossentropy":  # -[y log s + (1 - y) log(1 - s)], s = 1/(1 + e^-z)
        return np.mean(y_true * np.log1p(np.exp(-z)) + (1 - y_true) * np.log1p(np.exp(z)),
                       axis=1)
    log_sum = np.log(np.exp(z).sum(axis=1))
    labels = y_true if name == "sparse_categorical_crossentropy" else y_true.argmax(axis=1)
    return log_sum - z[np.arange(len(z)), labels]


@pytest.mark.parametrize("name", ["binary_crossentropy", "categorical_crossentropy",
                                  "sparse_categorical_crossentropy"])
def test_loss_value_from_logits_is_the_mean_of_the_per_sample_losses(name, twins):
    import keras

    loss = losses.get(name)
    z = rng.normal(scale=30, size=(6, 3))  # large logits: softmax outputs underflow
    y_true = _targets(name, 6, 3)
    value = loss.value_from_logits(y_true, z)
    per_sample = closed_form_from_logits(name, y_true, z)
    # atol: where a sample's loss is near 0, float64's rounding of the log-sum is absolute.
    np.testing.assert_allclose(loss.per_sample_from_logits(y_true, z), per_sample, rtol=1e-12,
                               atol=1e-15)
    assert value == pytest.approx(float(np.mean(per_sample)), rel=1e-12)
    keras_loss = {"binary_crossentropy": keras.losses.BinaryCrossentropy,
                  "categorical_crossentropy": keras.losses.CategoricalCrossentropy,
                  "sparse_categorical_crossentropy": keras.losses.SparseCategoricalCrossentropy}
    expected = keras_loss[name](from_logits=True)(y_true, z).numpy()
    assert value == pytest.approx(float(expected), rel=1e-6)


def closed_form_value_and_gradient(name, y_true, p):
    """Each loss and its gradient as the textbooks write them, for n samples of K outputs."""
    n, k = p.shape
    if name == "sparse_categorical_crossentropy":
        name, y_true = "categorical_crossentropy", np.eye(k)[y_true]
    if name == "mean_squared_error":
        return np.mean((p - y_true) ** 2), 2 * (p - y_true) / (n * k)
    if name == "binary_crossentropy":
        value = -np.mean(y_true * np.log(p) + (1 - y_true) * np.log(1 - p))
        return value, (p - y_true) / (p * (1 - p)) / (n * k)
    return -np.sum(y_true * np.log(p)) / n, -y_true / p / n


@pytest.mark.parametrize("name", sorted(losses.LOSSES))
def test_value_and_gradient_against_closed_forms(name):
    """The value, and the gradient times ``scale`` (1 when not given), for every loss."""
    loss = losses.get(name)
    p = rng.uniform(0.1, 0.9, (4, 3))
    y_true = _targets(name, 4, 3)
    value, grad = closed_form_value_and_gradient(name, y_true, p)
    for scale, args in ((1.0, ()), (0.25, (0.25,)), (2.0, (2.0,))):
        got_value, got_grad = loss.value_and_gradient(y_true, p.copy(), *args)
        assert got_value == pytest.approx(value, rel=1e-12)
        np.testing.assert_allclose(got_grad, scale * grad, rtol=1e-12)
    np.testing.assert_allclose(loss.per_sample(y_true, p).mean(), value, rtol=1e-12)


@pytest.mark.parametrize("name", ["binary_crossentropy", "categorical_crossentropy",
                                  "sparse_categorical_crossentropy"])
def test_delta_from_logits_is_s_minus_y_over_the_mean_count(name):
    """The fused dL/dZ: (S - y) / n for softmax, / (n K) for sigmoid's per-output mean."""
    loss = losses.get(name)
    s = rng.uniform(0.1, 0.9, (4, 3))
    y_true = _targets(name, 4, 3)
    y = np.eye(3)[y_true] if name.startswith("sparse") else y_true
    count = 4 * 3 if name == "binary_crossentropy" else 4
    np.testing.assert_allclose(loss.delta_from_logits(y_true, s), (s - y) / count, rtol=1e-14)
    np.testing.assert_allclose(loss.delta_from_logits(y_true, s, 0.5), (s - y) / count / 2,
                               rtol=1e-14)


def test_rows_are_shifted_by_their_own_maximum():
    """Softmax and log-softmax on rows a thousand apart: shifting by one maximum for the
    whole batch would underflow the second row to 0 (and its log to -inf)."""
    z = np.array([[0.0, 1000.0], [-1000.0, -999.0]])
    second = np.array([1, np.e]) / (1 + np.e)
    np.testing.assert_allclose(activations.get("softmax")(z), [[0, 1], second], atol=1e-300)
    np.testing.assert_allclose(losses.log_softmax(z), [[-1000, 0], np.log(second)], rtol=1e-14)


def test_softmax_derivative_is_the_stack_of_per_sample_jacobians():
    z = rng.normal(size=(3, 4))
    s = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    expected = np.stack([np.diag(row) - np.outer(row, row) for row in s])
    np.testing.assert_allclose(activations.get("softmax").derivative(z), expected, rtol=1e-12,
                               atol=1e-15)


def test_relu_and_leaky_relu_at_zero_and_in_float32():
    """f'(0) is 0 for relu and the slope for leaky_relu, as TensorFlow's gradients define
    them; results keep float32; leaky_relu's default slope is Keras' 0.2."""
    z = np.array([[-2.0, 0.0, 3.0]], dtype=np.float32)
    relu, leaky = activations.get("relu"), activations.get("leaky_relu")
    for got, expected in ((relu.derivative(z), [[0, 0, 1]]),
                          (relu.vjp(z, relu(z), np.full_like(z, 5)), [[0, 0, 5]]),
                          (leaky(z), [[-0.4, 0, 3]]),
                          (leaky.derivative(z), [[0.2, 0.2, 1]])):
        assert got.dtype == np.float32
        np.testing.assert_allclose(got, expected, rtol=1e-7)
    assert activations.get(leaky.get_config()).negative_slope == 0.2
    assert activations.get({"name": "leaky_relu", "negative_slope": 0.1}).negative_slope == 0.1
    assert repr(leaky) == "leaky_relu(0.2)"


def test_one_hot_is_float32_unless_asked():
    assert losses.one_hot(np.array([1, 0]), 3).dtype == np.float32
    assert losses.one_hot(np.array([1, 0]), 3, "float64").dtype == np.float64


def test_a_softmax_output_of_zero_gives_a_finite_float32_gradient():
    """The gradient divides by the probability, floored at float32's smallest normal
    number (float64's would underflow to 0 in float32, and -y/0 is infinite)."""
    p = np.array([[1.0, 0.0, 0.0]], dtype=np.float32)
    y = np.array([[0.0, 1.0, 0.0]], dtype=np.float32)
    grad = losses.get("categorical_crossentropy").gradient(y, p)
    assert grad.dtype == np.float32 and np.isfinite(grad).all()
    assert grad[0, 1] == np.float32(-1 / np.finfo(np.float32).tiny)


def test_sparse_labels_of_the_wrong_shape_are_named():
    with pytest.raises(ValueError, match=r"^sparse_categorical_crossentropy: labels have shape "
                       r"\(3,\) but predictions have shape \(4, 2\); expected labels of shape "
                       r"\(4,\)\.$"):
        losses.get("sparse_categorical_crossentropy").check(np.zeros(3, int), np.zeros((4, 2)))
