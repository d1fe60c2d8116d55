"""Scratch against its Keras twin on the three task architectures.

float64: predictions, loss and tape gradients agree to 1e-10, and so do the
weights after 10 optimizer steps. float32, Keras' own path (``predict``,
``train_on_batch``): agreement to FLOAT32_ATOL, the rounding of float32
arithmetic done in a different order, accumulated over 10 steps (measured: at
most 7e-7 for SGD). Adam gets FLOAT32_ADAM_ATOL: it divides by sqrt(v) + 1e-7,
so float32 rounding in a gradient entry near zero moves the weight on the scale
of the learning rate, not of the gradient (measured: 2.4e-5 on MNIST, lr 0.01).
"""

import numpy as np
import pytest

from scratch import ARCHITECTURES, MLP
from tests.test_backprop import make

FLOAT64_ATOL = 1e-10
FLOAT32_ATOL = 1e-5
FLOAT32_ADAM_ATOL = 1e-4
OPTIMIZERS = {
    "sgd": {"name": "sgd", "learning_rate": 0.1},
    "sgd-momentum": {"name": "sgd", "learning_rate": 0.05, "momentum": 0.9},
    "sgd-nesterov": {"name": "sgd", "learning_rate": 0.05, "momentum": 0.9, "nesterov": True},
    "adam": {"name": "adam", "learning_rate": 0.01},
}
ARCHS = list(ARCHITECTURES.values())


def batches(x, y, steps=10, size=4):
    rng = np.random.default_rng(5)
    for _ in range(steps):
        idx = rng.choice(len(x), size, replace=len(x) < size)
        yield x[idx], y[idx]


def pair(arch, optimizer, dtype, twins, n=16):
    model, x, y = make(arch, "shortcut", n=n)
    model = MLP.from_architecture(arch, optimizer, dtype=dtype, seed=3)
    return model, twins.twin_of(model), x.astype(dtype), y.astype(dtype)


@pytest.mark.parametrize("arch", ARCHS, ids=lambda a: a.name)
def test_same_weights_same_predictions_and_loss(arch, twins):
    model, twin, x, y = pair(arch, "sgd", "float64", twins)
    probabilities = twins.probabilities(twin)
    np.testing.assert_allclose(probabilities(x).numpy(), model.predict(x), rtol=0,
                               atol=FLOAT64_ATOL)
    loss, _ = twins.gradients(twin, x, y)
    assert loss == pytest.approx(model.evaluate(x, y), abs=FLOAT64_ATOL)


@pytest.mark.parametrize("arch", ARCHS, ids=lambda a: a.name)
def test_same_gradients_as_gradient_tape(arch, twins):
    model, twin, x, y = pair(arch, "sgd", "float64", twins)
    _, expected = twins.gradients(twin, x, y)
    _, grads = model.gradients(x, y)
    for i, (g, e) in enumerate(zip(grads, expected)):
        np.testing.assert_allclose(g, e, rtol=0, atol=FLOAT64_ATOL, err_msg=f"gradient {i}")


@pytest.mark.parametrize("opt", OPTIMIZERS)
@pytest.mark.parametrize("arch", ARCHS, ids=lambda a: a.name)
def test_same_weights_after_ten_steps_float64(arch, opt, twins):
    model, twin, x, y = pair(arch, OPTIMIZERS[opt], "float64", twins)
    for xb, yb in batches(x, y):
        assert twins.train_step(twin, xb, yb) == pytest.approx(model.train_step(xb, yb),
                                                               abs=FLOAT64_ATOL)
    for i, (w, k) in enumerate(zip(model.get_weights(), twin.get_weights())):
        np.testing.assert_allclose(w, k, rtol=0, atol=FLOAT64_ATOL, err_msg=f"weight {i}")


@pytest.mark.parametrize("opt", OPTIMIZERS)
@pytest.mark.parametrize("arch", ARCHS, ids=lambda a: a.name)
def test_same_weights_after_ten_steps_float32_keras_path(arch, opt, twins):
    model, twin, x, y = pair(arch, OPTIMIZERS[opt], "float32", twins)
    np.testing.assert_allclose(twins.probabilities(twin).predict(x, verbose=0), model.predict(x),
                               atol=FLOAT32_ATOL)
    for xb, yb in batches(x, y):
        model.train_step(xb, yb)
        twin.train_on_batch(xb, yb)
    atol = FLOAT32_ADAM_ATOL if opt == "adam" else FLOAT32_ATOL
    for i, (w, k) in enumerate(zip(model.get_weights(), twin.get_weights())):
        np.testing.assert_allclose(w, k, rtol=0, atol=atol, err_msg=f"weight {i}")


def test_twin_has_the_same_layers_and_dropout(twins):
    model = MLP.from_architecture(ARCHITECTURES["mnist"], dropout=0.2)
    twin = twins.twin_of(model)
    assert [type(layer).__name__ for layer in twin.layers] == ["Dense", "Dropout", "Dense"]
    assert twin.layers[1].rate == model.layers[1].rate == 0.2
    assert twin.count_params() == model.count_params() == 784 * 512 + 512 + 512 * 10 + 10


