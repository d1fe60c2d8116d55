"""Files written whole: a temporary file beside the target, then a rename, so a full disk
or a kill never leaves a 0-byte or half-written table, plot or cache."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path


def write_atomic(path: Path, write: Callable) -> Path:
    """``write(file)`` into a temporary file beside ``path``, then rename it into place."""
    with naming(path):
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        os.fchmod(fd, 0o644)  # as a file written in place would be, not mkstemp's 0600
        try:
            with os.fdopen(fd, "wb") as f:
                write(f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    return path


# GROUNDUP_PLOTS=0: `groundup run` and `report` write the tables without the PNG plots
# (matplotlib takes about 2 s a run); a publish always draws them.
PLOTS = "GROUNDUP_PLOTS"


def plots_wanted() -> bool:
    return os.environ.get(PLOTS, "1") != "0"


def save_figure(fig, path: Path, tight: bool = True) -> Path:
    """A matplotlib figure (laid out tight, unless it places its own axes) as a PNG written
    whole; the figure is closed."""
    import matplotlib.pyplot as plt

    if tight:
        fig.tight_layout()
    write_atomic(path, lambda f: fig.savefig(f, format="png", dpi=110))
    plt.close(fig)
    return path


@contextlib.contextmanager
def naming(path: Path) -> Iterator[None]:
    """Give an OSError that names no file (a full disk at a write or an fsync) ``path``, so
    that the user is told which file could not be written."""
    try:
        yield
    except OSError as err:
        if err.filename is not None or err.errno is None:
            raise
        raise OSError(err.errno, err.strerror, str(path)) from err
