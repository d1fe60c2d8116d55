"""What every result row records about where it was measured."""

from __future__ import annotations

import functools
import json
import os
import platform
import re
import subprocess
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from benchmarks.implementations import IMPLEMENTATIONS, installed_version, recorded_packages

ROOT = Path(__file__).resolve().parents[2]


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def blas() -> str:
    try:
        info = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        return f"{info.get('name', '')} {info.get('version', '')}".strip()
    except Exception:  # numpy's build info varies by version and build
        return ""


def thread_pools() -> str:
    """The BLAS and OpenMP thread pools loaded in this process, each with its threads
    (threadpoolctl). NumPy's OpenBLAS is one; Numba loads SciPy's, a second library with
    a pool of its own, as it first runs array code; PyTorch brings OpenMP's. '' where
    threadpoolctl cannot tell."""
    from threadpoolctl import threadpool_info

    try:
        pools = threadpool_info()
    except Exception:  # a row is written whatever this says
        return ""
    return "; ".join(f"{pool['internal_api']} {Path(pool['filepath']).name}: "
                     f"{pool['num_threads']} threads" for pool in pools)


def git_commit() -> str:
    """HEAD's hash, with '-dirty' when the work tree has uncommitted changes."""
    try:
        run = functools.partial(subprocess.run, cwd=ROOT, capture_output=True, text=True,
                                timeout=10)
        head = run(["git", "rev-parse", "HEAD"]).stdout.strip()
        dirty = run(["git", "status", "--porcelain", "--untracked-files=no"]).stdout.strip()
        return f"{head}-dirty" if head and dirty else head
    except (OSError, subprocess.SubprocessError):
        return ""


@functools.lru_cache(maxsize=1)
def context() -> dict[str, str | int]:
    return {
        "python": platform.python_version(),
        **{package: installed_version(package) for package in recorded_packages()},
        "cpu": cpu_model(),
        "cores": os.cpu_count() or 0,
        "blas": blas(),
        "commit": git_commit(),
    }


def run_context() -> dict[str, str | int]:
    """What a row records of the process that ran it, as the run ends: ``context()``, its
    thread pools and the time."""
    return {**context(), "thread_pools": thread_pools(), "timestamp": utc_now()}


VERSIONED = ("python", *recorded_packages())
PUBLISHED_ENVIRONMENT = ROOT / "results" / "published" / "environment.json"


def version_differences(published: Path = PUBLISHED_ENVIRONMENT) -> str:
    """One line naming every library whose version differs from the published run's, or ''."""
    try:
        theirs = json.loads(published.read_text())
    except (OSError, ValueError):
        return ""
    ours = context()
    differ = [k for k in VERSIONED if theirs.get(k) and ours.get(k) != theirs[k]]
    if not differ:
        return ""
    # A missing package: what installs it (an optional one, such as torch, has its own)
    installs = {k: next((i.install for i in IMPLEMENTATIONS.values() if k in i.requires),
                        "make") for k in differ if not ours.get(k)}
    changed = [f"{k} {ours[k]} (published: {theirs[k]})" if k not in installs else
               f"{k} missing (published: {theirs[k]}; `{installs[k]}` installs it)"
               for k in differ]
    return (f"versions differ from the published run's: {', '.join(changed)}; its numbers are "
            "comparable to these only with care"
            + (" (`make` installs the locked ones)." if len(installs) < len(differ) else "."))


def _meminfo_mib(field: str) -> float:
    """A /proc/meminfo field in MiB (Linux); infinite where it cannot be read."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("inf")


def rss_mib(pid: int | str = "self", field: str = "VmRSS") -> float:
    """A process's resident memory in MiB (``field`` VmHWM: its peak), from Linux's
    /proc; NaN where it cannot be read (another system, or the process is gone)."""
    try:
        match = re.search(rf"{field}:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text())
    except OSError:
        return float("nan")
    return int(match.group(1)) / 1024 if match else float("nan")


def available_mib() -> float:
    return _meminfo_mib("MemAvailable")


def total_mib() -> float:
    return _meminfo_mib("MemTotal")


def utc_now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
