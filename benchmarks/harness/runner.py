"""Run specs, each in a fresh worker process, and append their rows to the experiment's CSV."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from contextlib import closing, suppress
from dataclasses import asdict, replace
from functools import partial
from pathlib import Path

import pandas as pd
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from benchmarks.data.datasets import DataError, load_mnist
from benchmarks.errors import Interrupted, UsageError
from benchmarks.files import naming, write_atomic
from benchmarks.harness import cluster, environment, processes
from benchmarks.harness.experiment import Experiment
from benchmarks.harness.interleaved import run_rounds
from benchmarks.harness.schema import COLUMNS, KEY, NOT_NUMBERS
from benchmarks.harness.specs import PROFILES, RunSpec
from benchmarks.harness.worker import PROGRESS
from benchmarks.implementations import IMPLEMENTATIONS, missing_packages

RETRIED = ("error", "killed", "timeout")  # what --retry-failed runs again


class ResultsFile:
    """The experiment's long-format CSV: appended and flushed one whole row at a time."""

    def __init__(self, out_dir: Path, experiment: str, extra_columns: tuple[str, ...] = ()):
        self.columns = [*COLUMNS, *extra_columns]
        self.path = out_dir / f"{experiment}.csv"
        self.curves = out_dir / f"{experiment}_curves.csv"
        self.confusion_dir = out_dir / "confusion"

    def repair(self) -> list[str]:
        """Cut a torn last row (a crash or a full disk mid-write) off both CSVs, keeping a
        copy of the file as it was beside it; one line per file cut, for the user."""
        return [line for path in (self.path, self.curves) if (line := cut_torn_tail(path))]

    def done(self, retry_failed: bool = False, whole_rows: bool = False) -> set[tuple]:
        """The keys already run; with ``retry_failed``, less those whose latest row failed;
        ``whole_rows``: those before a torn last row (which ``repair`` cuts off)."""
        if not self.path.exists():
            return set()
        df = read_rows(self.path, whole_rows)
        latest = df.drop_duplicates(KEY, keep="last")
        if retry_failed:
            latest = latest[~latest["status"].isin(RETRIED)]
        return {tuple(r) for r in latest[KEY].itertuples(index=False)}

    def append(self, rows: list[dict], written: Callable[[], None] = lambda: None) -> None:
        """Whole rows in one write (the schema's columns, then the experiment's own), then
        ``written()``, then their loss curves and confusion matrices. Each value is written
        as it is (object columns): one row written alone or with others reads the same."""
        rows = [dict(r) for r in rows]
        extras = [(r.pop("curve", None), r.pop("confusion", None)) for r in rows]
        _append_csv(pd.DataFrame(rows, dtype=object).reindex(columns=self.columns), self.path)
        written()  # the rows are in, whatever happens to their curves
        keys = [{k: r[k] for k in KEY} for r in rows]
        points = [{**key, "epoch": e, "loss": loss}
                  for key, (curve, _) in zip(keys, extras) for e, loss in curve or ()]
        if points:
            _append_csv(pd.DataFrame(points), self.curves)
        for key, (_, confusion) in zip(keys, extras):
            if confusion:
                self.confusion_dir.mkdir(exist_ok=True)
                name = "{task}-{config}-{impl}-seed{seed}.csv".format(**key)
                write_atomic(self.confusion_dir / name, lambda f, c=confusion: pd.DataFrame(
                    c).to_csv(f, index_label="true_label"))


# The columns the reports read: a CSV without one is not a groundup results CSV.
REQUIRED = [*KEY, "status", "error", "final_loss", "accuracy", "train_time_s", "peak_rss_mib"]


