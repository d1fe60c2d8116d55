"""xor-atlas: its statistics and its plan (its smoke run is the smoke publish's, in
tests/test_end_to_end.py)."""

import json

import numpy as np
import pandas as pd
import pytest

from benchmarks.experiments import EXPERIMENTS, atlas
from benchmarks.implementations import IMPLEMENTATIONS


@pytest.mark.parametrize("k, n, low, high", [(8, 10, 0.4902, 0.9433), (0, 20, 0.0, 0.1611),
                                             (1000, 1000, 0.9962, 1.0)])
def test_wilson_interval_matches_the_textbook(k, n, low, high):
    lo, hi = atlas.wilson(k, n)
    assert lo == pytest.approx(low, abs=1e-4) and hi == pytest.approx(high, abs=1e-4)


def test_every_cell_is_swept_once():
    cells = atlas.cells("full")
    assert len(cells) == 36 == len(set(cells))
    assert {c[2] for c in cells} == {"glorot_uniform", "uniform", "standard_normal"}


def test_the_full_atlas_cross_checks_jax_and_keras_tuned():
    from benchmarks.harness.specs import PROFILES, Selection

    specs = atlas.specs(PROFILES["full"], Selection(["xor"], None, None))
    by_impl = pd.Series([s.impl for s in specs]).value_counts()
    assert by_impl[atlas.ENGINE] == 36 * 1000 and by_impl["jax"] == 1000
    assert by_impl["keras-tuned"] == atlas.KERAS_SEEDS["full"] >= 200
    keras = [s for s in specs if s.impl == "keras-tuned"]
    h, lr, init = atlas.KERAS_CHECK
    assert {s.config for s in keras} == {atlas.cell_name(h, lr, init)}
    assert all(s.stop_at_target and s.epochs == 100_000 for s in keras)
    # Every seed stops once it converged but jax's: its compiled group trains to the end.
    assert all(s.stop_at_target for s in specs)
    assert IMPLEMENTATIONS[atlas.ENGINE].seed_batched.retires
    assert not IMPLEMENTATIONS["jax"].seed_batched.retires


def runs_frame(outcomes: dict[str, list[bool]]) -> pd.DataFrame:
    """Atlas rows of one cell: each implementation's seeds, converged or not."""
    return pd.DataFrame([
        {"config": "h3-lr1-standard_normal", "impl": impl, "seed": seed, "status": "ok",
         "epochs_to_converge": 500.0 if hit else None}
        for impl, hits in outcomes.items() for seed, hit in enumerate(hits)])


def test_a_cross_check_compares_rates_and_seed_by_seed_outcomes():
    df = runs_frame({"scratch-shortcut": [True] * 90 + [False] * 10,
                     "keras-tuned": [True] * 85 + [False] * 5})  # 85 of its 90 seeds match
    (line,) = atlas.cross_checks(df)
    assert "scratch-shortcut reached convergence in 90.0%" in line and "of 100 seeds" in line
    assert "keras-tuned in 94.4%" in line and "intervals overlap" in line
    assert "matches in 85 of 90" in line
    (far,) = atlas.cross_checks(runs_frame({"scratch-shortcut": [True] * 100,
                                            "jax": [False] * 100}))
    assert "do NOT overlap" in far and "matches in 0 of 100" in far


def test_the_answer_to_the_folklore_is_computed_from_the_cells():
    cells = [{"impl": "scratch-shortcut", "hidden": h, "learning_rate": lr,
              "initializer": "glorot_uniform", "seeds": 100, "converged": c, "rate": c / 100,
              "rate_low": 0.0, "rate_high": 1.0, "local_minimum": 100 - c, "plateau": 0,
              "stalled": 0} for h, lr, c in [(2, 0.01, 40), (2, 1.0, 90), (3, 1.0, 100)]]
    text = atlas.answer(pd.DataFrame(cells))
    assert "The blog's own setting" in text and "converges in 40.0%" in text
    assert "holds in 2 of 3 settings; the 1 below it, by hidden width, 2 (1); by learning " \
           "rate, 0.01 (1)" in text
    assert "by hidden width: 2: 65%, 3: 100%" in text
    assert "Of the 70 nets that did not converge, 70 sat in a local minimum" in text


@pytest.mark.parametrize("impl", ["scratch-shortcut", "scratch-numba"])
def test_seeds_stop_once_they_converged_and_the_rest_train_on_unchanged(impl):
    """A group that drops its converged seeds gives each seed the row it gives when every
    seed trains to the end: the same outcome and epoch of convergence, and for the seeds
    that never converged the same final loss. A stopped seed's weights are its weights at
    convergence: those of MLP(seed=s) trained that many epochs."""
    import math

    from benchmarks.harness.specs import RunSpec
    from benchmarks.harness.worker import execute_seeds
    from scratch import MLP

    experiment = EXPERIMENTS["xor-atlas"]
    cell = {"hidden": 2, "learning_rate": 1.0, "initializer": "glorot_uniform"}

    def group(stop: bool) -> pd.DataFrame:
        specs = [RunSpec("xor-atlas", "xor", "h2-lr1-glorot_uniform", impl, seed,
                         "smoke", 2000, math.inf, 120,
                         extra=cell, stop_at_target=stop)
                 for seed in range(12)]
        return pd.DataFrame(execute_seeds(experiment, specs))  # index: the seed

    stopped, whole = group(True), group(False)
    assert 0 < stopped["converged"].sum() < 12  # some seeds stop, some train to the end
    assert stopped["converged"].equals(whole["converged"])
    assert stopped["epochs_to_converge"].equals(whole["epochs_to_converge"])
    assert stopped["failure"].equals(whole["failure"])
    never = ~stopped["converged"]
    np.testing.assert_allclose(stopped["final_loss"][never], whole["final_loss"][never],
                               rtol=1e-5)
    assert (stopped["measured_epochs"][never] == 2000).all()
    done = stopped[stopped["converged"]]
    assert (done["measured_epochs"] == done["epochs_to_converge"]).all()
    assert (done["epochs_to_converge"] < 2000).all()
    assert all(json.loads(s)["stopped_at_target"] for s in stopped["settings"])
    x = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype="float32")
    y = np.array([[0], [1], [1], [0]], dtype="float32")
    for seed, row in done.iloc[:3].iterrows():
        alone = MLP((2, 2, 1), ("sigmoid", "sigmoid"), "mse", {"name": "sgd", "learning_rate": 1.0},
                    seed=seed)
        alone.fit(x, y, epochs=int(row["epochs_to_converge"]), batch_size=4, shuffle=False)
        assert row["final_loss"] == pytest.approx(alone.evaluate(x, y), rel=1e-4)
