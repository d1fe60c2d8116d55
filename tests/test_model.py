"""MLP's Keras verbs, step by step: what fit does with its batches, its callbacks, its
history and its defaults, replayed here by hand with ``train_step``."""

import numpy as np
import pytest

from scratch import MLP, XOR
from scratch.model import TrainingDiverged, epoch_order

rng = np.random.default_rng(0)
X, Y = rng.random((70, 2)), rng.random((70, 1))


def xor_model(**kwargs):
    return MLP.from_architecture(XOR, optimizer={"name": "sgd", "learning_rate": 0.5},
                                 dtype="float64", **kwargs)


def replay(epochs, batch_size, orders, x=X, y=Y, validation=None):
    """Train a fresh model by hand: the losses of every batch, and each epoch's logs."""
    model = xor_model()
    batches, logs = [], []
    for epoch in range(epochs):
        order = orders(epoch)
        losses = [(model.train_step(x[rows], y[rows]), len(rows))
                  for rows in np.array_split(order, range(batch_size, len(x), batch_size))]
        batches.append([loss for loss, _ in losses])
        logs.append({"loss": sum(loss * n for loss, n in losses) / len(x)})
        if validation is not None:
            logs[-1]["val_loss"] = model.evaluate(*validation)
    return model, batches, logs


class Recorder:
    def __init__(self):
        self.calls = []

    def on_train_batch_end(self, batch, logs):
        self.calls.append(("batch", batch, dict(logs)))

    def on_epoch_end(self, epoch, logs):
        self.calls.append(("epoch", epoch, dict(logs)))


def test_fit_history_callbacks_and_printout(capsys):
    valid = (X[:7], Y[:7])
    want_model, batches, logs = replay(2, 16, lambda e: epoch_order(70, e, 3), validation=valid)
    model, recorder = xor_model(), Recorder()
    history = model.fit(X, Y, epochs=2, batch_size=16, seed=3, validation_data=valid,
                        callbacks=[recorder, object()], verbose=1)
    expected = []
    for epoch in range(2):
        expected += [("batch", b, {"loss": loss}) for b, loss in enumerate(batches[epoch])]
        expected.append(("epoch", epoch, logs[epoch]))
    assert recorder.calls == expected
    assert history.history == {key: [epoch_logs[key] for epoch_logs in logs]
                               for key in ("loss", "val_loss")}
    assert history.epoch == [0, 1]
    np.testing.assert_array_equal(model.flat_params, want_model.flat_params)
    printed = capsys.readouterr().out.splitlines()
    assert printed == [f"Epoch {e + 1}/2 loss={logs[e]['loss']:.4f} "
                       f"val_loss={logs[e]['val_loss']:.4f}" for e in range(2)]


def test_fit_defaults_one_shuffled_epoch_of_batches_of_32_seeded_by_the_model(capsys):
    """Keras' defaults, by what they do (a signature can hide a changed default); and
    silent, where scratch has no progress bar."""
    want_model, batches, _ = replay(1, 32, lambda e: epoch_order(70, e, 0))
    model, recorder = xor_model(), Recorder()
    model.fit(X, Y, callbacks=[recorder])
    assert capsys.readouterr().out == ""
    assert [c for c in recorder.calls if c[0] == "batch"] == \
        [("batch", b, {"loss": loss}) for b, loss in enumerate(batches[0])]
    np.testing.assert_array_equal(model.flat_params, want_model.flat_params)


def test_fit_without_shuffle_and_with_a_whole_batch():
    want_model, _, logs = replay(2, 70, lambda e: np.arange(70))
    model = xor_model()
    history = model.fit(X, Y, epochs=2, batch_size=None, shuffle=False)
    assert history.history == {"loss": [epoch_logs["loss"] for epoch_logs in logs]}
    np.testing.assert_array_equal(model.flat_params, want_model.flat_params)


def test_fit_for_zero_epochs_changes_nothing():
    model = xor_model()
    before = model.flat_params.copy()
    assert model.fit(X, Y, epochs=0).history == {"loss": []}
    np.testing.assert_array_equal(model.flat_params, before)


def test_stop_training_ends_the_epoch_after_its_batch():
    class StopAfterTwo(Recorder):
        def on_train_batch_end(self, batch, logs):
            super().on_train_batch_end(batch, logs)
            model.stop_training = batch == 1

    model = xor_model()
    stopper = StopAfterTwo()
    history = model.fit(X, Y, epochs=3, batch_size=10, callbacks=[stopper])
    assert [c[:2] for c in stopper.calls] == [("batch", 0), ("batch", 1), ("epoch", 0)]
    assert len(history.history["loss"]) == 1


