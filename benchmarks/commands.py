"""The work behind each ``groundup`` subcommand; ``cli.py`` only parses."""

from __future__ import annotations

import argparse
import contextlib
import time
from pathlib import Path

import pandas as pd
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from benchmarks.data.datasets import DataError, load_mnist
from benchmarks.data.tasks import CONFIGS
from benchmarks.errors import UsageError
from benchmarks.harness import environment
from benchmarks.implementations import REFERENCE
from scratch import activations

out = Console()


def data_command(args: argparse.Namespace) -> int:
    start = time.perf_counter()
    try:
        ds = load_mnist(args.data_dir)
    except DataError as err:
        raise UsageError(str(err)) from None
    elapsed = time.perf_counter() - start
    for label, reason in ds.tried:
        out.print(f"[dim]skipped {label}: {reason}[/]", soft_wrap=True)
    out.print(f"[bold]{ds.name}[/] from [cyan]{ds.source}[/] in {elapsed:.2f} s, "
              f"verified by {ds.verified}", soft_wrap=True)
    table = Table("array", "shape", "dtype", "label counts 0-9")
    for key, array in ds.arrays.items():
        counts = " ".join(map(str, ds.label_counts(key[2:]))) if key[0] == "y" else ""
        table.add_row(key, str(array.shape), str(array.dtype), counts)
    out.print(table)
    for key, digest in ds.checksums().items():
        out.print(f"sha256 {key:<7} {digest}", soft_wrap=True)
    out.print(f"cache: {ds.cache_path or 'none (a data dir is read in place)'}", soft_wrap=True)
    return 0


def list_command(args: argparse.Namespace) -> int:
    """One line per row at 80 columns: short cells in the tables, the targets under them,
    and with --verbose each configuration's source."""
    table = _table("Tasks and reference configurations", "task/config", "network",
                   "activations", "optimizer", "epochs", "batch")
    for c in CONFIGS.values():
        opt = " ".join(f"{_SHORT.get(k, k)}={v}" for k, v in c.optimizer.items() if k != "name")
        drop = f", dropout {c.arch.dropout:g}" if c.arch.dropout else ""
        table.add_row(c.key, "-".join(map(str, c.arch.sizes)),
                      "/".join(map(_act, c.arch.activations)) + drop,
                      f"{c.optimizer['name']} {opt}".strip(), f"{c.epochs:,}", str(c.batch_size))
    out.print(table)
    for c in CONFIGS.values():
        out.print(f"[bold]{c.key}[/]: target {c.target}"
                  + (f". Source: {c.source}" if args.verbose else ""))
    if not args.verbose:
        out.print("[dim](groundup list --verbose adds each configuration's source)[/]")
    from benchmarks.experiments import EXPERIMENTS
    from benchmarks.implementations import IMPLEMENTATIONS

    for title, rows in (("Experiments", ((e.name, e.description) for e in EXPERIMENTS.values())),
                        ("Implementations", ((i.name, _what(i))
                                             for i in IMPLEMENTATIONS.values()))):
        out.print()
        listing, rows = _table(title, "name", "what"), list(rows)
        listing.columns[0].min_width = max(len(name) for name, _ in rows)  # names are never cut
        for row in rows:
            listing.add_row(*row)
        out.print(listing)
    return 0


def _what(impl) -> str:
    """An implementation's description, or why it cannot run here and what installs it."""
    missing = impl.missing()
    if not missing:
        return impl.description
    return f"[dim]unavailable, {', '.join(missing)} missing: {escape(impl.install)}[/]"


def _table(title: str, *columns: str) -> Table:
    """A borderless table whose cells never wrap: at 80 columns a long cell is cut with '…'."""
    table = Table(title=title, box=box.SIMPLE_HEAD, show_edge=False, padding=0,
                  title_justify="left")
    for column in columns:
        table.add_column(column, no_wrap=True, overflow="ellipsis")
    return table


