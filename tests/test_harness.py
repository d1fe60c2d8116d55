"""The harness on tiny runs: rows, files, resume after an interrupt, bad input."""

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from benchmarks.cli import main
from benchmarks.data.tasks import CONFIGS, get_config, load_task, target_reached, xor_data
from benchmarks.errors import UsageError
from benchmarks.experiments import EXPERIMENTS, WORKER, compare
from benchmarks.harness.runner import run_one
from benchmarks.harness.schema import KEY
from benchmarks.harness.specs import PROFILES, RunSpec, Selection
from benchmarks.implementations import IMPLEMENTATIONS, PEERS, SCRATCH, Monitor, scratch_model
from tests.conftest import needs
from tests.peers import (  # the batch orders and the training, shared with the peers
    SHUFFLED,
    XOR_IN_PAIRS,
    train,
    tuned_batchings,
)


def read(out):
    return pd.read_csv(out / "compare.csv")


def test_interrupted_run_keeps_its_rows_and_resume_completes_it(tmp_path):
    out = tmp_path / "run"
    args = ["run", "--profile", "smoke", "--task", "xor", "--task", "reverse4", "--impl",
            "scratch-shortcut", "--impl", "scratch-jacobian", "--seeds", "3", "--out", str(out)]
    # A shell's background jobs inherit SIGINT ignored, and Python then keeps it ignored:
    # the run restores Python's handler first, so that Ctrl-C reaches it however the tests
    # were started. (Not with preexec_fn: a fork of this process, which may run JAX's
    # threads, can deadlock.)
    cmd = [sys.executable, "-c", "import runpy, signal, sys; "
           "signal.signal(signal.SIGINT, signal.default_int_handler); "
           "sys.argv = ['groundup', *sys.argv[1:]]; "
           "runpy.run_module('benchmarks.cli', run_name='__main__')", *args]
    printed = tmp_path / "printed.txt"
    with printed.open("w") as sink:
        proc = subprocess.Popen(cmd, stdout=sink, stderr=subprocess.STDOUT,
                                start_new_session=True)
    csv = out / "compare.csv"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None and (
            not csv.exists() or len(csv.read_text().splitlines()) < 3):  # header + 2 rows
        time.sleep(0.05)
    assert proc.poll() is None, printed.read_text()[-2000:]  # still running, interruptible
    os.killpg(proc.pid, signal.SIGINT)
    assert proc.wait(timeout=60) == 130, printed.read_text()[-2000:]
    kept = read(out)
    assert 2 <= len(kept) < 12
    assert main(["run", "--resume", str(out)]) == 0
    done = read(out)
    assert len(done) == 12 and not done.duplicated(KEY).any()
    assert kept.equals(done.iloc[: len(kept)])  # earlier rows untouched



@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")  # the lost one
def test_an_interrupt_that_lands_in_a_finalizer_still_stops_the_run(tmp_path, monkeypatch):
    """CPython drops an exception raised inside a ``__del__`` (it prints "Exception
    ignored"): a Ctrl-C whose KeyboardInterrupt lands in a finalizer that the garbage
    collector runs at that moment must stop the run all the same, with its exit code."""
    from benchmarks.errors import Interrupted
    from benchmarks.harness import processes

    class Finalized:
        def __del__(self):
            Interrupted.handler(signal.SIGINT, None)  # the handler, run inside a finalizer

    polls = []

    def check(*args):
        polls.append(Finalized())
        polls.pop()  # collected here: the KeyboardInterrupt is lost
        return original(*args)

    original = processes.check
    monkeypatch.setattr(processes, "check", check)
    monkeypatch.setattr(Interrupted, "flag", False)  # restored after the test
    out = tmp_path / "run"
    code = main(["run", "--profile", "smoke", "--task", "xor", "--impl", "scratch-shortcut",
                 "--seeds", "3", "--out", str(out)])
    assert code == 130
    assert not (out / "compare.csv").exists() or len(read(out)) < 3