def test_the_diverged_and_empty_messages():
    model = xor_model()
    with pytest.raises(ValueError, match=r"^fit needs at least one sample; got empty inputs\.$"):
        model.fit(X[:0], Y[:0])
    with pytest.raises(TrainingDiverged, match=r"^The loss became nan at epoch 0, batch 0: "
                       r"training diverged\. Lower the learning rate, or train in float64\.$"):
        model.fit(np.full_like(X, np.nan), Y)
    model = xor_model()
    poison = type("Poison", (), {"on_train_batch_end": lambda self, b, logs:
                                 model.flat_params.fill(np.inf)})()  # after the step
    with pytest.raises(TrainingDiverged, match=r"^The last step left weights that are not "
                       r"finite: training diverged\. Lower the learning rate, or train in "
                       r"float64\.$") as diverged:
        model.fit(X, Y, batch_size=None, callbacks=[poison])  # one step: the last one
    assert len(diverged.value.history.history["loss"]) == 1  # the epochs it completed


def test_set_weights_sets_them():
    model, weights = xor_model(), [w + 1 for w in xor_model().get_weights()]
    model.set_weights(weights)
    for got, want in zip(model.get_weights(), weights, strict=True):
        np.testing.assert_array_equal(got, want)


def test_epoch_order():
    np.testing.assert_array_equal(epoch_order(5, 0, 1, shuffle=False), np.arange(5))
    first = epoch_order(50, 0, 1)  # shuffled by default
    assert sorted(first) == list(range(50)) and list(first) != list(range(50))
    np.testing.assert_array_equal(first, epoch_order(50, 0, 1))
    assert list(first) != list(epoch_order(50, 1, 1)) != list(epoch_order(50, 0, 2))


def test_predict_and_evaluate_in_batches_equal_one_batch():
    model = xor_model()
    np.testing.assert_allclose(model.predict(X, batch_size=16), model.predict(X), rtol=1e-15)
    assert model.predict(X, batch_size=16).shape == (70, 1)
    assert model.evaluate(X, Y, batch_size=16) == pytest.approx(model.evaluate(X, Y), rel=1e-14)
    with pytest.raises(ValueError, match="batch_size must be a positive integer, got 0"):
        model.predict(X, batch_size=0)


def test_repr_and_config():
    assert str(XOR) == "2-2-1"
    assert repr(xor_model()) == "MLP(2-2-1, sigmoid/sigmoid, backprop=shortcut)"
    model = xor_model(dropout=0.25, backprop="jacobian", seed=7)
    assert repr(model) == "MLP(2-2-1, sigmoid/sigmoid, dropout=0.25, backprop=jacobian)"
    assert model.get_config() == {
        "sizes": [2, 2, 1], "activations": [{"name": "sigmoid"}] * 2,
        "loss": "mean_squared_error",
        "optimizer": {"name": "sgd", "learning_rate": 0.5, "momentum": 0.0, "nesterov": False},
        "dropout": 0.25, "kernel_initializer": "glorot_uniform", "bias_initializer": "zeros",
        "backprop": "jacobian", "dtype": "float64", "seed": 7}


def test_a_one_layer_network_is_softmax_regression():
    """sizes (n_in, K): one Dense layer, dL/dW = X^T (S - Y) / n."""
    x, labels = rng.random((6, 4)), np.array([0, 1, 2, 0, 1, 2])
    model = MLP((4, 3), ("softmax",), "sparse_categorical_crossentropy", dtype="float64")
    _, (dw, db) = model.gradients(x, labels)
    s = model.predict(x)
    delta = (s - np.eye(3)[labels]) / 6
    np.testing.assert_allclose(dw, x.T @ delta, atol=1e-15)
    np.testing.assert_allclose(db, delta.sum(axis=0), atol=1e-15)


def test_a_deeper_net_still_takes_the_cross_entropy_from_its_logits():
    """Three Dense layers, the softmax last: the loss fuses with it, so a saturated output
    gives the loss from the logits, far beyond -log(1e-7) = 16.1, where clipped
    probabilities would cap it. Unsaturated, its gradients are the Jacobian chain's."""
    def net(backprop):
        return MLP((4, 5, 5, 3), ("relu", "relu", "softmax"), "categorical_crossentropy",
                   dtype="float64", seed=1, backprop=backprop)

    x, y = rng.random((8, 4)), np.eye(3)[rng.integers(0, 3, 8)]
    model, jacobian = net("shortcut"), net("jacobian")
    for a, b in zip(model.gradients(x, y)[1], jacobian.gradients(x, y)[1], strict=True):
        np.testing.assert_allclose(a, b, atol=1e-12)
    model.set_weights([30 * w for w in model.get_weights()])
    assert model.gradients(x, y)[0] > 50