_SHORT = {"learning_rate": "lr"}


def _act(identifier) -> str:
    return identifier if isinstance(identifier, str) else repr(activations.get(identifier))


def _choose(kind: str, wanted: list[str] | None, valid: list[str]) -> list[str]:
    if not wanted:
        return valid
    bad = [w for w in wanted if w not in valid]
    if bad:
        raise UsageError(f"unknown {kind} {', '.join(map(repr, bad))}; choose from "
                         f"{', '.join(valid)}.")
    return list(dict.fromkeys(wanted))  # repeated names run once


# The flags of groundup run that make its selection; --resume takes its folder's own.
SELECTION_FLAGS = {"experiments": "EXPERIMENT", "profile": "--profile", "task": "--task",
                   "impl": "--impl", "seeds": "--seeds", "out": "--out",
                   "data_dir": "--data-dir", "memory_budget": "--memory-budget"}


def run_command(args: argparse.Namespace) -> int:
    from benchmarks.experiments import EXPERIMENTS, OPTIONS, WORKER, plan
    from benchmarks.harness import cluster, folder
    from benchmarks.harness.runner import check_data, run_experiments
    from benchmarks.harness.specs import Selection
    from benchmarks.implementations import IMPLEMENTATIONS

    given = {name: getattr(args, name) for name in OPTIONS if getattr(args, name)
             != OPTIONS[name].default}
    if args.resume:
        out_dir = Path(args.resume)
        changed = [flag for name, flag in SELECTION_FLAGS.items() if getattr(args, name)]
        changed += [OPTIONS[name].flag for name in given]
        if changed:
            raise UsageError(f"--resume continues {out_dir}'s own selection; {', '.join(changed)} "
                             "would change it. To run another selection, start a new folder "
                             "with --out.")
        selection = folder.settings(out_dir, OPTIONS)
        _check_saved(out_dir, selection)
    elif args.retry_failed:
        raise UsageError("--retry-failed goes with --resume DIR.")
    else:
        names = _choose("experiment", args.experiments or ["compare"], list(EXPERIMENTS))
        for name in given:
            if not any(OPTIONS[name] in EXPERIMENTS[e].options for e in names):
                takes = [e.name for e in EXPERIMENTS.values() if OPTIONS[name] in e.options]
                raise UsageError(f"{OPTIONS[name].flag} is an option of {', '.join(takes)}, "
                                 f"which this run does not run ({', '.join(names)}).")
        profile = args.profile or "quick"
        selection = Selection(
            experiments=names, profile=profile,
            tasks=_tasks(args.task, [EXPERIMENTS[n] for n in names], profile),
            impls=_choose("implementation", args.impl, list(IMPLEMENTATIONS)) if args.impl
            else None,
            seeds=args.seeds, data_dir=args.data_dir, memory_budget_mib=args.memory_budget,
            options=given.items())
        out_dir = Path(args.out or Path("results") / "runs" / environment.utc_now())
    chosen = [EXPERIMENTS[n] for n in selection.experiments]
    _refuse_missing(selection.impls or [])
    cluster.check(chosen, args.workers, args.scheduler)
    specs = plan(selection)
    check_data(specs, out)  # before the folder: a failed check leaves nothing behind
    # on a remote cluster, the runs share no machine with this process
    machine = (contextlib.nullcontext() if args.scheduler is not None
               else folder.machine(any(e.timed for e in chosen)))
    with machine, folder.own(out_dir):
        if args.resume:
            _refuse_foreign(out_dir, selection.experiments)
        else:
            folder.create(out_dir, selection, [e.runs_stem for e in chosen])
        differences = environment.version_differences()
        if differences:
            out.print(f"[yellow]note:[/] {differences}", soft_wrap=True)
        with (cluster.connect(args.workers, args.scheduler)
              if args.workers or args.scheduler is not None else contextlib.nullcontext()
              ) as client:
            code = run_experiments(chosen, specs, out_dir, WORKER, out, args.retry_failed,
                                   client)
        if code == 0:
            _report(out_dir, chosen, args.wide)
    return code


