"""A run folder: its settings in run.json, one process at a time, nothing overwritten.

Every file the harness writes whole goes through ``benchmarks.files.write_atomic``.
"""

from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path

from benchmarks.errors import UsageError
from benchmarks.files import write_atomic

SETTINGS = "run.json"
LOCK = ".lock"


def create(out_dir: Path, settings: dict, stems: list[str]) -> None:
    """Start a new run folder for ``settings``; refuse one that already holds results."""
    if out_dir.exists() and not out_dir.is_dir():
        raise UsageError(f"{out_dir} is a file; --out needs a folder.")
    clash = [s for s in stems if (out_dir / f"{s}.csv").exists()]
    if clash:
        raise UsageError(f"{out_dir} already holds {clash[0]}.csv; nothing is overwritten. "
                         f"Use --resume {out_dir} to complete it, or another --out.")
    out_dir.mkdir(parents=True, exist_ok=True)
    write_atomic(out_dir / SETTINGS, lambda f: f.write(json.dumps(settings, indent=2).encode()))


def settings(out_dir: Path) -> dict:
    """The settings an earlier run saved in ``out_dir``."""
    saved = out_dir / SETTINGS
    if not saved.is_file():
        raise UsageError(f"{out_dir} holds no run.json: it is not a groundup run folder.")
    try:
        found = json.loads(saved.read_text())
        if not isinstance(found, dict) or not isinstance(found.get("experiments"), list):
            raise ValueError("no list of experiments")
        return found
    except (ValueError, UnicodeDecodeError) as err:
        raise UsageError(f"{saved} is corrupt ({err}); start a new run folder with --out.") \
            from None


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