def test_failures_become_rows(tmp_path):
    spec = RunSpec("compare", "xor", "blog", "scratch-shortcut", 0, "quick", epochs=100_000,
                   budget_s=600, timeout_s=0.5)
    row = run_one(EXPERIMENTS['compare'], spec, tmp_path, lambda *a: None, 1e9, WORKER)
    assert row["status"] == "timeout" and "killed after" in row["error"]
    broken = tmp_path / "digits"
    broken.mkdir()
    spec = replace(spec, task="mnist", config="blog", timeout_s=120, epochs=1,
                   data_dir=str(broken))
    row = run_one(EXPERIMENTS['compare'], spec, tmp_path, lambda *a: None, 1e9, WORKER)
    assert row["status"] == "error" and "missing train-images-idx3-ubyte" in row["error"]
    assert row["commit"] and row["numpy"]


@pytest.mark.parametrize("impl", ["scratch-shortcut", "scratch-numba", "jax"])
def test_an_accuracy_only_experiment_trains_a_group_of_seeds_in_one_process(tmp_path, impl):
    """scratch-shortcut's, scratch-numba's and jax's groups train as one seed-batched
    network (a stack, a compiled stack, jax.vmap);
    each row is what the seed gives alone. (A group trained one seed after another, as
    scratch-jacobian's: tests/test_cluster.py's sweep against its sequential run.)"""
    out = tmp_path / "run"
    assert main(["run", "generalisation", "--profile", "smoke", "--impl", impl,
                 "--seeds", "3", "--out", str(out)]) == 0
    assert sorted(p.name for p in (out / "logs").iterdir()) == [
        f"generalisation-reverse4-blog-{impl}-seed0-2.log"]
    grouped = pd.read_csv(out / "generalisation.csv")
    assert grouped["seed"].tolist() == [0, 1, 2] and (grouped["status"] == "ok").all()
    assert [json.loads(s).get("seed_batched") for s in grouped["settings"]] == [3, 3, 3]
    from benchmarks.harness import worker

    # each seed alone, as its own process would train it (here: the framework is loaded)
    alone = [worker.execute(EXPERIMENTS["generalisation"], spec)
             for spec in EXPERIMENTS["generalisation"].specs(
                 PROFILES["smoke"], Selection(["reverse4"], [impl], 3))]
    # float32: the stacked matrix products may round differently from one network's
    np.testing.assert_allclose(grouped["final_loss"], [r["final_loss"] for r in alone],
                               rtol=1e-5)
    for column in ("train_exact", "extrap_exact", "extrap_bit_accuracy", "dead_inputs"):
        assert grouped[column].tolist() == [r[column] for r in alone], column
    curves = pd.read_csv(out / "generalisation_curves.csv")
    assert curves.groupby("seed")["epoch"].max().tolist() == [200, 200, 200]


def test_a_run_that_kills_its_group_gets_its_row_and_the_rest_run_on(tmp_path):
    from benchmarks.harness.runner import run_group

    fast = RunSpec("generalisation", "reverse4", "blog", "scratch-shortcut", 0, "smoke",
                   epochs=200, budget_s=float("inf"), timeout_s=120)
    stuck = replace(fast, seed=1, epochs=10_000_000, timeout_s=1)  # killed after a second
    specs = [fast, stuck, replace(fast, seed=2)]
    rows = [item for batch in run_group(EXPERIMENTS["generalisation"], specs, tmp_path,
                                        lambda *a: None, 1e9, WORKER) for item in batch]
    logs = sorted(p.name for p in (tmp_path / "logs").iterdir())
    assert [(s.seed, r["seed"], r["status"]) for s, r in rows] == [
        (0, 0, "ok"), (1, 1, "timeout"), (2, 2, "ok")]
    assert logs == ["generalisation-reverse4-blog-scratch-shortcut-seed0-2.log",
                    "generalisation-reverse4-blog-scratch-shortcut-seed2.log"]