def _check_saved(out_dir: Path, selection) -> None:
    """A resumed run.json's names, checked as a new run's flags are: the selection to run."""
    from benchmarks.experiments import EXPERIMENTS
    from benchmarks.harness.specs import PROFILES
    from benchmarks.implementations import IMPLEMENTATIONS

    known = {"experiment": list(EXPERIMENTS),
             "task": list(dict.fromkeys([*PROFILES[selection.profile].tasks,
                                         *(t for e in EXPERIMENTS.values() for t in e.tasks)])),
             "implementation": list(IMPLEMENTATIONS)}
    for (kind, valid), names in zip(known.items(), (selection.experiments, selection.tasks,
                                                    selection.impls or ()), strict=True):
        unknown = [n for n in names if n not in valid]
        if unknown:
            raise UsageError(f"{out_dir}/run.json names an unknown {kind} {unknown[0]!r}; "
                             f"this groundup has {', '.join(valid)}.")
    if selection.seeds is not None and selection.seeds < 1:
        raise UsageError(f"{out_dir}/run.json: seeds is {selection.seeds}, not a positive "
                         "whole number.")


def _refuse_foreign(out_dir: Path, selected: list[str]) -> None:
    """A resumed folder's results must be of its run.json's experiments: else run.json was
    rewritten or files were copied in, and resuming would run another selection."""
    from benchmarks.experiments import EXPERIMENTS

    for e in EXPERIMENTS.values():
        if e.name not in selected and (out_dir / f"{e.runs_stem}.csv").exists():
            raise UsageError(f"{out_dir} holds {e.runs_stem}.csv, but its run.json selects "
                             f"{', '.join(selected)}: the results and the settings disagree, "
                             "and nothing was run. Start a new folder with --out.")


def _refuse_missing(asked: list[str]) -> None:
    """An implementation asked for by name that cannot run here is an error (the runner
    skips the others, with one line each)."""
    from benchmarks.implementations import missing_packages

    for name in asked:
        if missing_packages(name):
            raise UsageError(f"{missing_packages(name)}.")


def _tasks(wanted: list[str] | None, experiments: list, profile: str) -> list[str]:
    """The --task selection, checked against what the chosen experiments can run."""
    from benchmarks.harness.specs import PROFILES

    if not wanted:
        return list(PROFILES[profile].tasks)
    valid = [t for e in experiments for t in e.tasks]
    bad = [w for w in wanted if w not in valid]
    if bad:
        takes = "; ".join(f"{e.name} takes {', '.join(e.tasks)}" for e in experiments)
        raise UsageError(f"unknown task {', '.join(map(repr, bad))}: {takes}.")
    return list(dict.fromkeys(wanted))


def _report(out_dir: Path, experiments: list, wide: bool = False, plots: bool = False) -> None:
    """Each experiment's tables and plots (GROUNDUP_PLOTS=0: none, unless ``plots``), its
    key columns in the terminal."""
    from benchmarks.files import plots_wanted
    from benchmarks.harness.runner import read_rows
    from benchmarks.harness.schema import KEY
    from benchmarks.reporting.report import summarize, write_report

    for experiment in experiments:
        runs = out_dir / f"{experiment.runs_stem}.csv"
        if not runs.exists():
            continue
        paths = write_report(out_dir, experiment.name, plots or plots_wanted())
        rows = read_rows(runs).drop_duplicates(KEY, keep="last")
        _print_table(summarize(rows), experiment.name, wide)
        out.print(f"rows in {runs}", soft_wrap=True)
        for path in paths:
            out.print(f"wrote {path}", soft_wrap=True)


