"""Many seeds at once: S copies of an ``MLP``, one per seed, trained by one set of NumPy
calls a step.

Each layer's kernels are stacked as (S, n_in, n_out) and its biases as (S, 1, n_out);
a batch (n, n_in), the same for every seed, broadcasts against them, so every array
of the forward and backward pass gains a leading seed axis and nothing else changes:
``np.matmul`` multiplies the S pairs of matrices, and the losses, activations and
optimizers work element by element or along the last two axes. Seed s's slice follows
exactly the trajectory of ``MLP(seed=s)`` on the same batches (tests/test_seeds.py).
Shortcut mode only; no dropout (its masks would be drawn per seed, one call each).
"""

from __future__ import annotations

import numpy as np

from scratch.layers import Dense
from scratch.model import MLP, _check_positive_int, _flat_views


class StackedDense(Dense):
    """``Dense`` with a leading seed axis on its kernel (S, n_in, n_out), bias (S, 1, n_out)
    and every activation (S, n, width); its input may be shared, (n, n_in)."""

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        self.x = x
        self.z = np.matmul(x, self.kernel)
        self.z += self.bias
        self.a = self.activation(self.z)
        return self.a

    def backward(self, grad, dz=None, input_grad=True):
        if dz is None:
            dz = self.activation.vjp(self.z, self.a, grad)
        np.matmul(self.x.swapaxes(-1, -2), dz, out=self.grads[0])
        np.add.reduce(dz, axis=-2, keepdims=True, out=self.grads[1])
        return np.matmul(dz, self.kernel.swapaxes(-1, -2)) if input_grad else None


class SeedBatchedMLP(MLP):
    """``MLP(sizes, activations, loss, optimizer)`` for every seed in ``seeds`` at once.

    Each seed's initial weights are those of ``MLP(..., seed=s)``. One optimizer updates
    the flat array of every seed's parameters: its updates are element by element, and
    all seeds take their steps together, so each seed's step count is the same.
    """

    def __init__(self, sizes, activations, loss, optimizer="sgd", *, seeds, dropout: float = 0.0,
                 kernel_initializer: str = "glorot_uniform", bias_initializer: str = "zeros",
                 dtype: str = "float32", backprop: str = "shortcut"):
        seeds = [int(s) for s in seeds]
        if not seeds:
            raise ValueError("SeedBatchedMLP needs at least one seed.")
        if dropout or backprop != "shortcut":
            raise ValueError("SeedBatchedMLP trains in shortcut mode without dropout; "
                             f"got dropout={dropout}, backprop={backprop!r}. Use MLP.")
        singles = [MLP(sizes, activations, loss, optimizer, kernel_initializer=kernel_initializer,
                       bias_initializer=bias_initializer, dtype=dtype, seed=s) for s in seeds]
        first = singles[0]
        # MLP's attributes, from seed 0's network: sizes, loss, optimizer, fused, ...
        self.__dict__.update(first.__dict__)
        self.seeds = seeds
        n = len(seeds)
        shapes = [(n, *p.shape) if p.ndim == 2 else (n, 1, *p.shape) for p in first.params]
        self.flat_params, self.params = _flat_views(shapes, self.dtype)
        self.flat_grads, grads = _flat_views(shapes, self.dtype)
        for i, stack in enumerate(self.params):
            stack[...] = np.stack([m.params[i].reshape(stack.shape[1:]) for m in singles])
        self.layers = [StackedDense(*self.params[2 * i:2 * i + 2], layer.activation,
                                    grads[2 * i:2 * i + 2]) for i, layer in enumerate(first.dense)]
        self.dense = self.layers

    def _backward(self, x: np.ndarray, y: np.ndarray, scale: float = 1.0) -> np.ndarray:
        """Forward, then backward into the gradient buffers; returns each seed's loss, (S,)."""
        s = self.forward(x, training=True)
        if self.fused:
            per_sample = self.loss.per_sample_from_logits(y, self.dense[-1].z)
            self._backward_shortcut(None, self.loss.delta_from_logits(y, s, scale))
        else:  # MLP's own arithmetic, so that each seed's gradient is bit for bit its own
            per_sample = self.loss.per_sample(y, s)
            self._backward_shortcut(self.loss.value_and_gradient(y, s, scale)[1], None)
        return per_sample.mean(axis=-1)

    def fit(self, x, y, epochs: int = 1, batch_size: int | None = None,
            callbacks=()) -> np.ndarray:
        """Train every seed on the same batches, in file order (full batch by default).
        ``on_epoch_end(epoch, losses)`` callbacks get each seed's mean loss of the epoch,
        and may set ``stop_training``; returns those losses, (epochs run, S). A seed whose
        loss stops being finite carries NaN from then on; the other seeds are untouched."""
        x, y = self._check(x, y)
        batch_size = len(x) if batch_size is None else batch_size
        _check_positive_int("batch_size", batch_size)
        _check_positive_int("epochs", epochs, allow_zero=True)
        history = np.empty((epochs, len(self.seeds)), dtype=np.float64)
        self.stop_training = False
        for epoch in range(epochs):
            total = 0.0
            for start in range(0, len(x), batch_size):
                xb, yb = x[start:start + batch_size], y[start:start + batch_size]
                total = total + self._train_step(xb, yb) * len(xb)
            history[epoch] = total / len(x)
            for cb in callbacks:
                cb.on_epoch_end(epoch, history[epoch])
            if self.stop_training:  # a callback stopped it, as MLP's
                return history[:epoch + 1]
        return history

    def predict(self, x: np.ndarray, batch_size: int | None = None) -> np.ndarray:
        """Every seed's predictions, (S, n, K)."""
        return self.forward(self._check(x))

    def evaluate(self, x: np.ndarray, y: np.ndarray, batch_size: int | None = None) -> np.ndarray:
        """Every seed's mean loss over (x, y), (S,)."""
        x, y = self._check(x, y)
        s = self.forward(x)
        if self.fused:
            return self.loss.per_sample_from_logits(y, self.dense[-1].z).mean(axis=-1)
        return self.loss.per_sample(y, s).mean(axis=-1)

    def seed_weights(self, i: int) -> list[np.ndarray]:
        """Copies of seed number i's [W1, b1, W2, b2, ...], as its MLP's get_weights."""
        return [p[i].reshape(-1).copy() if k % 2 else p[i].copy()
                for k, p in enumerate(self.params)]

    def __repr__(self) -> str:
        return f"SeedBatched{super().__repr__()[:-1]}, seeds={len(self.seeds)})"