def test_plain_sgd_folds_the_learning_rate_into_the_gradients_and_counts_its_steps():
    """Plain SGD scales the output's gradient by the learning rate, so the buffers hold
    lr x dL/dW and the update is one subtraction; every step counts, as in Keras."""
    plain = xor_model()
    before = plain.get_weights()
    _, grads = xor_model().gradients(X[:4], Y[:4])
    for _ in range(3):
        plain.train_step(X[:4], Y[:4])
        if plain.optimizer.iterations == 1:
            for g, buffer in zip(grads, (g for d in plain.dense for g in d.grads), strict=True):
                np.testing.assert_allclose(buffer, 0.5 * g, atol=1e-15)
            for w0, w1, g in zip(before, plain.get_weights(), grads, strict=True):
                np.testing.assert_allclose(w1, w0 - 0.5 * g, atol=1e-15)
    assert plain.optimizer.iterations == 3


def test_a_float32_network_stays_float32():
    model = MLP.from_architecture(XOR)  # float32 by default
    assert all(w.dtype == np.float32 for w in model.get_weights())
    assert model.flat_params.dtype == model.flat_grads.dtype == np.float32
    assert model.predict(X.astype("float64")).dtype == np.float32
    model.fit(X, Y, epochs=1)
    assert all(w.dtype == np.float32 for w in model.get_weights())


def test_dropout_trains_with_the_models_seeded_masks_and_stays_out_of_inference():
    arch = XOR.replace(sizes=(2, 16, 1), dropout=0.5)
    nets = [MLP.from_architecture(arch, optimizer={"name": "sgd", "learning_rate": 0.5},
                                  dtype="float64", seed=s) for s in (3, 3, 4)]
    assert [type(layer).__name__ for layer in nets[0].layers] == ["Dense", "Dropout", "Dense"]
    plain = MLP.from_architecture(arch, optimizer={"name": "sgd", "learning_rate": 0.5},
                                  dtype="float64", seed=3, dropout=0.0)
    assert len(plain.layers) == 2
    np.testing.assert_array_equal(nets[0].predict(X), plain.predict(X))  # no masks
    np.testing.assert_array_equal(nets[0].forward(X), plain.forward(X))
    masked = MLP.from_architecture(arch, dtype="float64", seed=3)
    assert (masked.forward(X, training=True) != plain.forward(X, training=True)).any()
    for net in (*nets, plain):
        net.fit(X, Y, epochs=2, batch_size=10, shuffle=False)
    a, b, other, no_dropout = (net.get_weights()[0] for net in (*nets, plain))
    np.testing.assert_array_equal(a, b)  # the same seed, the same masks
    assert not np.array_equal(a, other) and not np.array_equal(a, no_dropout)


@pytest.mark.parametrize("sizes", [(2, 3, 3, 1), (2, 1)])
@pytest.mark.parametrize("backprop, method", [("shortcut", "backward"),
                                              ("jacobian", "backward_jacobian")])
def test_backprop_stops_at_the_first_layer(backprop, method, sizes, monkeypatch):
    """dL/dx of the first layer is never built: nothing below it needs it (in the jacobian
    mode, for a 784-512-10 net, that is one 512 x 784 product a sample)."""
    model = MLP(sizes, ("sigmoid",) * (len(sizes) - 1), "mse", backprop=backprop,
                dtype="float64")
    asked = []
    for k, layer in enumerate(model.dense):
        original = getattr(layer, method)

        def spy(*args, k=k, original=original, **kwargs):
            asked.append((k, kwargs.get("input_grad", True)))
            return original(*args, **kwargs)

        monkeypatch.setattr(layer, method, spy)
    model.gradients(X[:2], Y[:2])
    assert set(asked) == {(0, False), *((k, True) for k in range(1, len(sizes) - 1))}


def test_targets_are_cast_to_the_models_dtype():
    """float64 targets train a float32 net exactly as their float32 copies do."""
    nets = [MLP.from_architecture(XOR, optimizer={"name": "sgd", "learning_rate": 0.5})
            for _ in range(2)]
    y64 = Y + 1e-9  # differs from its float32 rounding
    nets[0].fit(X, y64, epochs=2, batch_size=7, shuffle=False)
    nets[1].fit(X, y64.astype("float32"), epochs=2, batch_size=7, shuffle=False)
    for a, b in zip(nets[0].get_weights(), nets[1].get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_the_jacobian_mode_trains_a_softmax_net_as_the_shortcut_does():
    """Plain SGD folds the learning rate into the output's gradient in both modes."""
    def net(backprop):
        return MLP((4, 5, 3), ("relu", "softmax"), "categorical_crossentropy", dtype="float64",
                   optimizer={"name": "sgd", "learning_rate": 0.3}, backprop=backprop)

    x, y = rng.random((12, 4)), np.eye(3)[rng.integers(0, 3, 12)]
    short, jac = net("shortcut"), net("jacobian")
    for model in (short, jac):
        model.fit(x, y, epochs=3, batch_size=4, shuffle=False)
    for a, b in zip(short.get_weights(), jac.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, atol=1e-12)
    assert not np.allclose(short.get_weights()[0], net("shortcut").get_weights()[0])
