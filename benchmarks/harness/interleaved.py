"""Runs trained side by side in interleaved rounds, each lane in a long-lived process.

A stage is the runs of one task and configuration: speed's MNIST configurations, each a
stage alone, or scaling's cells, one after another. A lane is an implementation's runs:
its worker (``python -m WORKER --serve``) serves them stage by stage, its framework
imported once. In each stage the runs are prepared (identity check, build and warm-up)
one after another, so that no warm-up, and no calibration that times itself, shares the
machine with another. Then, round after round, every run trains one unit (an epoch; the
reference's work between epochs too, where it has one: the matmul limit, the peak GEMM)
in a freshly shuffled order, while the others wait idle (``rounds.interleave``). Each
process keeps its framework's default threads. At the end of the stage each run's row is
written, whose ``round_times_s`` holds its units' times, round by round, and the stage's
group id: the reports pair two rows' times round by round only within one group.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict
from pathlib import Path

import numpy as np

from benchmarks.errors import Interrupted
from benchmarks.harness import processes
from benchmarks.harness.experiment import Experiment
from benchmarks.harness.rounds import MIN_ROUNDS, interleave
from benchmarks.harness.specs import RunSpec
from benchmarks.harness.worker import READY, UNIT

LIMIT = " limit"  # the unit name of a run's work between epochs (the matmul limit)
# Between two units of a round, untimed: the last unit's process leaves its threads
# spinning (PyTorch's OpenMP, OpenBLAS) for a while. Measured in 29 rounds of MNIST
# batch 32 quarter epochs: with no pause, scratch-numba's unit took 1.24x its median
# right after keras-torch's and scratch's 0.88x after scratch-numba's, and scratch-numba
# / keras-torch came out 0.197 where it is 0.236; with 50 ms, every unit after any other
# was within 0.91-1.04x of its median (session 27, five implementations, 200 s each way).
PAUSE_S = 0.05


class Server:
    """One lane's worker process (its runs, one after another), and its replies read as
    they come."""

    def __init__(self, specs: list[RunSpec], folder: Path, log: Path, stderr, worker: str,
                 name: str, memory_mib: float):
        self.specs, self.k, self.log, self.memory_mib = specs, 0, log, memory_mib
        self.results = folder / name
        self.results.mkdir()
        path = folder / f"{name}.json"
        path.write_text(json.dumps([asdict(spec) for spec in specs]))
        self.proc = processes.start(worker, ["--serve", str(path), str(self.results)], stderr,
                                    stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self.replies: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self.failed = ""  # why it stopped answering: timeout or oom (killed by us), or error

    @property
    def spec(self) -> RunSpec:
        """The run it is on."""
        return self.specs[self.k]

    @property
    def result(self) -> Path:
        return self.results / f"result-{self.k}.json"

    def _read(self) -> None:
        for line in self.proc.stdout:
            if line.startswith("@@"):
                self.replies.put(line.split())
        self.replies.put(None)  # the process ended

    def reply(self) -> list[str] | None:
        """The next reply; None where the worker ended, or ran past its time or memory
        limit (killed)."""
        start = time.monotonic()
        while True:
            Interrupted.check()
            try:
                line = self.replies.get(timeout=0.1)
            except queue.Empty:
                status = processes.check(self.proc, start, self.spec.timeout_s, self.memory_mib)
                if status in ("timeout", "oom"):
                    self.failed = status
                    return None
                continue
            if line is None:
                self.failed = self.failed or "error"
            return line

    def ready(self) -> None:
        """Wait until the worker has prepared its run (or failed): its reply says whether
        it has a limit unit."""
        self.reached = False
        line = self.reply()
        self.limit = bool(line) and line[0] == READY and line[1:] == ["limit"]

    def unit(self, command: str) -> float | None:
        """Run one unit: its seconds, or None where the worker failed."""
        if self.failed:
            return None
        try:
            self.proc.stdin.write(command + "\n")
            self.proc.stdin.flush()
        except BrokenPipeError:  # it has ended: its row says why
            self.failed = "error"
            return None
        line = self.reply()
        if not line or line[0] != UNIT:
            return None
        self.reached = self.reached or line[2:] == ["target"]
        return float(line[1])

    def end(self, group: str, rounds: int, experiment: Experiment) -> dict:
        """Its run's row, of the group's ``rounds`` whole rounds: the worker's own, or why
        there is none. The worker then prepares its next run, or exits after its last (or
        a failure: a lane goes on in a fresh process)."""
        if not self.failed:
            with contextlib.suppress(BrokenPipeError):
                self.proc.stdin.write(f"end {group} {rounds}\n")
                self.proc.stdin.flush()
            status, start = "", time.monotonic()
            while not status and not self.result.exists():  # its row written, or a limit
                Interrupted.check()
                status = processes.check(self.proc, start, self.spec.timeout_s, self.memory_mib)
                time.sleep(0.02)
            self.failed = status
        spec, last = self.spec, self.k + 1 == len(self.specs)
        if self.result.exists():
            row = {**experiment.base_row(spec), **json.loads(self.result.read_text())}
            if last or row["status"] != "ok":  # its worker is done (a failure ends it)
                processes.kill(self.proc)
                self.failed = self.failed or row["status"]
        else:
            processes.kill(self.proc)
            row = processes.stopped(experiment, spec, self.failed, self.proc, self.log,
                                    self.memory_mib)
        self.k += 1
        return row


def run_rounds(experiment: Experiment, specs: list[RunSpec], log_dir: Path,
               on_progress: Callable[[int, int], None], memory_mib: float, worker: str
               ) -> Iterator[list[tuple[RunSpec, dict]]]:
    """Train ``specs`` in interleaved rounds; yield their rows, a stage at a time, in order.
    A stage is the runs of one task and configuration (a scaling cell), trained side by
    side; a lane, the runs of one implementation and seed, trained one stage after another
    in one long-lived process (its framework imported once). In each stage the first spec
    is the reference (with the limit unit, where it has one, and its rounds' settings):
    the rounds end once the ratio of every two runs, and the reference's to its limit,
    is narrow enough (and, where the runs stop at their target, every run has reached
    it), at MIN_ROUNDS at the least, at its epochs (times its parts) at the most, or
    once its budget_s is spent (and every run is at its target). A run whose worker
    fails ends its stage's rounds for all, which keep the whole rounds before it; its lane
    goes on in a fresh process."""
    stages: dict[tuple, list[RunSpec]] = {}
    lanes: dict[tuple, list[RunSpec]] = {}
    for spec in specs:
        stages.setdefault((spec.task, spec.config), []).append(spec)
        lanes.setdefault((spec.impl, spec.seed), []).append(spec)
    (log_dir / "logs").mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f"groundup-run-{os.getpid()}-") as tmp, \
            contextlib.ExitStack() as stack:
        servers: dict[tuple, Server] = {}

        def server(spec: RunSpec) -> Server:
            """The lane's process, on ``spec``: a fresh one where it has none running."""
            lane = (spec.impl, spec.seed)
            if lane not in servers or servers[lane].failed:
                rest = lanes[lane][lanes[lane].index(spec):]
                log = log_dir / "logs" / f"{'-'.join(map(str, spec.key[:4]))}-seed{spec.seed}.log"
                servers[lane] = Server(rest, Path(tmp), log, stack.enter_context(open(log, "w")),
                                       worker, uuid.uuid4().hex[:8], memory_mib)
                stack.callback(processes.kill, servers[lane].proc)
            return servers[lane]

        for stage in stages.values():
            yield list(zip(stage, run_stage(experiment, [server(s) for s in stage], on_progress)))


def run_stage(experiment: Experiment, servers: list[Server],
              on_progress: Callable[[int, int], None]) -> list[dict]:
    """One stage's rounds, its servers' runs prepared one at a time (so that no warm-up,
    and no calibration that times itself, shares the machine with another); their rows."""
    group, first = uuid.uuid4().hex[:12], servers[0].spec
    most = first.epochs * (experiment.parts(first) if experiment.parts else 1)  # rounds
    on_progress(0, most)
    for s in servers:
        s.ready()
    live = [s for s in servers if not s.failed]
    units = {s.spec.label(): (lambda s=s: s.unit("epoch")) for s in live}
    units.update({s.spec.label() + LIMIT: (lambda s=s: s.unit("limit"))
                  for s in servers[:1] if s in live and s.limit})  # the reference's
    names = list(units)
    runs = [s.spec.label() for s in live]  # every pair of runs is reported: each narrowed
    pairs = [(a, b) for i, a in enumerate(runs) for b in runs[i + 1:]]
    pairs += [(names[0], name) for name in names[len(runs):]]  # the reference's limit
    rng = np.random.default_rng(first.seed)
    for _ in range(experiment.warm_rounds):  # their times discarded
        for i in rng.permutation(len(live)):
            live[i].unit("warm")
    done = (lambda: all(s.reached for s in live)) if first.stop_at_target else None
    rounds = 0
    if live and not any(s.failed for s in live):
        times = interleave(units, pairs, rng,
                           min_rounds=min(MIN_ROUNDS, most), max_rounds=most,
                           time_limit_s=first.budget_s, done=done, pause_s=PAUSE_S,
                           on_round=lambda done: on_progress(done, most))
        rounds = len(next(iter(times.values())))
    return [s.end(group, rounds, experiment) for s in servers]
