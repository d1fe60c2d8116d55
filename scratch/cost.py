"""What backprop costs, predicted before it runs.

For the jacobian mode: the shape, bytes and multiply-adds of every Jacobian the
chain builds for one sample (see ``Dense.backward_jacobian``), and the peak memory
one training step allocates (``MLP.train_step``) on a batch. For the shortcut: the
same, for comparison. The parameters, their gradient buffers and the optimizer's
state are allocated once, with the model: ``model_bytes``. Only array data is
counted, the way tracemalloc sees NumPy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Jacobian:
    layer: int                 # 1 = the first Dense layer
    name: str                  # e.g. "dZ/dW"
    shape: tuple[int, int]
    bytes: int                 # per sample
    macs: int                  # multiply-adds of its product in the chain, per sample


@dataclass(frozen=True)
class Cost:
    sizes: tuple[int, ...]
    dtype: str
    jacobians: list[Jacobian]

    @property
    def itemsize(self) -> int:
        return np.dtype(self.dtype).itemsize

    @property
    def layers(self) -> list[tuple[int, int]]:
        return list(zip(self.sizes, self.sizes[1:]))

    @property
    def params(self) -> int:
        return sum(n_in * n_out + n_out for n_in, n_out in self.layers)

    def _forward_cache(self, n: int) -> int:
        """z and a of every layer, kept for the backward pass."""
        return 2 * n * sum(self.sizes[1:]) * self.itemsize

    def jacobian_sample_peak_bytes(self) -> int:
        """The most that is live for one sample: the largest layer's dA/dZ, identity,
        dZ/dW and the product dL/dZ . dZ/dW."""
        return max(
            (2 * n_out * n_out + n_in * n_out * n_out + n_in * n_out) * self.itemsize
            for n_in, n_out in self.layers)

    def model_bytes(self, optimizer_slots: int = 1) -> int:
        """Parameters, gradients and the optimizer's per-parameter arrays (SGD: 1, with
        momentum: 2, Adam: 2), all allocated once."""
        return (2 + optimizer_slots) * self.params * self.itemsize

    def jacobian_peak_bytes(self, n: int) -> int:
        """What one jacobian-mode training step on n samples allocates at its peak: the
        forward cache, dL/dS, and one sample's Jacobians."""
        return (self._forward_cache(n) + n * self.sizes[-1] * self.itemsize
                + self.jacobian_sample_peak_bytes())

    def shortcut_peak_bytes(self, n: int) -> int:
        """What one shortcut training step on n samples allocates at its peak: the forward
        cache, the output's dL/dS (and its scaled copy), and the largest layer's incoming
        dL/dA, f'(Z), dL/dZ and dL/dX (none for the first). Masks are left out."""
        largest = max(3 * n * n_out + (n * n_in if layer > 0 else 0)
                      for layer, (n_in, n_out) in enumerate(self.layers))
        return self._forward_cache(n) + (2 * n * self.sizes[-1] + largest) * self.itemsize

    def jacobian_flops_per_sample(self) -> int:
        forward = sum(2 * n_in * n_out for n_in, n_out in self.layers)
        return forward + 2 * sum(j.macs for j in self.jacobians)

    def shortcut_flops_per_sample(self) -> int:
        """Forward, dW = X^T dZ, and dX = dZ W^T below the first layer: 2 flops a MAC."""
        first = self.sizes[0] * self.sizes[1]
        return 2 * (3 * sum(n_in * n_out for n_in, n_out in self.layers) - first)


def backprop_cost(sizes, dtype: str = "float64") -> Cost:
    """The Jacobians the jacobian mode builds for one sample, top layer first."""
    sizes = tuple(int(s) for s in sizes)
    item = np.dtype(dtype).itemsize
    jacobians = [Jacobian(len(sizes) - 1, "dL/dS", (1, sizes[-1]), sizes[-1] * item, 0)]
    for layer in range(len(sizes) - 1, 0, -1):
        n_in, n_out = sizes[layer - 1], sizes[layer]
        jacobians += [
            Jacobian(layer, "dA/dZ", (n_out, n_out), n_out * n_out * item, n_out * n_out),
            Jacobian(layer, "dZ/dW", (n_out, n_in * n_out), n_in * n_out * n_out * item,
                     n_in * n_out * n_out),
            Jacobian(layer, "dZ/db", (n_out, n_out), n_out * n_out * item, n_out * n_out),
            # W^T is a view of the kernel: no new memory.
            Jacobian(layer, "dZ/dx", (n_out, n_in), 0, n_out * n_in if layer > 1 else 0),
        ]
    return Cost(sizes, str(np.dtype(dtype)), jacobians)