def read_rows(path: Path, whole_rows: bool = False) -> pd.DataFrame:
    """A results CSV, or a one-line error naming the file, the line and what is wrong;
    ``whole_rows``: a torn last row is left out, not an error."""
    text = _utf8(path)
    if not text:
        raise UsageError(f"{path} is empty: no header and no rows.")
    # The header first: a file without the reports' columns is no results CSV, torn or not
    try:
        header = next(csv.reader([text.split("\n", 1)[0]]))
    except csv.Error as err:  # e.g. a carriage return inside a field
        raise UsageError(_malformed(path, 1, str(err))) from None
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise UsageError(f"{path}, line 1: no {missing[0]} column; not a groundup results CSV.")
    torn, malformed = _scan(text)
    if torn is not None and whole_rows:
        text, torn = text[:torn], None
    if torn is not None:
        raise UsageError(f"{path}, line {_line(text, torn)}: a torn row (the file ends "
                         f"mid-row). `groundup run --resume {path.parent}` cuts it off and runs "
                         "it again.")
    if malformed:
        raise UsageError(_malformed(path, *malformed))
    try:
        df = pd.read_csv(io.StringIO(text))
    except pd.errors.ParserError as err:  # what the check of widths lets by: a stray quote
        raise UsageError(f"{path} is malformed: {err}".rstrip(".") + ".") from None
    if df.empty and not whole_rows:
        raise UsageError(f"{path} has a header but no rows.")
    for name, (unit, _) in COLUMNS.items():
        if name in df and unit not in NOT_NUMBERS:
            numbers = pd.to_numeric(df[name], errors="coerce")
            bad = df[name].notna() & numbers.isna()
            if bad.any():
                row = int(bad.to_numpy().argmax())
                raise UsageError(f"{path}, line {row + 2}: {name} is {df[name].iloc[row]!r}, "
                                 "not a number.")
            df[name] = numbers
    return df


def _malformed(path: Path, line: int, wrong: str) -> str:
    return (f"{path}, line {line}: a malformed row ({wrong}). Only a short last row is a torn "
            "one, which --resume cuts off; mend or remove this line.")


def _utf8(path: Path) -> str:
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as err:
        line = raw[:err.start].count(b"\n") + 1
        raise UsageError(f"{path}, line {line}: byte {err.start} is not UTF-8 text; not a "
                         "groundup results CSV.") from None


def torn_tail(path: Path) -> tuple[int, int] | None:
    """(line, bytes) of a torn last row of ``path``, or None when it ends with a whole row."""
    if not path.exists() or path.stat().st_size == 0:
        return None
    text = path.read_bytes().decode("utf-8", errors="replace")
    torn = _scan(text)[0]
    if torn is None:
        return None
    return _line(text, torn), len(text[torn:].encode("utf-8", errors="replace"))


def _scan(text: str) -> tuple[int | None, tuple[int, str] | None]:
    """The offset where a torn last row starts (one that the file ends in, or shorter than
    the header: what a crash mid-write leaves), or None; and (line, what is wrong) of the
    first other row that is not of the header's width, or None: malformed, not torn."""
    records = _records(text)
    width, start, malformed = None, 0, None
    while True:
        try:
            record, end = next(records)
        except StopIteration:
            return None, malformed
        except csv.Error as err:  # e.g. a carriage return inside a field
            return None, malformed or (_line(text, start), str(err))
        width = len(record) if width is None else width
        if end == len(text) and start and (not text.endswith("\n") or len(record) < width):
            return start, malformed
        if len(record) != width and malformed is None:
            malformed = (_line(text, start), f"{len(record)} fields; the header has {width}")
        start = end


