"""Sweeps on a real Dask cluster: a scheduler and two workers on 127.0.0.1."""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from benchmarks.cli import main
from benchmarks.harness.schema import KEY
from tests.test_faults import _cmdline, alive, children, workers_of

SWEEP = ["run", "generalisation", "--profile", "smoke", "--impl", "scratch-shortcut",
         "--impl", "scratch-jacobian", "--seeds", "3"]
DASK = [sys.executable, "-m"]  # `dask scheduler` and `dask worker`, from this environment
COMPARED = ["final_loss", "train_exact", "extrap_exact", "extrap_bit_accuracy", "status"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def dask_cluster():
    """A real cluster on 127.0.0.1: ``dask scheduler`` and two ``dask worker`` processes
    (no nanny, one thread and the ``machine`` resource each); (address, worker processes).
    Stopped afterwards, whatever happened."""
    from distributed import Client

    workers, port = 2, _free_port()
    address = f"tcp://127.0.0.1:{port}"
    procs = [subprocess.Popen([*DASK, "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
                               "--port", str(port), "--no-dashboard"],
                              stderr=subprocess.DEVNULL)]
    try:
        procs += [subprocess.Popen([*DASK, "distributed.cli.dask_worker", address,
                                    "--nthreads", "1", "--no-nanny", "--no-dashboard",
                                    "--name", f"w{i}", "--resources", "machine=1"],
                                   stderr=subprocess.DEVNULL) for i in range(workers)]
        with Client(address, timeout=30) as client:
            client.wait_for_workers(workers, timeout=60)
        yield address, procs[1:]
    finally:
        for proc in reversed(procs):
            proc.kill()
            proc.wait()


def per_seed(out: Path) -> pd.DataFrame:
    df = pd.read_csv(out / "generalisation.csv")
    assert not df.duplicated(KEY).any()
    return df.set_index(KEY).sort_index()[COMPARED]


def test_a_sweep_on_the_cluster_gives_the_sequential_rows(tmp_path, dask_cluster):
    assert main([*SWEEP, "--out", str(tmp_path / "alone")]) == 0
    address, _ = dask_cluster
    assert main([*SWEEP, "--scheduler", address, "--out", str(tmp_path / "dask")]) == 0
    alone, spread = per_seed(tmp_path / "alone"), per_seed(tmp_path / "dask")
    assert len(alone) == 6 and (alone["status"] == "ok").all()
    pd.testing.assert_frame_equal(alone, spread)
    logs = sorted(p.name for p in (tmp_path / "dask" / "logs").iterdir())
    assert logs == sorted(p.name for p in (tmp_path / "alone" / "logs").iterdir())


def test_a_dask_worker_killed_mid_sweep_loses_no_run_and_doubles_none(tmp_path, dask_cluster):
    out = tmp_path / "killed"
    address, dask_workers = dask_cluster
    sweep = subprocess.Popen([sys.executable, "-m", "benchmarks.cli", *SWEEP, "--scheduler",
                              address, "--out", str(out)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    victim = None
    while victim is None and time.monotonic() < deadline:
        victim = next((w for w in dask_workers if workers_of(w.pid, timeout=0.2)), None)
    assert victim is not None, "no run started on the cluster"
    victim.send_signal(signal.SIGKILL)  # the Dask worker, with its run mid-way
    assert sweep.wait(timeout=300) == 0, sweep.stderr.read()
    df = pd.read_csv(out / "generalisation.csv")
    assert len(df) == 6 and not df.duplicated(KEY).any()
    assert (df["status"] == "ok").all()


def descendants(pid: int) -> list[int]:
    found = children(pid)
    return found + [d for c in found for d in descendants(c)]


def test_a_driver_killed_with_kill_9_takes_its_local_cluster_and_runs_with_it(tmp_path):
    """kill -9, the hard case: the driver runs no handler (SIGTERM's path is Ctrl-C's,
    which closes the cluster on the way out)."""
    sweep = subprocess.Popen([sys.executable, "-m", "benchmarks.cli", *SWEEP, "--workers", "2",
                              "--out", str(tmp_path / "run")],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not any(
            b"benchmarks.experiments" in _cmdline(d) for d in descendants(sweep.pid)):
        time.sleep(0.05)
    family = descendants(sweep.pid)
    assert len(family) >= 3, "no Dask workers and runs"
    sweep.send_signal(signal.SIGKILL)
    sweep.wait(timeout=60)
    deadline = time.monotonic() + 20
    while any(alive(p) for p in family) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [p for p in family if alive(p)], "a Dask worker or a run outlived the driver"


def test_a_sweep_interrupted_with_its_workers_ends_in_one_line(tmp_path):
    """SIGTERM to the whole process group (the driver, its Dask nannies and workers, their
    runs), as a terminal's Ctrl-C reaches them all: the driver says Interrupted, and Dask
    adds no warning (a restarted worker, a cancelled task) and no traceback."""
    sweep = subprocess.Popen([sys.executable, "-m", "benchmarks.cli", *SWEEP, "--workers", "2",
                              "--out", str(tmp_path / "run")], start_new_session=True,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not any(
            b"benchmarks.experiments" in _cmdline(d) for d in descendants(sweep.pid)):
        time.sleep(0.05)
    os.killpg(sweep.pid, signal.SIGTERM)
    out, err = sweep.communicate(timeout=60)
    assert sweep.returncode == 130 and "Interrupted." in out + err
    assert "distributed" not in err and "Traceback" not in err, err


@pytest.mark.parametrize("experiment", ["compare", "speed", "scaling"])
def test_a_timed_experiment_on_two_local_workers_is_refused(tmp_path, capsys, experiment):
    code = main(["run", experiment, "--profile", "smoke", "--workers", "2",
                 "--out", str(tmp_path / "refused")])
    err = capsys.readouterr().err
    assert code == 2 and "needs the machine to itself" in err and "Traceback" not in err
    assert not (tmp_path / "refused").exists()


def test_workers_and_scheduler_together_are_refused(tmp_path, capsys):
    code = main(["run", "generalisation", "--workers", "2", "--scheduler", "tcp://x:1",
                 "--out", str(tmp_path / "r")])
    assert code == 2 and "give one of them" in capsys.readouterr().err


def test_a_local_cluster_leaves_port_8787_alone(capfd):
    from benchmarks.harness import cluster

    with socket.socket() as taken:  # another program, or another run's cluster
        taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            taken.bind(("127.0.0.1", 8787))
        except OSError:
            pass  # already someone else's: the same fault
        with cluster.connect(1, None) as client:
            assert 8787 not in client.scheduler_info()["services"].values()
    assert "8787" not in capfd.readouterr().err
