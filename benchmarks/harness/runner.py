"""Run specs, each in a fresh worker process, and append their rows to the experiment's CSV."""

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
from dataclasses import asdict
from pathlib import Path

import pandas as pd
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from benchmarks.data.datasets import DataError, load_mnist
from benchmarks.errors import UsageError
from benchmarks.harness import environment
from benchmarks.harness.experiment import Experiment
from benchmarks.harness.schema import COLUMNS, KEY
from benchmarks.harness.specs import RunSpec
from benchmarks.harness.worker import PROGRESS


class ResultsFile:
    """The experiment's long-format CSV: appended and flushed one row at a time."""

    def __init__(self, out_dir: Path, experiment: str, extra_columns: tuple[str, ...] = ()):
        self.columns = [*COLUMNS, *extra_columns]
        self.path = out_dir / f"{experiment}.csv"
        self.curves = out_dir / f"{experiment}_curves.csv"
        self.confusion_dir = out_dir / "confusion"

    def done(self) -> set[tuple]:
        if not self.path.exists():
            return set()
        df = pd.read_csv(self.path)
        return {tuple(r) for r in df[KEY].itertuples(index=False)}

    def append(self, row: dict) -> None:
        """The schema's columns, then the experiment's own."""
        curve, confusion = row.pop("curve", None), row.pop("confusion", None)
        frame = pd.DataFrame([row]).reindex(columns=self.columns)
        _append_csv(frame, self.path)
        keys = {k: row[k] for k in KEY}
        if curve:
            _append_csv(pd.DataFrame([{**keys, "epoch": e, "loss": loss} for e, loss in curve]),
                        self.curves)
        if confusion:
            self.confusion_dir.mkdir(exist_ok=True)
            name = "{task}-{config}-{impl}-seed{seed}.csv".format(**keys)
            pd.DataFrame(confusion).to_csv(self.confusion_dir / name, index_label="true_label")


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
    """A run is killed above 80% of the memory available when the suite starts."""
    return 0.8 * environment.available_mib()


def _child_rss_mib(pid: int) -> float:
    try:
        match = re.search(r"VmRSS:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text())
        return int(match.group(1)) / 1024 if match else 0.0
    except OSError:
        return 0.0


def run_one(experiment: Experiment, spec: RunSpec, log_dir: Path,
            on_progress: Callable[[int, int], None], memory_mib: float, worker: str) -> dict:
    """Run ``spec`` in a child process (``python -m worker``); always return a row, whatever
    happened to it."""
    row = experiment.base_row(spec)
    with tempfile.TemporaryDirectory(prefix="groundup-run-") as tmp:
        spec_path, result_path = Path(tmp) / "spec.json", Path(tmp) / "result.json"
        spec_path.write_text(json.dumps(asdict(spec)))
        log = log_dir / "logs" / ("{}-{}-{}-{}-seed{}.log".format(*spec.key))
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "w") as stderr:
            proc = subprocess.Popen(
                [sys.executable, "-m", worker, str(spec_path), str(result_path)],
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


def check_data(specs: list[RunSpec], console: Console) -> None:
    """Fetch or verify MNIST once, before any run that needs it starts."""
    mnist = [s for s in specs if s.task == "mnist"]
    if not mnist:
        return
    try:
        ds = load_mnist(mnist[0].data_dir)
    except DataError as err:
        raise UsageError(str(err)) from None
    console.print(f"data: {ds.name} from {ds.source}", soft_wrap=True)


def run_experiments(experiments: list[Experiment], specs: list[RunSpec], out_dir: Path,
                    worker: str, console: Console) -> int:
    """Every spec not yet in its experiment's CSV, in order, with progress bars: 0 when all
    ran, 130 when interrupted (the finished rows stay, and --resume completes the rest)."""
    check_data(specs, console)
    memory = memory_limit_mib()
    for experiment in experiments:
        results = ResultsFile(out_dir, experiment.runs_stem, experiment.columns)
        done = results.done()
        todo = [s for s in specs if s.experiment == experiment.name and s.key not in done]
        if done:
            console.print(f"resuming {results.path}: {len(done)} rows kept, {len(todo)} to run")
        columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                   TimeElapsedColumn()]
        try:
            with Progress(*columns, console=console, transient=False) as bars:
                overall = bars.add_task(f"{experiment.name} runs", total=len(todo))
                for spec in todo:
                    epochs = bars.add_task(f"  {spec.label()}", total=spec.epochs)
                    row = run_one(experiment, spec, out_dir,
                                  lambda d, t, e=epochs: bars.update(e, completed=d, total=t),
                                  memory, worker)
                    results.append(row)
                    bars.remove_task(epochs)
                    bars.advance(overall)
                    bars.console.print(summary_line(spec, row), soft_wrap=True)
        except KeyboardInterrupt:
            kept = len(results.done())
            console.print(f"[yellow]Interrupted.[/] {kept} finished rows are in {results.path}. "
                          f"Run `groundup run --resume {out_dir}` to complete the rest.",
                          soft_wrap=True)
            return 130
    return 0


def summary_line(spec: RunSpec, row: dict) -> str:
    if row["status"] != "ok":
        return f"[red]✗[/] {spec.label()}: {row['status']}: {row['error']}"
    flag = " (extrapolated)" if row.get("extrapolated") else ""
    accuracy = f"accuracy {row['accuracy']:.4f}, " if row.get("accuracy") is not None else ""
    return (f"[green]✓[/] {spec.label()}: {accuracy}"
            f"train {row['train_time_s']:.3g} s{flag}, peak {row['peak_rss_mib']:.1f} MiB")
