"""Native JAX, as a JAX user writes it: pure functions, ``jax.value_and_grad``, and a
jit-compiled loop over the batches (``lax.scan``); several epochs per compiled call
where the data do not change between epochs (no shuffling).

The optimizers follow Keras' update rules with the hyperparameters rounded as Keras
rounds them (``scratch.optimizers.keras_value``), so that float64 trajectories equal
scratch's. Compilation happens in ``warm_up``, ahead of time, for exactly the shapes
that training then runs.
"""

from __future__ import annotations

import functools

import numpy as np

from benchmarks.implementations.base import (
    Implementation,
    SeedBatched,
    activation,
    largest_divisor,
    scratch_model,
    shuffled_epochs,
)
from benchmarks.implementations.timer import Monitor, check_interval
from scratch import activations, optimizers
from scratch.optimizers import keras_value

MAX_EPOCHS_PER_CHECK = 1000
CALL_SAMPLES = 100_000  # samples a compiled call trains, at most, where checks fall within


def _jax():
    import jax

    # float64 runs need 64-bit mode; float32 arrays stay float32 in it.
    jax.config.update("jax_enable_x64", True)
    return jax


def _loss(name: str, output: str):
    """The batch-mean loss from the output layer's logits z and activations a, as Keras
    computes it (cross-entropies from the logits of their own output activation)."""
    jax = _jax()
    jnp, nn = jax.numpy, jax.nn
    if name == "mean_squared_error":
        return lambda z, a, y: jnp.mean((a - y) ** 2)
    if name == "categorical_crossentropy" and output == "softmax":
        return lambda z, a, y: -jnp.mean(jnp.sum(y * nn.log_softmax(z), axis=-1))
    if name == "sparse_categorical_crossentropy" and output == "softmax":
        return lambda z, a, y: -jnp.mean(jnp.take_along_axis(nn.log_softmax(z), y[:, None], 1))
    if name == "binary_crossentropy" and output == "sigmoid":
        return lambda z, a, y: jnp.mean(jnp.maximum(z, 0) - z * y + jnp.log1p(jnp.exp(-jnp.abs(z))))
    raise ValueError(f"The jax implementation has no {name} on a {output} output.")


def _optimizer(config: dict):
    """(initial state, update) for Keras' SGD (with momentum, Nesterov) or Adam."""
    jax = _jax()
    jnp = jax.numpy
    opt = optimizers.get(dict(config))
    lr = keras_value(opt.learning_rate)
    if isinstance(opt, optimizers.SGD):
        mu, nesterov = keras_value(opt.momentum), opt.nesterov

        def init(params):
            return [jnp.zeros_like(p) for p in params] if opt.momentum else []

        def update(params, grads, state):
            if not opt.momentum:
                return [p - lr * g for p, g in zip(params, grads)], state
            state = [mu * m - lr * g for m, g in zip(state, grads)]
            if nesterov:
                return [p + mu * m - lr * g for p, m, g in zip(params, state, grads)], state
            return [p + m for p, m in zip(params, state)], state

        return init, update
    b1, b2, eps = opt.beta_1, opt.beta_2, opt.epsilon
    b1_power, b2_power = keras_value(b1), keras_value(b2)

    def init(params):
        return (jnp.zeros((), "int64"), [jnp.zeros_like(p) for p in params],
                [jnp.zeros_like(p) for p in params])

    def update(params, grads, state):
        t, ms, vs = state
        t = t + 1
        alpha = lr * jnp.sqrt(1 - b2_power ** t) / (1 - b1_power ** t)  # in float64, as scratch
        ms = [m + (g - m) * (1 - b1) for m, g in zip(ms, grads)]
        vs = [v + (g * g - v) * (1 - b2) for v, g in zip(vs, grads)]
        params = [p - alpha.astype(p.dtype) * m / (jnp.sqrt(v) + eps)
                  for p, m, v in zip(params, ms, vs)]
        return params, (t, ms, vs)

    return init, update