def _line(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


def cut_torn_tail(path: Path) -> str | None:
    """Make ``path`` end with its last whole row; say what was cut, or None if nothing was."""
    torn = torn_tail(path)
    if torn is None:
        return None
    line, extra = torn
    raw = path.read_bytes()
    copy = path.with_name(f"{path.name}.torn-{environment.utc_now()}")
    copy.write_bytes(raw)
    with open(path, "r+b") as f:
        f.truncate(len(raw) - extra)
        os.fsync(f.fileno())
    return (f"{path}: cut a torn row off at line {line} ({extra} bytes; the file as it was is "
            f"kept as {copy.name}); its run is run again.")


def _records(text: str):
    """(record, character offset just past it) for each CSV record of ``text``."""
    offset = 0

    def lines():
        nonlocal offset
        for line in text.split("\n")[:-1] if text.endswith("\n") else text.split("\n"):
            offset += len(line) + 1
            yield line
    for record in csv.reader(lines()):
        yield record, min(offset, len(text))


def _append_csv(frame: pd.DataFrame, path: Path) -> None:
    """Whole lines or nothing: a new file is created whole, header and rows, in one rename;
    to an existing one every short write is continued, and a failed one (a full disk) is
    rolled back to the file's size before it, then raised."""
    if not path.exists():
        write_atomic(path, lambda f: f.write(frame.to_csv(index=False).encode()))
        return
    text = frame.to_csv(header=False, index=False).encode()
    with naming(path):
        fd = os.open(path, os.O_WRONLY | os.O_APPEND)
        before = os.fstat(fd).st_size
        view = memoryview(text)
        try:
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        except BaseException:
            if view:  # the rows are not all there: take back what is
                os.ftruncate(fd, before)
            raise
        finally:
            os.close(fd)


def memory_limit_mib() -> float:
    """A run is killed above 80% of the memory available when the suite starts."""
    return 0.8 * environment.available_mib()


def run_one(experiment: Experiment, spec: RunSpec, log_dir: Path,
            on_progress: Callable[[int, int], None], memory_mib: float, worker: str) -> dict:
    """Run ``spec`` in a child process; always return a row, whatever happened to it."""
    with closing(run_group(experiment, [spec], log_dir, on_progress, memory_mib, worker)) as rows:
        return next(rows)[0][1]


def run_group(experiment: Experiment, specs: list[RunSpec], log_dir: Path,
              on_progress: Callable[[int, int], None], memory_mib: float, worker: str):
    """Run ``specs`` in a child process (``python -m worker``), yielding [(spec, row), ...]
    for the runs that ended since the last, in order, whatever happens to the process: a
    run that kills it gets its status row, and the runs after it go on in a fresh one.
    Each run's time limit counts from the end of the run before it. A group that the
    experiment trains in interleaved rounds runs there (``interleaved.run_rounds``)."""
    if experiment.rounds and experiment.rounds(specs[0]) is not None:
        yield from run_rounds(experiment, specs, log_dir, on_progress, memory_mib, worker)
        return
    with tempfile.TemporaryDirectory(prefix=f"{TEMP_PREFIX}{os.getpid()}-") as tmp:
        specs_path = Path(tmp) / "specs.json"
        specs_path.write_text(json.dumps([asdict(s) for s in specs]))
        results = [Path(tmp) / f"result-{i}.json" for i in range(len(specs))]
        log = log_dir / "logs" / log_name(specs)
        log.parent.mkdir(parents=True, exist_ok=True)
        done = 0
        with open(log, "w") as stderr:
            proc = processes.start(worker, [str(specs_path), tmp], stderr,
                                   stdout=subprocess.PIPE)
            reader = threading.Thread(target=_read_progress, args=(proc, on_progress), daemon=True)
            reader.start()
            try:
                start = time.monotonic()
                while done < len(specs):
                    ready = []
                    while done < len(specs) and results[done].exists():
                        row = json.loads(results[done].read_text())
                        ready.append((specs[done], {**experiment.base_row(specs[done]), **row}))
                        done += 1
                    if ready:
                        yield ready
                        start = time.monotonic()
                        continue
                    status = processes.check(proc, start, specs[done].timeout_s,
                                             memory_mib)
                    if status and not results[done].exists():
                        break
                    time.sleep(0.1)
                    Interrupted.check()
            finally:  # Ctrl-C, or the caller stopped early: take the child down with us
                processes.kill(proc)
            reader.join(timeout=5)
        if done == len(specs):
            return
        row = processes.stopped(experiment, specs[done], status, proc, log, memory_mib)
    yield [(specs[done], row)]
    if done + 1 < len(specs):
        yield from run_group(experiment, specs[done + 1:], log_dir, on_progress, memory_mib,
                             worker)


def log_name(specs: list[RunSpec]) -> str:
    """experiment-task-config-impl-seedN.log; a group's names its first and last seed."""
    seeds = f"{specs[0].seed}" + (f"-{specs[-1].seed}" if len(specs) > 1 else "")
    return "{}-{}-{}-{}-".format(*specs[0].key[:4]) + f"seed{seeds}.log"


def groups(experiment: Experiment, specs: list[RunSpec]) -> list[list[RunSpec]]:
    """One run a process for a timed experiment. An accuracy-only experiment's runs of one
    task, configuration and implementation share one, ``group_size`` at a time, in order;
    so do the runs that the experiment's ``same_process`` keys alike. On a profile whose
    times say nothing (the smoke profile's) the runs share a process per Keras
    backend (Implementation.process_backend): it saves a framework import a run. Those of
    an implementation with a seed-batched trainer stay in their groups, which it trains at
    once."""
    if experiment.rounds:  # each group of rounds whole, the others as the rules say
        together = [s for s in specs if experiment.rounds(s) is not None]
        alone = replace(experiment, rounds=None)
        by_rounds: dict[tuple, list[RunSpec]] = {}
        for spec in together:
            by_rounds.setdefault(experiment.rounds(spec), []).append(spec)
        return [*by_rounds.values(),
                *groups(alone, [s for s in specs if s not in together])]
    key = experiment.same_process or (None if experiment.timed else lambda s: s.key[:4])
    shared = any(PROFILES[s.profile].times_say_nothing for s in specs)
    if shared and not experiment.same_process:
        batched = not experiment.timed  # an accuracy-only experiment's seeds train at once
        key = lambda s: (IMPLEMENTATIONS[s.impl].process_backend,  # noqa: E731
                         *(s.key[:4] if batched and IMPLEMENTATIONS[s.impl].seed_batched
                           else ()))
    if key is None:
        return [[s] for s in specs]
    by_kind: dict[tuple, list[RunSpec]] = {}
    for spec in specs:
        by_kind.setdefault(key(spec), []).append(spec)
    size = experiment.group_size
    return [same[i:i + size] for same in by_kind.values() for i in range(0, len(same), size)]


TEMP_PREFIX = "groundup-run-"


def clean_stale_temp() -> None:
    """Remove the temporary folders of runs whose groundup process no longer exists."""
    for folder in Path(tempfile.gettempdir()).glob(f"{TEMP_PREFIX}*-*"):
        pid = folder.name[len(TEMP_PREFIX):].split("-")[0]
        if pid.isdigit() and not Path(f"/proc/{pid}").exists():
            shutil.rmtree(folder, ignore_errors=True)


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
    if not ds.source.startswith(("Keras cache", "data dir")):  # fetched: say why
        for label, reason in ds.tried:
            console.print(f"[dim]  not from {label}: {reason}[/]", soft_wrap=True)


def run_experiments(experiments: list[Experiment], specs: list[RunSpec], out_dir: Path,
                    worker: str, console: Console, retry_failed: bool = False,
                    client=None, resume: str = "") -> int:
    """Every spec not yet in its experiment's CSV, in order, with progress bars: 0 when all
    ran, 130 when interrupted (the finished rows stay, and the command ``resume``, by
    default ``groundup run --resume``, completes the rest).
    With a Dask ``client``, the groups run as tasks on its cluster (``cluster``), and
    their rows are written here as each group finishes. The caller has checked the data
    (``check_data``) and holds the folder's lock."""
    clean_stale_temp()
    memory = memory_limit_mib()
    files = [ResultsFile(out_dir, e.runs_stem, e.columns) for e in experiments]
    _refuse_unplanned(files, {s.key for s in specs})  # before anything in the folder changes
    for results in files:
        for line in results.repair():
            console.print(f"[yellow]{line}[/]", soft_wrap=True)
    specs = available(specs, console)
    for experiment, results in zip(experiments, files):
        done = results.done(retry_failed)
        todo = [s for s in specs if s.experiment == experiment.name and s.key not in done]
        if done:
            console.print(f"resuming {results.path}: {len(done)} rows kept, {len(todo)} to run")
        columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                   TimeElapsedColumn()]
        futures = []
        try:
            with Progress(*columns, console=console, transient=False) as bars:
                overall = bars.add_task(f"{experiment.name} runs", total=len(todo))

                def record(group, batches):
                    for batch in batches:
                        results.append([row for _, row in batch],
                                       partial(bars.advance, overall, len(batch)))
                        if len(group) <= SUMMARY_LINES:
                            for spec, row in batch:
                                bars.console.print(summary_line(spec, row), soft_wrap=True)
                    if len(group) > SUMMARY_LINES:
                        bars.console.print(group_line(group, results.path), soft_wrap=True)

                chunks = groups(experiment, todo)
                if client is not None:
                    futures = submit(client, experiment, chunks, worker)
                    source = _from_cluster(futures, chunks, out_dir)
                else:
                    source = _from_here(experiment, chunks, out_dir, bars, memory, worker)
                for group, batches in source:
                    record(group, batches)
                    Interrupted.check()
        except KeyboardInterrupt:
            if futures:
                client.cancel(futures)
            kept = len(results.done())
            console.print(f"[yellow]Interrupted.[/] {kept} finished rows are in {results.path}. "
                          f"Run `{resume or f'groundup run --resume {out_dir}'}` to "
                          "complete the rest.",
                          soft_wrap=True)
            return 130
    return 0