# The summary's columns in the terminal, most wanted first, with their headers there: as
# many as the terminal's width holds in every task's table, whole (at 80 columns the first
# six); --wide prints them all. The .md beside the CSV has every column, with its spread.
TERMINAL_COLUMNS = {"accuracy": "accuracy", "s/epoch": "s/epoch", "peak MiB": "peak MiB",
                    f"time / {REFERENCE}": f"time/{REFERENCE}",
                    f"memory / {REFERENCE}": f"mem/{REFERENCE}", "extrapolated": "extrap.",
                    "ms/step": "ms/step", "to target s": "to target s", "train s": "train s",
                    "final loss": "final loss", "predict s": "predict s", "runs": "runs"}


def _print_table(summary: pd.DataFrame, title: str, wide: bool = False) -> None:
    """A table a task, each figure without its spread: the summary's columns in
    TERMINAL_COLUMNS' order, the same in every task's table, as many as fit the terminal
    whole (all, with ``wide``, however wide)."""
    from rich.measure import Measurement

    from benchmarks.reporting.report import UNFINISHED

    def cell(value) -> str:
        text = str(value).split(" ± ")[0]
        return "unfinished" if text == UNFINISHED else text

    def table(task: str, config: str, part: pd.DataFrame, k: int) -> Table:
        shown = columns[:k]
        found = _table(f"{title}: {task}/{config}", "impl", *(TERMINAL_COLUMNS[c] for c in shown))
        for _, row in part.iterrows():
            found.add_row(row["impl"], *(cell(row[c]) for c in shown))
        return found

    def width(found: Table) -> int:
        return Measurement.get(out, out.options.update_width(10_000), found).maximum

    columns = [c for c in TERMINAL_COLUMNS if c in summary]
    parts = list(summary.groupby(["task", "config"], sort=False))
    k = len(columns)
    while not wide and k and any(width(table(*key, part, k)) > out.width
                                 for key, part in parts):
        k -= 1  # the least wanted column goes first
    for key, part in parts:
        found = table(*key, part, k)
        if width(found) <= out.width:
            out.print(found)
        else:  # --wide, or not even the names fit: as wide as the table, never cut
            Console(file=out.file, width=width(found), color_system=out.color_system,
                    force_terminal=out.is_terminal).print(found)


def report_command(args: argparse.Namespace) -> int:
    from benchmarks.experiments import EXPERIMENTS

    out_dir = Path(args.dir)
    found = [e for e in EXPERIMENTS.values() if (out_dir / f"{e.runs_stem}.csv").exists()]
    if not found:
        raise UsageError(f"{out_dir} holds no results CSV; give a folder written by groundup run.")
    _report(out_dir, found, args.wide, plots=args.readme)  # the pages link to the plots
    if args.readme:
        from benchmarks.reporting import readme

        readme.update(environment.ROOT / "README.md", out_dir)
        out.print(f"rewrote README.md's headline and {readme.RESULTS_PAGE} in {environment.ROOT}")
    return 0


