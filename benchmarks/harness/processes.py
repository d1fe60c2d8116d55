"""A worker process, from the runner's side: started in a session of its own, watched for
its time and memory limits, killed with its whole group, and the row of a run it could not
finish. Both ``runner.run_group`` and ``interleaved.run_rounds`` run their workers here."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.harness import environment
from benchmarks.harness.experiment import Experiment
from benchmarks.harness.specs import RunSpec
from benchmarks.harness.worker import PARENT, failure


def start(worker: str, args: list[str], log, **pipes) -> subprocess.Popen:
    """``python -m worker *args``, its stderr to ``log``; it dies with this process."""
    return subprocess.Popen(
        [sys.executable, "-m", worker, *args], stderr=log, text=True, start_new_session=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", PARENT: str(os.getpid())}, **pipes)


def check(proc: subprocess.Popen, start: float, timeout_s: float, memory_mib: float) -> str:
    """"" while the child runs within its limits; else why it stopped (killed if by us)."""
    if proc.poll() is not None:
        return "ok" if proc.returncode == 0 else "error"
    if time.monotonic() - start > timeout_s:
        kill(proc)
        return "timeout"
    if environment.rss_mib(proc.pid) > memory_mib:  # NaN (gone) is not above
        kill(proc)
        return "oom"
    return ""


def kill(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):  # its group is already gone
            os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def stopped(experiment: Experiment, spec: RunSpec, status: str, proc: subprocess.Popen,
            log: Path, memory_mib: float) -> dict:
    """The row of ``spec``, whose worker ``proc`` ended without writing it: ``status``
    timeout or oom where we killed it, else error (or killed, by a signal not ours)."""
    tail = log.read_text().strip().splitlines()[-1:] if log.exists() else []
    error = {"timeout": f"killed after {spec.timeout_s:.0f} s (--profile sets the limit)",
             "oom": f"killed above {memory_mib:.0f} MiB of resident memory",
             }.get(status, f"worker exited with code {proc.returncode}: "
                           f"{tail[0] if tail else 'no output'}")
    if status not in ("timeout", "oom"):
        status = "error"
        if proc.returncode < 0:  # not by us: we say timeout or oom
            status, error = "killed", f"killed (signal {-proc.returncode})"
    return failure(experiment, spec, status, error)
