"""``groundup publish`` (``make results``): every experiment's full profile and the
pytest-benchmark suite into ``results/published/``, then the README's headline and
docs/results.md.

Timed experiments run one run at a time, with the machine to themselves; accuracy-only
ones (generalisation, xor-atlas) run on a local Dask cluster of ``ACCURACY_WORKERS``. A
smoke publish tries every path once, and its times say nothing: its runs share a process
per Keras backend and calibrate nothing, its benchmark suite is tiny, and its few
accuracy-only runs, which a cluster would cost more to start than to run, run here.

It works in ``results/published.partial/`` and moves that into place only when every
part has finished, so the published results are never half replaced. Run again
after an interruption, it resumes there: rows already measured are kept.
"""

from __future__ import annotations

import contextlib
import json
import platform
import shutil
import time
from pathlib import Path

from rich.console import Console

from benchmarks.errors import UsageError
from benchmarks.experiments import EXPERIMENTS as REGISTRY
from benchmarks.experiments import OPTIONS, WORKER, plan
from benchmarks.files import write_atomic
from benchmarks.harness import cluster, environment, folder
from benchmarks.harness.runner import check_data, run_experiments
from benchmarks.harness.specs import PROFILES, Selection
from benchmarks.reporting import bench_report, readme
from benchmarks.reporting.report import write_report

# speed first, so that its run follows straight on from any speed run just before it (the
# three back-to-back runs that show its verdicts hold); then the other timed ones.
EXPERIMENTS = ("speed", "compare", "generalisation", "softmax-form", "jacobian", "scaling",
               "xor-atlas")
ACCURACY_WORKERS = 2  # this machine's cores
PUBLISHED = environment.ROOT / "results" / "published"


def _again(out: Path, profile: str, readme_path: Path) -> str:
    """The command that resumes this publish: the same one, run again."""
    flags = [f"--profile {profile}" if profile != "full" else "",
             f"--out {out}" if out != PUBLISHED else "",
             f"--readme {readme_path}" if readme_path != environment.ROOT / "README.md" else ""]
    return " ".join(["groundup publish", *filter(None, flags)])


def chosen_for(profile: str) -> Selection:
    """What a publish on ``profile`` runs: every experiment, every task, the variants."""
    return Selection(tasks=PROFILES[profile].tasks, experiments=EXPERIMENTS, profile=profile,
                     options={"variants": True}.items())


def publish(out: Path = PUBLISHED, profile: str = "full",
            readme_path: Path = environment.ROOT / "README.md", wait: bool = False) -> int:
    work = out.with_name(out.name + ".partial")
    started = time.perf_counter()
    resumed = (work / "run.json").exists()
    phases: dict[str, float] = {}
    chosen = [REGISTRY[name] for name in EXPERIMENTS]
    console = Console()
    selection = chosen_for(profile)
    saved = folder.settings(work, OPTIONS).saved() if resumed else selection.saved()
    if saved != selection.saved():  # compared whole: a publish resumes only itself
        differ = [f"{k} {saved.get(k)!r}, not {v!r}" for k, v in selection.saved().items()
                  if saved.get(k) != v]
        raise UsageError(f"{work} holds a publish of another selection ({'; '.join(differ)}): "
                         f"finish it with the command that started it, or remove {work}.")
    smoke = profile == "smoke"
    workers = 0 if smoke else ACCURACY_WORKERS
    specs = plan(selection)
    check_data(specs, console)
    readme.pages(readme_path)  # the pages it rewrites at the end, checked before the runs
    # held until the folder is finished, benchmarks included; the machine alone throughout
    with folder.machine(timed=True, wait=wait), folder.own(work):
        if not resumed:
            folder.create(work, selection, [e.runs_stem for e in chosen])
        # The timed experiments first, each with the machine alone; then the accuracy-only
        # ones, on one local Dask cluster started for them all.
        for timed in (True, False):
            with (contextlib.nullcontext() if timed or not workers
                  else cluster.connect(workers, None)) as client:
                for experiment in (e for e in chosen if e.timed == timed):
                    mark = time.perf_counter()
                    code = run_experiments([experiment], specs, work, WORKER, console,
                                           client=client, resume=_again(out, profile, readme_path))
                    if code:
                        return code
                    phases[experiment.name] = time.perf_counter() - mark
        for experiment in chosen:
            write_report(work, experiment.name)
        phases["experiments"] = time.perf_counter() - started
        bench = work / "benchmarks"
        if not list(bench.glob("*/*.json")):  # a resumed publish keeps a finished suite
            mark = time.perf_counter()
            code = bench_report.run_suite(bench, tiny=profile == "smoke")
            phases["benchmarks"] = time.perf_counter() - mark
            if code:
                return code
        wall = time.perf_counter() - started
        environment_json = json.dumps({
            **environment.context(), "platform": platform.platform(),
            "memory_gib": round(environment.total_mib() / 1024, 1),
            "finished": environment.utc_now(), "profile": profile,
            "experiments": list(EXPERIMENTS), "generalisation_variants": True,
            "accuracy_only_workers": workers,
            "resumed": resumed, "wall_time_s": round(wall, 1),
            "phase_wall_time_s": {k: round(v, 1) for k, v in phases.items()},
            "command": "make results (groundup publish)",
        }, indent=2) + "\n"
        write_atomic(work / "environment.json", lambda f: f.write(environment_json.encode()))
    (work / folder.LOCK).unlink()  # the published folder holds results only
    if out.exists():
        shutil.rmtree(out)
    work.rename(out)
    readme.update(readme_path, out)
    print(f"published {out} in {wall / 60:.1f} min; README headline and Results page rewritten")
    return 0