def test_monitor_reports_divergence():
    monitor = Monitor(budget_s=10, target=lambda predict: False, total_epochs=5)
    monitor.start()
    with pytest.raises(FloatingPointError, match="diverged"):
        monitor.epoch_end(float("nan"), predict=None)


def test_paused_work_is_left_out_of_every_time(monkeypatch):
    """Reordering an epoch's data (``Monitor.paused``) counts in no training, step or epoch
    time; on a clock that moves only when told to."""
    from benchmarks.implementations import timer

    now = [100.0]
    monkeypatch.setattr(timer.time, "perf_counter", lambda: now[0])
    monitor = Monitor(budget_s=10, target=lambda predict: False, total_epochs=5)
    monitor.start()
    now[0] += 1.0   # a step
    monitor.batch_end()
    with monitor.paused():
        now[0] += 7.0   # reordering
    now[0] += 2.0   # another step
    monitor.batch_end()
    monitor.epoch_end(0.5, predict=None)
    assert list(monitor.step_times) == [1.0, 2.0]
    assert list(monitor.epoch_times) == [3.0]
    assert monitor.elapsed() == 3.0 and not monitor.over_budget



def test_checks_inside_one_compiled_call_get_their_share_of_its_time(monkeypatch):
    """A compiled call that trained 4 check intervals: each check is placed at its share of
    the call's time, and the checks' own time (1 s each here) is left out of all of it."""
    from benchmarks.implementations import timer

    now = [0.0]
    monkeypatch.setattr(timer.time, "perf_counter", lambda: now[0])

    def predict(k):
        def fn(x):
            now[0] += 1.0  # the check's own time
            return k
        return fn

    monitor = Monitor(budget_s=100, target=lambda predict: predict(None) >= 2, total_epochs=40,
                      check_every=10)
    monitor.start()
    now[0] += 8.0  # one call of 40 epochs
    monitor.batch_end(40)
    monitor.checks_end([0.4, 0.3, 0.2, 0.1], [predict(k) for k in range(4)], epochs=10)
    assert monitor.curve == [(10, 0.4), (20, 0.3), (30, 0.2), (40, 0.1)]
    assert (monitor.time_to_target, monitor.epochs_to_target) == (6.0, 30)
    assert list(monitor.epoch_times) == [0.2] * 40
    assert monitor.elapsed() == 8.0 and now[0] == 11.0  # three checks ran, the 4th not


def test_jax_checks_within_its_calls_as_scratch_between_epochs():
    """JAX runs many check intervals in one compiled call and checks the target on the
    weights it kept at each: the same curve, epochs to target and final weights as scratch,
    which checks between its epochs."""
    needs("jax")
    cfg = replace(get_config("xor"), optimizer={"name": "sgd", "learning_rate": 2.0})
    x, y = xor_data()
    epochs, every = 600, 10
    assert IMPLEMENTATIONS["jax"].calls(cfg, len(x), epochs, every) == (10, 60)

    def run(name):
        impl = IMPLEMENTATIONS[name]
        model = impl.build(cfg, scratch_model(cfg, "float32", 0).get_weights(), "float32", 0)
        impl.warm_up(model, x, y, cfg, epochs)
        monitor = Monitor(1e9, lambda predict: target_reached(cfg, y, predict(x)), epochs,
                          every)
        impl.train(model, x, y, cfg, epochs, 0, monitor)
        return monitor, impl.get_weights(model)

    (ours, weights), (theirs, expected) = run("jax"), run("scratch-shortcut")
    assert 0 < theirs.epochs_to_target < epochs  # a target reached mid-call
    assert ours.epochs_to_target == theirs.epochs_to_target
    assert [e for e, _ in ours.curve] == [e for e, _ in theirs.curve] == list(range(10, 601, 10))
    np.testing.assert_allclose([v for _, v in ours.curve], [v for _, v in theirs.curve],
                               rtol=1e-4)
    for w, e in zip(weights, expected, strict=True):
        np.testing.assert_allclose(w, e, atol=1e-4)