def compare_command(args: argparse.Namespace) -> int:
    """A against B: the environment's differences, then each experiment's changes."""
    from benchmarks.files import write_atomic
    from benchmarks.reporting import versus

    a, b = Path(args.a), Path(args.b)
    env_a, env_b, found = versus.compare(a, b)
    differ = [k for k in versus.ENVIRONMENT if env_a.get(k, "") != env_b.get(k, "")]
    out.print(f"A: {a}; B: {b}", soft_wrap=True)
    for key in differ:  # a line a field: a CPU's name or a commit is never cut
        out.print(f"  {key}: {env_a.get(key) or '(none)'} → {env_b.get(key) or '(none)'}",
                  soft_wrap=True)
    if not differ:
        out.print("The same CPU, cores, versions and commit.")
    if env_a.get("cpu") != env_b.get("cpu") or env_a.get("cores") != env_b.get("cores"):
        out.print("[yellow]The machines differ: times compare only as ratios.[/]")
    if env_a.get("profile") != env_b.get("profile"):
        out.print("[yellow]The profiles differ: the same rows trained for other budgets.[/]")
    for name, (changed, alone) in found.items():  # the terminal: what moved; the .md: all
        counts = pd.Series([c.time_verdict for c in changed]).value_counts()
        out.print(f"[bold]{name}[/]: {len(changed)} in both; time "
                  + ", ".join(f"{n} {verdict}" for verdict, n in counts.items()), soft_wrap=True)
        moved = [c for c in changed if c.time_verdict in ("slower", "faster")
                 or c.accuracy_verdict in ("higher", "lower")]
        if moved:
            table = _table("", "task", "impl", "B/A time", "95% interval", "time", "accuracy")
            for change in moved:
                row = versus.row_of(change)
                table.add_row(row["task"], row["impl"], row["B/A"], row["95% interval"],
                              row["time change"], row["acc. change"])
            out.print(table)
        for side in versus.ALONE:  # how many; the .md names them all
            groups = [g for s, g in alone if s == side]
            named = ", ".join(versus.label(g) for g in groups[:3])
            if groups:
                out.print(f"  {len(groups)} {versus.ALONE[side]}: {named}"
                          + (", ..." if len(groups) > 3 else ""), soft_wrap=True)
    md = Path(args.md) if args.md else b / f"versus_{a.resolve().name}.md"
    text = versus.markdown(a, b, env_a, env_b, found)
    write_atomic(md, lambda f: f.write(text.encode()))
    out.print(f"noise: {versus.METHOD}", soft_wrap=True)
    out.print(f"wrote {md}", soft_wrap=True)
    if args.fail_above is None:
        return 0
    grown, unsure = versus.regressions(found, args.fail_above)
    for change in grown:
        out.print(f"[bold red]slower beyond {args.fail_above:g}%:[/] {versus.label(change.where)}"
                  f", B/A {change.ratio:.2f} [{change.interval[0]:.2f}, "
                  f"{change.interval[1]:.2f}]")
    for change in unsure:
        out.print(f"[yellow]undecided, B/A {change.ratio:.2f}:[/] {versus.label(change.where)}"
                  " (fewer than "
                  f"{versus.MIN_SAMPLES} seeds a side: run both with --seeds "
                  f"{versus.MIN_SAMPLES} to decide)")
    failed = [g for _, alone in found.values() for side, g in alone if side == "failed"]
    for group in failed:
        out.print(f"[bold red]ok in A, failed in B:[/] {versus.label(group)}")
    return 1 if grown or failed else 0


def repeat_command(args: argparse.Namespace) -> int:
    """Speed runs side by side: each check, holds or fails (exit 1 where verdicts,
    intervals or overlap fails)."""
    from benchmarks.files import write_atomic
    from benchmarks.reporting import repeat

    folders = [Path(d) for d in args.dirs]
    frames, found, left_out = repeat.repeat(folders)
    counts = repeat.failed(found)
    for metric in (m for m in found if m.failing):  # the .md has the intervals and verdicts
        out.print(f"{escape(metric.name)}: {' / '.join(f'{r[0]:.3g}' for r in metric.runs)} "
                  f"(largest / smallest {metric.spread:.3f}); fails {', '.join(metric.failing)}",
                  soft_wrap=True)
    if left_out:
        out.print(f"[yellow]{len(left_out)} metrics not measured in every run, left out:[/] "
                  + "; ".join(map(escape, left_out)), soft_wrap=True)
    for check in repeat.CHECKS:
        verdict = "[green]holds[/]" if not counts[check] else f"[red]fails ({counts[check]})[/]"
        out.print(f"{check}: {repeat.RULES[check]}: {verdict}", soft_wrap=True)
    out.print("(medians fails by chance even on a steady machine; the exit status is "
              "verdicts, intervals and overlap)", soft_wrap=True)
    if args.md:
        text = repeat.markdown(folders, frames, found, left_out)
        write_atomic(Path(args.md), lambda f: f.write(text.encode()))
        out.print(f"wrote {args.md}", soft_wrap=True)
    return 1 if any(counts[c] for c in repeat.DECIDING) else 0


