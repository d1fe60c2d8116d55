"""Interleaved rounds (benchmarks/harness/rounds.py): the median's distribution-free
interval, ratios round by round, the four verdicts, and why the rounds are shuffled: on a
machine whose speed drifts, timing one side after the other biases the ratio, and
interleaving does not."""

import math

import numpy as np
import pytest

from benchmarks.harness.rounds import MIN_ROUNDS, Ratio, interleave, median_interval


@pytest.mark.parametrize("n, k", [(6, 1), (10, 2), (20, 6), (100, 40)])
def test_the_interval_is_the_binomial_order_statistics(n, k):
    """Ranks from the tables of the sign test's interval for a median at 95%: n = 6 -> the
    extremes (coverage 96.9%), 10 -> 2nd and 9th (97.9%), 20 -> 6th and 15th (95.9%),
    100 -> 40th and 61st (96.5%)."""
    values = np.random.default_rng(n).permutation(np.arange(1.0, n + 1))  # rank r is value r
    median, low, high = median_interval(values)
    assert (low, high) == (k, n + 1 - k) and median == (n + 1) / 2


def test_too_few_rounds_give_no_interval_and_no_verdict():
    median, low, high = median_interval([1.0, 2, 3, 4, 5])  # 5 values bound it at 93.75%
    assert median == 3 and math.isnan(low) and math.isnan(high)
    assert Ratio.of([1.0] * 5, [2.0] * 5).verdict(target=1.0) == "undecided"


def test_the_fewest_rounds_leave_one_slow_round_out_of_the_interval():
    """At MIN_ROUNDS the interval is the second-smallest to the second-largest ratio, so
    one round that a hiccup made ten times slower decides nothing; one round fewer, and
    the interval is the smallest to the largest."""
    one_slow = [1.0, 1.01, 0.99, 1.02, 0.98, 1.0, 1.01, 0.99, 10.0]
    assert len(one_slow) == MIN_ROUNDS
    assert median_interval(one_slow)[1:] == (0.99, 1.02)
    assert median_interval(one_slow[1:])[1:] == (0.98, 10.0)  # 8 rounds: min to max


def test_a_thousand_rounds_and_more_have_their_interval():
    median, low, high = median_interval(np.arange(1.0, 2001))
    assert median == 1000.5 and 950 < low < 1000 < high < 1050


def test_a_time_that_is_no_time_is_refused():
    for bad in (0.0, -1.0, math.nan, math.inf):
        with pytest.raises(ValueError, match="not a positive number of seconds"):
            Ratio.of([1.0] * 5 + [bad], [1.0] * 6)


def test_a_ratio_pairs_the_rounds():
    ratio = Ratio.of([2.0, 4, 6, 8, 10, 12], [1.0, 2, 3, 4, 5, 6])  # each round's ratio is 2
    assert (ratio.median, ratio.low, ratio.high, ratio.rounds) == (2, 2, 2, 6)
    with pytest.raises(ValueError, match="5 rounds against 6"):
        Ratio.of([1.0] * 5, [1.0] * 6)


@pytest.mark.parametrize("low, high, verdict", [
    (0.30, 0.33, "met"),                  # wholly within the target
    (0.34, 0.40, "missed"),               # wholly beyond it
    (0.30, 0.36, "undecided"),            # across it
    (0.80, 0.95, "measurement fault"),    # wholly below the floor: faster than possible
])
def test_the_verdict_reads_the_whole_interval(low, high, verdict):
    target, floor = (1.5, 1.0) if verdict == "measurement fault" else (1 / 3, None)
    ratio = Ratio((low + high) / 2, low, high, rounds=20)
    assert ratio.verdict(target, floor) == verdict


def test_an_interval_that_reaches_the_floor_is_a_result():
    assert Ratio(1.0, 0.95, 1.02, 20).verdict(target=1.5, floor=1.0) == "met"


class DriftingMachine:
    """Each unit of work takes its size times the machine's slowness, which grows by 2% a
    unit (a machine that other jobs load more and more)."""

    def __init__(self):
        self.units = 0

    def side(self, size: float):
        def run() -> float:
            self.units += 1
            return size * (1 + 0.02 * self.units)
        return run


def test_interleaved_rounds_see_the_true_ratio_where_blocks_do_not():
    rounds = 30
    machine = DriftingMachine()
    a, b = machine.side(2.0), machine.side(1.0)  # a takes twice b's work
    blocks = Ratio.of([a() for _ in range(rounds)], [b() for _ in range(rounds)])
    assert not blocks.low <= 2.0 <= blocks.high  # one block after the other: 30% off
    assert blocks.median < 1.4
    machine = DriftingMachine()
    times = interleave({"a": machine.side(2.0), "b": machine.side(1.0)}, [("a", "b")],
                       np.random.default_rng(0), min_rounds=rounds, max_rounds=rounds)
    interleaved = Ratio.of(times["a"], times["b"])
    assert interleaved.rounds == rounds  # off by the drift within one round only: 2%
    assert interleaved.median == pytest.approx(2.0, rel=0.02)


