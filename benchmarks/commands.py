"""The work behind each ``groundup`` subcommand; ``cli.py`` only parses."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import pandas as pd
from rich.console import Console
from rich.table import Table

from benchmarks import environment
from benchmarks.cli import UsageError
from benchmarks.datasets import DataError, load_mnist
from benchmarks.tasks import CONFIGS
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
    table = Table("task", "config", "network", "optimizer", "epochs", "batch", "target", "source",
                  title="Tasks and reference configurations")
    for c in CONFIGS.values():
        opt = ", ".join(f"{k}={v}" for k, v in c.optimizer.items() if k != "name")
        drop = f", dropout {c.arch.dropout:g}" if c.arch.dropout else ""
        network = f"{c.arch} {'/'.join(map(_act, c.arch.activations))}{drop}"
        table.add_row(c.task, c.config, network,
                      f"{c.optimizer['name']} {opt}".strip(), f"{c.epochs:,}", str(c.batch_size),
                      c.target, c.source)
    out.print(table)
    from benchmarks.experiments import EXPERIMENTS
    from benchmarks.implementations import IMPLEMENTATIONS

    for title, rows in (("Experiments", ((e.name, e.description) for e in EXPERIMENTS.values())),
                        ("Implementations", ((i.name, i.description)
                                             for i in IMPLEMENTATIONS.values()))):
        listing = Table("name", "what", title=title)
        for row in rows:
            listing.add_row(*row)
        out.print(listing)
    return 0


def _act(identifier) -> str:
    return identifier if isinstance(identifier, str) else repr(activations.get(identifier))


def _choose(kind: str, wanted: list[str] | None, valid: list[str]) -> list[str]:
    if not wanted:
        return valid
    bad = [w for w in wanted if w not in valid]
    if bad:
        raise UsageError(f"unknown {kind} {', '.join(map(repr, bad))}; choose from "
                         f"{', '.join(valid)}.")
    return wanted


def run_command(args: argparse.Namespace) -> int:
    from benchmarks.experiments import EXPERIMENTS
    from benchmarks.implementations import IMPLEMENTATIONS
    from benchmarks.specs import PROFILES, Selection

    if args.resume:
        out_dir = Path(args.resume)
        saved = out_dir / "run.json"
        if not saved.exists():
            raise UsageError(f"{out_dir} holds no run.json: it is not a groundup run folder.")
        settings = json.loads(saved.read_text())
    else:
        tasks = sorted({c.task for c in CONFIGS.values()})
        settings = {
            "experiments": _choose("experiment", args.experiments or ["compare"],
                                   list(EXPERIMENTS)),
            "profile": args.profile,
            "tasks": _choose("task", args.task, sorted({*tasks, *CONFIGS})) if args.task else tasks,
            "impls": _choose("implementation", args.impl, list(IMPLEMENTATIONS)) if args.impl
            else None,
            "seeds": args.seeds,
            "data_dir": args.data_dir,
            "variants": args.variants,
            "memory_budget_mib": args.memory_budget,
        }
        out_dir = Path(args.out or Path("results") / "runs" / environment.utc_now())
        clash = [e for e in settings["experiments"] if (out_dir / f"{e}.csv").exists()]
        if clash:
            raise UsageError(f"{out_dir} already holds {clash[0]}.csv; nothing is overwritten. "
                             f"Use --resume {out_dir} to complete it, or another --out.")
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "run.json").write_text(json.dumps(settings, indent=2))
    profile = PROFILES[settings["profile"]]
    chosen = Selection(settings["tasks"], settings["impls"], settings["seeds"],
                       settings["data_dir"], settings.get("variants", False),
                       settings.get("memory_budget_mib"))
    specs = [s for e in settings["experiments"] for s in EXPERIMENTS[e].specs(profile, chosen)]
    if any(s.task == "mnist" for s in specs):
        try:
            ds = load_mnist(settings["data_dir"])
        except DataError as err:
            raise UsageError(str(err)) from None
        out.print(f"data: {ds.name} from {ds.source}", soft_wrap=True)
    return _run_specs(specs, out_dir, settings["experiments"])


def _run_specs(specs, out_dir: Path, experiments: list[str]) -> int:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from benchmarks.experiments import EXPERIMENTS
    from benchmarks.report import summarize, write_report
    from benchmarks.runner import ResultsFile, memory_limit_mib, run_one

    memory = memory_limit_mib()
    for experiment in experiments:
        own = EXPERIMENTS[experiment]
        results = ResultsFile(out_dir, own.runs_stem, own.columns)
        done = results.done()
        todo = [s for s in specs if s.experiment == experiment and s.key not in done]
        if done:
            out.print(f"resuming {results.path}: {len(done)} rows kept, {len(todo)} to run")
        columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                   TimeElapsedColumn()]
        try:
            with Progress(*columns, console=out, transient=False) as bars:
                overall = bars.add_task(f"{experiment} runs", total=len(todo))
                for spec in todo:
                    epochs = bars.add_task(f"  {spec.label()}", total=spec.epochs)
                    row = run_one(spec, out_dir,
                                  lambda d, t, e=epochs: bars.update(e, completed=d, total=t),
                                  memory)
                    results.append(row)
                    bars.remove_task(epochs)
                    bars.advance(overall)
                    bars.console.print(_summary_line(spec, row), soft_wrap=True)
        except KeyboardInterrupt:
            kept = len(results.done())
            out.print(f"[yellow]Interrupted.[/] {kept} finished rows are in {results.path}. "
                      f"Run `groundup run --resume {out_dir}` to complete the rest.",
                      soft_wrap=True)
            return 130
        if not results.path.exists():
            continue
        paths = write_report(out_dir, experiment)
        _print_table(summarize(pd.read_csv(results.path)), experiment)
        for path in [results.path, *paths]:
            out.print(f"wrote {path}", soft_wrap=True)
    return 0


def _summary_line(spec, row: dict) -> str:
    if row["status"] != "ok":
        return f"[red]✗[/] {spec.label()}: {row['status']}: {row['error']}"
    flag = " (extrapolated)" if row.get("extrapolated") else ""
    accuracy = f"accuracy {row['accuracy']:.4f}, " if row.get("accuracy") is not None else ""
    return (f"[green]✓[/] {spec.label()}: {accuracy}"
            f"train {row['train_time_s']:.3g} s{flag}, peak {row['peak_rss_mib']:.1f} MiB")


TERMINAL_COLUMNS = ["accuracy", "s/epoch", "peak MiB", "time / keras", "memory / keras",
                    "extrapolated"]


def _print_table(summary: pd.DataFrame, title: str) -> None:
    """The key columns; the .md beside the CSV has them all."""
    table = Table("task", "impl", *TERMINAL_COLUMNS, title=title)
    for _, row in summary.iterrows():
        table.add_row(f"{row['task']}/{row['config']}", row["impl"],
                      *(str(row[c]) for c in TERMINAL_COLUMNS))
    out.print(table)


def report_command(args: argparse.Namespace) -> int:
    from benchmarks.experiments import EXPERIMENTS
    from benchmarks.report import summarize, write_report

    out_dir = Path(args.dir)
    found = [e for e in EXPERIMENTS.values() if (out_dir / f"{e.runs_stem}.csv").exists()]
    if not found:
        raise UsageError(f"{out_dir} holds no results CSV; give a folder written by groundup run.")
    for experiment in found:
        paths = write_report(out_dir, experiment.name)
        _print_table(summarize(pd.read_csv(out_dir / f"{experiment.runs_stem}.csv")),
                     experiment.name)
        for path in paths:
            out.print(f"wrote {path}", soft_wrap=True)
    if args.readme:
        from benchmarks import readme

        readme.update(environment.ROOT / "README.md", out_dir)
        out.print(f"rewrote the Results section of {environment.ROOT / 'README.md'}")
    return 0


def publish_command(args: argparse.Namespace) -> int:
    from benchmarks import publish

    out_dir = Path(args.out) if args.out else publish.PUBLISHED
    readme_path = Path(args.readme) if args.readme else environment.ROOT / "README.md"
    return publish.publish(out_dir, args.profile, readme_path)


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.3g} {unit}"
        n /= 1024
    return ""


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
