"""The generalisation experiment: its data, the zero-gradient evidence, its reports."""

import json

import numpy as np
import pandas as pd
import pytest

from benchmarks.cli import main
from benchmarks.experiments import generalisation
from benchmarks.harness.schema import COLUMNS
from scratch import MLP, REVERSE4


def as_numbers(bits):
    return [int("".join(str(int(b)) for b in row), 2) for row in bits]


def test_blog_splits():
    sets = generalisation.splits("reverse", 4)
    assert as_numbers(sets["train"][0]) == [0, 1, 2, 5, 6, 7]
    assert as_numbers(sets["heldout"][0]) == [3, 4]
    assert as_numbers(sets["extrap"][0]) == [8, 9, 10, 13, 14, 15]
    assert as_numbers(sets["extrap"][1]) == [1, 9, 5, 11, 7, 15]  # 1000 -> 0001, ...


@pytest.mark.parametrize("problem, bits", [("reverse", 6), ("reverse", 8), ("identity", 8)])
def test_general_splits_cover_inside_and_outside(problem, bits):
    sets = generalisation.splits(problem, bits)
    inside = as_numbers(sets["train"][0]) + as_numbers(sets["heldout"][0])
    outside = as_numbers(sets["extrap"][0])
    assert sorted(inside + outside) == list(range(2**bits))
    assert len(sets["heldout"][0]) == len(inside) // 4
    dead = 0 if problem == "reverse" else bits - 1  # the input that is always 0 in training
    assert not sets["train"][0][:, dead].any() and sets["extrap"][0][:, dead].all()
    x, y = sets["extrap"]
    np.testing.assert_array_equal(y, x[:, ::-1] if problem == "reverse" else x)


@pytest.mark.parametrize("backprop", ["shortcut", "jacobian"])
def test_weights_leaving_input_bit_1_get_zero_gradient_at_every_step(backprop):
    x, y = generalisation.splits("reverse", 4)["train"]
    model = MLP.from_architecture(REVERSE4, {"name": "sgd", "learning_rate": 0.1}, seed=3,
                                  backprop=backprop)
    before = model.get_weights()

    class Watch:
        largest = 0.0

        def on_train_batch_end(self, batch, logs):
            self.largest = max(self.largest, float(np.abs(model.dense[0].grads[0][0]).max()))

    watch = Watch()
    model.fit(x, y, epochs=300, batch_size=8, shuffle=False, callbacks=[watch])
    after = model.get_weights()
    assert watch.largest == 0.0
    np.testing.assert_array_equal(after[0][0], before[0][0])  # exactly unchanged
    assert np.abs(after[0][1:] - before[0][1:]).min() > 0      # every other weight moved


def test_experiment_end_to_end(tmp_path, plots):
    out = tmp_path / "gen"
    assert main(["run", "generalisation", "--profile", "smoke", "--seeds", "2",
                 "--impl", "scratch-shortcut", "--out", str(out)]) == 0
    df = pd.read_csv(out / "generalisation.csv")
    assert list(df.columns) == [*COLUMNS, *generalisation.COLUMNS]
    assert len(df) == 2 and (df["status"] == "ok").all()
    assert (df["dead_weight_max_move"] == 0).all() and (df["dead_grad_max"] == 0).all()
    assert (df["extrap_n"] == 6).all() and (df["heldout_n"] == 2).all()
    assert df["dead_inputs"].map(json.loads).tolist() == [[0], [0]]
    md = (out / "generalisation.md").read_text()
    assert "## The reproduction" in md and "## Why" in md and "moved in training was 0" in md
    assert (out / "generalisation_bits.png").exists()


def fake_runs(extrap_exact, n=6):
    return pd.DataFrame({
        "status": "ok", "config": ["width-8", "width-8", "relu"], "task": "reverse4",
        "architecture": "4-8-4", "optimizer": "sgd", "train_exact": 6, "train_n": 6,
        "generalises": [e == n for e in extrap_exact], "extrap_bitwise": 0.75,
        "extrap_bit_accuracy": json.dumps([1, 1, 1, 0]), "dead_weight_max_move": 0.0})


def test_variants_verdict_is_drawn_from_the_numbers():
    assert generalisation.variants_verdict(fake_runs([0, 0, 0])).startswith(
        "No variant generalises: in all 3 runs of 2 variants")
    verdict = generalisation.variants_verdict(fake_runs([6, 0, 0]))
    assert verdict == "Variants that generalised in some runs: width-8 (50%)."
    table = generalisation.variants_table(fake_runs([6, 0, 0]))
    assert table.set_index("variant").loc["width-8", "fails to generalise"] == "50%"


def test_the_full_profile_runs_20_seeds_of_scratch_and_5_of_each_other():
    from collections import Counter

    from benchmarks.harness.specs import PROFILES, Selection

    specs = generalisation.specs(PROFILES["full"], Selection(["reverse4"], None, None))
    seeds = Counter(s.impl for s in specs)
    assert seeds.pop("scratch-shortcut") == generalisation.SEEDS == 20
    assert set(seeds.values()) == {generalisation.PEER_SEEDS} and len(seeds) >= 2
    chosen = generalisation.specs(PROFILES["full"], Selection(["reverse4"], ["torch"], 3))
    assert len(chosen) == 3  # --seeds names the count for all
