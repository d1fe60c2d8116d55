"""The cost model of the jacobian mode against what tracemalloc measures, and the guard."""

import tracemalloc

import numpy as np
import pytest

from scratch import MLP, MNIST
from scratch.cost import Jacobian, backprop_cost


def traced_peak(model: MLP, x, y) -> int:
    """What one training step allocates, once the model's buffers exist."""
    model.train_step(x, y)
    tracemalloc.start()
    try:
        model.train_step(x, y)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("mode", ["jacobian", "shortcut"])
@pytest.mark.parametrize("hidden", [8, 16, 32, 64])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_predicted_peak_is_within_ten_percent_of_traced(mode, hidden, dtype):
    model = MLP.from_architecture(MNIST.replace(sizes=(784, hidden, 10)), backprop=mode,
                                  dtype=dtype)
    n = 4 if mode == "jacobian" else 32
    rng = np.random.default_rng(0)
    x = rng.random((n, 784)).astype(dtype)
    y = np.eye(10, dtype=dtype)[np.arange(n) % 10]
    cost = backprop_cost((784, hidden, 10), dtype)
    predicted = cost.jacobian_peak_bytes(n) if mode == "jacobian" else cost.shortcut_peak_bytes(n)
    measured = traced_peak(model, x, y)
    # The jacobian mode's peak is its Jacobians, modelled exactly; the shortcut's model
    # leaves out small temporaries (softmax, masks), a larger share at small widths.
    tolerance = 0.10 if mode == "jacobian" else 0.20
    assert abs(predicted / measured - 1) < tolerance, (predicted, measured)


def test_the_hidden_layers_dz_dw_in_784_512_10():
    cost = backprop_cost((784, 512, 10), "float64")
    dzdw = next(j for j in cost.jacobians if j.layer == 1 and j.name == "dZ/dW")
    assert dzdw.shape == (512, 401408)
    assert dzdw.bytes == 512 * 401408 * 8  # 1568 MiB, as measured on the development machine
    assert cost.shortcut_flops_per_sample() == 1_636_352  # "about 1.63 MFLOP per sample"
    assert backprop_cost((784, 512, 10), "float32").jacobian_sample_peak_bytes() * 2 == \
        cost.jacobian_sample_peak_bytes()


def test_the_cost_of_a_2_3_1_net_worked_by_hand():
    """Every figure of the model for 2-3-1 in float32 (4 bytes), worked out on paper."""
    J = Jacobian
    cost = backprop_cost((2, 3, 1), "float32")
    assert cost.jacobians == [
        J(2, "dL/dS", (1, 1), 4, 0),
        J(2, "dA/dZ", (1, 1), 4, 1), J(2, "dZ/dW", (1, 3), 12, 3),
        J(2, "dZ/db", (1, 1), 4, 1), J(2, "dZ/dx", (1, 3), 0, 3),
        J(1, "dA/dZ", (3, 3), 36, 9), J(1, "dZ/dW", (3, 6), 72, 18),
        J(1, "dZ/db", (3, 3), 36, 9), J(1, "dZ/dx", (3, 2), 0, 0),  # no dL/dx below layer 1
    ]
    assert cost.params == 13 and cost.itemsize == 4
    assert cost.model_bytes() == 3 * 13 * 4 and cost.model_bytes(2) == 4 * 13 * 4
    # One sample at its peak, in layer 1: dA/dZ and the identity (9 + 9), dZ/dW (18), dL/dW (6).
    assert cost.jacobian_sample_peak_bytes() == (9 + 9 + 18 + 6) * 4
    # 5 samples: z and a of both layers (2 * 5 * (3 + 1)), dL/dS (5), one sample's peak.
    assert cost.jacobian_peak_bytes(5) == (40 + 5) * 4 + 168
    # The shortcut: the cache, dL/dS and its scaled copy (2 * 5), and layer 1's dL/dA,
    # f'(Z), dL/dZ (3 * 5 * 3; layer 2's 3 * 5 * 1 + dL/dX 5 * 3 is smaller).
    assert cost.shortcut_peak_bytes(5) == (40 + 10 + 45) * 4
    # Forward 2 * (6 + 3) flops, then 2 flops for each of the chain's 44 multiply-adds.
    assert cost.jacobian_flops_per_sample() == 18 + 2 * 44
    assert cost.shortcut_flops_per_sample() == 2 * (3 * 9 - 6)
    assert backprop_cost((2, 3, 1)).dtype == "float64"  # the default


def test_peaks_of_a_2_2_8_net_worked_by_hand():
    """A wide top layer: its terms decide both peaks (float32, 5 samples)."""
    cost = backprop_cost((2, 2, 8), "float32")
    cache = 2 * 5 * (2 + 8) * 4  # z and a of both layers
    # Layer 2's dA/dZ and the identity (64 + 64), dZ/dW (2 * 8 * 8), dL/dW (16).
    assert cost.jacobian_sample_peak_bytes() == (64 + 64 + 128 + 16) * 4
    assert cost.jacobian_peak_bytes(5) == cache + 5 * 8 * 4 + (64 + 64 + 128 + 16) * 4
    # dL/dS and its copy (2 * 5 * 8); layer 2's dL/dA, f'(Z), dL/dZ (3 * 5 * 8), dL/dX (5 * 2).
    assert cost.shortcut_peak_bytes(5) == cache + (80 + 120 + 10) * 4


def test_guard_refuses_an_oversized_run_and_leaves_a_refused_row(tmp_path):
    import pandas as pd

    from benchmarks.cli import main

    out = tmp_path / "jac"
    assert main(["run", "jacobian", "--profile", "smoke", "--memory-budget", "0.2",
                 "--impl", "scratch-jacobian", "--out", str(out)]) == 0
    df = pd.read_csv(out / "jacobian.csv")
    refused = df[df["impl"] == "scratch-jacobian"]
    assert len(refused) == 4 and (refused["status"] == "refused").all()
    message = refused[refused["config"] == "h16-float64"]["error"].iloc[0]
    assert "scratch-jacobian on 784-16-10 in float64 would need about 2 MiB" in message
    assert "layer 1's dZ/dW alone is 16 x 12544" in message
    assert "smaller hidden width" in message and "float32" in message
    md = (out / "jacobian.md").read_text()
    assert "Runs that did not finish" in md and "refused" in md
