"""Run specs, each in a fresh process, and append their rows to the experiment's CSV."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pandas as pd

from benchmarks import environment
from benchmarks.schema import COLUMNS, KEY
from benchmarks.tasks import get_config
from benchmarks.worker import PROGRESS


@dataclass
class Profile:
    name: str
    budget_s: float     # training time a run may spend before it is extrapolated
    timeout_s: float    # wall time after which a run is killed
    seeds: int          # default number of seeds
    all_configs: bool   # every configuration of a task, or only its first
    jacobian_mnist_samples: int  # scratch-jacobian trains MNIST on this many samples


PROFILES = {
    "quick": Profile("quick", budget_s=10, timeout_s=240, seeds=1, all_configs=False,
                     jacobian_mnist_samples=4),
    "full": Profile("full", budget_s=240, timeout_s=1800, seeds=3, all_configs=True,
                    jacobian_mnist_samples=50),
    # Tiny runs for the harness's own tests.
    "smoke": Profile("smoke", budget_s=3, timeout_s=120, seeds=1, all_configs=False,
                     jacobian_mnist_samples=2),
}
SMOKE_EPOCHS = {"xor": 50, "reverse4": 50, "mnist": 1}
SMOKE_MNIST_SAMPLES = 500


@dataclass
class RunSpec:
    experiment: str
    task: str
    config: str
    impl: str
    seed: int
    profile: str
    epochs: int
    budget_s: float
    timeout_s: float
    dtype: str = "float32"
    train_samples: int | None = None
    data_dir: str | None = None
    extra: dict = field(default_factory=dict)

    @property
    def key(self) -> tuple:
        return (self.experiment, self.task, self.config, self.impl, self.seed)

    def label(self) -> str:
        return f"{self.task}/{self.config} {self.impl} seed {self.seed}"


def compare_specs(profile: Profile, tasks: list[str], impls: list[str], seeds: int,
                  data_dir: str | None = None) -> list[RunSpec]:
    """Every implementation on every task configuration, under one profile."""
    from benchmarks.tasks import CONFIGS

    specs = []
    for cfg in CONFIGS.values():
        chosen = [t for t in tasks if t in (cfg.task, cfg.key)]
        first = next(c for c in CONFIGS.values() if c.task == cfg.task) is cfg
        if not chosen or not (profile.all_configs or first or cfg.key in tasks):
            continue
        overrides = cfg.quick if profile.name == "quick" else {}
        epochs = overrides.get("epochs", cfg.epochs)
        samples = overrides.get("train_samples")
        if profile.name == "smoke":
            epochs, samples = SMOKE_EPOCHS[cfg.task], SMOKE_MNIST_SAMPLES
        for impl in impls:
            n = samples
            if impl == "scratch-jacobian" and cfg.task == "mnist":
                n = profile.jacobian_mnist_samples
            for seed in range(seeds):
                specs.append(RunSpec("compare", cfg.task, cfg.config, impl, seed, profile.name,
                                     epochs, profile.budget_s, profile.timeout_s,
                                     train_samples=n if cfg.task == "mnist" else None,
                                     data_dir=data_dir))
    return specs


def base_row(spec: RunSpec) -> dict:
    cfg = get_config(spec.task, spec.config)
    activations = "/".join(a if isinstance(a, str) else a["name"] + str(a.get("negative_slope", ""))
                           for a in cfg.arch.activations)
    return {
        "experiment": spec.experiment, "task": spec.task, "config": spec.config,
        "impl": spec.impl, "seed": spec.seed, "profile": spec.profile, "epochs": spec.epochs,
        "batch_size": cfg.batch_size, "optimizer": cfg.optimizer["name"],
        "learning_rate": cfg.optimizer.get("learning_rate",
                                           {"sgd": 0.01, "adam": 0.001}[cfg.optimizer["name"]]),
        "optimizer_config": json.dumps(cfg.optimizer, sort_keys=True),
        "architecture": f"{cfg.arch} {activations}" + (f" dropout {cfg.arch.dropout:g}"
                                                       if cfg.arch.dropout else ""),
        "dtype": spec.dtype, "train_samples": spec.train_samples,
    }


class ResultsFile:
    """The experiment's long-format CSV: appended and flushed one row at a time."""

    def __init__(self, out_dir: Path, experiment: str):
        self.path = out_dir / f"{experiment}.csv"
        self.curves = out_dir / f"{experiment}_curves.csv"
        self.confusion_dir = out_dir / "confusion"

    def done(self) -> set[tuple]:
        if not self.path.exists():
            return set()
        df = pd.read_csv(self.path)
        return {tuple(r) for r in df[KEY].itertuples(index=False)}

    def append(self, row: dict) -> None:
        curve, confusion = row.pop("curve", None), row.pop("confusion", None)
        frame = pd.DataFrame([row]).reindex(columns=list(COLUMNS))
        _append_csv(frame, self.path)
        keys = {k: row[k] for k in KEY}
        if curve:
            _append_csv(pd.DataFrame([{**keys, "epoch": e, "loss": loss} for e, loss in curve]),
                        self.curves)
        if confusion:
            self.confusion_dir.mkdir(exist_ok=True)
            name = "{task}-{config}-{impl}-seed{seed}.csv".format(**keys)
            pd.DataFrame(confusion).to_csv(self.confusion_dir / name)


