"""The scaling map's arithmetic: the two-term cost model recovers known overheads and
throughputs; each cell is a run of its own, and the map names the winner."""

import json
import math

import numpy as np
import pandas as pd
import pytest

from benchmarks.data.tasks import get_config
from benchmarks.experiments import scaling
from benchmarks.harness.specs import PROFILES, Selection
from benchmarks.implementations import IMPLEMENTATIONS
from benchmarks.implementations.keras import PLAIN
from scratch.cost import backprop_cost


def cells_flops():
    return np.array([b * backprop_cost((784, h, 10), "float32").shortcut_flops_per_sample()
                     for h in scaling.WIDTHS["full"] for b in scaling.BATCHES["full"]], float)


@pytest.mark.parametrize("overhead, gflops", [(50e-6, 20.0), (2e-3, 60.0), (20e-6, 3.0)])
def test_the_cost_model_recovers_overhead_and_throughput_within_5_percent(overhead, gflops):
    flops = cells_flops()
    noise = np.random.default_rng(0).normal(1, 0.02, len(flops))  # 2% timing noise
    fit = scaling.fit_cost_model(flops, (overhead + flops / (gflops * 1e9)) * noise)
    assert fit["overhead_s"] == pytest.approx(overhead, rel=0.05)
    assert fit["throughput"] / 1e9 == pytest.approx(gflops, rel=0.05)
    assert fit["fit_error"] < 0.03
    # The check can fail: a machine with 10% more overhead is told apart.
    other = scaling.fit_cost_model(flops, (1.1 * overhead + flops / (gflops * 1e9)) * noise)
    assert other["overhead_s"] != pytest.approx(overhead, rel=0.05)


def test_the_profiles_cover_their_grids_a_run_a_cell():
    from benchmarks.experiments import EXPERIMENTS
    from benchmarks.harness.runner import groups

    full = scaling.specs(PROFILES["full"], Selection(["mnist"], None, None))
    assert len(full) == len(scaling.IMPLS) * 4 * 6 and len({s.key for s in full}) == len(full)
    assert [s.impl for s in full[:len(scaling.IMPLS)]] == list(scaling.IMPLS)  # a cell's lanes
    quick = scaling.specs(PROFILES["quick"], Selection(["mnist"], None, None))
    assert len(quick) == len(scaling.QUICK_IMPLS) * 3 * 3
    chosen = scaling.specs(PROFILES["quick"], Selection(["mnist"], ["keras"], None))
    assert {s.impl for s in chosen} == {"keras"}  # --impl names any
    second = full[len(scaling.IMPLS)]
    cfg = scaling.configure(second)
    assert cfg.arch.sizes == (784, 32, 10) and cfg.batch_size == 8 and second.config == "h32-b8"
    assert second.train_samples == 91 * 8  # 256 / sqrt(8) steps a unit
    assert [scaling.unit_steps(b) for b in scaling.BATCHES["full"]] == [256, 91, 45, 23, 8, 2]
    # The map is one run of rounds: each implementation's cells a lane, one process.
    assert groups(EXPERIMENTS["scaling"], full) == [full]


def test_keras_torch_tuned_left_out_would_repeat_keras_torch_in_every_cell():
    tuned = IMPLEMENTATIONS["keras-torch-tuned"]
    for hidden in scaling.WIDTHS["full"]:
        for batch in scaling.BATCHES["full"]:
            cfg = scaling.cell_config(hidden, batch)
            samples = scaling.unit_steps(batch) * batch
            assert tuned.candidates(cfg, samples) == [PLAIN]
            assert tuned.runs_as(cfg, samples) == "keras-torch"
    # It is left out for that alone: on a full batch it has a setting of its own to try.
    xor = get_config("xor")
    assert tuned.runs_as(xor, 4) == "keras-torch-tuned"
    assert IMPLEMENTATIONS["keras-tuned"].runs_as(scaling.cell_config(32, 8),
                                                  91 * 8) == "keras-tuned"


def test_an_older_folders_cells_read_as_a_row_each_and_the_winner_is_the_fastest():
    def run(impl, times):
        cells = [{"hidden": 32, "batch": b, "steps": 10, "step_time_ms": t, "gflops": 1.0,
                  "peak_rss_mib": 1.0, "warmup_s": 0.1, "settings": {}}
                 for b, t in zip((1, 32), times, strict=True)]
        return {"impl": impl, "status": "ok", "peak_gflops": 10.0,
                "cells": json.dumps(cells) if impl != "torch" else "",
                "framework": "x", "backend": "cpu", "cpu": "c", "commit": "h",
                "timestamp": "t"}

    df = pd.DataFrame([run("scratch-shortcut", (0.02, 1.0)), run("jax", (0.04, 0.5)),
                       {**run("torch", (0.001, 0.001)), "status": "error"}])
    long = scaling.from_cells(df)
    assert list(long.columns) == [*scaling.schema.COLUMNS, *scaling.schema.SCALING_RUNS]
    assert long["config"].tolist() == ["h32-b1", "h32-b32"] * 2  # the failed run had none
    cells = scaling.cells(df)
    assert cells.equals(scaling.cells(long))  # the long rows are the map
    assert list(cells.columns) == list(scaling.schema.SCALING) and len(cells) == 4
    assert cells["samples_per_s"].tolist() == pytest.approx([50000, 32000, 25000, 64000])
    assert cells["fraction_of_peak"].tolist() == pytest.approx([0.1] * 4)
    best = scaling.winners(cells)
    assert best["fastest"].tolist() == ["scratch-shortcut", "jax"]
    assert best["scratch_over_fastest"].tolist() == pytest.approx([1.0, 2.0])


