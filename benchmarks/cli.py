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
    commands.add_parser("list", help="show the tasks and their reference configurations")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    try:
        from benchmarks import commands as run

        return {"data": run.data_command, "list": run.list_command}[args.command](args)
    except UsageError as err:
        console.print(f"[bold red]groundup {args.command}:[/] {err}", soft_wrap=True)
        return 2
    except KeyboardInterrupt:
        console.print("[yellow]Interrupted.[/]")
        return 130


if __name__ == "__main__":
    sys.exit(main())
