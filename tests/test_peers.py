"""Every peer is the same network as scratch's: predictions, loss and gradients in
float64 agree to 1e-10, and so do the weights after 10 steps of SGD, momentum,
Nesterov and Adam on all three architectures; float32 agrees within the Keras twins'
tolerances; and training sees the batches in the harness's order.

Two exceptions, Keras' own, from its dtype promotion (keras.src.backend.common.dtypes):
on JAX, ``keras.ops.mean`` reduces a float64 tensor in result_type(float64, "float32"),
which is float32, so Keras' mean squared error on xor and reverse4 is float32-accurate
there: KERAS_JAX_MSE_ATOL (measured: 5e-9 on the losses). On PyTorch, ``keras.ops.matmul``
multiplies in result_type(float64, float64), which is float32 too, so every float64
Keras-on-PyTorch figure is float32-accurate: KERAS_TORCH_FLOAT64_ATOL.

Keras on TensorFlow is tested in test_keras_twins.py. A Keras backend other than
TensorFlow runs in a process of its own (tests/peers.py), and so does native PyTorch:
torch.compile's import of triton aborts a process that has loaded TensorFlow. A peer whose
framework is not installed is skipped, with the command that installs it.
"""

import numpy as np
import pytest

from benchmarks.implementations import IMPLEMENTATIONS
from scratch import ARCHITECTURES
from tests.conftest import in_own_process, needs, runs_here
from tests.peers import DTYPES, OPTIMIZERS, ORDERS, order_data, probe, tuned_batchings
from tests.test_keras_twins import FLOAT32_ADAM_ATOL, FLOAT32_ATOL, FLOAT64_ATOL

PEERS = ["scratch-numba", "jax", "torch", "keras-jax", "keras-torch"]
ARCHS = list(ARCHITECTURES)
KERAS_JAX_MSE_ATOL = 1e-7
KERAS_TORCH_FLOAT64_ATOL = FLOAT32_ATOL


def float64_atol(peer: str, arch: str) -> float:
    mse = ARCHITECTURES[arch].loss == "mean_squared_error"
    if peer == "keras-torch":
        return KERAS_TORCH_FLOAT64_ATOL
    return KERAS_JAX_MSE_ATOL if peer == "keras-jax" and mse else FLOAT64_ATOL


@pytest.fixture(scope="module")
def expected():
    return probe("scratch-shortcut")


@pytest.fixture(scope="module", params=PEERS)
def peer(request, tmp_path_factory):
    name = request.param
    needs(name)
    if runs_here(name):  # the others in a process of their own
        return name, probe(name)
    out = tmp_path_factory.mktemp(name) / "probe.npz"
    in_own_process("-m", "tests.peers", name, str(out))
    with np.load(out) as arrays:
        return name, dict(arrays)


def close(peer, want, keys, atol):
    got = peer[1]
    for key in keys:
        np.testing.assert_allclose(got[key], want[key], rtol=0, atol=atol, err_msg=key)


@pytest.mark.parametrize("arch", ARCHS)
def test_float64_predictions_loss_and_gradients(peer, expected, arch):
    keys = [k for k in expected if k.startswith(f"{arch}/sgd/float64/")
            and k.split("/")[-1].startswith(("predict", "loss", "grad"))]
    assert len(keys) == 2 + 1 + 4
    close(peer, expected, keys, float64_atol(peer[0], arch))


@pytest.mark.parametrize("opt", OPTIMIZERS)
@pytest.mark.parametrize("arch", ARCHS)
def test_float64_weights_after_ten_steps(peer, expected, arch, opt):
    keys = [f"{arch}/{opt}/float64/{k}" for k in ("losses", "w0", "w1", "w2", "w3")]
    close(peer, expected, keys, float64_atol(peer[0], arch))


@pytest.mark.parametrize("opt", OPTIMIZERS)
@pytest.mark.parametrize("arch", ARCHS)
def test_float32_weights_after_ten_steps(peer, expected, arch, opt):
    keys = [f"{arch}/{opt}/float32/{k}" for k in ("w0", "w1", "w2", "w3")]
    close(peer, expected, keys, FLOAT32_ADAM_ATOL if opt == "adam" else FLOAT32_ATOL)
    assert peer[1][f"{arch}/{opt}/float32/w0"].dtype == np.float32


@pytest.mark.parametrize("order", ORDERS)
def test_training_sees_the_harness_batches_in_order(peer, expected, order):
    """As test_harness's identical-batches test, whose controls show that another order
    of the same batches ends elsewhere (by more than 1e-3)."""
    close(peer, expected, [f"order/{order}/w{i}" for i in range(4)], 1e-5)


@pytest.mark.parametrize("order", ORDERS)
def test_a_keras_backends_tuned_settings_see_the_same_batches(peer, expected, order):
    """Its tuned twin (keras-jax-tuned, keras-torch-tuned) ends where scratch does too,
    under each candidate setting that batches otherwise than plain fit (steps per
    execution, a repeated batch), as keras-tuned does on TensorFlow in test_harness's
    identical-batches test."""
    name, got = peer
    tuned = IMPLEMENTATIONS.get(f"{name}-tuned")
    if tuned is None:
        pytest.skip(f"{name} has no tuned twin")
    cfg, _ = ORDERS[order]
    tried = sorted({key.rsplit("/", 1)[0] for key in got if key.startswith(f"tuned/{order}/")})
    assert len(tried) == len(tuned_batchings(tuned, cfg, len(order_data(order)[0])))
    for prefix in tried:
        want = {f"{prefix}/w{i}": expected[f"order/{order}/w{i}"] for i in range(4)}
        close(peer, want, list(want), 1e-5)


def test_where_the_softmax_saturates(peer, expected):
    """Every peer computes a softmax's cross-entropy from its logits, as scratch does: Keras
    on JAX and PyTorch too, whose default form would clip the probabilities at 1e-7 and lose
    the gradient of every sample whose true class is below the clip (test_identity.py shows
    the run-time check catching that form). Here the initial weights x 30 saturate it."""
    assert expected["saturated/loss"] > 50  # from the logits: far beyond -log(1e-7) = 16.1
    if peer[0] == "keras-torch":  # float32-accurate in float64: a loss of 390 to 1e-7
        for key in ("saturated/loss", "saturated/grad0"):
            np.testing.assert_allclose(peer[1][key], expected[key], rtol=1e-6, atol=1e-5,
                                       err_msg=key)
        return
    close(peer, expected, ["saturated/loss", "saturated/grad0"], FLOAT64_ATOL)


def test_the_probe_compares_what_it_should(expected):
    """The checks above can fail: every dtype and optimizer moved the weights, and
    differently from one another."""
    for arch in ARCHS:
        finals = [expected[f"{arch}/{opt}/{dtype}/w0"] for opt in OPTIMIZERS for dtype in DTYPES]
        assert min(np.abs(a - b).max() for i, a in enumerate(finals)
                   for b in finals[i + 2:]) > 1e-6
