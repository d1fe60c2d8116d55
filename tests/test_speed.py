"""The speed targets' table from interleaved rounds (benchmarks/experiments/speed.py): each
ratio paired round by round within one group, its interval and its verdict."""

import json
import math
from pathlib import Path

import pandas as pd
import pytest

from benchmarks.experiments import speed

B32 = "MNIST batch 32: s per epoch, scratch / keras fit"
LIMIT = "MNIST batch 128, file order: s per epoch, scratch / its matmuls alone"
TO98 = "MNIST s to 98% test accuracy (SGD lr 0.2, batch 32, shuffled), scratch / keras"


def run(config, impl, epochs, group="g1", **more):
    rounds = {"group": group, "epoch": epochs,
              **{k: v for k, v in more.items() if k in ("limit", "target_epoch")}}
    return {"status": "ok", "task": "mnist", "config": config, "impl": impl, "seed": 0,
            "epoch_time_s": sorted(epochs)[len(epochs) // 2], "step_time_ms": math.nan,
            "matmul_epoch_s": sorted(more.get("limit", [math.nan]))[0],
            "time_to_target_s": more.get("to_target", math.nan),
            "round_times_s": json.dumps(rounds), "cpu": "cpu", "commit": "c",
            "timestamp": "t"}


def table(*rows) -> pd.DataFrame:
    return speed.summarize(pd.DataFrame(rows)).set_index("metric")


def wobble(value, n=8):
    """n times near ``value``, a round's noise each (+-2%)."""
    return [value * (1 + 0.02 * ((i % 3) - 1)) for i in range(n)]


def test_an_interval_below_the_matmul_floor_is_a_measurement_fault():
    """An epoch contains its own matrix products: scratch at half its matmul limit, in
    every round, is a broken measurement, never a result."""
    got = table(run("b128", "scratch-shortcut", wobble(1.0), limit=wobble(2.0)))
    row = got.loc[LIMIT]
    assert row["ratio_high"] < 1.0 and row["rounds"] == 8
    assert row["verdict"] == "measurement fault"
    fine = table(run("b128", "scratch-shortcut", wobble(1.3), limit=wobble(1.0))).loc[LIMIT]
    assert fine["verdict"] == "met" and fine["ratio_low"] > 1.0


@pytest.mark.parametrize("keras, verdict", [
    (wobble(4.0), "met"),          # 0.25, wholly within 0.4
    (wobble(2.0), "missed"),       # 0.5, wholly beyond
    ([2.0, 3.0] * 4, "undecided"),  # 0.33 and 0.5 in turn: the interval straddles 0.4
])
def test_the_verdict_reads_the_rounds_interval(keras, verdict):
    got = table(run("b32", "scratch-shortcut", [1.0] * 8), run("b32", "keras", keras))
    row = got.loc[B32]
    assert row["verdict"] == verdict and row["rounds"] == 8
    assert row["ratio_low"] <= row["ratio"] <= row["ratio_high"]


def test_rows_of_two_groups_of_rounds_do_not_pair():
    """A resumed run's rows trained in other rounds than the reference's: no interval."""
    got = table(run("b32", "scratch-shortcut", [1.0] * 8, group="g1"),
                run("b32", "keras", wobble(4.0), group="g2"))
    row = got.loc[B32]
    assert math.isnan(row["ratio_low"]) and row["verdict"] == "undecided"
    assert row["ratio"] == pytest.approx(0.25, rel=0.03)  # the figures still divide


def test_time_to_target_pairs_the_crossing_epochs_and_the_clock():
    """scratch crosses at epoch 4, keras at 5, each epoch of scratch's a quarter of
    keras': the ratio is 4/5 x 1/4 = 0.2, whatever the rounds' order."""
    got = table(run("to98", "scratch-shortcut", [1.0] * 6, target_epoch=4, to_target=4.0),
                run("to98", "keras", [4.0] * 6, target_epoch=5, to_target=20.0))
    row = got.loc[TO98]
    assert row["ratio"] == pytest.approx(0.2)
    assert row["ratio_low"] == pytest.approx(0.2) and row["ratio_high"] == pytest.approx(0.2)
    assert row["verdict"] == "met"


def step(impl, seed, ms):
    return {"status": "ok", "task": "xor", "config": "blog", "impl": impl, "seed": seed,
            "epoch_time_s": ms / 1e3, "step_time_ms": ms, "matmul_epoch_s": math.nan,
            "time_to_target_s": math.nan, "round_times_s": math.nan, "cpu": "cpu",
            "commit": "c", "timestamp": "t"}


def test_the_compiled_engine_has_targets_of_its_own():
    """scratch-numba against scratch (1/100) and jax (1.0) seed by seed on the tiny tasks, and
    against the fastest peer's MNIST epoch in the same rounds."""
    got = table(*(step("scratch-shortcut", s, 0.08) for s in range(6)),
                *(step("scratch-numba", s, wobble(0.0004, 6)[s]) for s in range(6)),
                *(step("jax", s, 0.0002) for s in range(6)),
                run("b32", "scratch-shortcut", wobble(4.0)), run("b32", "jax", wobble(3.0)),
                run("b32", "scratch-numba", wobble(2.0)))
    versus_scratch = got.loc["xor: ms per step, scratch-numba / scratch"]
    assert versus_scratch["target"] == 0.01 and versus_scratch["verdict"] == "met"
    assert versus_scratch["ratio"] == pytest.approx(0.005) and versus_scratch["rounds"] == 6
    versus_jax = got.loc["xor: ms per step, scratch-numba / jax"]
    assert versus_jax["target"] == 1.0 and versus_jax["verdict"] == "missed"  # 2x, every seed
    mnist = got.loc["MNIST batch 32: s per epoch, scratch-numba / fastest peer (jax)"]
    assert mnist["target"] == 1.0 and mnist["verdict"] == "met"
    assert mnist["ratio"] == pytest.approx(2 / 3, rel=0.05)
    assert "reverse4: ms per step, scratch-numba / scratch" not in got.index  # it did not run


def test_mnist_runs_train_in_interleaved_rounds_each_in_its_own_process(tmp_path):
    """scratch and jax side by side on MNIST batch 128: the rows of one group, each with
    its epochs round by round, and scratch's matmul limit as a unit of the same rounds."""
    from dataclasses import replace

    from benchmarks.experiments import EXPERIMENTS, WORKER
    from benchmarks.harness.runner import groups, run_group
    from benchmarks.harness.specs import PROFILES, Selection
    from tests.conftest import needs

    needs("jax")
    planned = speed.specs(PROFILES["quick"], Selection(["mnist/b128"], ["scratch-shortcut",
                                                                         "jax"], None))
    specs = [replace(s, epochs=1, train_samples=3 * 128) for s in planned]  # 3 steps
    experiment = EXPERIMENTS["speed"]
    assert groups(experiment, specs) == [specs]  # one group of rounds
    assert experiment.parts(specs[0]) == 3  # a round's unit a third of an epoch: a step
    progress = []
    rows = [row for batch in run_group(experiment, specs, tmp_path,
                                       lambda d, t: progress.append(d), 1e9, WORKER)
            for _, row in batch]
    assert [r["impl"] for r in rows] == ["scratch-shortcut", "jax"]
    assert all(r["status"] == "ok" for r in rows), [r["error"] for r in rows]
    scratch, jax = (json.loads(r["round_times_s"]) for r in rows)
    assert scratch["group"] == jax["group"] and progress == [0, 1, 2, 3]
    assert len(scratch["epoch"]) == len(jax["epoch"]) == len(scratch["limit"]) == 3
    assert scratch["parts"] == jax["parts"] == 3
    assert "limit" not in jax  # the reference's alone
    assert all(r["measured_epochs"] == 1 and r["epoch_time_s"] > 0 for r in rows)
    assert rows[0]["matmul_epoch_s"] > 0


def test_a_worker_killed_mid_rounds_ends_them_and_the_others_keep_their_rows(tmp_path):
    """kill -9 of jax's worker after the first round: the rounds end with that whole
    round, scratch's row keeps it, and jax's row says it was killed."""
    import os
    import signal
    from dataclasses import replace

    from benchmarks.experiments import EXPERIMENTS, WORKER
    from benchmarks.harness.runner import run_group
    from benchmarks.harness.specs import PROFILES, Selection
    from tests.conftest import needs

    needs("jax")
    planned = speed.specs(PROFILES["quick"], Selection(["mnist/b32"], ["scratch-shortcut",
                                                                        "jax"], None))
    specs = [replace(s, epochs=4, train_samples=256) for s in planned]

    def kill_jax(done, total):
        if done == 1:
            for pid in filter(str.isdigit, os.listdir("/proc")):
                try:
                    cmd = open(f"/proc/{pid}/cmdline").read().split("\0")
                except OSError:
                    continue
                if "--serve" in cmd and '"impl": "jax"' in Path(
                        cmd[cmd.index("--serve") + 1]).read_text():  # its lane's specs
                    os.kill(int(pid), signal.SIGKILL)

    rows = [row for batch in run_group(EXPERIMENTS["speed"], specs, tmp_path, kill_jax, 1e9,
                                       WORKER) for _, row in batch]
    scratch, jax = rows
    units = json.loads(scratch["round_times_s"])["epoch"]  # a quarter epoch each
    assert scratch["status"] == "ok" and len(units) in (1, 2)
    assert scratch["measured_epochs"] == len(units) / 4
    assert jax["status"] == "killed" and jax["error"] == "killed (signal 9)"


def test_a_served_run_is_compiled_for_its_units_in_warm_up_not_in_its_first_round():
    """jax's executable is compiled per (epochs a call, shapes): a served run trains an
    epoch a call, so its warm-up compiles that one, and its units compile nothing (its
    first round once held 1.7 s of compilation)."""
    from dataclasses import replace

    from benchmarks.experiments import EXPERIMENTS
    from benchmarks.harness.specs import PROFILES, Selection
    from benchmarks.harness.worker import Served, prepare
    from tests.conftest import needs

    needs("jax")
    spec, = speed.specs(PROFILES["quick"], Selection(["mnist/b32"], ["jax"], None))
    experiment = EXPERIMENTS["speed"]
    spec = replace(spec, epochs=3, train_samples=100 * 32)  # parts of 25 steps
    served = Served(prepare(experiment, spec, epochs=1, parts=experiment.parts(spec)))
    compiled = dict(served.run.model._compiled)
    for _ in range(experiment.parts(spec)):
        served.epoch()
    served.warm()
    assert served.run.model._compiled == compiled and len(compiled) == 1
