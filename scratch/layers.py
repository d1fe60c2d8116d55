"""Dense and Dropout layers, each with both backprop modes side by side.

``backward`` is the shortcut: batched closed forms over the whole batch.
``backward_jacobian`` is the blog's long form: for one sample it builds the
explicit Jacobian of every step and chains them by matrix products.
Both take dL/d(output) and return dL/d(input); Dense also fills ``grads``.
"""

from __future__ import annotations

import numpy as np

from scratch.activations import Activation


class Dense:
    """z = x @ kernel + bias, a = activation(z).

    Weights are in Keras' layout, kernel (n_in, n_out) and bias (n_out,), so
    ``keras_model.set_weights(mlp.get_weights())`` needs no transposes.
    """

    def __init__(self, kernel: np.ndarray, bias: np.ndarray, activation: Activation,
                 grads: list[np.ndarray] | None = None):
        self.kernel, self.bias, self.activation = kernel, bias, activation
        # dL/dkernel and dL/dbias, written in place (the model passes views of its buffer)
        self.grads = grads if grads is not None else [np.zeros_like(kernel), np.zeros_like(bias)]

    @property
    def params(self) -> list[np.ndarray]:
        return [self.kernel, self.bias]

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        """x: (n, n_in) -> a: (n, n_out); keeps x, z and a for the backward pass."""
        self.x = x
        self.z = np.dot(x, self.kernel)  # np.dot: the same BLAS call as @, with less overhead
        self.z += self.bias
        self.a = self.activation(self.z)
        return self.a

    def backward(self, grad: np.ndarray | None, dz: np.ndarray | None = None,
                 input_grad: bool = True) -> np.ndarray | None:
        """Shortcut: dL/dZ = dL/dA * f'(Z) (or ``dz`` when the caller fused it),
        dL/dW = X^T dL/dZ, dL/db = sum over the batch, dL/dX = dL/dZ W^T."""
        if dz is None:
            dz = self.activation.vjp(self.z, self.a, grad)
        np.dot(self.x.T, dz, out=self.grads[0])
        np.add.reduce(dz, axis=0, out=self.grads[1])  # the sum over the batch
        return np.dot(dz, self.kernel.T) if input_grad else None

    def backward_jacobian(self, grad: np.ndarray, i: int, input_grad: bool = True
                          ) -> np.ndarray | None:
        """Long form for sample i; grad is the row vector dL/dA_i, (1, n_out).

        Accumulates into ``grads`` (the caller resets them once per batch).
        """
        n_in, n_out = self.kernel.shape
        eye = np.eye(n_out, dtype=self.kernel.dtype)
        dA_dZ = self.activation.jacobian(self.z[i])       # (n_out, n_out), diagonal or not
        dZ_dW = _dz_dw(self.x[i], n_out)                  # (n_out, n_in * n_out)
        dZ_db = eye                                       # (n_out, n_out)
        dZ_dx = self.kernel.T                             # (n_out, n_in)
        dL_dZ = grad @ dA_dZ
        self.grads[0] += (dL_dZ @ dZ_dW).reshape(n_in, n_out)
        self.grads[1] += (dL_dZ @ dZ_db).ravel()
        return dL_dZ @ dZ_dx if input_grad else None

    def zero_grads(self) -> None:
        for g in self.grads:
            g.fill(0)

    def __repr__(self) -> str:
        n_in, n_out = self.kernel.shape
        return f"Dense({n_in}->{n_out}, {self.activation!r})"


def _dz_dw(x: np.ndarray, n_out: int) -> np.ndarray:
    """dZ/dW for one sample: dZ_k/dW_jk = x_j, zero elsewhere; kron(x, I) in one allocation
    (np.kron needs a temporary as large again for small n_out)."""
    dz_dw = np.zeros((n_out, len(x), n_out), dtype=x.dtype)
    k = np.arange(n_out)
    dz_dw[k, :, k] = x
    return dz_dw.reshape(n_out, len(x) * n_out)


class Dropout:
    """Inverted dropout, as Keras does it: in training, zero each unit with
    probability ``rate`` and scale the survivors by 1 / (1 - rate); at inference,
    the identity."""

    params: list[np.ndarray] = []
    grads: list[np.ndarray] = []

    def __init__(self, rate: float, rng: np.random.Generator):
        if not 0 <= rate < 1:
            raise ValueError(f"Dropout rate must lie in [0, 1), got {rate}.")
        self.rate, self.rng = float(rate), rng
        self.mask: np.ndarray | None = None

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        if not training or self.rate == 0:
            self.mask = None
            return x
        keep = self.rng.random(x.shape) >= self.rate
        self.mask = keep.astype(x.dtype) / x.dtype.type(1 - self.rate)
        return x * self.mask

    def backward(self, grad: np.ndarray, input_grad: bool = True) -> np.ndarray:
        return grad if self.mask is None else grad * self.mask

    def backward_jacobian(self, grad: np.ndarray, i: int, input_grad: bool = True) -> np.ndarray:
        if self.mask is None:
            return grad
        return grad @ np.diag(self.mask[i])               # a full diagonal matrix, on purpose

    def zero_grads(self) -> None:
        """Dropout has no parameters."""

    def __repr__(self) -> str:
        return f"Dropout({self.rate:g})"
