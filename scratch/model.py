"""A multilayer perceptron with Keras' verbs and a switch between the two backprop modes."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from scratch import activations as activation_lib
from scratch import initializers, losses, optimizers
from scratch.architectures import Architecture
from scratch.layers import Dense, Dropout

BACKPROP_MODES = ("shortcut", "jacobian")
DTYPES = ("float32", "float64")


class TrainingDiverged(FloatingPointError):
    """The loss became NaN or infinite; ``history`` holds the epochs completed before."""

    def __init__(self, message: str, history: History):
        super().__init__(message)
        self.history = history


@dataclass
class History:
    """Like Keras' History: ``history['loss'][e]`` is the mean training loss of epoch e."""

    history: dict[str, list[float]] = field(default_factory=lambda: {"loss": []})

    @property
    def epoch(self) -> list[int]:
        return list(range(len(self.history["loss"])))


def epoch_order(n: int, epoch: int, seed: int, shuffle: bool = True) -> np.ndarray:
    """The sample order of one epoch, a function of (seed, epoch) alone, so that
    another implementation can be fed exactly the same batches."""
    if not shuffle:
        return np.arange(n)
    return np.random.default_rng([seed, epoch]).permutation(n)


class MLP:
    """A fully connected network: ``MLP(784-512-10, relu/softmax, backprop=shortcut)``.

    Args:
        sizes: layer widths, input first, e.g. (784, 512, 10).
        activations: one per layer after the input, by Keras' name or as an Activation.
        loss: a Keras loss name, e.g. 'categorical_crossentropy'.
        optimizer: 'sgd', 'adam', a config dict or an Optimizer.
        dropout: rate of the Dropout after every hidden layer (0: none).
        kernel_initializer, bias_initializer: names from ``scratch.initializers``.
        backprop: 'shortcut' (closed forms) or 'jacobian' (explicit Jacobians).
        dtype: 'float32' or 'float64'.
        seed: seeds the weights, the dropout masks and the shuffling.
    """

    def __init__(self, sizes, activations, loss, optimizer="sgd", *, dropout: float = 0.0,
                 kernel_initializer: str = "glorot_uniform", bias_initializer: str = "zeros",
                 backprop: str = "shortcut", dtype: str = "float32", seed: int = 0):
        sizes = tuple(int(s) for s in sizes)
        if len(sizes) < 2 or min(sizes) < 1:
            raise ValueError(f"sizes must be at least two positive widths, got {sizes}.")
        if len(activations) != len(sizes) - 1:
            raise ValueError(f"{len(sizes) - 1} layers need {len(sizes) - 1} activations, "
                             f"got {len(activations)}: {list(activations)}.")
        if backprop not in BACKPROP_MODES:
            raise ValueError(f"Unknown backprop mode {backprop!r}; choose one of {BACKPROP_MODES}.")
        if str(dtype) not in DTYPES:
            raise ValueError(f"Unsupported dtype {dtype!r}; choose one of {DTYPES}.")
        self.sizes, self.backprop, self.dtype, self.seed = sizes, backprop, np.dtype(dtype), seed
        self.loss = losses.get(loss)
        self.optimizer = optimizers.get(optimizer)
        self.dropout = float(dropout)
        self.initializers = (kernel_initializer, bias_initializer)
        self.rng = np.random.default_rng(seed)
        init_w, init_b = initializers.get(kernel_initializer), initializers.get(bias_initializer)
        shapes = [s for n_in, n_out in zip(sizes, sizes[1:]) for s in ((n_in, n_out), (n_out,))]
        # Every parameter, and every gradient, is a view into one flat array, so that the
        # optimizer updates them all with one vectorised operation.
        self.flat_params, self.params = _flat_views(shapes, self.dtype)
        self.flat_grads, grads = _flat_views(shapes, self.dtype)
        self.layers: list[Dense | Dropout] = []
        for i, act in enumerate(activations):
            if self.layers and self.dropout:
                self.layers.append(Dropout(self.dropout, self.rng))
            kernel, bias = self.params[2 * i:2 * i + 2]
            kernel[...] = init_w(kernel.shape, self.rng, self.dtype)
            bias[...] = init_b(bias.shape, self.rng, self.dtype)
            self.layers.append(Dense(kernel, bias, activation_lib.get(act), grads[2 * i:2 * i + 2]))
        self.dense = [layer for layer in self.layers if isinstance(layer, Dense)]
        # Whether the loss is a cross-entropy over the output activation's logits, so that
        # the shortcut can start from the fused dL/dZ = (S - y) / n.
        self.fused = self.loss.logits_activation == self.dense[-1].activation.name
        self.stop_training = False

    @classmethod
    def from_architecture(cls, arch: Architecture, optimizer="sgd", **kwargs) -> MLP:
        return cls(arch.sizes, arch.activations, arch.loss, optimizer,
                   dropout=kwargs.pop("dropout", arch.dropout), **kwargs)

    # Forward and backward.

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        for layer in self.layers:
            x = layer.forward(x, training)
        return x

    def gradients(self, x: np.ndarray, y: np.ndarray) -> tuple[float, list[np.ndarray]]:
        """The batch loss and its gradients [dW1, db1, dW2, db2, ...], by ``self.backprop``."""
        loss = self._backward(*self._check(x, y))
        return loss, [g.copy() for layer in self.dense for g in layer.grads]  # buffers are reused

    def _backward(self, x: np.ndarray, y: np.ndarray, scale: float = 1.0) -> float:
        """Forward, then backward into the gradient buffers; returns the loss.

        Backprop is linear in the output's gradient, so multiplying that (n x K numbers) by
        ``scale`` multiplies every gradient by it: SGD's learning rate goes in here.
        """
        s = self.forward(x, training=True)
        if self.fused:
            loss, dL_dS = self._loss_value(y, s), None
        else:
            loss, dL_dS = self.loss.value_and_gradient(y, s, scale)
        if self.backprop == "jacobian":
            if dL_dS is None:
                dL_dS = self.loss.gradient(y, s) * s.dtype.type(scale)
            self._backward_jacobian(dL_dS)
        elif dL_dS is None:  # the fused closed form: dL/dZ = (S - y)/n
            self._backward_shortcut(None, self.loss.delta_from_logits(y, s, scale))
        else:
            self._backward_shortcut(dL_dS, None)
        return loss

    def _backward_shortcut(self, grad: np.ndarray | None, dz: np.ndarray | None) -> None:
        """grad is dL/dS, or dz the output layer's dL/dZ where the loss fuses."""
        layers = self.layers
        grad = layers[-1].backward(grad, dz, input_grad=len(layers) > 1)
        for k in range(len(layers) - 2, -1, -1):
            grad = layers[k].backward(grad, input_grad=k > 0)

    def _loss_value(self, y: np.ndarray, s: np.ndarray) -> float:
        """The batch loss as Keras reports it: from the logits where the loss fuses."""
        if self.fused:
            return self.loss.value_from_logits(y, self.dense[-1].z)
        return self.loss(y, s)

    def _backward_jacobian(self, dL_dS: np.ndarray) -> None:
        """Row i of dL_dS is the vector dL/dS_i; each sample's chain adds to the gradients."""
        self.flat_grads.fill(0)
        for i in range(len(dL_dS)):
            grad = dL_dS[i:i + 1]
            for k in range(len(self.layers) - 1, -1, -1):
                grad = self.layers[k].backward_jacobian(grad, i, input_grad=k > 0)

    def train_step(self, x: np.ndarray, y: np.ndarray) -> float:
        """One optimizer step on (x, y); returns the loss before it."""
        return self._train_step(*self._check(x, y))

    def _train_step(self, x: np.ndarray, y: np.ndarray) -> float:
        scale = self.optimizer.gradient_scale()
        loss = self._backward(x, y, scale)
        self.optimizer.apply([self.flat_params], [self.flat_grads], scaled=scale != 1.0)
        return loss

    # Keras' verbs.

    def fit(self, x, y, epochs: int = 1, batch_size: int | None = 32, shuffle: bool = True,
            seed: int | None = None, validation_data=None, callbacks=(), verbose: int = 0
            ) -> History:
        """Train with minibatches in the order ``epoch_order(n, epoch, seed)`` gives.

        Callbacks are objects with any of ``on_epoch_end(epoch, logs)`` and
        ``on_train_batch_end(batch, logs)``; setting ``model.stop_training`` stops.
        Raises TrainingDiverged when the loss, or the weights after the last step, stop
        being finite.
        """
        x, y, batch_size, seed = self._fit_arguments(x, y, epochs, batch_size, seed)
        n = len(x)
        history = History()
        self.stop_training = False
        on_batch = [cb.on_train_batch_end for cb in callbacks if hasattr(cb, "on_train_batch_end")]
        on_epoch = [cb.on_epoch_end for cb in callbacks if hasattr(cb, "on_epoch_end")]
        # A shuffled batch is gathered into these buffers: cheaper than copying the whole
        # epoch in shuffled order (for MNIST, 188 MB and its page faults every epoch).
        x_buf, y_buf = x[:batch_size].copy(), y[:batch_size].copy()
        for epoch in range(epochs):
            order = epoch_order(n, epoch, seed) if shuffle else None
            total, seen = 0.0, 0
            for b, start in enumerate(range(0, n, batch_size)):
                if order is None:
                    xb, yb = x[start:start + batch_size], y[start:start + batch_size]
                else:
                    rows = order[start:start + batch_size]
                    xb = np.take(x, rows, axis=0, out=x_buf[:len(rows)])
                    yb = np.take(y, rows, axis=0, out=y_buf[:len(rows)])
                loss = self._train_step(xb, yb)  # checked once, above
                if not math.isfinite(loss):
                    raise TrainingDiverged(
                        f"The loss became {loss} at epoch {epoch}, batch {b}: training diverged. "
                        "Lower the learning rate, or train in float64.", history)
                total, seen = total + loss * len(xb), seen + len(xb)
                for hook in on_batch:
                    hook(b, {"loss": loss})
                if self.stop_training:  # as in Keras 3: the epoch ends early, then its callbacks
                    break
            logs = {"loss": total / seen}
            if validation_data is not None:
                logs["val_loss"] = self.evaluate(*validation_data)
            for key, value in logs.items():
                history.history.setdefault(key, []).append(value)
            if verbose:
                scores = " ".join(f"{k}={v:.4f}" for k, v in logs.items())
                print(f"Epoch {epoch + 1}/{epochs} {scores}")
            for hook in on_epoch:
                hook(epoch, logs)
            if self.stop_training:
                break
        # Every other step's result is checked by the next step's loss; the last one's here.
        if not np.isfinite(self.flat_params).all():
            raise TrainingDiverged("The last step left weights that are not finite: training "
                                   "diverged. Lower the learning rate, or train in float64.",
                                   history)
        return history

    def _fit_arguments(self, x, y, epochs, batch_size, seed):
        """fit's arguments checked: (x, y, batch size, seed), the defaults filled in."""
        x, y = self._check(x, y)
        if len(x) == 0:
            raise ValueError("fit needs at least one sample; got empty inputs.")
        batch_size = len(x) if batch_size is None else batch_size
        _check_positive_int("batch_size", batch_size)
        _check_positive_int("epochs", epochs, allow_zero=True)
        return x, y, batch_size, self.seed if seed is None else seed

    def predict(self, x: np.ndarray, batch_size: int | None = None) -> np.ndarray:
        x = self._check(x)
        return np.concatenate([self.forward(x[s]) for s in _slices(len(x), batch_size)])

    def evaluate(self, x: np.ndarray, y: np.ndarray, batch_size: int | None = None) -> float:
        """The mean loss over (x, y), computed batch by batch as Keras does."""
        x, y = self._check(x, y)
        total = sum(self._loss_value(y[s], self.forward(x[s])) * len(y[s])
                    for s in _slices(len(x), batch_size))
        return total / len(x)

    def get_weights(self) -> list[np.ndarray]:
        """Copies of [W1, b1, W2, b2, ...], Keras' order and layout."""
        return [p.copy() for p in self.params]

    def set_weights(self, weights: list[np.ndarray]) -> None:
        params = self.params
        if len(weights) != len(params):
            raise ValueError(f"Expected {len(params)} arrays [W1, b1, ...], got {len(weights)}.")
        for i, (p, w) in enumerate(zip(params, weights)):
            w = np.asarray(w)
            if w.shape != p.shape:
                raise ValueError(f"Weight {i} has shape {w.shape}; this model needs {p.shape}.")
            p[...] = w

    def get_config(self) -> dict:
        return {
            "sizes": list(self.sizes),
            "activations": [layer.activation.get_config() for layer in self.dense],
            "loss": self.loss.name,
            "optimizer": self.optimizer.get_config(),
            "dropout": self.dropout,
            "kernel_initializer": self.initializers[0],
            "bias_initializer": self.initializers[1],
            "backprop": self.backprop,
            "dtype": self.dtype.name,
            "seed": self.seed,
        }

    def count_params(self) -> int:
        return sum(p.size for p in self.params)

    def __repr__(self) -> str:
        sizes = "-".join(map(str, self.sizes))
        acts = "/".join(repr(layer.activation) for layer in self.dense)
        drop = f", dropout={self.dropout:g}" if self.dropout else ""
        return f"MLP({sizes}, {acts}{drop}, backprop={self.backprop})"

    # Input checks: bad input gets a ValueError that names the problem.

    def _check(self, x, y=None):
        x = np.asarray(x, dtype=self.dtype)
        if x.ndim != 2 or x.shape[1] != self.sizes[0]:
            raise ValueError(f"Inputs must have shape (n, {self.sizes[0]}) for {self!r}, "
                             f"got {x.shape}.")
        if y is None:
            return x
        sparse = self.loss.name == "sparse_categorical_crossentropy"
        y = np.asarray(y) if sparse else np.asarray(y, dtype=self.dtype)
        if len(y) != len(x):
            raise ValueError(f"Got {len(x)} inputs but {len(y)} targets.")
        self.loss.check(y, np.empty((len(x), self.sizes[-1])))
        return x, y


def _flat_views(shapes: list[tuple[int, ...]], dtype) -> tuple[np.ndarray, list[np.ndarray]]:
    """One zeroed flat array and a view of it for each shape, in order."""
    sizes = [math.prod(shape) for shape in shapes]
    flat = np.zeros(sum(sizes), dtype=dtype)
    ends = np.cumsum(sizes)
    return flat, [flat[end - size:end].reshape(shape)
                  for shape, size, end in zip(shapes, sizes, ends, strict=True)]


def _slices(n: int, batch_size: int | None) -> list[slice]:
    batch_size = n if batch_size is None else batch_size
    _check_positive_int("batch_size", batch_size)
    return [slice(i, i + batch_size) for i in range(0, n, batch_size)]


def _check_positive_int(name: str, value, allow_zero: bool = False) -> None:
    whole = isinstance(value, (int, np.integer)) and not isinstance(value, bool)
    if not whole or value < (0 if allow_zero else 1):
        raise ValueError(f"{name} must be a {'non-negative' if allow_zero else 'positive'} "
                         f"integer, got {value!r}.")
