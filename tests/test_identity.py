"""The identity check every run makes before its timer starts (harness/worker.py's
``identity``): it passes the peers, catches a network that is not scratch's, and a row it
marks ``differs`` is no result in any table. A run not trained in full shows no score.

Keras picks its backend once a process: each backend but TensorFlow's runs its check in a
process of its own.
"""

import json

import numpy as np
import pandas as pd
import pytest

from benchmarks.data.tasks import CONFIGS, load_task
from benchmarks.harness import schema
from benchmarks.harness.worker import IDENTITY_RTOL, identity, unfinished
from benchmarks.implementations import IMPLEMENTATIONS, Monitor, scratch_model
from benchmarks.reporting import readme, report
from tests.conftest import in_own_process, needs, runs_here
from tests.identity_rows import BLOG, identity_rows


def check(*names: str) -> dict:
    needs(names[0])
    if runs_here(names[0]):
        return identity_rows(list(names))
    code = ("import json, sys; from tests.identity_rows import identity_rows; "
            "print(json.dumps(identity_rows(sys.argv[1:])))")
    return json.loads(in_own_process("-c", code, *names, timeout=300).splitlines()[-1])


@pytest.mark.parametrize("backend", ["", "-torch"])
def test_every_keras_backend_trains_the_logits_form_and_the_check_catches_the_softmax_form(
        backend):
    """Keras' default form (Dense(softmax) + categorical_crossentropy) is another network on
    JAX and PyTorch, where it clips the probabilities: its first step's loss is capped near
    -log(1e-7) a sample. Every Keras peer passes; were one to train that form, its check
    would say ``differs`` at step 0, as the softmax form's does. On TensorFlow Keras reads
    the softmax's logits itself: both forms pass. (JAX's pair is the smoke publish's
    softmax-form experiment, checked in test_end_to_end.py.)"""
    rows = check(f"keras{backend}", f"keras{backend}-softmax")
    peer, default = rows[f"keras{backend}"], rows[f"keras{backend}-softmax"]
    assert "status" not in peer and peer["identity_steps"] == 20
    assert peer["identity_rel_diff"] < IDENTITY_RTOL["float32"]
    if backend:
        assert default["status"] == "differs" and default["identity_steps"] == 1
        assert default["identity_rel_diff"] > 0.5
        assert "at step 0" in default["error"]
    else:
        assert "status" not in default and default["identity_rel_diff"] < 1e-3


def test_the_jacobian_chain_in_float32_is_another_network_where_the_softmax_saturates():
    """The explicit chain dCE/dS . dS/dZ divides by S: where S underflows in float32 (the
    blog's saturated start), the true class's gradient is lost, as the fused S - y never
    loses it. In float64 it is the shortcut's to rounding."""
    impl = IMPLEMENTATIONS["scratch-jacobian"]
    found = {}
    for dtype in ("float32", "float64"):
        data = load_task(BLOG, dtype, 100)
        initial = scratch_model(BLOG, dtype, 0).get_weights()
        found[dtype] = identity(impl, BLOG, dtype, 0, initial, data.x, data.y)
    assert found["float32"]["status"] == "differs"
    assert "status" not in found["float64"] and found["float64"]["identity_rel_diff"] < 1e-12
    assert found["float64"]["identity_steps"] == 2  # its cost caps it at 4 samples


def test_the_check_steps_from_scratchs_weights_so_rounding_does_not_grow():
    """Without resetting each step to scratch's weights, float32 rounding on mnist/blog grows
    to 20% in 20 steps (a ReLU flips); with it, a float32 peer stays within 1e-2, and a
    changed learning rate is caught."""
    data = load_task(BLOG, "float32", 1000)
    for seed in range(3):
        initial = scratch_model(BLOG, "float32", seed).get_weights()
        assert identity(IMPLEMENTATIONS["scratch-shortcut"], BLOG, "float32", seed, initial,
                        data.x, data.y)["identity_rel_diff"] == 0
    slower = BLOG.__class__(**{**BLOG.__dict__, "optimizer": {"name": "sgd",
                                                              "learning_rate": 0.09}})

    class OtherRate(type(IMPLEMENTATIONS["scratch-shortcut"])):
        def build(self, cfg, weights, dtype, seed):
            return super().build(slower, weights, dtype, seed)

    initial = scratch_model(BLOG, "float32", 0).get_weights()
    row = identity(OtherRate("shortcut"), BLOG, "float32", 0, initial, data.x, data.y)
    assert row["status"] == "differs" and row["identity_steps"] == 1
    assert row["identity_rel_diff"] == pytest.approx(0.1, rel=1e-3)  # the update, 10% short


def test_dropout_is_not_checked_and_says_so():
    cfg = CONFIGS["mnist/tf-tutorial"]
    assert cfg.arch.dropout
    assert identity(IMPLEMENTATIONS["scratch-shortcut"], cfg, "float32", 0, [], None, None) == {
        "identity_steps": 0, "identity_rel_diff": None}