def _refuse_unplanned(files: list[ResultsFile], planned: set[tuple]) -> None:
    """Rows whose key the folder's selection does not plan: its run.json is not the one
    they were run for, and --resume would complete another selection."""
    for results in files:
        unplanned = sorted(results.done(whole_rows=True) - planned, key=str)
        if unplanned:
            raise UsageError(f"{results.path} holds a row that {results.path.parent}/run.json "
                             f"does not select ({', '.join(map(str, unplanned[0]))}): the "
                             "results and the settings disagree (another selection's rows, or "
                             "an older groundup's layout), and nothing was run. Start a new "
                             "folder with --out.")


def submit(client, experiment: Experiment, chunks: list[list[RunSpec]], worker: str) -> list:
    """A Dask task per group; a timed experiment's claim a machine whole (``cluster``)."""
    resources = {cluster.MACHINE: 1} if experiment.timed else None
    return [client.submit(run_remote, experiment, group, worker, pure=False,
                          resources=resources, key=f"{experiment.name}-{i}-{group[0].label()}")
            for i, group in enumerate(chunks)]


def run_remote(experiment: Experiment, specs: list[RunSpec], worker: str
               ) -> tuple[list[dict], dict[str, str]]:
    """A Dask task, on its worker: the group's rows in order, and its logs' texts by name."""
    with tempfile.TemporaryDirectory(prefix=f"{TEMP_PREFIX}{os.getpid()}-task-") as tmp:
        rows = [row for batch in run_group(experiment, specs, Path(tmp), lambda *a: None,
                                           memory_limit_mib(), worker) for _, row in batch]
        logs = {p.name: p.read_text() for p in (Path(tmp) / "logs").glob("*.log")}
    return rows, logs


