"""Sweeps on Dask distributed: a local cluster (``--workers N``) or a running one
(``--scheduler ADDRESS``).

Each group of runs is one Dask task (``runner.run_remote``). On its Dask worker the task
runs the group as the sequential runner does, in fresh worker subprocesses, and returns
the rows and the logs; the driver alone writes them, so resume, the folder's lock and
whole rows work as they do without a cluster. A task whose Dask worker dies is run
again on another (Dask's own rescheduling): its rows come back once, when it finishes.

Timing stays honest: a timed experiment's task claims the ``machine`` resource whole,
and each machine's Dask worker holds one (``dask worker ADDRESS --nworkers 1 --resources
machine=1``), so no other task shares its machine. On one machine, more than one worker
is refused for timed experiments; accuracy-only tasks fan out freely.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
from collections.abc import Iterator

from benchmarks.errors import UsageError

ADDRESS = re.compile(r"((tcp|tls)://)?(?P<host>[\w.-]+|\[[0-9a-fA-F:.]+\]):(?P<port>\d{1,5})")
# Each local worker is a process holding its runs' subprocesses (~100 MiB each); many more
# than the cores only queue, and tens of thousands exhaust the memory before one starts.
MAX_WORKERS_PER_CORE = 4
MACHINE = "machine"  # the resource a timed task claims whole: one per machine
CONNECT_TIMEOUT_S = 10


def check(experiments: list, workers: int | None, scheduler: str | None) -> None:
    """Refuse what would make times dishonest or cannot work, before anything runs."""
    if workers is not None and scheduler is not None:
        raise UsageError("--workers starts a local Dask cluster and --scheduler joins a "
                         "running one: give one of them.")
    cores = os.cpu_count() or 1
    if workers and workers > MAX_WORKERS_PER_CORE * cores:
        raise UsageError(f"--workers {workers:,} is more than this machine can hold: at most "
                         f"{MAX_WORKERS_PER_CORE * cores} ({MAX_WORKERS_PER_CORE} for each of "
                         f"its {cores} cores).")
    if scheduler is not None:
        check_address(scheduler)
    timed = [e.name for e in experiments if e.timed]
    if workers and workers > 1 and timed:
        raise UsageError(
            f"{', '.join(timed)} {'measures' if len(timed) == 1 else 'measure'} time, and a "
            f"timed run needs the machine to itself: {workers} workers on this machine would "
            "share it. Run it without --workers, or on a cluster with one Dask worker per "
            f"machine (--scheduler; `dask worker ADDRESS --nworkers 1 --resources {MACHINE}=1`).")


def check_address(scheduler: str) -> None:
    """A scheduler address Dask can dial, [tcp:// or tls://]host:port; refused before any
    connection is tried."""
    found = ADDRESS.fullmatch(scheduler)
    if not found or not 0 < int(found["port"]) < 65536:
        raise UsageError(f"--scheduler {scheduler!r} is not a Dask scheduler address; give "
                         "tcp://HOST:PORT (or tls://HOST:PORT), e.g. tcp://127.0.0.1:8786.")


@contextlib.contextmanager
def connect(workers: int | None, scheduler: str | None) -> Iterator:
    """A dask.distributed Client: of a local cluster of ``workers`` processes, or of the
    scheduler at ``scheduler``; closed (the local cluster stopped) on the way out."""
    from distributed import Client, LocalCluster

    if scheduler is not None:
        try:
            client = Client(scheduler, timeout=CONNECT_TIMEOUT_S)
        except OSError as err:
            raise UsageError(f"cannot reach the Dask scheduler at {scheduler}: {err}. Start "
                             f"one with `dask scheduler`, and workers with `dask worker "
                             f"{scheduler}`.") from None
        with client:
            yield client
        return
    # One thread a worker: each task runs its runs one at a time, in subprocesses. The
    # scheduler's HTTP server starts whatever the flags: on a free local port and without
    # the dashboard, a second run does not fight the first for 8787.
    # Dask's own warnings (a worker restarted, a task cancelled) are about the machinery:
    # what happened to a run is in its row. Errors still show while the sweep runs, and
    # nothing once it ends, interrupted or done (the workers' goodbyes).
    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                      dashboard_address=None, resources={MACHINE: 1},
                      silence_logs=logging.ERROR,
                      scheduler_kwargs={"dashboard": False,
                                        "dashboard_address": "127.0.0.1:0"}) as local, \
            Client(local) as client, _quiet_at_exit():
        yield client


@contextlib.contextmanager
def _quiet_at_exit() -> Iterator[None]:
    """Silence Dask's loggers in this process as the cluster closes, however it closes."""
    try:
        yield
    finally:
        logging.getLogger("distributed").setLevel(logging.CRITICAL + 1)
