"""The minimal loops of tests/minimal/ train the same network as scratch: from scratch's
initial weights, after 5 XOR steps and 4 MNIST steps of batch 32 (two epochs of two
batches, in file order), their weights equal scratch's within float32's rounding. So
``groundup bench-peers`` times each peer against a loop that does the same work.

JAX's loop and Keras-on-TensorFlow's run here; the others in a process of their own
(``python -m tests.minimal``): Keras picks its backend once a process, and PyTorch is kept
out of a process that may have loaded TensorFlow, as in test_peers.py. A loop whose
framework is not installed is skipped.
"""

import numpy as np
import pytest

from benchmarks.implementations import IMPLEMENTATIONS, scratch_model
from tests.conftest import in_own_process, needs, runs_here
from tests.minimal import CHECKS, TASKS, setup, trained
from tests.test_keras_twins import FLOAT32_ATOL

# One per minimal loop: the Implementation whose framework and Keras backend it runs on.
LOOPS = ["jax", "torch", "keras", "keras-jax", "keras-torch"]


@pytest.fixture(scope="module")
def expected():
    """Scratch's weights after CHECKS, and its initial ones, by task."""
    out = {}
    for task, (epochs, samples) in CHECKS.items():
        cfg, initial, x, y = setup(task, samples)
        model = scratch_model(cfg, "float32", 0)
        model.fit(x, y, epochs=epochs, batch_size=cfg.batch_size, shuffle=False)
        out[task] = (model.get_weights(), initial)
    return out


@pytest.fixture(scope="module", params=LOOPS)
def loop(request, tmp_path_factory):
    """(name, {task: weights after CHECKS})."""
    name = request.param
    needs(name)
    if runs_here(name):
        IMPLEMENTATIONS[name].activate()
        return name, {task: trained(IMPLEMENTATIONS[name].framework, task) for task in TASKS}
    out = tmp_path_factory.mktemp(name) / "weights.npz"
    in_own_process("-m", "tests.minimal", name, str(out), timeout=300)
    with np.load(out) as arrays:
        return name, {task: [arrays[f"{task}/w{i}"] for i in range(4)] for task in TASKS}


@pytest.mark.parametrize("task", TASKS)
def test_same_weights_as_scratch(loop, expected, task):
    name, weights = loop
    want, initial = expected[task]
    for i, (got, w, w0) in enumerate(zip(weights[task], want, initial, strict=True)):
        assert got.dtype == np.float32, f"{name} {task} w{i}: {got.dtype}"
        np.testing.assert_allclose(got, w, rtol=0, atol=FLOAT32_ATOL, err_msg=f"{name} {task} w{i}")
        # Each array moved by more than the tolerance: the steps were taken.
        assert np.abs(w - w0).max() > 10 * FLOAT32_ATOL, f"{task} w{i} barely trained"
