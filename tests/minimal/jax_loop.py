"""JAX as its users write a training loop: a pure loss, ``jax.grad``, and every step of
the run inside one ``jax.jit`` (``lax.scan`` over the batches, and over the epochs)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from tests.minimal import BATCH, LEARNING_RATE


def make(task: str, weights: list[np.ndarray], x: np.ndarray, y: np.ndarray):
    hidden = jax.nn.sigmoid if task == "xor" else jax.nn.relu
    lr = LEARNING_RATE[task]

    def loss(params, x, y):
        w1, b1, w2, b2 = params
        z = hidden(x @ w1 + b1) @ w2 + b2
        if task == "xor":
            return jnp.mean((jax.nn.sigmoid(z) - y) ** 2)
        return -jnp.mean(jnp.sum(y * jax.nn.log_softmax(z), axis=-1))

    def step(params, batch):
        grads = jax.grad(loss)(params, *batch)
        return [p - lr * g for p, g in zip(params, grads)], None

    batches = (jnp.asarray(x).reshape(-1, BATCH[task], x.shape[1]),
               jnp.asarray(y).reshape(-1, BATCH[task], y.shape[1]))

    @jax.jit(static_argnames="epochs")
    def train(params, batches, epochs: int):
        def epoch(params, _):
            return jax.lax.scan(step, params, batches)[0], None
        return jax.lax.scan(epoch, params, None, length=epochs)[0]

    return JaxLoop([jnp.asarray(w) for w in weights], batches, train)


class JaxLoop:
    def __init__(self, params, batches, train):
        self.params, self.batches, self.train = params, batches, train

    def run(self, epochs: int) -> None:
        self.params = jax.block_until_ready(self.train(self.params, self.batches, epochs=epochs))

    def weights(self) -> list[np.ndarray]:
        return [np.asarray(p) for p in self.params]
