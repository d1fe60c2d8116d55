"""Both backprop modes against finite differences, and against each other, in float64."""

import numpy as np
import pytest

from scratch import ARCHITECTURES, MLP, Architecture, activations, losses
from tests.conftest import finite_difference, relative_error
from tests.test_activations_losses import closed_form_from_logits

FD_RTOL = 1e-6      # norm-wise relative error against central differences, h = 1e-6
MODES_ATOL = 1e-10  # max |jacobian - shortcut| over every gradient entry

NETWORKS = [
    ARCHITECTURES["xor"],
    ARCHITECTURES["reverse4"],
    ARCHITECTURES["mnist"].replace(sizes=(784, 4, 10)),  # small hidden width: small Jacobians
    Architecture("deep-bce", (3, 5, 4, 2), ("tanh", {"name": "leaky_relu", "negative_slope": 0.1},
                                           "sigmoid"), "binary_crossentropy"),
    Architecture("sparse", (6, 3, 4), ("relu", "softmax"), "sparse_categorical_crossentropy"),
    Architecture("linear-out", (5, 4, 3), ("sigmoid", "linear"), "mean_squared_error"),
    Architecture("softmax-mse", (4, 6, 5), ("tanh", "softmax"), "mean_squared_error"),
    Architecture("dropout", (5, 8, 6, 3), ("relu", "relu", "softmax"), "categorical_crossentropy",
                 dropout=0.3),
]


def make(arch: Architecture, backprop: str, n: int = 7, seed: int = 0):
    model = MLP.from_architecture(arch, backprop=backprop, dtype="float64", seed=seed,
                                  kernel_initializer="uniform", bias_initializer="uniform")
    rng = np.random.default_rng(100 + seed)
    x = rng.random((n, arch.sizes[0]))
    k = arch.sizes[-1]
    if arch.loss == "sparse_categorical_crossentropy":
        y = rng.integers(0, k, n)
    elif arch.loss == "categorical_crossentropy":
        y = losses.one_hot(rng.integers(0, k, n), k, "float64")
    else:
        y = rng.integers(0, 2, (n, k)).astype("float64")
    return model, x, y


def same_dropout_masks(model: MLP, seed: int = 7) -> None:
    """Reseed the dropout masks so every forward pass draws the same ones."""
    model.rng = np.random.default_rng(seed)
    for layer in model.layers:
        if hasattr(layer, "rate"):
            layer.rng = model.rng


@pytest.mark.parametrize("backprop", ["shortcut", "jacobian"])
@pytest.mark.parametrize("arch", NETWORKS, ids=lambda a: a.name)
def test_network_gradient_matches_finite_differences(arch, backprop):
    model, x, y = make(arch, backprop)

    def loss():
        same_dropout_masks(model)
        return model.loss(y, model.forward(x, training=True))

    same_dropout_masks(model)
    _, analytic = model.gradients(x, y)
    params = [p for layer in model.dense for p in layer.params]
    numeric = finite_difference(loss, params)
    for name, a, b in zip(_names(model), analytic, numeric):
        assert relative_error(a, b) < FD_RTOL, f"{name} diverged from finite differences"


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("arch", NETWORKS, ids=lambda a: a.name)
def test_jacobian_and_shortcut_give_equal_gradients(arch, seed):
    short, x, y = make(arch, "shortcut", seed=seed)
    jac, _, _ = make(arch, "jacobian", seed=seed)
    same_dropout_masks(short)
    loss_s, grads_s = short.gradients(x, y)
    same_dropout_masks(jac)
    loss_j, grads_j = jac.gradients(x, y)
    same_dropout_masks(short)  # the loss of the plain forward pass, through no backprop code
    s = short.forward(x, training=True)
    expected = (np.mean(closed_form_from_logits(arch.loss, y, short.dense[-1].z)) if short.fused
                else short.loss(y, s))
    assert loss_s == pytest.approx(expected, rel=1e-12)
    assert loss_j == pytest.approx(expected, rel=1e-12)
    for name, a, b in zip(_names(short), grads_s, grads_j):
        assert np.abs(a - b).max() <= MODES_ATOL, f"{name} differs between the modes"


def test_full_size_architectures_agree_between_modes():
    """The three task architectures at their real sizes (MNIST on 2 samples: 1.5 GiB of
    float64 Jacobian per sample is what the jacobian mode costs)."""
    for arch in ARCHITECTURES.values():
        short, x, y = make(arch, "shortcut", n=2)
        jac, _, _ = make(arch, "jacobian", n=2)
        _, grads_s = short.gradients(x, y)
        _, grads_j = jac.gradients(x, y)
        for name, a, b in zip(_names(short), grads_s, grads_j):
            assert np.abs(a - b).max() <= MODES_ATOL, f"{arch.name}: {name} differs"


def test_modes_train_to_equal_weights():
    a, x, y = make(ARCHITECTURES["reverse4"], "shortcut")
    b, _, _ = make(ARCHITECTURES["reverse4"], "jacobian")
    for _ in range(20):
        a.train_step(x, y)
        b.train_step(x, y)
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_allclose(wa, wb, rtol=0, atol=1e-12)


def _names(model: MLP) -> list[str]:
    return [f"{p}{i + 1}" for i in range(len(model.dense)) for p in ("dL/dW", "dL/db")]


class DoubledJacobian(activations.Tanh):
    """tanh with a wrong explicit Jacobian, twice the true one; its vjp stays right. Only
    the jacobian mode uses ``jacobian``, and only the shortcut uses ``vjp``."""

    def jacobian(self, z):
        return 2 * super().jacobian(z)


@pytest.mark.parametrize("backprop", ["shortcut", "jacobian"])
def test_each_mode_follows_its_own_path(backprop):
    """The gradients upstream of the doubled Jacobian double in the jacobian mode, and only
    there: a jacobian mode that fell back to the shortcut, or whose chain the shortcut then
    overwrote, fails here; so does a shortcut that used the Jacobian."""
    kwargs = {"dtype": "float64", "seed": 0, "kernel_initializer": "uniform"}
    model = MLP((3, 4, 2), (DoubledJacobian(), "sigmoid"), "mean_squared_error",
                backprop=backprop, **kwargs)
    plain = MLP((3, 4, 2), ("tanh", "sigmoid"), "mean_squared_error", **kwargs)
    rng = np.random.default_rng(1)
    x, y = rng.random((5, 3)), rng.random((5, 2))
    _, (dW1, db1, dW2, db2) = model.gradients(x, y)
    _, (tW1, tb1, tW2, tb2) = plain.gradients(x, y)  # the true gradients
    factor = 2 if backprop == "jacobian" else 1
    np.testing.assert_allclose(dW2, tW2, rtol=1e-12)  # downstream of it: unchanged
    np.testing.assert_allclose(db2, tb2, rtol=1e-12)
    np.testing.assert_allclose(dW1, factor * tW1, rtol=1e-12)
    np.testing.assert_allclose(db1, factor * tb1, rtol=1e-12)
