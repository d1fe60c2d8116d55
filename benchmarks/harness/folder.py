"""A run folder: its settings in run.json, one process at a time, nothing overwritten.

Every file the harness writes whole goes through ``benchmarks.files.write_atomic``.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from benchmarks.errors import UsageError
from benchmarks.files import write_atomic
from benchmarks.harness.specs import PROFILES, Option, Selection

SETTINGS = "run.json"
LOCK = ".lock"
# The machine's lock: every groundup run on this machine holds it, a timed one (and
# publish) alone. GROUNDUP_MACHINE_LOCK moves it (the tests give each of their processes one).
MACHINE_LOCK = "groundup-machine.lock"
_held_machine = False  # this process holds it (publish's own runs take it no second time)


def own(out_dir: Path) -> Lock:
    """The folder's lock, held, the folder made if need be. Take it before anything in the
    folder is read or written: a run refused here has changed nothing in it."""
    if out_dir.exists() and not out_dir.is_dir():
        raise UsageError(f"{out_dir} is a file; --out needs a folder.")
    out_dir.mkdir(parents=True, exist_ok=True)
    return Lock(out_dir)


def create(out_dir: Path, selection: Selection, stems: list[str]) -> None:
    """Start a new run in the folder we own (``own``); refuse one that already holds a run."""
    clash = [name for name in (SETTINGS, *(f"{s}.csv" for s in stems))
             if (out_dir / name).exists()]
    if clash:
        raise UsageError(f"{out_dir} already holds {clash[0]}; nothing is overwritten. "
                         f"Use --resume {out_dir} to complete it, or another --out.")
    text = json.dumps(selection.saved(), indent=2)
    write_atomic(out_dir / SETTINGS, lambda f: f.write(text.encode()))


def settings(out_dir: Path, options: dict[str, Option]) -> Selection:
    """The selection an earlier run saved in ``out_dir``; ``options``: the experiments'."""
    saved = out_dir / SETTINGS
    if not saved.is_file():
        raise UsageError(f"{out_dir} holds no run.json: it is not a groundup run folder.")
    try:
        found = json.loads(saved.read_text())
        if not isinstance(found, dict):
            raise ValueError("not a JSON object")
    except (ValueError, UnicodeDecodeError) as err:
        raise UsageError(f"{saved} is corrupt ({err}); start a new run folder with --out.") \
            from None
    try:
        selection = Selection.from_saved(found, options)
    except ValueError as err:
        raise UsageError(f"{saved}: {err}; start a new run folder with --out.") from None
    if selection.profile not in PROFILES:
        raise UsageError(f"{saved}: unknown profile {selection.profile!r}; this groundup has "
                         f"{', '.join(PROFILES)}.")
    return selection


class Lock:
    """An OS lock (flock) on the folder: a second groundup process on it is refused, with
    the holder's PID. The kernel releases it when the holder exits, even on kill -9.
    Use it as ``with Lock(folder):``."""

    def __init__(self, out_dir: Path):
        self.path = out_dir / LOCK
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(self.fd, 32, 0).decode(errors="replace").strip() or "?"
            os.close(self.fd)
            raise UsageError(f"{out_dir} is in use by groundup process {holder}; one process "
                             "owns a run folder. Wait for it, or stop it first.") from None
        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, f"{os.getpid()}\n".encode(), 0)

    def release(self) -> None:
        os.close(self.fd)

    def __enter__(self) -> Lock:
        return self

    def __exit__(self, *exc) -> None:
        self.release()


@contextlib.contextmanager
def machine(timed: bool, wait: bool = False) -> Iterator[None]:
    """Hold the machine's lock: alone for a timed run (its times need the machine to
    themselves), shared with the other accuracy-only runs for one that is not. Refused
    with one line while it is held the other way, or, with ``wait``, waited for."""
    global _held_machine
    if _held_machine:
        yield
        return
    path = Path(os.environ.get("GROUNDUP_MACHINE_LOCK")
                or Path(tempfile.gettempdir()) / MACHINE_LOCK)
    fd = os.open(path, os.O_RDONLY | os.O_CREAT, 0o666)  # any user's groundup can lock it
    try:
        try:
            fcntl.flock(fd, (fcntl.LOCK_EX if timed else fcntl.LOCK_SH)
                        | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            raise UsageError(
                ("A timed run needs this machine alone, but another groundup run is going on it"
                 if timed else "A timed groundup run (or publish) has this machine alone")
                + f" (it holds {path}). Wait for it to end"
                + (", or give publish --wait." if timed else ", then run this.")) from None
        _held_machine = True
        yield
    finally:
        _held_machine = False
        os.close(fd)
