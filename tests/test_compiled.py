"""The compiled engine (scratch/compiled.py) is scratch's network: what tests/test_peers.py
does not reach (its hyperparameters are exact in float32), in float64 against scratch.MLP;
and its seed-batched network is scratch's SeedBatchedMLP, seed by seed.
Numba compiles once into its cache on disk (make does it as it installs)."""

import numpy as np
import pytest

from scratch import MLP, TrainingDiverged
from scratch.compiled import CompiledMLP, CompiledSeedBatchedMLP
from scratch.seeds import SeedBatchedMLP

RNG = np.random.default_rng(7)
X = RNG.random((12, 5))


def pair(activations, loss, optimizer="sgd", sizes=(5, 4, 3)):
    reference = MLP(sizes, activations, loss, optimizer, dtype="float64", seed=2)
    compiled = CompiledMLP(sizes, activations, loss, optimizer, dtype="float64", seed=2)
    return reference, compiled


def targets(loss, k=3):
    if loss == "categorical_crossentropy":
        return np.eye(k)[RNG.integers(0, k, len(X))]
    return RNG.integers(0, 2, (len(X), k)).astype("float64")


@pytest.mark.parametrize("activations, loss", [
    (["tanh", "sigmoid"], "binary_crossentropy"),       # the fused sigmoid cross-entropy
    ([{"name": "leaky_relu", "negative_slope": 0.3}, "softmax"], "mean_squared_error"),
    (["linear", "softmax"], "categorical_crossentropy"),
    (["relu", "linear"], "mean_squared_error"),
])
def test_every_activation_and_loss_gives_scratchs_outputs_loss_and_gradients(activations, loss):
    reference, compiled = pair(activations, loss)
    y = targets(loss)
    np.testing.assert_allclose(compiled.predict(X), reference.predict(X), rtol=0, atol=1e-14)
    (want, want_grads), (got, got_grads) = reference.gradients(X, y), compiled.gradients(X, y)
    assert got == pytest.approx(want, rel=1e-13)
    for g, w in zip(got_grads, want_grads, strict=True):
        np.testing.assert_allclose(g, w, rtol=0, atol=1e-14)
    assert compiled.evaluate(X, y, batch_size=5) == pytest.approx(
        reference.evaluate(X, y, batch_size=5), rel=1e-13)


@pytest.mark.parametrize("optimizer", [
    {"name": "sgd", "learning_rate": 0.01},
    {"name": "sgd", "learning_rate": 0.05, "momentum": 0.9, "nesterov": True},
    {"name": "adam"},  # 0.001, 0.9, 0.999: none exact in float32, as Keras rounds them
])
def test_keras_rounded_hyperparameters_train_as_scratch(optimizer):
    reference, compiled = pair(["sigmoid", "sigmoid"], "mean_squared_error", optimizer)
    y = targets("mean_squared_error")
    want = reference.fit(X, y, epochs=30, batch_size=5).history["loss"]
    got = compiled.fit(X, y, epochs=30, batch_size=5).history["loss"]  # the same orders
    np.testing.assert_allclose(got, want, rtol=1e-12)
    for g, w in zip(compiled.get_weights(), reference.get_weights(), strict=True):
        np.testing.assert_allclose(g, w, rtol=0, atol=1e-12)


def test_a_diverged_fit_raises_with_the_epochs_before_it():
    _, compiled = pair(["sigmoid", "sigmoid"], "mean_squared_error")
    x = X.copy()
    x[7, 2] = np.nan
    with pytest.raises(TrainingDiverged, match="at epoch 0") as caught:
        compiled.fit(x, targets("mean_squared_error"), epochs=3, batch_size=4, shuffle=False)
    assert caught.value.history.history["loss"] == []


def test_bad_batches_and_orders_are_refused_by_name():
    _, compiled = pair(["sigmoid", "sigmoid"], "mean_squared_error")
    y = targets("mean_squared_error")
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        compiled.fit(X, y, batch_size=0)
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        compiled.predict(X, batch_size=0)
    with pytest.raises(ValueError, match="a permutation of the 12 samples"):
        compiled.fit(X, y, orders=np.full((1, 12), 99))
    with pytest.raises(ValueError, match="at least one sample"):
        compiled.fit(X[:0], y[:0])


SEED_OPTIMIZERS = [{"name": "sgd", "learning_rate": 0.5},
                   {"name": "sgd", "learning_rate": 0.1, "momentum": 0.9, "nesterov": True},
                   {"name": "adam", "learning_rate": 0.05}]


