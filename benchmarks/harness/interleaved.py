"""Runs trained side by side in interleaved rounds, each in a long-lived process of its own.

Each run's worker (``python -m WORKER --serve``) is started and prepared (its identity
check, build and warm-up) one after another, so that no warm-up, and no calibration that
times itself, shares the machine with another. Then, round after round, every run trains
one unit (an epoch; the reference's matmul limit too, where it has one) in a freshly
shuffled order, while the others wait idle (``rounds.interleave``). Each process keeps its
framework's default threads. At the end each worker writes its row, whose
``round_times_s`` holds its units' times, round by round, and the group's id: the
reports pair two rows' times round by round only within one group.
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


class Server:
    """One run's worker process, and its replies read as they come."""

    def __init__(self, spec: RunSpec, folder: Path, log: Path, stderr, worker: str, i: int,
                 memory_mib: float):
        self.spec, self.log, self.memory_mib = spec, log, memory_mib
        self.result = folder / f"result-{i}.json"
        path = folder / f"spec-{i}.json"
        path.write_text(json.dumps(asdict(spec)))
        self.proc = processes.start(worker, ["--serve", str(path), str(self.result)], stderr,
                                    stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self.replies: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self.failed = ""  # why it stopped answering: timeout or oom (killed by us), or error
        self.reached = False

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
        """Wait until the worker is prepared (or failed): its reply says whether it has a
        limit unit."""
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
        """Its row, of the group's ``rounds`` whole rounds: the worker's own, or why there is
        none."""
        if not self.failed:
            with contextlib.suppress(BrokenPipeError):
                self.proc.stdin.write(f"end {group} {rounds}\n")
                self.proc.stdin.flush()
            status, start = "", time.monotonic()
            while not status:  # its row written, or a limit passed
                Interrupted.check()
                status = processes.check(self.proc, start, self.spec.timeout_s, self.memory_mib)
                time.sleep(0.05)
            self.failed = status
        processes.kill(self.proc)
        if self.result.exists():
            return {**experiment.base_row(self.spec), **json.loads(self.result.read_text())}
        return processes.stopped(experiment, self.spec, self.failed, self.proc, self.log,
                                 self.memory_mib)


def run_rounds(experiment: Experiment, specs: list[RunSpec], log_dir: Path,
               on_progress: Callable[[int, int], None], memory_mib: float, worker: str
               ) -> Iterator[list[tuple[RunSpec, dict]]]:
    """Train ``specs`` side by side in interleaved rounds; yield their rows, in order, once.
    The first spec is the reference: the rounds end once every ratio to it is narrow
    enough (or, where the runs stop at their target, once every run has reached it), at
    MIN_ROUNDS at the least, at the specs' epochs at the most, or when the first spec's
    budget_s is spent. A run whose worker fails ends the rounds for all, which keep the
    whole rounds before it."""
    group, first = uuid.uuid4().hex[:12], specs[0]
    logs = [log_dir / "logs" / f"{'-'.join(map(str, s.key[:4]))}-seed{s.seed}.log"
            for s in specs]
    logs[0].parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f"groundup-run-{os.getpid()}-") as tmp, \
            contextlib.ExitStack() as stack:
        servers = []
        for i, (spec, log) in enumerate(zip(specs, logs)):  # prepared one at a time
            server = Server(spec, Path(tmp), log, stack.enter_context(open(log, "w")), worker,
                            i, memory_mib)
            stack.callback(processes.kill, server.proc)
            servers.append(server)
            server.ready()
        live = [s for s in servers if not s.failed]
        units = {s.spec.label(): (lambda s=s: s.unit("epoch")) for s in live}
        units.update({s.spec.label() + LIMIT: (lambda s=s: s.unit("limit"))
                      for s in servers[:1] if s in live and s.limit})  # the reference's
        names = list(units)
        done = (lambda: all(s.reached for s in live)) if first.stop_at_target else None
        rounds = 0
        if live:
            times = interleave(units, [(names[0], other) for other in names[1:]],
                       np.random.default_rng(first.seed),
                       min_rounds=min(MIN_ROUNDS, first.epochs), max_rounds=first.epochs,
                       time_limit_s=first.budget_s, done=done,
                       on_round=lambda done: on_progress(done, first.epochs))
            rounds = len(next(iter(times.values())))
        rows = [s.end(group, rounds, experiment) for s in servers]
    yield list(zip(specs, rows))