def synthetic_cells(scratch=(50e-6, 20e9), jax=(5e-6, 50e9), slow_cell=1.0) -> pd.DataFrame:
    """Each side's step: overhead + FLOPs / throughput (seconds, FLOP/s; by default jax is
    faster everywhere), but jax's largest cell measured ``slow_cell`` times slower."""
    rows = []
    for hidden in (32, 512):
        for batch in (1, 32):
            flops = 6.0 * (784 * hidden + hidden * 10) * batch
            for impl, (overhead, rate) in (("scratch-shortcut", scratch), ("jax", jax)):
                seconds = overhead + flops / rate
                if impl == "jax" and (hidden, batch) == (512, 32):
                    seconds *= slow_cell
                rows.append({"impl": impl, "hidden": hidden, "batch": batch,
                             "step_time_ms": seconds * 1e3, "gflops": flops / seconds / 1e9})
    return pd.DataFrame(rows)


def test_the_verdict_follows_the_grid_where_the_fit_does_not():
    agreed = scaling.verdict(synthetic_cells())
    assert ("jax is faster than scratch in all 4 cells: its overhead and its throughput both "
            "say so") in agreed
    assert "(0%)" in agreed  # each fit quoted with its median error
    cells = synthetic_cells(slow_cell=3.0)  # one cell where scratch wins
    fit = scaling.fits(cells).set_index("impl")
    assert fit.loc["jax", "overhead_us"] < fit.loc["scratch-shortcut", "overhead_us"]
    assert fit.loc["jax", "sustained_gflops"] > fit.loc["scratch-shortcut", "sustained_gflops"]
    said = scaling.verdict(cells)  # the fit still has jax faster everywhere; the grid not
    assert "both say so" not in said and "FLOPs a step" not in said
    assert ("jax is faster than scratch in 3 of 4 cells; the two fitted lines pick the grid's "
            "winner in only 3 of the 4, so they do not say why") in said
    assert "scratch-shortcut is the fastest in 1 of 4 cells" in said


def test_a_crossing_inside_the_grid_is_quoted_where_the_fit_calls_every_cell():
    """scratch 5 µs + FLOPs / 20 GFLOP/s, jax 50 µs + FLOPs / 50 GFLOP/s: they cross at
    1.5e6 FLOPs a step, between the grid's smallest cell (1.5e5) and the next (2.4e6)."""
    said = scaling.verdict(synthetic_cells(scratch=(5e-6, 20e9), jax=(50e-6, 50e9)))
    assert "jax is faster than scratch in 3 of 4 cells: it pays 45 µs more a step, and is " \
        "faster above 1.5e+06 FLOPs a step" in said
    assert "scratch-shortcut is the fastest in 1 of 4 cells" in said


def test_a_cell_whose_interval_reaches_1_is_a_tie_in_the_grid_and_the_verdict():
    """Rounds written as the harness writes them: at batch 1 jax's per-round ratio to
    scratch swings around 1 (a tie), at batch 32 it is 2 every round (scratch wins). Every
    row of a cell gets the peak its reference measured."""
    rounds = 12
    swing = [0.9, 1.12] * (rounds // 2)
    rows = []
    for batch, ratios in ((1, swing), (32, [2.0] * rounds)):
        group, ours = f"g{batch}", [0.01 * batch] * rounds
        for impl, unit in (("scratch-shortcut", ours),
                           ("jax", [t * r for t, r in zip(ours, ratios, strict=True)])):
            step_ms = 1e3 * sorted(unit)[rounds // 2] / 10
            rows.append({**dict.fromkeys(scaling.schema.SCALING), "status": "ok", "impl": impl,
                         "hidden": 32, "batch": batch, "step_time_ms": step_ms, "gflops": 1.0,
                         "peak_gflops": 50.0 if impl == "scratch-shortcut" else math.nan,
                         "round_times_s": json.dumps({"group": group, "epoch": unit})})
    cells = scaling.cells(pd.DataFrame(rows))
    assert cells["peak_gflops"].tolist() == [50.0] * 4
    assert cells["fraction_of_peak"].tolist() == pytest.approx([0.02] * 4)
    assert cells["rounds"].tolist() == [rounds] * 4
    assert cells["place"].tolist() == ["fastest", "tied", "fastest", ""]
    jax_b32 = cells.iloc[3]
    assert jax_b32["over_fastest"] == jax_b32["over_scratch"] == pytest.approx(2.0)
    assert jax_b32["over_fastest_low"] == jax_b32["over_fastest_high"] == pytest.approx(2.0)
    best = scaling.winners(cells)
    assert best["tied"].tolist() == [["jax"], []]
    grid = scaling.winners_grid(cells)
    assert "tie: scratch-shortcut = jax (jax " in grid
    assert "scratch-shortcut (jax 2.00x [2.00, 2.00])" in grid
    said = scaling.verdict(cells)
    assert "scratch-shortcut is the fastest in 1 of 2 cells, and tied for the fastest in 1 more" \
        in said
    assert "H 32: scratch is the fastest at batch 32; tied at batch 1" in said
    assert "jax is faster than scratch in 0 of 2 cells, slower in 1, tied in 1" in said