@pytest.mark.parametrize("optimizer", SEED_OPTIMIZERS)
@pytest.mark.parametrize("activations, loss, batch", [
    (["sigmoid", "sigmoid"], "mean_squared_error", None),  # the atlas's and reversal's nets
    (["tanh", "softmax"], "categorical_crossentropy", 5),   # fused, in minibatches
    ([{"name": "leaky_relu", "negative_slope": 0.3}, "sigmoid"], "binary_crossentropy", 5),
])
def test_every_seed_of_the_compiled_stack_follows_scratchs_stack(activations, loss, batch,
                                                                 optimizer):
    """CompiledSeedBatchedMLP against scratch.seeds.SeedBatchedMLP, whose every seed is its
    own MLP (tests/test_seeds.py): each seed's losses, weights and predictions, in float64."""
    y = targets(loss)
    stacks = [cls((5, 4, 3), activations, loss, optimizer, seeds=[3, 0, 8], dtype="float64")
              for cls in (SeedBatchedMLP, CompiledSeedBatchedMLP)]
    want, got = (s.fit(X, y, epochs=20, batch_size=batch) for s in stacks)
    assert got.shape == (20, 3)
    np.testing.assert_allclose(got, want, rtol=1e-12)
    for i in range(3):
        for g, w in zip(stacks[1].seed_weights(i), stacks[0].seed_weights(i), strict=True):
            np.testing.assert_allclose(g, w, rtol=0, atol=1e-12)
    np.testing.assert_allclose(stacks[1].predict(X), stacks[0].predict(X), rtol=0, atol=1e-13)
    np.testing.assert_allclose(stacks[1].predict(X, batch_size=2), stacks[0].predict(X),
                               rtol=0, atol=1e-13)
    np.testing.assert_allclose(stacks[1].evaluate(X, y, batch_size=2), stacks[0].evaluate(X, y),
                               rtol=1e-12)


def test_the_stacks_inference_compiles_once_a_dtype_whatever_the_inputs_layout():
    """predict and evaluate share one compiled function, which make's warm-up compiles: a
    read-only or transposed input is made C-contiguous first, not compiled for again."""
    from scratch.compiled import _seed_inference

    for dtype in ("float32", "float64"):
        stack = CompiledSeedBatchedMLP((5, 4, 3), ["tanh", "softmax"], "categorical_crossentropy",
                                       seeds=[0, 1], dtype=dtype)
        x, y = X.astype(dtype), targets("categorical_crossentropy").astype(dtype)
        frozen = x.copy()
        frozen.flags.writeable = False
        want = stack.predict(x)
        for inputs in (frozen, np.asfortranarray(x)):
            np.testing.assert_array_equal(stack.predict(inputs), want)
        assert stack.evaluate(np.asfortranarray(x), y).dtype == dtype
    assert len(_seed_inference.signatures) == 2


def test_the_single_networks_verbs_share_two_compiled_functions_a_dtype():
    """fit, train_step and gradients run ``_train``, predict and evaluate ``_inference``:
    make's warm-up compiles each once a dtype, and no verb compiles a function of its own,
    nor a read-only or transposed input another signature."""
    from scratch.compiled import _inference, _train

    for dtype in ("float32", "float64"):
        model = CompiledMLP((5, 4, 3), ["tanh", "softmax"], "categorical_crossentropy",
                            dtype=dtype)
        x, y = X.astype(dtype), targets("categorical_crossentropy").astype(dtype)
        frozen = y.copy()
        frozen.flags.writeable = False
        model.fit(np.asfortranarray(x), frozen, epochs=2, batch_size=3)
        model.train_step(x, y)
        model.gradients(x[:3], y[:3])
        model.evaluate(x, y)
        assert model.predict(x).dtype == dtype
    assert len(_train.signatures) == 2 and len(_inference.signatures) == 2


def test_a_subset_of_the_compiled_stack_trains_on_as_each_seed_would_have():
    y = targets("mean_squared_error")
    whole = CompiledSeedBatchedMLP((5, 4, 3), ["sigmoid", "sigmoid"], "mean_squared_error",
                                   "adam", seeds=[0, 1, 2], dtype="float64")
    whole.fit(X, y, epochs=5)
    part = whole.subset([2, 0])  # Adam's moments and step count go with the weights
    assert part.seeds == [2, 0]
    part.fit(X, y, epochs=5)
    whole.fit(X, y, epochs=5)
    for p, i in enumerate((2, 0)):
        for g, w in zip(part.seed_weights(p), whole.seed_weights(i), strict=True):
            np.testing.assert_allclose(g, w, rtol=0, atol=1e-14)
    none = whole.subset([])  # every seed retired: what a group whose seeds all converged keeps
    assert none.seeds == [] and [p.shape for p in none.params] == [(0, 5, 4), (0, 4), (0, 4, 3),
                                                                   (0, 3)]