@pytest.mark.parametrize("cfg, impl, epochs", [
    (SHUFFLED, "keras", 2),           # shuffled minibatches, fed epoch by epoch
    (SHUFFLED, "keras-tuned", 2),     # several steps per execution
    (get_config("xor"), "keras", 30),  # file order, one fit call
    (get_config("xor"), "keras-tuned", 30),  # a repeated full batch
    (XOR_IN_PAIRS, "keras", 30),        # file order, two batches an epoch
    (XOR_IN_PAIRS, "keras-tuned", 30),  # several steps per execution
])
def test_scratch_and_keras_see_identical_batches(cfg, impl, epochs):
    """keras-tuned under each candidate setting that feeds the batches otherwise than plain
    fit (the calibration may choose any of them)."""
    if cfg.task == "xor":
        x, y = xor_data()
    else:
        data = load_task(cfg, train_samples=50)
        x, y = data.x, data.y
    scratch, keras = IMPLEMENTATIONS["scratch-shortcut"], IMPLEMENTATIONS[impl]
    expected = train(scratch, cfg, x, y, epochs)
    tried = tuned_batchings(keras, cfg, len(x)) if keras.tuned else [None]
    assert tried
    for settings in tried:
        for w, e in zip(train(keras, cfg, x, y, epochs, settings), expected, strict=True):
            np.testing.assert_allclose(w, e, atol=1e-5, err_msg=str(settings))
    # The check can fail: other batches, or the same ones in another order, give other weights.
    if cfg.shuffle:
        other = train(scratch, cfg, x, y, epochs, seed=1)
    elif cfg.batch_size < len(x):
        other = train(scratch, cfg, x[::-1], y[::-1], epochs)
    else:
        return  # one full batch an epoch: there is no order to get wrong
    assert max(np.abs(a - b).max() for a, b in zip(other, expected, strict=True)) > 1e-3


def test_keras_tuned_times_each_candidate_and_takes_the_fastest_unless_told_untimed():
    """Its warm-up times every candidate (plain fit's first) and records the times with
    its choice, the fastest. A run whose times say nothing (``untimed``) takes the first
    candidate beyond plain fit's, and records no times."""
    impl, cfg, (x, y) = IMPLEMENTATIONS["keras-tuned"], get_config("xor"), xor_data()
    candidates = impl.candidates(cfg, len(x))

    def warmed_settings() -> dict:
        model = impl.build(cfg, scratch_model(cfg, "float32", 0).get_weights(), "float32", 0)
        impl.warm_up(model, x, y, cfg, 30)
        return dict(impl.settings(model))

    try:
        impl.settle(cfg, x, 30, None)  # calibrated afresh, whatever this process did before
        settings = warmed_settings()
        timed = settings.pop("calibration")
        assert [{k: v for k, v in c.items() if k != "ms_per_step"} for c in timed] == candidates
        assert len(timed) >= 2 and timed[0]["steps_per_execution"] == 1
        fastest = min(timed, key=lambda c: c["ms_per_step"])
        assert settings == {k: v for k, v in fastest.items() if k != "ms_per_step"}
        impl.settle(cfg, x, 30, None)
        impl.untimed(cfg, x, 30)
        assert warmed_settings() == candidates[1]
    finally:
        impl.settle(cfg, x, 30, None)