def test_each_round_runs_every_unit_once_in_a_fresh_order():
    calls = []
    units = {name: (lambda name=name: calls.append(name) or 1.0) for name in "abcd"}
    times = interleave(units, [("a", "b")], np.random.default_rng(1), min_rounds=8,
                       max_rounds=8)
    rounds = [tuple(calls[i:i + 4]) for i in range(0, len(calls), 4)]
    assert len(rounds) == 8 and all(sorted(r) == list("abcd") for r in rounds)
    assert len(set(rounds)) > 1  # shuffled afresh, not one order repeated
    assert all(len(t) == 8 for t in times.values())


def test_rounds_stop_when_narrow_or_at_the_limits():
    steady = {"a": lambda: 2.0, "b": lambda: 1.0}
    times = interleave(steady, [("a", "b")], np.random.default_rng(0))
    assert len(times["a"]) == MIN_ROUNDS  # narrow at once: no round more than needed
    rng = np.random.default_rng(2)
    noisy = {"a": lambda: float(rng.lognormal(0, 1)), "b": lambda: 1.0}
    times = interleave(noisy, [("a", "b")], np.random.default_rng(0), max_rounds=40)
    assert len(times["a"]) == 40  # never within 10%: the round limit ends it
    clock = [0.0]

    def a_second() -> float:  # each of a's units moves the clock a second
        clock[0] += 1.0
        return float(rng.lognormal(0, 1))

    times = interleave({"a": a_second, "b": lambda: 1.0}, [("a", "b")],
                       np.random.default_rng(0), time_limit_s=10,
                       clock=lambda: clock[0])
    assert len(times["a"]) == 10  # the time limit, though never narrow enough


def test_a_failed_unit_ends_the_rounds_with_the_last_whole_one():
    """A unit that returns None (its worker died) ends the rounds for all: every side keeps
    the same whole rounds, so that their times still pair round by round."""
    calls = {"n": 0}

    def dies_in_round_four() -> float | None:
        calls["n"] += 1
        return None if calls["n"] == 4 else 1.0

    seen = []
    times = interleave({"a": lambda: 2.0, "b": dies_in_round_four, "c": lambda: 3.0},
                       [("a", "b")], np.random.default_rng(0), min_rounds=8, max_rounds=8,
                       on_round=seen.append)
    assert {len(t) for t in times.values()} == {3} and seen == [1, 2, 3]


def test_done_says_when_the_rounds_may_end():
    """Runs that stop at their target end the rounds once every one has reached it and
    the ratios are narrow: not before the first, nor before the second."""
    rounds = []
    times = interleave({"a": lambda: 2.0, "b": lambda: 1.0}, [("a", "b")],
                       np.random.default_rng(0), min_rounds=2, max_rounds=20,
                       done=lambda: len(rounds) >= 7, on_round=rounds.append)
    assert len(times["a"]) == 7 and rounds == [1, 2, 3, 4, 5, 6, 7]  # narrow from 6 on
    noisy = iter([1.0, 3.0] * 4 + [1.0] * 40)  # wide for 8 rounds, then narrow
    times = interleave({"a": lambda: next(noisy), "b": lambda: 1.0}, [("a", "b")],
                       np.random.default_rng(0), min_rounds=2, max_rounds=40,
                       done=lambda: True)
    assert 8 < len(times["a"]) < 40


def test_a_stage_narrows_every_pair_it_reports_not_only_those_with_the_reference():
    """Three runs: b and c each steady against the reference a, within 10% of it, but
    against each other wide for 8 rounds (speed reports the compiled engine against every
    peer too): the stage's rounds go on until that pair is narrow as well."""
    from benchmarks.experiments import EXPERIMENTS
    from benchmarks.harness.interleaved import run_stage
    from benchmarks.harness.specs import RunSpec

    swings = {"b": iter([1.0, 1.12] * 4 + [1.0] * 60), "c": iter([1.12, 1.0] * 4 + [1.0] * 60)}

    class Fake:  # a lane's worker, as run_stage drives it
        def __init__(self, impl):
            self.spec = RunSpec("speed", "mnist", "b32", impl, 0, "full", 60, 1e9, 100)
            self.failed, self.limit, self.reached = "", False, False

        def ready(self):
            pass

        def unit(self, command):
            return 1.0 if self.spec.impl == "a" else next(swings[self.spec.impl])

        def end(self, group, rounds, experiment):
            return {"rounds": rounds}

    rows = run_stage(EXPERIMENTS["speed"], [Fake("a"), Fake("b"), Fake("c")],
                     lambda done, total: None)
    assert rows[0]["rounds"] > 8  # 6 would do for a's ratios alone


def test_the_pause_between_units_is_slept_outside_them(monkeypatch):
    """Each unit waits ``pause_s`` before it runs (the last unit's process's threads
    settle), and a unit's time is its own: the pause is in no time returned."""
    import benchmarks.harness.rounds as rounds_module

    slept = []
    monkeypatch.setattr(rounds_module.time, "sleep", slept.append)
    times = interleave({"a": lambda: 2.0, "b": lambda: 1.0}, [("a", "b")],
                       np.random.default_rng(0), min_rounds=3, max_rounds=3, pause_s=0.05)
    assert slept == [0.05] * 6 and times == {"a": [2.0] * 3, "b": [1.0] * 3}