def test_a_cross_entropy_twin_gives_logits_and_its_loss_takes_them(twins):
    """The softmax's cross-entropy from the logits on every backend: the last Dense is
    linear, the loss is from_logits, and the probability model shares its weights. Keras'
    default form keeps Dense(softmax) and the loss by name."""
    model = MLP.from_architecture(ARCHITECTURES["mnist"])
    twin, default = twins.twin_of(model), twins.twin_of(model, form="keras")
    assert twin.layers[-1].activation.__name__ == "linear"
    assert twin.loss.get_config()["from_logits"] is True
    shared = twins.probabilities(twin).weights  # the same variables, not copies
    assert len(shared) == len(twin.weights) == 4
    assert all(a is b for a, b in zip(shared, twin.weights, strict=True))
    assert twin.output_activation == "softmax" and default.output_activation is None
    assert default.layers[-1].activation.__name__ == "softmax"
    assert default.loss == "categorical_crossentropy"
    assert twins.probabilities(default) is default
    xor = twins.twin_of(MLP.from_architecture(ARCHITECTURES["xor"]))  # MSE: no logits form
    assert xor.layers[-1].activation.__name__ == "sigmoid" and xor.output_activation is None
    with pytest.raises(ValueError, match="No twin form"):
        twins.twin_of(model, form="softmax")
    weights = model.get_weights()
    with pytest.raises(ValueError, match=r"3 weights given for a twin of 2 layers: it takes 4"):
        twins.build(ARCHITECTURES["mnist"], weights=weights[:3])
    with pytest.raises(ValueError, match=r"shape \(10,\) given where the twin has \(512,\)"):
        twins.build(ARCHITECTURES["mnist"], weights=[weights[0], weights[3], *weights[2:]])


class Replay:
    """An rng whose ``random`` replays a given keep pattern: 1 where kept, 0 where dropped."""

    def __init__(self, keep):
        self.keep = keep

    def random(self, shape):
        assert shape == self.keep.shape
        return self.keep.astype("float64")


@pytest.mark.parametrize("rate", [0.2, 0.5])
def test_dropout_matches_keras_on_the_same_mask(rate, twins):
    """In training, Keras' Dropout and scratch's give the same output on Keras' mask: the
    survivors scaled by 1 / (1 - rate). At inference both are the identity."""
    import keras

    from scratch.layers import Dropout

    x = np.random.default_rng(0).uniform(0.5, 1.5, (64, 512)).astype("float32")
    theirs = np.asarray(keras.layers.Dropout(rate, seed=1)(x, training=True))
    keep = theirs != 0
    ours = Dropout(rate, Replay(keep))
    np.testing.assert_allclose(ours.forward(x, training=True), theirs, rtol=1e-6)
    grad = np.ones_like(x)  # backprop passes the gradient through the same scaled mask
    np.testing.assert_allclose(ours.backward(grad), keep / (1 - rate), rtol=1e-6)
    np.testing.assert_array_equal(ours.forward(x, training=False), x)
    np.testing.assert_array_equal(np.asarray(keras.layers.Dropout(rate)(x, training=False)), x)


@pytest.mark.parametrize("rate", [0.2, 0.5])
def test_dropout_drops_the_rate_in_expectation(rate):
    """Over 10^6 units the dropped fraction is the rate within 5 standard deviations
    (sqrt(rate (1 - rate) / 10^6) <= 5e-4), and the mean is kept (inverted dropout)."""
    from scratch.layers import Dropout

    x = np.ones((1000, 1000))
    out = Dropout(rate, np.random.default_rng(3)).forward(x, training=True)
    sigma = np.sqrt(rate * (1 - rate) / x.size)
    assert abs((out == 0).mean() - rate) < 5 * sigma
    assert abs(out.mean() - 1) < 5 * sigma / (1 - rate)


def test_the_keras_verbs_default_as_keras_does(twins):
    """fit / predict / evaluate take Keras' defaults (epochs 1, batch 32, shuffled, silent
    where scratch has no progress bar), so that a Keras call means the same here."""
    import inspect

    import keras

    for verb, names in (("fit", ("epochs", "batch_size", "shuffle", "validation_data")),
                        ("predict", ("batch_size",)), ("evaluate", ("batch_size",))):
        ours = inspect.signature(getattr(MLP, verb)).parameters
        theirs = inspect.signature(getattr(keras.Model, verb)).parameters
        for name in names:
            expected = theirs[name].default
            expected = {None: 32}.get(expected, expected) if name == "batch_size" \
                and verb == "fit" else expected
            assert ours[name].default == expected, (verb, name)
    assert inspect.signature(MLP.fit).parameters["verbose"].default == 0


def test_loading_tensorflow_logs_no_cuda_lines_and_passes_the_rest_on(twins, capfd):
    """TensorFlow's CPU wheel logs "Could not find cuda drivers" and "failed call to cuInit"
    through absl as it loads, whatever TF_CPP_MIN_LOG_LEVEL says. Importing keras_models
    drops those lines (test_end_to_end.py checks every worker's log of the smoke publish),
    and passes every other line written to stderr meanwhile."""
    import os

    with twins._without_load_noise():
        for line in ("WARNING: All log messages before absl::InitializeLog() is called are "
                     "written to STDERR",
                     "I0000 00:00:1.2   7 cudart_stub.cc:31] Could not find cuda drivers on "
                     "your machine, GPU will not be used.",
                     "E0000 00:00:1.3   7 cuda_platform.cc:52] failed call to cuInit: INTERNAL",
                     "a real error"):
            os.write(2, f"{line}\n".encode())
    assert capfd.readouterr().err == "a real error\n"
