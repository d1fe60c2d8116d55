"""The work behind each ``groundup`` subcommand; ``cli.py`` only parses."""

from __future__ import annotations

import argparse
import time

from rich.console import Console
from rich.table import Table

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
    return 0


def _act(identifier) -> str:
    return identifier if isinstance(identifier, str) else repr(activations.get(identifier))
