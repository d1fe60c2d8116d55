"""Shared fixtures. TensorFlow is imported once per session, and only by tests that ask."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import pytest

from benchmarks.files import PLOTS
from benchmarks.implementations import IMPLEMENTATIONS


def pytest_configure(config):
    """No PNG plots from the tests' runs (GROUNDUP_PLOTS=0, inherited by every process they
    start): matplotlib takes about 2 s a run, over a minute in all. A test of a plot turns
    them on (``plots``); a publish always draws them.

    One XLA compilation cache on disk for the whole run (JAX's persistent cache): the
    xdist workers and every process they start inherit it, so that an XLA program that
    one process compiled, another loads (JAX's and Keras-on-JAX's train steps recur across
    the probes, the benchmarks' smoke and the smoke publish). Compiled code is the same;
    only the warm-up is shorter. Set once, in the controller; gone when the run ends.

    XLA (JAX's, and TensorFlow's where a Keras setting compiles with it) compiles at LLVM's
    lowest optimisation level: the same arithmetic (XLA emits no fast-math), a quarter less
    compile time (the JAX peers' probe: 17.9 -> 13.6 s), and the tests time nothing."""
    os.environ.setdefault(PLOTS, "0")
    if os.environ.get("PYTEST_XDIST_WORKER") or "JAX_COMPILATION_CACHE_DIR" in os.environ:
        return
    config._groundup_xla_flags = os.environ.get("XLA_FLAGS")
    os.environ["XLA_FLAGS"] = " ".join(filter(None, [config._groundup_xla_flags,
                                                      "--xla_backend_optimization_level=0"]))
    config._groundup_jax_cache = tempfile.mkdtemp(prefix="groundup-tests-xla-")
    os.environ.update(JAX_COMPILATION_CACHE_DIR=config._groundup_jax_cache,
                      JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
                      JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="0")


def pytest_unconfigure(config):
    cache = getattr(config, "_groundup_jax_cache", None)
    if cache:
        for name in ("JAX_COMPILATION_CACHE_DIR", "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS",
                     "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES"):
            os.environ.pop(name, None)
        shutil.rmtree(cache, ignore_errors=True)
        os.environ.pop("XLA_FLAGS")
        if config._groundup_xla_flags is not None:
            os.environ["XLA_FLAGS"] = config._groundup_xla_flags


@pytest.fixture
def plots(monkeypatch):
    """The runs and reports of this test draw their PNG plots."""
    monkeypatch.setenv(PLOTS, "1")


@pytest.fixture(scope="session", autouse=True)
def machine_lock(tmp_path_factory):
    """Each test process its own machine lock (GROUNDUP_MACHINE_LOCK), inherited by the
    commands it starts: the test processes run timed smoke runs side by side, and a real
    publish on this machine is none of their business."""
    os.environ["GROUNDUP_MACHINE_LOCK"] = str(tmp_path_factory.getbasetemp() / "machine.lock")


def needs(name: str) -> None:
    """Skip the test where implementation ``name``'s framework is not installed."""
    impl = IMPLEMENTATIONS[name]
    if impl.missing():
        pytest.skip(f"{name} needs {', '.join(impl.missing())}: {impl.install}")


def runs_here(name: str) -> bool:
    """Whether implementation ``name`` runs in this test process: its Keras backend is this
    process's, TensorFlow's (native JAX's too). The others run in a process of their own:
    Keras picks its backend once a process, and torch.compile cannot share a process with
    TensorFlow."""
    here = os.environ.get("KERAS_BACKEND", "tensorflow")
    return here == "tensorflow" and IMPLEMENTATIONS[name].process_backend == here


def in_own_process(*args: str, timeout: int = 600) -> str:
    """``python *args`` in a process of its own, its stdout: Keras picks its backend once a
    process (the implementation names it), and torch.compile cannot share a process with
    TensorFlow."""
    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    done = subprocess.run([sys.executable, *args], env=env, capture_output=True, text=True,
                          timeout=timeout)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


@pytest.fixture(scope="session")
def twins():
    """The keras_models package (imports TensorFlow, several seconds, once)."""
    import keras_models

    return keras_models


def finite_difference(f, params: list[np.ndarray], h: float = 1e-6) -> list[np.ndarray]:
    """Central differences of the scalar f() with respect to every entry of every array."""
    grads = []
    for p in params:
        g = np.zeros_like(p)
        for idx in np.ndindex(p.shape):
            old = p[idx]
            p[idx] = old + h
            up = f()
            p[idx] = old - h
            down = f()
            p[idx] = old
            g[idx] = (up - down) / (2 * h)
        grads.append(g)
    return grads


def relative_error(a: np.ndarray, b: np.ndarray) -> float:
    """||a - b|| / max(||a|| + ||b||, 1e-12): the norm-wise relative error."""
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(a) + np.linalg.norm(b), 1e-12))


# The longest units of work, longest first (--durations=0 on the 2-core machine): xdist
# hands out whole files in this order (pyproject's --dist loadfile --no-loadscope-reorder),
# the end-to-end publish first, each to the worker that is about to run out, so the units
# left at the end are short ones and neither worker waits long for the other. test_harness
# leads KERAS_IN_PROCESS's unit (105 s in all).
LONGEST = ("test_end_to_end.py", "test_harness.py", "test_peers.py", "test_cluster.py",
           "test_faults.py", "test_speed.py", "test_extend.py", "test_bench_smoke.py",
           "test_backprop.py", "test_seeds.py", "test_published.py")
# The files that run Keras on TensorFlow in the worker's own process (found by blocking
# TensorFlow's import there): xdist hands them out as one unit, so that one worker imports
# TensorFlow (about 8 CPU-s) where each would.
KERAS_IN_PROCESS = ("test_harness.py", "test_keras_twins.py", "test_identity.py",
                    "test_minimal_loops.py", "test_docs.py", "test_activations_losses.py")


def pytest_collection_modifyitems(items):
    rank = {name: i for i, name in enumerate(LONGEST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(LONGEST)))


@pytest.hookimpl(optionalhook=True)  # pytest -p no:xdist has no such hook
def pytest_xdist_make_scheduler(config, log):
    """--dist loadfile's scheduler, with KERAS_IN_PROCESS's files one unit. (loadgroup's
    xdist_group marks would say so, but xdist 3.8 loses them under pytest 9.2:
    pytest-dev/pytest-xdist#1386.)"""
    if config.getvalue("dist") != "loadfile":
        return None  # another --dist, as asked
    from xdist.scheduler import LoadFileScheduling

    class KerasTogether(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            path = super()._split_scope(nodeid)
            return "keras" if path.rsplit("/", 1)[-1] in KERAS_IN_PROCESS else path

    return KerasTogether(config, log)