def test_a_diverging_seed_of_the_compiled_stack_leaves_the_others_alone():
    y = targets("mean_squared_error")
    stack = CompiledSeedBatchedMLP((5, 4, 3), ["sigmoid", "sigmoid"], "mean_squared_error",
                                   seeds=[0, 1], dtype="float64")
    stack.params[0][1, 0, 0] = np.nan
    losses = stack.fit(X, y, epochs=3)
    assert np.isnan(losses[:, 1]).all() and np.isfinite(losses[:, 0]).all()
    single = CompiledMLP((5, 4, 3), ["sigmoid", "sigmoid"], "mean_squared_error",
                         dtype="float64", seed=0)
    single.fit(X, y, epochs=3, batch_size=len(X), shuffle=False)
    for g, w in zip(stack.seed_weights(0), single.get_weights(), strict=True):
        np.testing.assert_allclose(g, w, rtol=0, atol=1e-14)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_the_compiled_tanh_is_numpys_to_two_ulp_and_keeps_nan(dtype):
    """scratch.compiled's tanh (float64 arithmetic, or float32's for float32 arrays), which
    the engine's sigmoid and tanh use in place of libm's (whose calls keep a loop from
    running in SIMD lanes)."""
    from scratch.compiled import _tanh_in, jit

    @jit
    def tanh_all(x, out):
        for i in range(x.size):
            out[i] = _tanh_in(x, x[i])

    rng = np.random.default_rng(0)
    x = np.concatenate([rng.uniform(-25, 25, 200_000), rng.uniform(-1, 1, 200_000),
                        rng.uniform(-1e-3, 1e-3, 20_000), [0.0, 0.625, -0.625, 22.0, 1e-30,
                                                           np.inf, -np.inf, np.nan]]).astype(dtype)
    out = np.empty_like(x)
    tanh_all(x, out)
    want = np.tanh(x)
    finite = np.isfinite(x)
    ulps = np.abs(out - want)[finite].astype(float) / np.spacing(np.abs(want[finite]))
    assert ulps.max() <= 2
    assert out[-3:-1].tolist() == [1.0, -1.0] and np.isnan(out[-1])
    negative_zero = np.array([-0.0], dtype)
    tanh_all(negative_zero, out[:1])
    assert np.signbit(out[0])  # as NumPy's


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_the_engines_products_call_numpys_own_blas(dtype):
    """Above SMALL multiply-adds a product is a cblas_?gemm of the OpenBLAS NumPy's wheel
    bundles (the symbols the compiled code calls are that library's), not Numba's np.dot,
    which calls SciPy's: one BLAS and one thread pool with scratch's. Every layout the
    passes take (a transposed operand, one row or column) gives NumPy's product."""
    import ctypes

    import llvmlite.binding
    from threadpoolctl import threadpool_info

    from scratch import compiled

    @compiled.jit
    def matmul(a, b, out):  # the engine's inner functions are called from compiled code only
        compiled._matmul(a, b, out)

    assert compiled.NUMPY_GEMM, "NumPy's wheel bundles scipy-openblas64 (constraints.txt)"
    numpys = next(p["filepath"] for p in threadpool_info() if "numpy" in p["filepath"])
    lib = ctypes.CDLL(numpys)
    for name in compiled.GEMM:
        ours = ctypes.cast(getattr(lib, name), ctypes.c_void_p).value
        assert llvmlite.binding.address_of_symbol(name) == ours
    rng = np.random.default_rng(3)
    for n, k, m in [(32, 784, 64), (1, 784, 64), (784, 1, 64), (32, 64, 10)]:
        a, b = rng.random((n, k)).astype(dtype), rng.random((k, m)).astype(dtype)
        for x, y in [(a, b), (a.T.copy().T, b), (a, b.T.copy().T)]:
            out = np.full((n, m), np.nan, dtype)
            matmul(x, y, out)
            # NumPy multiplies one row by gemv, in another order: rounding apart
            np.testing.assert_allclose(out, x @ y, rtol=0 if n > 1 else 1e-5 if dtype ==
                                       "float32" else 1e-13)
