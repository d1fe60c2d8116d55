"""The ``groundup`` command line."""

from __future__ import annotations

import argparse
import signal
import sys
from importlib.metadata import version

from rich.console import Console

from benchmarks.errors import Interrupted, UsageError

console = Console(stderr=True)


def build_parser() -> argparse.ArgumentParser:
    from benchmarks.experiments import EXPERIMENTS

    parser = argparse.ArgumentParser(
        prog="groundup",
        description="The same small neural networks from scratch in NumPy and in Keras, "
                    "measured side by side.")
    parser.add_argument("--version", action="version", version=f"groundup {version('groundup')}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    data = commands.add_parser("data", help="fetch or verify MNIST and print where it came from")
    data.add_argument("--data-dir", help="a folder of IDX files or an mnist.npz "
                      "(default: $GROUNDUP_DATA_DIR, then the Keras cache)")
    listing = commands.add_parser("list", help="show the experiments, tasks, configurations "
                                  "and implementations")
    listing.add_argument("--verbose", action="store_true",
                         help="also each configuration's source")
    run = commands.add_parser("run", help="run experiments, each run in a fresh process")
    run.add_argument("experiments", nargs="*", metavar="EXPERIMENT",
                     help=f"one or more of {', '.join(EXPERIMENTS)} (default: compare); "
                          "`groundup list` shows them")
    run.add_argument("--profile", choices=["quick", "full", "smoke"],
                     help="quick (default, minutes), full (the reference epochs) or smoke "
                          "(tiny, for tests: its times say nothing, and its runs share a "
                          "process per Keras backend)")
    run.add_argument("--task", action="append", metavar="TASK[/CONFIG]",
                     help="a task or task/config of the chosen experiments; repeat for several "
                          "(default: the profile's tasks)")
    run.add_argument("--impl", action="append", metavar="IMPL",
                     help="an implementation; repeat for several (default: all)")
    run.add_argument("--seeds", type=seed_count, metavar="N",
                     help=f"seeds 0..N-1, at most {MAX_SEEDS:,} (default: the profile's)")
    run.add_argument("--out", metavar="DIR",
                     help="output folder (default: results/runs/<UTC time>)")
    run.add_argument("--resume", metavar="DIR", help="complete an interrupted run in DIR, "
                     "with DIR's own selection")
    run.add_argument("--wide", action="store_true",
                     help="the summary's every column, however wide (default: what fits)")
    run.add_argument("--retry-failed", action="store_true",
                     help="with --resume: also run again the runs that ended in error, killed "
                          "or timeout (the new row supersedes the old)")
    run.add_argument("--workers", type=positive_int, metavar="N",
                     help="run the groups of runs on a local Dask cluster of N processes "
                          "(accuracy-only experiments; default: one after another, no cluster)")
    run.add_argument("--scheduler", metavar="ADDRESS",
                     help="run them on the Dask cluster whose scheduler is at ADDRESS "
                          "(tcp://host:8786); timed runs claim a machine whole")
    run.add_argument("--data-dir", help="MNIST (or another IDX dataset) folder")
    run.add_argument("--memory-budget", type=positive_float, metavar="MIB",
                     help="refuse runs predicted to need more, such as the jacobian mode's "
                          "(default: half the available memory)")
    added = set()
    for experiment in EXPERIMENTS.values():  # each experiment's own options, under its name
        options = [o for o in experiment.options if o.name not in added]
        added |= {o.name for o in options}
        if options:
            group = run.add_argument_group(f"{experiment.name} options")
            for option in options:
                if option.type is bool:
                    group.add_argument(option.flag, dest=option.name, action="store_true",
                                       help=option.help)
                else:
                    group.add_argument(option.flag, dest=option.name, type=option.type,
                                       default=option.default, help=option.help)
    model = commands.add_parser("jacobian-model", help="predict what the jacobian mode costs "
                                "for an architecture, before running it")
    model.add_argument("--sizes", type=sizes_list, default=(784, 512, 10), metavar="N,N,...",
                       help="layer widths, input first (default: 784,512,10)")
    model.add_argument("--dtype", choices=["float32", "float64"], default="float64")
    model.add_argument("--batch", type=positive_int, default=32, metavar="N",
                       help="samples per gradient step, for the peak (default: 32)")
    commands.add_parser("bench-seeds", help="XOR for 20 and 1000 seeds at once: scratch's "
                        "seed-batched networks (NumPy, compiled) against JAX's vmap, "
                        "microseconds per seed-step in interleaved rounds")
    peers = commands.add_parser("bench-peers", help="each framework peer, as the suite runs "
                                "it, against a minimal loop an expert writes in its framework "
                                "(tests/minimal): step times on XOR and MNIST batch 32")
    peers.add_argument("--out", metavar="FILE", help="also write the rows to this CSV file")
    report = commands.add_parser("report", help="rebuild the tables and plots of a run folder")
    report.add_argument("dir", metavar="DIR", nargs="?", default="results/published",
                        help="a run folder (default: results/published)")
    report.add_argument("--wide", action="store_true",
                        help="the summary's every column, however wide (default: what fits)")
    report.add_argument("--readme", action="store_true",
                        help="also rewrite README.md's headline and docs/results.md from DIR")
    publish = commands.add_parser("publish", help="every experiment's full profile and the "
                                  "benchmarks into results/published, then the README's headline "
                                  "and docs/results.md (make results; about 90 minutes)")
    publish.add_argument("--profile", choices=["full", "quick", "smoke"], default="full",
                         help="full (default: what is published), or quick/smoke to try it")
    publish.add_argument("--out", metavar="DIR", help="instead of results/published")
    publish.add_argument("--readme", metavar="FILE",
                         help="instead of the project's README.md (docs/results.md beside it)")
    publish.add_argument("--wait", action="store_true",
                         help="wait for the groundup runs going on this machine to end "
                              "(default: refuse to start beside them)")
    versus = commands.add_parser("compare", help="one run folder against another: what "
                                 "changed beyond the noise, and what differs in the machine")
    versus.add_argument("a", metavar="A", help="the old run folder (results/published is one)")
    versus.add_argument("b", metavar="B", help="the new run folder")
    versus.add_argument("--fail-above", metavar="PCT", type=non_negative_float,
                        help="exit 1 when a time grows by more than PCT%% beyond the noise")
    versus.add_argument("--md", metavar="FILE",
                        help="write the Markdown here (default: B/versus_<A's name>.md)")
    again = commands.add_parser("repeat", help="speed runs side by side: do their verdicts, "
                                "intervals and medians agree from run to run")
    again.add_argument("dirs", metavar="DIR", nargs="+",
                       help="two or more folders of `groundup run speed` (results/published "
                            "is one), oldest first")
    again.add_argument("--md", metavar="FILE", help="also write the Markdown here")
    drift = commands.add_parser("drift", help="does this machine keep its speed: fixed NumPy "
                                "and Python work timed over minutes, in windows")
    drift.add_argument("--minutes", type=positive_float, default=10.0,
                       help="how long to measure (default: 10)")
    drift.add_argument("--out", metavar="DIR", default=".",
                       help="where drift.csv (every turn) and drift.md go (default: here)")
    return parser


def sizes_list(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(s) for s in text.split(","))
    except ValueError:
        sizes = ()
    if len(sizes) < 2 or min(sizes) < 1:
        raise argparse.ArgumentTypeError(
            f"must be two or more positive widths separated by commas, e.g. 784,512,10; "
            f"got {text!r}")
    return sizes


def _positive(convert, what: str):
    """An argparse type: ``convert`` the text, and refuse anything but a positive finite."""
    def parse(text: str):
        try:
            value = convert(text)
        except ValueError:
            value = 0
        if not 0 < value < float("inf"):
            raise argparse.ArgumentTypeError(f"must be a positive {what}, got {text!r}")
        return value
    return parse


def non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a number 0 or above, got {text!r}")
    return value


positive_int = _positive(int, "whole number")
positive_float = _positive(float, "number")
MAX_SEEDS = 10_000  # each seed is a run and a row


def seed_count(text: str) -> int:
    seeds = positive_int(text)
    if seeds > MAX_SEEDS:
        raise argparse.ArgumentTypeError(f"must be at most {MAX_SEEDS:,} (each seed is a run "
                                         f"and a row), got {text!r}")
    return seeds


def main(argv: list[str] | None = None) -> int:
    try:  # the registry (GROUNDUP_IMPLEMENTATIONS) loads here
        parser = build_parser()
    except UsageError as err:
        console.print(f"[bold red]groundup:[/] {err}", soft_wrap=True)
        return 2
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    for stream in (sys.stdout, sys.stderr):  # an ASCII terminal shows '?' for a '✓'
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="replace")
    # A polite kill (SIGTERM) stops a run as Ctrl-C does: finished rows stay, workers go.
    # Ctrl-C too, unless it is ignored (a shell's background job, nohup).
    Interrupted.flag = False
    signal.signal(signal.SIGTERM, Interrupted.handler)
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signal.signal(signal.SIGINT, Interrupted.handler)
    try:
        from benchmarks import commands as run

        handlers = {"data": run.data_command, "list": run.list_command,
                    "run": run.run_command, "report": run.report_command,
                    "jacobian-model": run.jacobian_model_command,
                    "bench-seeds": run.bench_seeds_command,
                    "bench-peers": run.bench_peers_command,
                    "publish": run.publish_command, "compare": run.compare_command,
                    "repeat": run.repeat_command, "drift": run.drift_command}
        return handlers[args.command](args)
    except UsageError as err:
        console.print(f"[bold red]groundup {args.command}:[/] {err}", soft_wrap=True)
        return 2
    except KeyboardInterrupt:
        console.print("[yellow]Interrupted.[/]")
        return 130
    except OSError as err:  # a full disk, a read-only or unwritable folder
        where = f" {err.filename}" if err.filename else ""
        console.print(f"[bold red]groundup {args.command}:[/] cannot write{where}: "
                      f"{err.strerror or err}", soft_wrap=True)
        return 1


if __name__ == "__main__":
    sys.exit(main())
