"""The compiled engine (scratch/compiled.py) is scratch's network: what tests/test_peers.py
does not reach (its hyperparameters are exact in float32), in float64 against scratch.MLP.
Numba compiles once into its cache on disk (make does it as it installs)."""

import numpy as np
import pytest

from scratch import MLP, TrainingDiverged
from scratch.compiled import CompiledMLP

RNG = np.random.default_rng(7)
X = RNG.random((12, 5))


def pair(activations, loss, optimizer="sgd", sizes=(5, 4, 3)):
    reference = MLP(sizes, activations, loss, optimizer, dtype="float64", seed=2)
    compiled = CompiledMLP(sizes, activations, loss, optimizer, dtype="float64", seed=2)
    return reference, compiled


def targets(loss, k=3):
    if loss == "categorical_crossentropy":
        return np.eye(k)[RNG.integers(0, k, len(X))]
    return RNG.integers(0, 2, (len(X), k)).astype("float64")


@pytest.mark.parametrize("activations, loss", [
    (["tanh", "sigmoid"], "binary_crossentropy"),       # the fused sigmoid cross-entropy
    ([{"name": "leaky_relu", "negative_slope": 0.3}, "softmax"], "mean_squared_error"),
    (["linear", "softmax"], "categorical_crossentropy"),
    (["relu", "linear"], "mean_squared_error"),
])
def test_every_activation_and_loss_gives_scratchs_outputs_loss_and_gradients(activations, loss):
    reference, compiled = pair(activations, loss)
    y = targets(loss)
    np.testing.assert_allclose(compiled.predict(X), reference.predict(X), rtol=0, atol=1e-14)
    (want, want_grads), (got, got_grads) = reference.gradients(X, y), compiled.gradients(X, y)
    assert got == pytest.approx(want, rel=1e-13)
    for g, w in zip(got_grads, want_grads, strict=True):
        np.testing.assert_allclose(g, w, rtol=0, atol=1e-14)
    assert compiled.evaluate(X, y, batch_size=5) == pytest.approx(
        reference.evaluate(X, y, batch_size=5), rel=1e-13)


@pytest.mark.parametrize("optimizer", [
    {"name": "sgd", "learning_rate": 0.01},
    {"name": "sgd", "learning_rate": 0.05, "momentum": 0.9, "nesterov": True},
    {"name": "adam"},  # 0.001, 0.9, 0.999: none exact in float32, as Keras rounds them
])
def test_keras_rounded_hyperparameters_train_as_scratch(optimizer):
    reference, compiled = pair(["sigmoid", "sigmoid"], "mean_squared_error", optimizer)
    y = targets("mean_squared_error")
    want = reference.fit(X, y, epochs=30, batch_size=5).history["loss"]
    got = compiled.fit(X, y, epochs=30, batch_size=5).history["loss"]  # the same orders
    np.testing.assert_allclose(got, want, rtol=1e-12)
    for g, w in zip(compiled.get_weights(), reference.get_weights(), strict=True):
        np.testing.assert_allclose(g, w, rtol=0, atol=1e-12)


def test_a_diverged_fit_raises_with_the_epochs_before_it():
    _, compiled = pair(["sigmoid", "sigmoid"], "mean_squared_error")
    x = X.copy()
    x[7, 2] = np.nan
    with pytest.raises(TrainingDiverged, match="at epoch 0") as caught:
        compiled.fit(x, targets("mean_squared_error"), epochs=3, batch_size=4, shuffle=False)
    assert caught.value.history.history["loss"] == []


def test_bad_batches_and_orders_are_refused_by_name():
    _, compiled = pair(["sigmoid", "sigmoid"], "mean_squared_error")
    y = targets("mean_squared_error")
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        compiled.fit(X, y, batch_size=0)
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        compiled.predict(X, batch_size=0)
    with pytest.raises(ValueError, match="a permutation of the 12 samples"):
        compiled.fit(X, y, orders=np.full((1, 12), 99))
    with pytest.raises(ValueError, match="at least one sample"):
        compiled.fit(X[:0], y[:0])