class JaxModel:
    """The network's parameters and optimizer state, and its compiled functions."""

    def __init__(self, cfg, weights: list[np.ndarray], dtype: str, seed: int):
        jax = _jax()
        jnp = jax.numpy
        arch = cfg.arch
        self.dtype = np.dtype(dtype)
        self.params = [jnp.asarray(w, self.dtype) for w in weights]
        init, update = _optimizer(cfg.optimizer)
        self.state = init(self.params)
        self.key = jax.random.PRNGKey(seed)
        acts = [activation(a, jax.nn, "jax") for a in arch.activations]
        output = activations.get(arch.activations[-1]).name
        loss = _loss(arch.loss, output)
        rate = float(arch.dropout)

        def forward(params, x, key=None):
            for i, act in enumerate(acts):
                z = x @ params[2 * i] + params[2 * i + 1]
                x = act(z)
                if key is not None and i < len(acts) - 1:  # inverted dropout
                    key, sub = jax.random.split(key)
                    keep = jax.random.bernoulli(sub, 1 - rate, x.shape)
                    x = jnp.where(keep, x / (1 - rate), 0).astype(x.dtype)
            return z, x

        def step(carry, batch):
            params, state, key = carry
            sub = None
            if rate:  # a step without dropout does no PRNG work (a split costs 10x the step)
                key, sub = jax.random.split(key)
            x, y = batch
            value, grads = jax.value_and_grad(lambda p: loss(*forward(p, x, sub), y))(params)
            params, state = update(params, grads, state)
            return (params, state, key), value

        def run(params, state, key, batches, rest, epochs: int):
            """``epochs`` epochs over the stacked full batches, then the remainder batch
            (if any); returns the new carry and the last epoch's mean loss."""
            xb, yb = batches
            n = xb.shape[0] * xb.shape[1] + (0 if rest is None else len(rest[0]))

            def epoch(carry, _):
                carry, losses = jax.lax.scan(step, carry, batches)
                total = losses.sum() * xb.shape[1]
                if rest is not None:
                    carry, last = step(carry, rest)
                    total = total + last * len(rest[0])
                return carry, total / n

            (params, state, key), losses = jax.lax.scan(epoch, (params, state, key), None,
                                                         length=epochs)
            return params, state, key, losses[-1]

        def checks(params, state, key, batches, rest, epochs: int, count: int):
            """``count`` runs of ``epochs`` epochs in one call: the carry, and each run's
            last loss and final parameters (the target is checked on them after the call)."""
            def segment(carry, _):
                params, state, key, loss = run(*carry, batches, rest, epochs)
                return (params, state, key), (loss, params)

            (params, state, key), (losses, kept) = jax.lax.scan(
                segment, (params, state, key), None, length=count)
            return params, state, key, losses, kept

        def value_and_grad(params, x, y):
            return jax.value_and_grad(lambda p: loss(*forward(p, x), y))(params)

        self._init, self._pure_run = init, run
        self._value_and_grad = jax.jit(value_and_grad)
        self._step = jax.jit(step)
        self._run = jax.jit(checks, static_argnames=("epochs", "count"))
        self._forward_out = lambda params, x: forward(params, x)[1]
        self._predict = jax.jit(self._forward_out)
        self._compiled: dict = {}

    def seeds_runner(self, epochs: int):
        """``jax.vmap`` of the training loop over a leading seed axis, compiled: (init, run)
        where ``init(params)`` stacks the optimizer's states and ``run(params, state, keys,
        batches, rest)`` trains every seed on the same batches for ``epochs`` epochs in one
        call, returning (params, state, keys, each seed's last loss)."""
        jax = _jax()
        run = functools.partial(self._pure_run, epochs=epochs)
        return (jax.jit(jax.vmap(self._init)),
                jax.jit(jax.vmap(run, in_axes=(0, 0, 0, None, None))))

    def seeds_predict(self):
        """``predict`` over a leading seed axis of the parameters, compiled."""
        jax = _jax()
        return jax.jit(jax.vmap(self._forward_out, in_axes=(0, None)))

    @staticmethod
    def split(x: np.ndarray, y: np.ndarray, batch_size: int):
        """The full batches stacked (steps, batch, ...), and the remainder or None."""
        full = len(x) // batch_size * batch_size
        stacked = (x[:full].reshape(-1, batch_size, *x.shape[1:]),
                   y[:full].reshape(-1, batch_size, *y.shape[1:]))
        return stacked, ((x[full:], y[full:]) if full < len(x) else None)

    def compiled(self, batches, rest, epochs: int, count: int = 1):
        """The compiled executable for these shapes, compiled once (in warm-up)."""
        shapes = (epochs, count, *(a.shape for a in batches),
                  rest and tuple(a.shape for a in rest))
        if shapes not in self._compiled:
            lowered = self._run.lower(self.params, self.state, self.key, batches, rest,
                                      epochs=epochs, count=count)
            self._compiled[shapes] = lowered.compile()
        return self._compiled[shapes]

    def run(self, batches, rest, epochs: int, count: int = 1):
        """Train ``count`` x ``epochs`` epochs in one call (waits for the result); returns
        two lists, one entry per ``epochs``: its last epoch's loss, and a predict function
        of the weights it ended with."""
        fn = self.compiled(batches, rest, epochs, count)
        self.params, self.state, self.key, losses, kept = fn(self.params, self.state,
                                                             self.key, batches, rest)
        return np.asarray(losses).tolist(), [functools.partial(self._predict_kept, kept, k)
                                             for k in range(count)]

    def _predict_kept(self, kept, k: int, x: np.ndarray) -> np.ndarray:
        return self.predict(x, [p[k] for p in kept])

    def cast(self, x: np.ndarray, y: np.ndarray | None = None):
        """Inputs in the model's dtype, and float targets too (class labels stay integers)."""
        x = np.asarray(x, self.dtype)
        if y is None:
            return x
        return x, np.asarray(y, self.dtype if np.issubdtype(y.dtype, np.floating) else None)

    def predict(self, x: np.ndarray, params=None) -> np.ndarray:
        return np.asarray(self._predict(self.params if params is None else params,
                                        self.cast(x)))

    def gradients(self, x: np.ndarray, y: np.ndarray) -> tuple[float, list[np.ndarray]]:
        value, grads = self._value_and_grad(self.params, *self.cast(x, y))
        return float(value), [np.asarray(g) for g in grads]

    def train_step(self, x: np.ndarray, y: np.ndarray) -> float:
        (self.params, self.state, self.key), value = self._step(
            (self.params, self.state, self.key), self.cast(x, y))
        return float(value)

    def get_weights(self) -> list[np.ndarray]:
        return [np.asarray(p) for p in self.params]

    def set_weights(self, weights: list[np.ndarray]) -> None:
        jnp = _jax().numpy
        self.params = [jnp.asarray(w, self.dtype) for w in weights]


