"""What tests/test_peers.py compares: one implementation's predictions, loss, gradients
and weights after 10 steps, on the three architectures, through the Implementation
interface; and its weights after training on the harness's batch orders.

Keras picks its backend once a process, and torch.compile cannot share a process with
TensorFlow, so those peers are probed in a process of their own:
``python -m tests.peers IMPL OUT.npz``.
"""

from __future__ import annotations

import sys
from dataclasses import replace

import numpy as np

from benchmarks.data.tasks import CONFIGS, TaskConfig, get_config, load_task
from benchmarks.implementations import IMPLEMENTATIONS, Monitor, scratch_model
from scratch import ARCHITECTURES, MLP, MNIST

# Hyperparameters exact in float32. Keras on TensorFlow rounds momentum and the betas
# through float32 and Keras on JAX does not: with these, both mean the same numbers.
OPTIMIZERS = {
    "sgd": {"name": "sgd", "learning_rate": 0.125},
    "sgd-momentum": {"name": "sgd", "learning_rate": 0.0625, "momentum": 0.875},
    "sgd-nesterov": {"name": "sgd", "learning_rate": 0.0625, "momentum": 0.875, "nesterov": True},
    "adam": {"name": "adam", "learning_rate": 2.0 ** -7, "beta_1": 0.875,
             "beta_2": 1 - 2.0 ** -10},
}
DTYPES = ("float64", "float32")
STEPS, BATCH, N = 10, 4, 16

# The batch orders of test_harness.py's identical-batches test, and epochs for each.
SHUFFLED = replace(CONFIGS["mnist/tf-tutorial"], arch=MNIST.replace(sizes=(784, 16, 10)),
                   optimizer={"name": "sgd", "learning_rate": 0.1}, batch_size=10)
XOR_IN_PAIRS = replace(get_config("xor"), config="pairs", batch_size=2,
                       optimizer={"name": "sgd", "learning_rate": 1.0})
ORDERS = {"shuffled": (SHUFFLED, 2), "xor": (get_config("xor"), 30),
          "xor-pairs": (XOR_IN_PAIRS, 30)}


def data(arch, dtype):
    rng = np.random.default_rng(100)
    x = rng.random((N, arch.sizes[0])) * (rng.random((N, arch.sizes[0])) < 0.3)  # sparse, as MNIST
    k = arch.sizes[-1]
    y = np.eye(k)[rng.integers(0, k, N)] if arch is MNIST else rng.integers(0, 2, (N, k))
    return x.astype(dtype), y.astype(dtype)


def batches():
    rng = np.random.default_rng(5)
    return [rng.choice(N, BATCH, replace=False) for _ in range(STEPS)]


def order_data(name):
    cfg, _ = ORDERS[name]
    if cfg.task == "xor":
        return (np.array([[0, 0], [0, 1], [1, 0], [1, 1]], "float32"),
                np.array([[0], [1], [1], [0]], "float32"))
    task = load_task(cfg, train_samples=50)
    return task.x, task.y


def probe(name: str) -> dict[str, np.ndarray]:
    impl = IMPLEMENTATIONS[name]
    impl.activate()
    out = {}
    for arch in ARCHITECTURES.values():
        for opt, config in OPTIMIZERS.items():
            for dtype in DTYPES:
                cfg = TaskConfig(arch.name, "probe", arch, config, epochs=STEPS, batch_size=BATCH)
                weights = MLP.from_architecture(arch, config, dtype=dtype, seed=3).get_weights()
                model = impl.build(cfg, weights, dtype, 3)
                x, y = data(arch, dtype)
                key = f"{arch.name}/{opt}/{dtype}"
                if opt == "sgd":
                    out[f"{key}/predict"] = impl.predict(model, x)
                    loss, grads = impl.gradients(model, x, y)
                    out[f"{key}/loss"] = np.array(loss)
                    out.update({f"{key}/grad{i}": g for i, g in enumerate(grads)})
                out[f"{key}/losses"] = np.array([impl.train_step(model, x[b], y[b])
                                                 for b in batches()])
                out.update({f"{key}/w{i}": w for i, w in enumerate(impl.get_weights(model))})
    # Saturated softmax outputs: the initial weights times 30, most true-class
    # probabilities far below Keras' clip of 1e-7.
    cfg = TaskConfig("mnist", "probe", MNIST, OPTIMIZERS["sgd"], epochs=1, batch_size=N)
    model = impl.build(cfg, [30 * w for w in MLP.from_architecture(MNIST, seed=3,
                                                                  dtype="float64").get_weights()],
                       "float64", 3)
    loss, grads = impl.gradients(model, *data(MNIST, "float64"))
    out.update({"saturated/loss": np.array(loss), "saturated/grad0": grads[0]})
    # A Keras backend's tuned twin trains in this process too, on the same orders, under
    # each of its settings that batches otherwise than plain fit.
    tuned = IMPLEMENTATIONS.get(f"{name}-tuned")
    for order, (cfg, epochs) in ORDERS.items():
        x, y = order_data(order)
        out.update({f"order/{order}/w{i}": w for i, w in enumerate(train(impl, cfg, x, y, epochs))})
        for j, settings in enumerate(tuned_batchings(tuned, cfg, len(x)) if tuned else []):
            out.update({f"tuned/{order}/{j}/w{i}": w
                        for i, w in enumerate(train(tuned, cfg, x, y, epochs, settings))})
    return out


def tuned_batchings(tuned, cfg, n: int) -> list[dict]:
    """A tuned Keras twin's candidate settings (``candidates``) that feed the batches
    otherwise than plain fit: one for each (steps per execution, repeated batch) it tries.
    XLA on or off feeds the same batches."""
    fed = {(1, False): None}  # plain fit's
    for settings in tuned.candidates(cfg, n):
        fed.setdefault((settings["steps_per_execution"], settings["repeat"]), settings)
    return [settings for settings in fed.values() if settings]


def train(impl, cfg, x, y, epochs: int, settings: dict | None = None, seed: int = 0):
    """The weights after training from scratch's seed-0 weights as the harness does (warm
    up, then train); a tuned Keras twin under ``settings``, uncalibrated."""
    if settings:
        impl.settle(cfg, x, epochs, settings)
    try:
        model = impl.build(cfg, scratch_model(cfg, "float32", 0).get_weights(), "float32", 0)
        impl.warm_up(model, x, y, cfg, epochs)
    finally:  # pinned for this run alone: a later one in this process calibrates
        if settings:
            impl.settle(cfg, x, epochs, None)
    impl.train(model, x, y, cfg, epochs, seed, Monitor(1e9, lambda p: False, epochs))
    return impl.get_weights(model)


if __name__ == "__main__":
    np.savez(sys.argv[2], **probe(sys.argv[1]))