def test_keras_gives_the_next_seed_of_a_group_its_model_back_as_new():
    """A process that trains seed after seed (an accuracy-only group: keras-tuned's, on
    each backend) compiles Keras' model once: the next seed's run gets it back with its
    weights and optimizer state reset, and ends where a model built afresh ends.
    (Momentum: a state that must not carry.) Under settings that run several steps an
    execution, where a state that carried would show."""
    impl = IMPLEMENTATIONS["keras-tuned"]
    cfg = replace(XOR_IN_PAIRS, optimizer={"name": "sgd", "learning_rate": 0.5, "momentum": 0.9})
    x, y = xor_data()
    impl.settle(cfg, x, 20, tuned_batchings(impl, cfg, len(x))[0])

    def run(seed):
        model = impl.build(cfg, scratch_model(cfg, "float32", seed).get_weights(), "float32",
                           seed)
        impl.warm_up(model, x, y, cfg, 20)
        impl.train(model, x, y, cfg, 20, seed, Monitor(1e9, lambda p: False, 20))
        return model, impl.get_weights(model)

    try:
        impl._last = None
        first, _ = run(0)
        again, reused = run(1)
        assert again is first  # one model, compiled once
        impl._last = None
        fresh_model, fresh = run(1)
        assert fresh_model is not first
        for w, v in zip(reused, fresh, strict=True):
            np.testing.assert_allclose(w, v, rtol=0, atol=1e-6)
        assert max(np.abs(w - v).max() for w, v in zip(fresh, run(0)[1], strict=True)) > 1e-3
    finally:
        impl.settle(cfg, x, 20, None)


@pytest.mark.parametrize("args, message", [
    (["run", "bogus"], "unknown experiment 'bogus'; choose from compare, generalisation"),
    (["run", "--task", "cifar"], "unknown task 'cifar': compare takes mnist, reverse4, xor"),
    (["run", "speed", "--task", "mnist/blog"], "speed takes mnist, mnist/b32, mnist/b128"),
    (["run", "--impl", "pytorch"], "unknown implementation 'pytorch'; choose from scratch-"),
    (["run", "--resume", "/nonexistent"], "holds no run.json"),
    (["report", "/nonexistent"], "holds no results CSV"),
])
def test_bad_cli_input_gets_a_clear_message(args, message, capsys):
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


@pytest.mark.parametrize("seeds", ["0", "-2", "many"])
def test_bad_numbers_are_refused(seeds, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["run", "--seeds", seeds])
    assert exit_.value.code == 2
    assert f"must be a positive whole number, got '{seeds}'" in capsys.readouterr().err


def test_task_choices_are_the_chosen_experiments():
    from benchmarks.commands import _tasks

    speed = [EXPERIMENTS["speed"]]
    assert _tasks(["mnist/b32", "xor", "mnist/b32"], speed, "quick") == ["mnist/b32", "xor"]
    assert _tasks(None, speed, "smoke") == ["mnist", "xor"]
    with pytest.raises(UsageError, match="compare takes"):
        _tasks(["mnist/b32"], [EXPERIMENTS["compare"]], "quick")


def test_an_existing_results_folder_is_never_overwritten(tmp_path, capsys):
    (tmp_path / "compare.csv").write_text("experiment\n")
    assert main(["run", "--out", str(tmp_path)]) == 2
    assert "nothing is overwritten" in capsys.readouterr().err


def test_quick_profile_covers_every_implementation_on_every_task():
    """And MNIST at batch 32 for scratch and the two peers fastest there when published."""
    specs = compare.specs(PROFILES["quick"], Selection(["xor", "reverse4", "mnist"], None, None))
    # keras-torch-tuned has only plain fit to try on MNIST's minibatches: keras-torch runs once.
    first = [s for s in specs if f"{s.task}/{s.config}" != compare.QUICK_B32]
    assert {(s.task, s.impl) for s in first} == {
        (t, i) for t in ("xor", "reverse4", "mnist") for i in PEERS} - {
        ("mnist", "keras-torch-tuned")}
    published = pd.read_csv(compare.PUBLISHED_SPEED)
    framework = published["impl"].map(lambda i: not IMPLEMENTATIONS[i].from_scratch)
    b32 = published[(published["config"] == "b32") & framework]
    fastest = b32.groupby("impl")["epoch_time_s"].median().nsmallest(2).index
    b32_runs = [s for s in specs if f"{s.task}/{s.config}" == compare.QUICK_B32]
    assert sorted(s.impl for s in b32_runs) == sorted([SCRATCH, *fastest])
    assert {(s.epochs, s.train_samples) for s in b32_runs} == {(1, None)}  # a whole epoch
    jac = [s for s in specs if s.task == "mnist" and s.impl == "scratch-jacobian"]
    assert jac[0].train_samples == PROFILES["quick"].jacobian_mnist_samples