def rows(**changes) -> pd.DataFrame:
    base = {"experiment": "compare", "task": "mnist", "config": "blog", "seed": 0,
            "status": "ok", "error": "", "accuracy": 0.95, "final_loss": 0.15,
            "train_time_s": 10.0, "epoch_time_s": 2.0, "step_time_ms": 1.0,
            "predict_time_s": 0.1, "time_to_target_s": None, "peak_rss_mib": 50.0,
            "extrapolated": False, "trained_in_full": True, "train_samples": 60000,
            "settings": "{}"}
    return pd.DataFrame([{**base, "impl": impl, **changes.get(impl, {})}
                         for impl in ("scratch-shortcut", "keras", "keras-jax")])


def test_a_row_that_differs_is_no_result_in_any_table():
    df = rows(**{"keras-jax": {"status": "differs", "accuracy": 0.6152,
                               "error": "not the network scratch trains: at step 0 ..."}})
    table = report.summarize(df).set_index("impl")
    assert table.loc["keras-jax", "accuracy"] == ""
    assert table.loc["keras-jax", "runs"] == "1 differs"
    assert table.loc["keras", "accuracy"] == "0.9500"
    mnist = readme.mnist_table(df)
    assert "0.6152" not in mnist and "differs in 1 of 1 runs" in mnist


def test_a_run_not_trained_in_full_shows_no_score(tmp_path):
    df = rows(keras={"trained_in_full": False, "accuracy": 0.333, "final_loss": 2.5,
                     "extrapolated": True})
    only = schema.results_only(df).set_index("impl")
    assert np.isnan(only.loc["keras", "accuracy"])
    assert only.loc["keras", "measured_accuracy"] == 0.333
    assert only.loc["scratch-shortcut", "accuracy"] == 0.95
    table = report.summarize(df).set_index("impl")
    assert table.loc["keras", "accuracy"] == table.loc["keras", "final loss"] == report.UNFINISHED
    assert "0.333" not in readme.mnist_table(schema.results_only(df))
    old = df.drop(columns="trained_in_full")  # a CSV from before the column: extrapolated
    assert report.summarize(old).set_index("impl").loc["keras", "accuracy"] == report.UNFINISHED
    # A row as the worker writes it (the score already moved), read once or twice
    written = rows(keras={"trained_in_full": False, "accuracy": None,
                          "measured_accuracy": 0.333})
    twice = schema.results_only(schema.results_only(written)).set_index("impl")
    assert twice.loc["keras", "measured_accuracy"] == 0.333
    assert np.isnan(twice.loc["keras", "accuracy"])
    mixed = rows(keras={"trained_in_full": None},  # a resumed folder: rows from before
                 **{"keras-jax": {"trained_in_full": None, "extrapolated": True}})
    mixed = schema.results_only(mixed).set_index("impl")
    assert mixed.loc["keras", "accuracy"] == 0.95 and np.isnan(mixed.loc["keras-jax", "accuracy"])


def test_the_worker_moves_a_stopped_runs_scores_to_measured_columns():
    class Data:
        x, n_full = np.zeros((10, 2)), 10

    monitor = Monitor(1.0, lambda p: False, 5)
    monitor.over_budget = True
    row = unfinished(monitor, 5, Data, {"accuracy": 0.5, "final_loss": 0.3,
                                        "measured_epochs": 2.0})
    assert row == {"trained_in_full": False, "measured_accuracy": 0.5,
                   "measured_final_loss": 0.3, "measured_epochs": 2.0}
    # Stopped mid-way through its last epoch (scratch's fit still ends that epoch): not full
    assert "accuracy" not in unfinished(monitor, 1, Data, {"accuracy": 0.5,
                                                           "measured_epochs": 0.45})
    done = {"accuracy": 0.5, "measured_epochs": 5.0}  # over budget after its last epoch
    assert unfinished(monitor, 5, Data, dict(done))["accuracy"] == 0.5
    monitor.over_budget = False  # stopped at its target (the atlas): a result
    assert unfinished(monitor, 5, Data, {"accuracy": 1.0, "measured_epochs": 0.3})["accuracy"]
    Data.x = np.zeros((5, 2))  # a prefix of the data
    assert "accuracy" not in unfinished(monitor, 5, Data, dict(done))


def test_rows_older_than_the_check_that_end_far_from_scratch_differ():
    """A published compare CSV written before the identity check: an MNIST row trained in
    full whose accuracy ends more than 0.01 from scratch's on the same seed is another
    network (Keras' clipped softmax form gave 0.9308 and 0.7449 against 0.9491)."""
    df = rows(**{"keras-jax": {"accuracy": 0.9308}, "keras": {"accuracy": 0.9460}},
              **{"scratch-shortcut": {"accuracy": 0.9491}})
    only = schema.results_only(df).set_index("impl")
    assert only.loc["keras-jax", "status"] == "differs"
    assert "0.9308 against scratch's 0.9491" in only.loc["keras-jax", "error"]
    assert only.loc["keras", "status"] == "ok"  # 0.0031 away: the same network
    checked = schema.results_only(df.assign(identity_steps=20)).set_index("impl")
    assert checked.loc["keras-jax", "status"] == "ok"  # the run's own check decides
