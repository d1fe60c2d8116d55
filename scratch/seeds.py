"""Many seeds at once: S copies of an ``MLP``, one per seed, trained by one set of NumPy
calls a step.

Each layer's kernels are stacked as (S, n_in, n_out) and its biases as (S, 1, n_out);
a batch (n, n_in), the same for every seed, broadcasts against them, so every array
of the forward and backward pass gains a leading seed axis and nothing else changes:
the losses, activations and optimizers work element by element or along the last two
axes. Seed s's slice follows exactly the trajectory of ``MLP(seed=s)`` on the same
batches (tests/test_seeds.py). Shortcut mode only; no dropout (its masks would be drawn
per seed, one call each).

The seed axis comes first in every shape and last in memory. A tiny network's arrays
are a few numbers per seed, so what makes a step fast is that each NumPy call runs one
long loop over the seeds: element-by-element calls keep their operands' memory order,
and a product with a short inner dimension k is k broadcast multiply-adds whose
innermost loop is the seed axis. ``np.matmul`` on the stack would instead call BLAS
once per seed's 2x4 matrix (8x slower at 1000 seeds).
"""

from __future__ import annotations

import copy

import numpy as np

from scratch.layers import Dense
from scratch.model import MLP, _check_positive_int, _flat_views

SHORT, MANY = 16, 128  # products over a short inner dimension, for many seeds: multiply-adds


def seeds_last(shape: tuple[int, int, int], dtype) -> np.ndarray:
    """An empty array of ``shape`` (S, n, m) whose seed axis is last in memory."""
    return np.empty((*shape[1:], shape[0]), dtype=dtype).transpose(2, 0, 1)


def matmul(a: np.ndarray, b: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """a @ b over a stack, (S, n, k) @ (S, k, m) -> (S, n, m); either may be shared, 2-D."""
    k, seeds = a.shape[-1], (a if a.ndim == 3 else b).shape[0]
    if k > SHORT or seeds < MANY:  # few seeds: np.matmul's one call costs less than k
        return np.matmul(a, b, out=out)
    if out is None:
        out = seeds_last((seeds, a.shape[-2], b.shape[-1]), b.dtype)
    np.multiply(a[..., :1], b[..., :1, :], out=out)
    for i in range(1, k):
        out += a[..., i:i + 1] * b[..., i:i + 1, :]
    return out


class StackedDense(Dense):
    """``Dense`` with a leading seed axis on its kernel (S, n_in, n_out), bias (S, 1, n_out)
    and every activation (S, n, width); its input may be shared, (n, n_in)."""

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        self.x = x
        self.z = matmul(x, self.kernel)
        self.z += self.bias
        self.a = self.activation(self.z)
        return self.a

    def backward(self, grad, dz=None, input_grad=True):
        if dz is None:
            dz = self.activation.vjp(self.z, self.a, grad)
        matmul(self.x.swapaxes(-1, -2), dz, out=self.grads[0])
        np.add.reduce(dz, axis=-2, keepdims=True, out=self.grads[1])
        return matmul(dz, self.kernel.swapaxes(-1, -2)) if input_grad else None


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
        # In memory (n_in, n_out, S) and (1, n_out, S); seen as (S, n_in, n_out), (S, 1, n_out).
        shapes = [(*p.shape, n) if p.ndim == 2 else (1, *p.shape, n) for p in first.params]
        self._allocate(shapes, [layer.activation for layer in first.dense])
        for i, stack in enumerate(self.params):
            stack[...] = np.stack([m.params[i].reshape(stack.shape[1:]) for m in singles])

    def _allocate(self, shapes, activations) -> None:
        """Zeroed parameter and gradient stacks, laid out (..., S) as ``shapes``, and the
        layers over them."""
        self.flat_params, self.params = _seed_views(shapes, self.dtype)
        self.flat_grads, grads = _seed_views(shapes, self.dtype)
        self.layers = self.dense = [
            StackedDense(*self.params[2 * i:2 * i + 2], activation, grads[2 * i:2 * i + 2])
            for i, activation in enumerate(activations)]

    def _backward(self, x: np.ndarray, y: np.ndarray, scale: float = 1.0) -> np.ndarray:
        """Forward, then backward into the gradient buffers; returns each seed's loss, (S,)."""
        s = self.forward(x, training=True)
        if self.fused:
            per_sample = self.loss.per_sample_from_logits(y, self.dense[-1].z)
            self._backward_shortcut(None, self.loss.delta_from_logits(y, s, scale))
        else:  # MLP's own arithmetic, so that each seed's gradient is bit for bit its own
            per_sample = self.loss.per_sample(y, s)
            self._backward_shortcut(self.loss.value_and_gradient(y, s, scale)[1], None)
        return _mean_last(per_sample)

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
            return _mean_last(self.loss.per_sample_from_logits(y, self.dense[-1].z))
        return _mean_last(self.loss.per_sample(y, s))

    def subset(self, positions) -> SeedBatchedMLP:
        """A network of the seeds at ``positions`` only, each with its weights and optimizer
        state (momentum, Adam's moments) as they are here: trained on, each follows the
        trajectory it would have followed here. For dropping seeds that are done."""
        positions = list(positions)
        new = copy.copy(self)
        new.seeds = [self.seeds[p] for p in positions]
        shapes = [(*p.shape[1:], len(positions)) for p in self.params]
        # Where each element of the new flat arrays lies in this network's: one gather for
        # the parameters and for each optimizer state array, all laid out alike.
        index, stacks = _seed_views([(*p.shape[1:], len(self.seeds)) for p in self.params],
                                    np.intp)
        index[:] = np.arange(index.size)
        gather, narrowed = _seed_views(shapes, np.intp)
        for a, b in zip(narrowed, stacks, strict=True):
            a[...] = b[positions]
        new._allocate(shapes, [layer.activation for layer in self.dense])
        new.flat_params[:] = self.flat_params[gather]
        new.optimizer = copy.copy(self.optimizer)

        def take(state):
            return tuple(map(take, state)) if isinstance(state, tuple) else state[gather]

        for name, state in vars(self.optimizer).items():  # {parameter: state} of flat_params
            if isinstance(state, dict):
                setattr(new.optimizer, name, {k: take(v) for k, v in state.items()})
        return new

    def seed_weights(self, i: int) -> list[np.ndarray]:
        """Copies of seed number i's [W1, b1, W2, b2, ...], as its MLP's get_weights."""
        return [p[i].reshape(-1).copy() if k % 2 else p[i].copy()
                for k, p in enumerate(self.params)]

    def __repr__(self) -> str:
        return f"SeedBatched{super().__repr__()[:-1]}, seeds={len(self.seeds)})"


def _seed_views(shapes, dtype) -> tuple[np.ndarray, list[np.ndarray]]:
    """``_flat_views`` of shapes (..., S), each seen with its seed axis first."""
    flat, views = _flat_views(shapes, dtype)
    return flat, [np.moveaxis(v, -1, 0) for v in views]


def _mean_last(a: np.ndarray) -> np.ndarray:
    """a.mean(axis=-1), the same numbers without ``mean``'s Python-level overhead (a tenth
    of a few-seed step)."""
    return np.add.reduce(a, axis=-1) / a.shape[-1]