def test_a_timed_run_has_a_process_of_its_own_but_where_the_times_say_nothing():
    """compare on the quick profile: a process a run. On the smoke profile, one a Keras
    backend (Implementation.process_backend): keras-jax's runs apart from the others'."""
    from benchmarks.harness.runner import groups

    impls = ["scratch-shortcut", "scratch-jacobian", "keras", "jax", "keras-jax"]
    chosen = Selection(["xor", "mnist"], impls, 1)
    quick = compare.specs(PROFILES["quick"], chosen)
    assert groups(EXPERIMENTS["compare"], quick) == [[s] for s in quick]
    smoke = compare.specs(PROFILES["smoke"], chosen)
    shared = groups(EXPERIMENTS["compare"], smoke)
    assert [{IMPLEMENTATIONS[s.impl].process_backend for s in group} for group in shared] == [
        {"tensorflow"}, {"jax"}]
    assert sorted(s.key for group in shared for s in group) == sorted(s.key for s in smoke)
    assert {s.impl for s in shared[1]} == {"keras-jax"} and len(smoke) == 2 * len(impls)


def test_a_progress_line_read_after_its_runs_row_is_dropped(monkeypatch, tmp_path):
    """run_group's reader thread may pass a run's last progress line on after the row
    came in and its bar went: the update is dropped, not a KeyError in that thread."""
    import io

    from rich.console import Console
    from rich.progress import Progress

    from benchmarks.harness import runner

    spec = RunSpec("compare", "xor", "blog", "scratch-shortcut", 0, "smoke", epochs=5,
                   budget_s=1, timeout_s=10)

    def late(experiment, group, out_dir, on_progress, memory, worker):
        yield [(group[0], {"status": "ok"})]
        on_progress(5, 5)  # read after the row

    monkeypatch.setattr(runner, "run_group", late)
    with Progress(console=Console(file=io.StringIO())) as bars:
        [(group, batches)] = runner._from_here(EXPERIMENTS["compare"], [[spec]], tmp_path,
                                               bars, 1e9, WORKER)
        assert list(batches) == [[(spec, {"status": "ok"})]] and not bars.tasks


def test_fastest_published_reads_the_speed_runs_and_without_them_adds_none(tmp_path):
    runs = tmp_path / "speed_runs.csv"
    runs.write_text("config,impl,status,epoch_time_s\n"
                    "b32,keras,ok,9\nb32,jax,ok,3\nb32,jax,ok,5\nb32,torch,ok,4.5\n"
                    "b32,scratch-shortcut,ok,1\nb32,scratch-numba,ok,1\nb32,keras-jax,error,\n"
                    "b128,keras-jax,ok,1\n")
    assert compare.fastest_published("b32", 2, runs) == ["jax", "torch"]  # jax's median: 4
    assert compare.fastest_published("b32", 2, tmp_path / "none.csv") == []
    runs.write_text("not,a,speed,table\n1,2,3,4\n")
    assert compare.fastest_published("b32", 2, runs) == []
    specs = compare.specs(PROFILES["quick"], Selection(["mnist"], None, None))
    assert any(s.config == "tf-tutorial" for s in specs)  # scratch's row at least


