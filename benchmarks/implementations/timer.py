"""The one timer every implementation shares: training time alone, step by step.

Checking the target, progress reports and the experiment's between-epoch work are
excluded from the measured time; they are added to ``excluded`` as they happen.
"""

from __future__ import annotations

import math
import time
from array import array
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import numpy as np

Predict = Callable[[np.ndarray], np.ndarray]


def check_interval(epochs: int) -> int:
    """Every how many epochs the target is checked: about 200 checks a run."""
    return max(1, epochs // 200)


class Monitor:
    """Step and epoch times, the loss curve, time to target and the time budget.

    Args:
        budget_s: stop (and extrapolate) once this much training time is spent.
        target: given a predict function, whether the task's target is reached.
        total_epochs: the epochs the configuration asks for.
        check_every: check the target every this many epochs.
        progress: called with (epochs done, total) now and then.
        stop_at_target: end training once the target is met.
        between_epochs: called after every epoch, outside the training time.
    """

    def __init__(self, budget_s: float, target: Callable[[Predict], bool], total_epochs: int,
                 check_every: int = 1, progress: Callable[[int, int], None] | None = None,
                 stop_at_target: bool = False, between_epochs: Callable[[], None] | None = None):
        self.budget_s, self.target, self.total_epochs = budget_s, target, total_epochs
        self.stop_at_target, self.between_epochs = stop_at_target, between_epochs
        self.check_every, self.progress = max(1, check_every), progress
        self.step_times = array("d")  # 8 bytes a step: 100000 steps cost 0.8 MB, not 3
        self.epoch_times = array("d")
        self.curve: list[tuple[int, float]] = []  # (epoch, loss) at every target check
        self.epochs_done = self.steps_done = 0
        self.time_to_target: float | None = None
        self.epochs_to_target: int | None = None  # the epochs done at that check
        self.over_budget = False
        self.excluded = 0.0
        self._last_progress = 0.0

    def start(self) -> None:
        self.t0 = self.mark = self.epoch_start = time.perf_counter()

    @contextmanager
    def paused(self) -> Iterator[None]:
        """Work between steps that is not training (reordering an epoch's data): left out
        of the training time and of the step and epoch times."""
        start = time.perf_counter()
        try:
            yield
        finally:
            spent = time.perf_counter() - start
            self.excluded += spent
            self.mark += spent
            self.epoch_start += spent

    def elapsed(self) -> float:
        """Training time so far, without the time spent checking the target."""
        return time.perf_counter() - self.t0 - self.excluded

    def steps_time(self) -> float:
        """The steps' own time: their sum, less the first call's excess over the median step
        (a framework's setup before its first step: Keras fit's data adapter and callbacks,
        0.1-0.4 s a call here) and so without what runs after the last (fit's teardown).
        A compiled loop's steps share one call's time, so its excess is none."""
        t = np.frombuffer(self.step_times, dtype=np.float64)
        if not len(t):
            return self.elapsed()
        first = int(np.argmax(t != t[0])) or len(t)  # the first call's steps
        return float(t.sum() - max(0.0, (t[0] - np.median(t)) * first))

    def batch_end(self, steps: int = 1) -> bool:
        """Record ``steps`` training steps; True when the budget is spent."""
        now = time.perf_counter()
        if steps == 1:
            self.step_times.append(now - self.mark)
        else:
            self.step_times.extend(array("d", [(now - self.mark) / steps]) * steps)
        self.mark = now
        self.steps_done += steps
        self.over_budget = now - self.t0 - self.excluded > self.budget_s  # self.elapsed()
        return self.over_budget

    def epoch_end(self, loss: float, predict: Predict, epochs: int = 1,
                  now: float | None = None) -> bool:
        """Record ``epochs`` finished epochs; True when training should stop. ``now``: when
        they ended, where that was inside a compiled call (``checks_end``)."""
        real = time.perf_counter()
        now = real if now is None else now
        self.epoch_times.extend(array("d", [(now - self.epoch_start) / epochs]) * epochs)
        self.epochs_done += epochs
        if not math.isfinite(loss):
            raise FloatingPointError(f"The loss became {loss} after {self.epochs_done} epochs: "
                                     "training diverged. Lower the learning rate.")
        trained = now - self.t0 - self.excluded
        self.over_budget = self.over_budget or trained > self.budget_s
        due = (self.epochs_done % self.check_every < epochs or self.over_budget
               or self.epochs_done >= self.total_epochs)
        if due:
            self.curve.append((self.epochs_done, float(loss)))
        if self.time_to_target is None and due:
            if self.target(predict):
                self.time_to_target, self.epochs_to_target = trained, self.epochs_done
        if self.progress and (now - self._last_progress > 0.2):
            self.progress(self.epochs_done, self.total_epochs)
            self._last_progress = now
        if self.between_epochs:
            self.between_epochs()
        self.excluded += time.perf_counter() - real
        self.mark = self.epoch_start = time.perf_counter()
        return self.over_budget or (self.stop_at_target and self.time_to_target is not None)

    def checks_end(self, losses: list[float], predicts: list[Predict], epochs: int) -> bool:
        """Record one compiled call's ``len(losses)`` checks, every ``epochs`` epochs, from
        the losses and weights the call kept at each. The steps of a compiled loop take
        equal time, so check k of K is placed at (k + 1) / K of the call's time (the time
        to target is that point's); the checks themselves run after the call, untimed."""
        start, span, count = self.epoch_start, time.perf_counter() - self.epoch_start, len(losses)
        before, stop = self.excluded, False
        for k, (loss, predict) in enumerate(zip(losses, predicts, strict=True)):
            # the earlier checks' own time, excluded meanwhile, moves the call's clock on
            self.epoch_start = start + span * k / count + self.excluded - before
            stop |= self.epoch_end(loss, predict, epochs, now=self.epoch_start + span / count)
        return stop
