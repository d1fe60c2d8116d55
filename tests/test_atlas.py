"""xor-atlas: its statistics, and a smoke run through the harness."""

import json

import pandas as pd
import pytest

from benchmarks.cli import main
from benchmarks.experiments import atlas


@pytest.mark.parametrize("k, n, low, high", [(8, 10, 0.4902, 0.9433), (0, 20, 0.0, 0.1611),
                                             (1000, 1000, 0.9962, 1.0)])
def test_wilson_interval_matches_the_textbook(k, n, low, high):
    lo, hi = atlas.wilson(k, n)
    assert lo == pytest.approx(low, abs=1e-4) and hi == pytest.approx(high, abs=1e-4)


def test_every_cell_is_swept_once():
    cells = atlas.cells("full")
    assert len(cells) == 36 == len(set(cells))
    assert {c[2] for c in cells} == {"glorot_uniform", "uniform", "standard_normal"}


def test_smoke_atlas_writes_rows_per_seed_and_a_row_per_cell(tmp_path):
    out = tmp_path / "atlas"
    assert main(["run", "xor-atlas", "--profile", "smoke", "--out", str(out)]) == 0
    runs = pd.read_csv(out / "atlas_runs.csv")
    seeds = atlas.SEEDS["smoke"]
    assert len(runs) == (atlas.SMOKE_CELLS + 1) * seeds  # the first cell in jax too
    assert (runs["status"] == "ok").all()
    # jax's vmap from the same initial weights: the same seeds converge, the same losses
    cell = runs[runs["config"] == runs["config"].iloc[0]].set_index(["impl", "seed"])
    ours, theirs = cell.loc["scratch-shortcut"], cell.loc["jax"]
    assert (ours["converged"] == theirs["converged"]).all()
    pd.testing.assert_series_equal(ours["final_loss"], theirs["final_loss"], rtol=1e-4)
    assert {json.loads(s)["seed_batched"] for s in runs["settings"]} == {seeds}
    assert set(runs["failure"].fillna("")) <= {"", "local minimum", "plateau", "stalled"}
    assert (runs["converged"] == runs["failure"].isna()).all()
    assert not (out / "atlas_runs_curves.csv").exists()  # 1000s of seeds: no curves
    cells = pd.read_csv(out / "atlas.csv")
    assert len(cells) == atlas.SMOKE_CELLS + 1
    assert (cells["seeds"] == atlas.SEEDS["smoke"]).all()
    assert (cells["converged"] + cells[["local_minimum", "plateau", "stalled"]].sum(axis=1)
            == cells["seeds"]).all()
    assert "## How often XOR converges" in (out / "xor-atlas.md").read_text()
    assert (out / "xor-atlas_rates.png").stat().st_size > 0