def test_full_profile_seeds_scratch_and_keras_three_times_and_the_peers_once():
    specs = compare.specs(PROFILES["full"], Selection(["xor", "reverse4", "mnist"], None, None))
    seeds = {}
    for s in specs:
        seeds.setdefault((s.task, s.config, s.impl), set()).add(s.seed)
    assert {f"{k[0]}/{k[1]}" for k in seeds} == set(CONFIGS)  # every configuration
    for (task, _, impl), found in seeds.items():
        assert found == set(range(3 if impl in compare.REFERENCE else 1)), (task, impl)
    assert {k[2] for k in seeds} == set(PEERS)
    assert ("mnist", "blog", "keras-torch-tuned") not in seeds
    assert {s.budget_s for s in specs if s.task != "mnist"} == {compare.TINY_BUDGET_S}
    assert {s.budget_s for s in specs if s.task == "mnist"} == {PROFILES["full"].budget_s}
    chosen = compare.specs(PROFILES["full"], Selection(["xor"], ["jax"], 2))  # --seeds wins
    assert [s.seed for s in chosen] == [0, 1]
    named = compare.specs(PROFILES["full"], Selection(["mnist"], ["keras-torch-tuned"], None))
    assert {s.impl for s in named} == {"keras-torch-tuned"}  # --impl runs it all the same


def test_speed_task_and_impl_narrow_the_suite():
    from benchmarks.experiments import speed

    everything = speed.specs(PROFILES["quick"], Selection(["xor", "reverse4", "mnist"], None, None))
    assert {s.task for s in everything} == {"xor", "reverse4", "mnist"}
    xor = speed.specs(PROFILES["quick"], Selection(["xor"], ["scratch-shortcut"], 2))
    assert [(s.task, s.impl, s.seed) for s in xor] == [("xor", "scratch-shortcut", 0),
                                                       ("xor", "scratch-shortcut", 1)]


def test_non_finite_final_weights_make_a_diverged_row():
    from benchmarks.harness.worker import diverged

    assert diverged(0.25) == {}
    row = diverged(float("nan"))
    assert row["status"] == "diverged" and "training loss of nan" in row["error"]


