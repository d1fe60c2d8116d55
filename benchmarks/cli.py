"""The ``groundup`` command line."""

from __future__ import annotations

import argparse
import sys
from importlib.metadata import version

from rich.console import Console

console = Console(stderr=True)


class UsageError(Exception):
    """Bad input from the user: printed as a message, never as a traceback."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="groundup",
        description="The same small neural networks from scratch in NumPy and in Keras, "
                    "measured side by side.")
    parser.add_argument("--version", action="version", version=f"groundup {version('groundup')}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    data = commands.add_parser("data", help="fetch or verify MNIST and print where it came from")
    data.add_argument("--data-dir", help="a folder of IDX files or an mnist.npz "
                      "(default: $GROUNDUP_DATA_DIR, then the Keras cache)")
    commands.add_parser("list", help="show the experiments, tasks, configurations and "
                        "implementations")
    run = commands.add_parser("run", help="run experiments, each run in a fresh process")
    run.add_argument("experiments", nargs="*", metavar="EXPERIMENT",
                     help="compare (default: all)")
    run.add_argument("--profile", choices=["quick", "full", "smoke"], default="quick",
                     help="quick (default, minutes), full (the reference epochs) or smoke "
                          "(tiny, for tests)")
    run.add_argument("--task", action="append", metavar="TASK[/CONFIG]",
                     help="a task or task/config; repeat for several (default: all)")
    run.add_argument("--impl", action="append", metavar="IMPL",
                     help="an implementation; repeat for several (default: all)")
    run.add_argument("--seeds", type=positive_int, metavar="N",
                     help="seeds 0..N-1 (default: the profile's)")
    run.add_argument("--out", metavar="DIR",
                     help="output folder (default: results/runs/<UTC time>)")
    run.add_argument("--resume", metavar="DIR", help="complete an interrupted run in DIR")
    run.add_argument("--data-dir", help="MNIST (or another IDX dataset) folder")
    report = commands.add_parser("report", help="rebuild the tables and plots of a run folder")
    report.add_argument("dir", metavar="DIR")
    return parser


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive whole number, got {text!r}")
    return value


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    try:
        from benchmarks import commands as run

        handlers = {"data": run.data_command, "list": run.list_command,
                    "run": run.run_command, "report": run.report_command}
        return handlers[args.command](args)
    except UsageError as err:
        console.print(f"[bold red]groundup {args.command}:[/] {err}", soft_wrap=True)
        return 2
    except KeyboardInterrupt:
        console.print("[yellow]Interrupted.[/]")
        return 130


if __name__ == "__main__":
    sys.exit(main())
