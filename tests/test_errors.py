"""Bad input raises a ValueError whose message names the problem."""

import numpy as np
import pytest

from scratch import MLP, MNIST, XOR, activations, losses, optimizers


@pytest.fixture
def xor():
    return MLP.from_architecture(XOR)


@pytest.mark.parametrize("call, match", [
    (lambda m: m.predict(np.zeros((4, 3))), r"shape \(n, 2\).*got \(4, 3\)"),
    (lambda m: m.predict(np.zeros(4)), r"shape \(n, 2\)"),
    (lambda m: m.fit(np.zeros((0, 2)), np.zeros((0, 1))), "at least one sample"),
    (lambda m: m.fit(np.zeros((4, 2)), np.zeros((3, 1))), "4 inputs but 3 targets"),
    (lambda m: m.fit(np.zeros((4, 2)), np.zeros((4, 2))), r"targets have shape \(4, 2\)"),
    (lambda m: m.fit(np.zeros((4, 2)), np.zeros((4, 1)), batch_size=0), "batch_size must be a positive"),
    (lambda m: m.fit(np.zeros((4, 2)), np.zeros((4, 1)), batch_size=-3), "batch_size must be a positive"),
    (lambda m: m.fit(np.zeros((4, 2)), np.zeros((4, 1)), batch_size=2.5), "batch_size must be a positive"),
    (lambda m: m.fit(np.zeros((4, 2)), np.zeros((4, 1)), epochs=-1), "epochs must be a non-negative"),
    (lambda m: m.predict(np.zeros((4, 2)), batch_size=0), "batch_size must be a positive"),
    (lambda m: m.set_weights([np.zeros((2, 2))]), r"Expected 4 arrays"),
    (lambda m: m.set_weights([np.zeros((3, 2)), 0, 0, 0]), r"Weight 0 has shape \(3, 2\)"),
])
def test_bad_model_input(xor, call, match):
    with pytest.raises(ValueError, match=match):
        call(xor)


@pytest.mark.parametrize("make, match", [
    (lambda: activations.get("swish"), "Unknown activation 'swish'; choose one of"),
    (lambda: losses.get("hinge"), "Unknown loss 'hinge'; choose one of"),
    (lambda: optimizers.get("rmsprop"), "Unknown optimizer 'rmsprop'; choose one of"),
    (lambda: optimizers.SGD(learning_rate=0), "learning_rate must be positive"),
    (lambda: MLP((2, 2, 1), ("sigmoid",), "mse"), "2 layers need 2 activations"),
    (lambda: MLP((2, 0, 1), ("sigmoid", "sigmoid"), "mse"), "positive widths"),
    (lambda: MLP((2, 2, 1), ("sigmoid", "sigmoid"), "mse", backprop="autodiff"), "Unknown backprop"),
    (lambda: MLP((2, 2, 1), ("sigmoid", "sigmoid"), "mse", dtype="float16"), "Unsupported dtype"),
    (lambda: MLP((2, 2, 1), ("sigmoid", "sigmoid"), "mse", kernel_initializer="ones"),
     "Unknown initializer 'ones'"),
    (lambda: MLP.from_architecture(MNIST, dropout=1.0), r"Dropout rate must lie in \[0, 1\)"),
])
def test_bad_names_and_settings(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_labels_out_of_range():
    model = MLP((3, 4, 5), ("relu", "softmax"), "sparse_categorical_crossentropy")
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 4\]; got values from 0 to 7"):
        model.fit(np.zeros((2, 3)), np.array([0, 7]))
    with pytest.raises(ValueError, match="labels must be integers"):
        model.fit(np.zeros((2, 3)), np.array([0.5, 1.0]))
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 9\]"):
        losses.one_hot(np.array([10]), 10)


def test_divergence_is_reported_with_the_history_so_far():
    model = MLP((2, 8, 1), ("linear", "linear"), "mse", {"name": "sgd", "learning_rate": 10.0})
    x = np.array([[0, 0], [0, 1], [1, 0], [1, 1]])
    y = np.array([[0], [1], [1], [0]])
    with np.errstate(all="ignore"), pytest.raises(FloatingPointError, match="diverged") as err:
        model.fit(x, y, epochs=100, batch_size=4)
    assert len(err.value.history.history["loss"]) >= 1


def test_stop_training_from_a_batch_callback_ends_the_epoch_early():
    model = MLP.from_architecture(XOR)
    x = np.array([[0, 0], [0, 1], [1, 0], [1, 1]])
    y = np.array([[0], [1], [1], [0]])

    class StopAfterTwoSteps:
        steps = 0

        def on_train_batch_end(self, batch, logs):
            self.steps += 1
            model.stop_training = self.steps == 2

    stopper = StopAfterTwoSteps()
    history = model.fit(x, y, epochs=5, batch_size=1, callbacks=[stopper])
    assert stopper.steps == 2 and len(history.history["loss"]) == 1


def test_the_messages_in_full():
    """Names the input width (3, not the hidden 2), the targets' mismatch with its two
    remedies, and the momentum's range."""
    model = MLP((3, 2, 1), ("sigmoid", "sigmoid"), "mse")
    with pytest.raises(ValueError, match=r"^Inputs must have shape \(n, 3\) for .* got \(4, 2\)"):
        model.predict(np.zeros((4, 2)))
    with pytest.raises(ValueError) as err:
        model.fit(np.zeros((4, 3)), np.zeros((4, 2)))
    assert str(err.value) == (
        "mean_squared_error: targets have shape (4, 2) but predictions have shape (4, 1); "
        "they must match (one-hot encode class labels, or use "
        "sparse_categorical_crossentropy).")
    for momentum in (1.5, -0.1):
        with pytest.raises(ValueError, match=rf"^momentum must lie in \[0, 1\], got {momentum}"):
            optimizers.SGD(momentum=momentum)
    assert optimizers.SGD(momentum=1.0).momentum == 1.0


def test_no_activation_means_linear():
    assert activations.get(None).name == activations.get("").name == "linear"