def _append_csv(frame: pd.DataFrame, path: Path) -> None:
    """One os.write of whole lines: Ctrl-C lands before or after it, never inside a row."""
    text = frame.to_csv(header=not path.exists(), index=False).encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, text)
        os.fsync(fd)
    finally:
        os.close(fd)


def memory_limit_mib() -> float:
    """80% of the memory available when the suite starts."""
    text = Path("/proc/meminfo").read_text()
    available = int(re.search(r"MemAvailable:\s+(\d+)", text).group(1)) / 1024
    return 0.8 * available


def _child_rss_mib(pid: int) -> float:
    try:
        match = re.search(r"VmRSS:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text())
        return int(match.group(1)) / 1024 if match else 0.0
    except OSError:
        return 0.0


def run_one(spec: RunSpec, log_dir: Path, on_progress: Callable[[int, int], None],
            memory_mib: float) -> dict:
    """Run ``spec`` in a child process; always return a row, whatever happened to it."""
    row = base_row(spec)
    with tempfile.TemporaryDirectory(prefix="groundup-run-") as tmp:
        spec_path, result_path = Path(tmp) / "spec.json", Path(tmp) / "result.json"
        spec_path.write_text(json.dumps(asdict(spec)))
        log = log_dir / "logs" / ("{}-{}-{}-{}-seed{}.log".format(*spec.key))
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "w") as stderr:
            proc = subprocess.Popen(
                [sys.executable, "-m", "benchmarks.worker", str(spec_path), str(result_path)],
                stdout=subprocess.PIPE, stderr=stderr, text=True, start_new_session=True,
                env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
            reader = threading.Thread(target=_read_progress, args=(proc, on_progress), daemon=True)
            reader.start()
            status = _wait(proc, spec.timeout_s, memory_mib)
            reader.join(timeout=5)
        if result_path.exists():
            row.update(json.loads(result_path.read_text()))
        else:
            tail = log.read_text().strip().splitlines()[-1:] if log.exists() else []
            error = {"timeout": f"killed after {spec.timeout_s:.0f} s (--profile sets the limit)",
                     "oom": f"killed above {memory_mib:.0f} MiB of resident memory",
                     }.get(status, f"worker exited with code {proc.returncode}: "
                                   f"{tail[0] if tail else 'no output'}")
            if status == "error" and proc.returncode == -signal.SIGKILL:
                status, error = "oom", "killed by the system (out of memory?)"
            row.update(status=status, error=error, **environment.context(),
                       timestamp=environment.utc_now())
    return row


def _wait(proc: subprocess.Popen, timeout_s: float, memory_mib: float) -> str:
    start = time.monotonic()
    try:
        while proc.poll() is None:
            if time.monotonic() - start > timeout_s:
                _kill(proc)
                return "timeout"
            if _child_rss_mib(proc.pid) > memory_mib:
                _kill(proc)
                return "oom"
            time.sleep(0.1)
    except BaseException:  # Ctrl-C: take the child down with us
        _kill(proc)
        raise
    return "ok" if proc.returncode == 0 else "error"


def _kill(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


def _read_progress(proc: subprocess.Popen, on_progress: Callable[[int, int], None]) -> None:
    for line in proc.stdout:
        if line.startswith(PROGRESS):
            _, done, total = line.split()
            on_progress(int(done), int(total))