class Jax(Implementation):
    name = "jax"
    framework = "jax"
    requires = ("jax",)
    description = "JAX, jit-compiled lax.scan over batches"
    why_fast = ("the whole epoch is one compiled XLA program (lax.scan): no Python between "
                "steps, and the elementwise work fused into the matrix products")

    def build(self, cfg, weights, dtype, seed):
        return JaxModel(cfg, weights, dtype, seed)

    @staticmethod
    def calls(cfg, samples: int, epochs: int, check_every: int):
        """(epochs between checks, checks a compiled call): every check falls between two
        runs of the compiled loop. Unshuffled data: the largest divisor of ``epochs`` up to
        the check interval (and MAX_EPOCHS_PER_CHECK); a call holds as many of them as keep
        it within CALL_SAMPLES (a call's dispatch and wait cost about 0.1 ms, 500 XOR
        steps' worth; a run that stops at its target ends with the call that reached it).
        Shuffled: one epoch a call."""
        if cfg.shuffle:
            return 1, 1
        chunk = largest_divisor(epochs, min(check_every, MAX_EPOCHS_PER_CHECK))
        return chunk, largest_divisor(epochs // chunk, CALL_SAMPLES // (chunk * samples))

    def device_batches(self, model: JaxModel, x, y, cfg):
        jnp = _jax().numpy
        x, y = (jnp.asarray(a) for a in model.cast(x, y))
        return model.split(x, y, min(cfg.batch_size, len(x)))

    def warm_up(self, model, x, y, cfg, epochs):
        """Compile the training loop for the shapes training will run; nothing runs."""
        batches, rest = self.device_batches(model, x, y, cfg)
        model.compiled(batches, rest, *self.calls(cfg, len(x), epochs, check_interval(epochs)))
        model.predict(x[:2])

    def train(self, model, x, y, cfg, epochs, seed, monitor: Monitor):
        chunk, count = self.calls(cfg, len(x), epochs, monitor.check_every)
        model.epochs_per_call, model.checks_per_call = chunk * count, count
        steps = -(-len(x) // cfg.batch_size) * chunk * count
        if cfg.shuffle:
            monitor.start()
            for _, xs, ys in shuffled_epochs(x, y, epochs, seed, monitor):
                with monitor.paused():  # on the device, as unshuffled data are before
                    batches, rest = self.device_batches(model, xs, ys, cfg)
                if self._epochs(model, batches, rest, 1, 1, steps, monitor):
                    return
            return
        batches, rest = self.device_batches(model, x, y, cfg)
        monitor.start()
        for _ in range(0, epochs, chunk * count):
            if self._epochs(model, batches, rest, chunk, count, steps, monitor):
                return

    @staticmethod
    def _epochs(model: JaxModel, batches, rest, epochs: int, count: int, steps: int,
                monitor: Monitor):
        """One compiled call of ``count`` x ``epochs`` epochs; True when the monitor stops
        training."""
        losses, predicts = model.run(batches, rest, epochs, count)
        return monitor.batch_end(steps) | monitor.checks_end(losses, predicts, epochs)

    def settings(self, model):
        return {"epochs_per_call": getattr(model, "epochs_per_call", None),
                "checks_per_call": getattr(model, "checks_per_call", None)}

    def bench_epoch(self, model, x, y, cfg):
        batches, rest = self.device_batches(model, x, y, cfg)
        return lambda: model.run(batches, rest, 1)


class JaxSeeds(SeedBatched):
    """S seeds of native JAX as one ``jax.vmap`` of its compiled training loop, from the
    same initial weights as scratch's. Every seed trains to the end."""

    def __init__(self, impl, cfg, seeds, dtype, x, y, epochs_per_call):
        jax = _jax()
        initial = [scratch_model(cfg, dtype, s).get_weights() for s in seeds]
        model = impl.build(cfg, initial[0], dtype, seeds[0])
        self.batches, self.rest = impl.device_batches(model, x, y, cfg)
        self.params = [jax.numpy.stack([w[k] for w in initial]) for k in range(len(initial[0]))]
        self.keys = jax.vmap(jax.random.PRNGKey)(jax.numpy.array(seeds))
        init, self.run = model.seeds_runner(epochs_per_call)
        self.state, self.chunk = init(self.params), epochs_per_call
        self._predict = model.seeds_predict()
        self.active = list(range(len(seeds)))

    def warm_up(self) -> None:
        args = (self.params, self.state, self.keys, self.batches, self.rest)
        self.run = self.run.lower(*args).compile()

    def train(self, epochs: int) -> np.ndarray:
        assert epochs == self.chunk, "compiled for calls of epochs_per_call epochs"
        self.params, self.state, self.keys, loss = self.run(self.params, self.state, self.keys,
                                                            self.batches, self.rest)
        return np.asarray(loss, dtype=np.float64)

    def predict(self, x) -> np.ndarray:
        return np.asarray(self._predict(self.params, np.asarray(x, self.params[0].dtype)))

    def seed_weights(self, i: int) -> list[np.ndarray]:
        return [np.asarray(p[i]) for p in self.params]


Jax.seed_batched = JaxSeeds