def test_list_fits_80_columns_with_one_line_per_row(capsys, monkeypatch):
    from rich.console import Console

    from benchmarks import commands

    monkeypatch.setattr(commands, "out", Console(width=80))
    assert main(["list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert max(map(len, lines)) <= 80 and not any("…" in line for line in lines)
    rule = next(i for i, line in enumerate(lines) if line.startswith("─"))
    table = lines[rule + 1: rule + 1 + len(CONFIGS)]  # one line per row: no cell wraps
    assert [line.split(" ")[0] for line in table] == list(CONFIGS)
    assert lines[rule + 1 + len(CONFIGS)].startswith(f"{next(iter(CONFIGS))}: target")
    rows = {line.split()[0] for line in lines if line.strip()}
    assert set(EXPERIMENTS) <= rows and set(IMPLEMENTATIONS) <= rows


@pytest.mark.parametrize("width, wide", [(80, False), (120, False), (80, True)])
def test_a_runs_summary_fits_its_terminal_a_line_a_row_no_cell_cut(tmp_path, capsys,
                                                                    monkeypatch, width, wide):
    """The longest names and figures there are: the published compare, every task. At 80
    columns the key figures, at 120 more of them, with --wide all; never a cut cell."""
    from rich.console import Console

    from benchmarks import commands

    monkeypatch.setattr(commands, "out", Console(width=width))
    published = Path(__file__).parents[1] / "results" / "published"
    for name in ("compare.csv", "compare_curves.csv", "run.json"):
        (tmp_path / name).write_bytes((published / name).read_bytes())
    assert main(["report", str(tmp_path), *(["--wide"] if wide else [])]) == 0
    lines = capsys.readouterr().out.splitlines()
    tables = [i for i, line in enumerate(lines) if line.startswith("compare: ")]
    rows = pd.read_csv(tmp_path / "compare.csv").drop_duplicates(["task", "config", "impl"])
    assert len(tables) == len(rows.groupby(["task", "config"]))  # a table a task
    body = [line for line in lines[tables[0]:] if line.split(" ")[0] in set(rows["impl"])]
    assert len(body) == len(rows)  # a line a row: no cell wraps
    printed = lines[tables[0]:next(i for i, line in enumerate(lines) if line.startswith("rows in"))]
    assert not any("…" in line for line in printed)
    assert any(line.split()[1] == "unfinished" for line in body)  # no score of a prefix
    header = lines[tables[0] + 1].split()
    assert header[:7] == ["impl", "accuracy", "s/epoch", "peak", "MiB", "time/keras", "mem/keras"]
    if wide:
        assert header[-1] == "runs"
    else:
        assert max(map(len, printed)) <= width
        assert ("ms/step" in header) == (width == 120) and "runs" not in header


def test_run_help_names_every_experiment_at_80_columns(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    text = capsys.readouterr().out
    assert max(map(len, text.splitlines())) <= 80
    assert all(name in " ".join(text.split()) for name in EXPERIMENTS)


def test_a_run_at_other_versions_says_so(tmp_path, monkeypatch):
    from benchmarks.harness import environment

    published = tmp_path / "environment.json"
    keras, numpy = environment.context()["keras"], environment.context()["numpy"]
    published.write_text(json.dumps({"numpy": "1.0.0", "keras": keras}))
    line = environment.version_differences(published)
    assert line.startswith(f"versions differ from the published run's: numpy {numpy} "
                           "(published: 1.0.0);")
    assert "keras" not in line
    published.write_text(json.dumps({"numpy": numpy}))
    assert environment.version_differences(published) == ""
    # A missing optional framework names its own install, not make's
    monkeypatch.setitem(environment.context(), "torch", "")
    published.write_text(json.dumps({"numpy": numpy, "torch": "2.15.0"}))
    assert environment.version_differences(published).startswith(
        "versions differ from the published run's: torch missing (published: 2.15.0; "
        "`make torch` installs it); its numbers are comparable to these only with care.")


@pytest.mark.parametrize("spe", [50, 4, 1])
def test_keras_steps_are_counted_as_run_whatever_the_steps_per_execution(spe):
    """Keras reports an execution's last step as if the execution were whole: with 9
    steps an epoch and 50 (or 4) per execution, the count must still be 9 an epoch."""
    cfg = replace(SHUFFLED, shuffle=False, batch_size=32)
    impl = IMPLEMENTATIONS["keras-tuned"]
    x, y = np.zeros((8 * 32 + 16, 784), "float32"), np.eye(10, dtype="float32")[[0] * 272]
    model = impl.build(cfg, scratch_model(cfg, "float32", 0).get_weights(), "float32", 0)
    impl.settle(cfg, x, 3, {"jit_compile": "auto", "steps_per_execution": spe, "repeat": False})
    try:
        impl.warm_up(model, x, y, cfg, 3)
    finally:
        impl.settle(cfg, x, 3, None)
    monitor = Monitor(1e9, lambda predict: False, 3)
    impl.train(model, x, y, cfg, 3, 0, monitor)
    assert monitor.steps_done == len(monitor.step_times) == 3 * 9


def test_a_run_not_trained_in_full_gets_its_own_mark_never_a_tick():
    from benchmarks.harness.runner import summary_line

    spec = RunSpec("compare", "mnist", "blog", "scratch-shortcut", 0, "smoke", 1, 1.0, 60)
    row = {"status": "ok", "accuracy": None, "train_time_s": 6.3, "peak_rss_mib": 70.0,
           "extrapolated": True, "trained_in_full": False}
    line = summary_line(spec, row)
    assert line.startswith("[yellow]~[/]") and "not trained in full" in line and "✓" not in line
    assert summary_line(spec, {**row, "trained_in_full": True, "accuracy": 0.95,
                               "extrapolated": False}).startswith("[green]✓[/]")
