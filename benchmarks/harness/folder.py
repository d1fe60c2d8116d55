"""A run folder: its settings in run.json, and the rule that nothing in it is overwritten."""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks.errors import UsageError

SETTINGS = "run.json"


def create(out_dir: Path, settings: dict, stems: list[str]) -> None:
    """Start a new run folder for ``settings``; refuse one that already holds results."""
    clash = [s for s in stems if (out_dir / f"{s}.csv").exists()]
    if clash:
        raise UsageError(f"{out_dir} already holds {clash[0]}.csv; nothing is overwritten. "
                         f"Use --resume {out_dir} to complete it, or another --out.")
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / SETTINGS).write_text(json.dumps(settings, indent=2))


def settings(out_dir: Path) -> dict:
    """The settings an earlier run saved in ``out_dir``."""
    saved = out_dir / SETTINGS
    if not saved.exists():
        raise UsageError(f"{out_dir} holds no run.json: it is not a groundup run folder.")
    return json.loads(saved.read_text())
