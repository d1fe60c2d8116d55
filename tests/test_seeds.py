"""Seed-batched scratch: every seed's trajectory is the one MLP(seed=s) follows alone."""

import numpy as np
import pytest

from scratch import ARCHITECTURES, MLP
from scratch import seeds as seeds_module
from scratch.seeds import SeedBatchedMLP
from tests.peers import OPTIMIZERS

SEEDS = (3, 0, 7)
STEPS = 25
TOLERANCE = {"float64": 1e-12, "float32": 1e-5}  # float32: the Keras twins' tolerance
ADAM_FLOAT32 = 1e-4


def data(arch, dtype, n=8):
    rng = np.random.default_rng(1)
    x = rng.random((n, arch.sizes[0])).astype(dtype)
    if arch.loss == "categorical_crossentropy":
        y = np.eye(arch.sizes[-1], dtype=dtype)[rng.integers(0, arch.sizes[-1], n)]
    else:
        y = rng.integers(0, 2, (n, arch.sizes[-1])).astype(dtype)
    return x, y


def alone(arch, opt, dtype, seed) -> MLP:
    return MLP(arch.sizes, arch.activations, arch.loss, opt, dtype=dtype, seed=seed)


@pytest.mark.parametrize("products", ["matmul", "multiply-adds"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("opt", OPTIMIZERS)
@pytest.mark.parametrize("name", ["xor", "reverse4", "mnist"])
def test_every_seed_follows_its_own_mlp(name, opt, dtype, products, monkeypatch):
    """Both ways of multiplying the stack: np.matmul (few seeds) and, for many seeds, short
    products as multiply-adds along the seed axis (MANY lowered so that 3 seeds take it)."""
    if products == "multiply-adds":
        monkeypatch.setattr(seeds_module, "MANY", 1)
    arch = ARCHITECTURES[name]
    if name == "mnist":
        arch = arch.replace(sizes=(784, 64, 10))  # 784-512-10's paths, a fraction of the work
    x, y = data(arch, dtype)
    stack = SeedBatchedMLP(arch.sizes, arch.activations, arch.loss, OPTIMIZERS[opt],
                           seeds=SEEDS, dtype=dtype)
    singles = [alone(arch, OPTIMIZERS[opt], dtype, s) for s in SEEDS]
    for i, single in enumerate(singles):  # the same initial weights
        for w, v in zip(stack.seed_weights(i), single.get_weights(), strict=True):
            np.testing.assert_array_equal(w, v)
    atol = ADAM_FLOAT32 if opt == "adam" and dtype == "float32" else TOLERANCE[dtype]
    losses = stack.fit(x, y, epochs=STEPS, batch_size=4)
    for i, single in enumerate(singles):
        history = single.fit(x, y, epochs=STEPS, batch_size=4, shuffle=False)
        np.testing.assert_allclose(losses[:, i], history.history["loss"], rtol=0,
                                   atol=10 * atol)
        for k, (w, v) in enumerate(zip(stack.seed_weights(i), single.get_weights())):
            np.testing.assert_allclose(w, v, rtol=0, atol=atol, err_msg=f"seed {i}, weight {k}")
        np.testing.assert_allclose(stack.predict(x)[i], single.predict(x), rtol=0, atol=atol)
        assert stack.evaluate(x, y)[i] == pytest.approx(single.evaluate(x, y), abs=10 * atol)
    assert stack.optimizer.iterations == single.optimizer.iterations == STEPS * 2


@pytest.mark.parametrize("loss, activation", [("binary_crossentropy", "sigmoid"),
                                              ("sparse_categorical_crossentropy", "softmax")])
def test_the_other_fused_losses_stack_too(loss, activation):
    sizes = (5, 6, 3)
    rng = np.random.default_rng(2)
    x = rng.random((6, 5))
    y = (rng.integers(0, 3, 6) if loss.startswith("sparse")
         else rng.integers(0, 2, (6, 3)).astype("float64"))
    stack = SeedBatchedMLP(sizes, ["tanh", activation], loss, "adam", seeds=(0, 1),
                           dtype="float64")
    losses = stack.fit(x, y, epochs=5, batch_size=3)
    for i, seed in enumerate((0, 1)):
        single = MLP(sizes, ["tanh", activation], loss, "adam", dtype="float64", seed=seed)
        history = single.fit(x, y, epochs=5, batch_size=3, shuffle=False)
        np.testing.assert_allclose(losses[:, i], history.history["loss"], rtol=0, atol=1e-12)
        for w, v in zip(stack.seed_weights(i), single.get_weights(), strict=True):
            np.testing.assert_allclose(w, v, rtol=0, atol=1e-12)


def test_a_diverging_seed_leaves_the_others_alone():
    arch = ARCHITECTURES["xor"]
    x, y = data(arch, "float64", 4)
    stack = SeedBatchedMLP(arch.sizes, arch.activations, arch.loss, "sgd", seeds=(0, 1),
                           dtype="float64")
    stack.params[0][1, 0, 0] = np.nan
    losses = stack.fit(x, y, epochs=3)
    assert np.isnan(losses[:, 1]).all() and np.isfinite(losses[:, 0]).all()
    single = alone(arch, "sgd", "float64", 0)
    single.fit(x, y, epochs=3, batch_size=None, shuffle=False)
    for w, v in zip(stack.seed_weights(0), single.get_weights(), strict=True):
        np.testing.assert_allclose(w, v, rtol=0, atol=1e-12)


def test_bad_input_is_refused_with_a_message():
    arch = ARCHITECTURES["xor"]
    with pytest.raises(ValueError, match="at least one seed"):
        SeedBatchedMLP(arch.sizes, arch.activations, arch.loss, seeds=())
    stack = SeedBatchedMLP(arch.sizes, arch.activations, arch.loss, seeds=(0,))
    with pytest.raises(ValueError, match=r"shape \(n, 2\)"):
        stack.fit(np.zeros((4, 3)), np.zeros((4, 1)))
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        stack.fit(np.zeros((4, 2)), np.zeros((4, 1)), batch_size=0)


def test_many_seeds_lie_seed_axis_last_in_memory():
    """What makes many seeds fast: every call's innermost loop runs over the seeds."""
    stack = SeedBatchedMLP((2, 3, 1), ("sigmoid", "sigmoid"), "mse", seeds=range(200))
    x = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype="float32")
    stack.fit(x, np.array([[0], [1], [1], [0]], dtype="float32"), epochs=2)
    arrays = [*stack.params, *(a for layer in stack.dense for a in (layer.z, layer.a))]
    for a in arrays:
        assert a.shape[0] == 200 and a.strides[0] == a.itemsize, a.shape


@pytest.mark.parametrize("products", ["matmul", "multiply-adds"])
@pytest.mark.parametrize("opt", OPTIMIZERS)
def test_a_subset_of_seeds_trains_on_as_each_would_have(opt, products, monkeypatch):
    """Seeds dropped midway (those done) leave the others' trajectories, and their optimizer
    state, untouched: in any order, the kept seeds end where MLP(seed=s) alone ends."""
    if products == "multiply-adds":
        monkeypatch.setattr(seeds_module, "MANY", 1)
    arch = ARCHITECTURES["reverse4"]
    x, y = data(arch, "float64")
    stack = SeedBatchedMLP(arch.sizes, arch.activations, arch.loss, OPTIMIZERS[opt],
                           seeds=(5, 3, 0, 7), dtype="float64")
    stack.fit(x, y, epochs=4, batch_size=4)
    kept, before = stack.subset([3, 1]), stack.flat_params.copy()
    assert kept.seeds == [7, 3] and len(kept.params[0]) == 2
    losses = kept.fit(x, y, epochs=4, batch_size=4)
    for i, seed in enumerate(kept.seeds):
        single = alone(arch, OPTIMIZERS[opt], "float64", seed)
        history = single.fit(x, y, epochs=8, batch_size=4, shuffle=False)
        np.testing.assert_allclose(losses[:, i], history.history["loss"][4:], rtol=0, atol=1e-11)
        for w, v in zip(kept.seed_weights(i), single.get_weights(), strict=True):
            np.testing.assert_allclose(w, v, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(stack.flat_params, before)  # the original is its own