def _from_cluster(futures: list, chunks: list[list[RunSpec]], out_dir: Path):
    """(group, [batch]) as each group's task finishes on the cluster; its logs written."""
    from distributed import as_completed

    by_future = dict(zip(futures, chunks, strict=True))
    for future in as_completed(futures):
        rows, logs = future.result()
        (out_dir / "logs").mkdir(exist_ok=True)
        for name, text in logs.items():
            write_atomic(out_dir / "logs" / name, lambda f, text=text: f.write(text.encode()))
        group = by_future[future]
        yield group, [list(zip(group, rows, strict=True))]


def _from_here(experiment: Experiment, chunks: list[list[RunSpec]], out_dir: Path, bars,
               memory: float, worker: str):
    """(group, its batches as they end) for each group run here, with a progress bar for
    the run in progress."""
    for group in chunks:
        bar = [bars.add_task(f"  {group[0].label()}", total=group[0].epochs)]

        def progress(done: int, total: int, bar=bar) -> None:  # from run_group's reader
            # a line read after its run's row came in finds that run's bar gone: dropped
            with suppress(KeyError):
                bars.update(bar[0], completed=done, total=total)

        def batches_of(group=group, progress=progress, bar=bar):
            batches = run_group(experiment, group, out_dir, progress, memory, worker)
            with closing(batches):
                done = 0
                for batch in batches:
                    done += len(batch)
                    bars.remove_task(bar[0])
                    if done < len(group):
                        bar[0] = bars.add_task(f"  {group[done].label()}",
                                               total=group[done].epochs)
                    yield batch

        yield group, batches_of()


SUMMARY_LINES = 20  # a larger group (the seed-batched atlas) gets one line, not one a run


def group_line(group: list[RunSpec], path: Path) -> str:
    first = group[0]
    return (f"[green]✓[/] {first.task}/{first.config} {first.impl} seeds {first.seed}-"
            f"{group[-1].seed}: {len(group)} rows in {path.name}")


def available(specs: list[RunSpec], console: Console) -> list[RunSpec]:
    """The runs whose implementation can run here; one line for each that cannot."""
    missing = {name: missing_packages(name) for name in dict.fromkeys(s.impl for s in specs)}
    for name, why in missing.items():
        if why:
            console.print(f"skipping {escape(why)}", soft_wrap=True)
    return [s for s in specs if not missing[s.impl]]


def summary_line(spec: RunSpec, row: dict) -> str:
    """A run's line: ✓ trained in full, ~ stopped early or trained on a prefix (its
    accuracy no result), ✗ failed."""
    if row["status"] != "ok":
        return f"[red]✗[/] {spec.label()}: {row['status']}: {row['error']}"
    flag = " (extrapolated)" if row.get("extrapolated") else ""
    accuracy = f"accuracy {row['accuracy']:.4f}, " if row.get("accuracy") is not None else ""
    mark = "[green]✓[/]"
    if not row.get("trained_in_full", True):
        mark, accuracy = "[yellow]~[/]", "not trained in full, "
    return (f"{mark} {spec.label()}: {accuracy}"
            f"train {row['train_time_s']:.3g} s{flag}, peak {row['peak_rss_mib']:.1f} MiB")