def drift_command(args: argparse.Namespace) -> int:
    """Fixed work timed over ``--minutes``, the machine held as a timed run holds it."""
    from rich.progress import BarColumn, Progress, TimeElapsedColumn

    from benchmarks import drift
    from benchmarks.harness import folder

    out_dir, seconds = Path(args.out), args.minutes * 60
    out_dir.mkdir(parents=True, exist_ok=True)
    found = environment.context()
    context = {**{k: found[k] for k in ("cpu", "cores", "blas", "numpy", "commit")},
               "started": environment.utc_now(), "minutes": f"{args.minutes:g}"}
    with folder.machine(timed=True), Progress("drift", BarColumn(), TimeElapsedColumn(),
                                              console=out, transient=True) as bars:
        task = bars.add_task("", total=seconds)
        samples = drift.measure(seconds, lambda elapsed: bars.update(task, completed=elapsed))
    drift.write(samples, out_dir / "drift.csv", out_dir / "drift.md", context)
    table = _table("", "workload", "median ms", "fastest window", "slowest window", "spread")
    for name, row in drift.summary(samples).iterrows():
        table.add_row(name, f"{row.median_ms:.2f}", f"{row.fastest_window:.3f}",
                      f"{row.slowest_window:.3f}", f"{row.spread:.3f}")
    out.print(table)
    out.print(f"windows of {drift.WINDOW_S:g} s, each over its workload's median; wrote "
              f"{out_dir / 'drift.md'} and drift.csv", soft_wrap=True)
    return 0


def publish_command(args: argparse.Namespace) -> int:
    from benchmarks.reporting import publish

    out_dir = Path(args.out) if args.out else publish.PUBLISHED
    readme_path = Path(args.readme) if args.readme else environment.ROOT / "README.md"
    return publish.publish(out_dir, args.profile, readme_path, wait=args.wait)


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.3g} {unit}"
        n /= 1024
    return ""


def bench_seeds_command(args: argparse.Namespace) -> int:
    from benchmarks import bench_seeds

    return bench_seeds.main()


def bench_peers_command(args: argparse.Namespace) -> int:
    from benchmarks import bench_peers

    return bench_peers.main(args.out)


def jacobian_model_command(args: argparse.Namespace) -> int:
    from scratch.cost import backprop_cost

    cost = backprop_cost(args.sizes, args.dtype)
    name = "-".join(map(str, cost.sizes))
    table = Table("layer", "Jacobian", "shape", "bytes per sample", "multiply-adds per sample",
                  title=f"jacobian mode, {name}, {cost.dtype}: one sample's chain")
    for j in cost.jacobians:
        table.add_row(str(j.layer), j.name, f"{j.shape[0]} x {j.shape[1]}", _size(j.bytes),
                      f"{j.macs:,}")
    out.print(table)
    both = Table("", "shortcut", "jacobian", "jacobian / shortcut",
                 title=f"per gradient step of {args.batch} samples")
    rows = [("peak live memory", cost.shortcut_peak_bytes(args.batch),
             cost.jacobian_peak_bytes(args.batch), _size),
            ("FLOPs per sample", cost.shortcut_flops_per_sample(),
             cost.jacobian_flops_per_sample(), lambda v: f"{v:,}")]
    for label, short, jac, fmt in rows:
        both.add_row(label, fmt(short), fmt(jac), f"{jac / short:,.0f}x")
    out.print(both)
    out.print(f"The jacobian mode keeps one sample's Jacobians live at a time: "
              f"{_size(cost.jacobian_sample_peak_bytes())} of them at the peak.")
    return 0
