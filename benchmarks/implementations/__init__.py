"""The implementations registry: one module per framework on the small base in ``base``."""

from __future__ import annotations

import importlib
import os

from benchmarks.errors import UsageError
from benchmarks.implementations.base import (
    Implementation,
    SeedBatched,
    Trained,
    package_version,
    scratch_model,
)
from benchmarks.implementations.compiled import ScratchNumba
from benchmarks.implementations.jax import Jax
from benchmarks.implementations.keras import BACKENDS, Keras
from benchmarks.implementations.scratch import Scratch
from benchmarks.implementations.timer import Monitor, Predict
from benchmarks.implementations.torch import Torch

IMPLEMENTATIONS: dict[str, Implementation] = {
    impl.name: impl for impl in (Scratch("shortcut"), Scratch("jacobian"), ScratchNumba(),
                                 Keras(tuned=False),
                                 Keras(tuned=True), Keras(False, "jax"), Keras(True, "jax"),
                                 Keras(False, "torch"), Keras(True, "torch"), Jax(), Torch(),
                                 *(Keras(False, b, form="keras") for b in BACKENDS))
}
# The peers: what an experiment runs unless told; a finding runs only where named.
PEERS = [name for name, impl in IMPLEMENTATIONS.items() if not impl.finding]

# The from-scratch network every row is checked against, and the framework the ratios
# divide by (the blog's).
SCRATCH = "scratch-shortcut"
REFERENCE = "keras"


# The packages whose versions every row records, a column each: NumPy, and what the
# registry's own implementations require, in its order (one registered from elsewhere adds
# no column: a run folder's columns stay what they were).
RECORDED = tuple(dict.fromkeys(package for impl in IMPLEMENTATIONS.values()
                               for package in ("numpy", *impl.requires)))


def recorded_packages() -> tuple[str, ...]:
    return RECORDED


def installed_version(package: str) -> str:
    """``package``'s installed version (or its -cpu build's), or '' where it is missing."""
    return package_version(package) or package_version(f"{package}-cpu")


def implementation_columns(name: str) -> dict:
    """What every row records of its implementation: framework, its version, the backend."""
    impl = IMPLEMENTATIONS.get(name)
    return {"framework": impl.framework, **impl.versions()} if impl else {}


def missing_packages(name: str) -> str:
    """Why ``name`` cannot run here and what installs it, or '' when it can."""
    impl = IMPLEMENTATIONS[name]
    missing = impl.missing()
    return (f"{name}: {', '.join(missing)} not installed (install: {impl.install})"
            if missing else "")


# Implementations defined elsewhere, registered by every process of a run (the workers
# import this registry afresh): GROUNDUP_IMPLEMENTATIONS="package.module:NAME,...", each NAME
# an Implementation. They run where --impl names them.
PLUGINS = "GROUNDUP_IMPLEMENTATIONS"


def register(impl: Implementation) -> None:
    """Add ``impl`` to the registry under its name; a name already taken is refused."""
    if impl.name in IMPLEMENTATIONS and IMPLEMENTATIONS[impl.name] is not impl:
        raise ValueError(f"an implementation named {impl.name!r} is already registered")
    IMPLEMENTATIONS[impl.name] = impl


def _plugins(entries: str) -> list[Implementation]:
    found = []
    for entry in filter(None, (e.strip() for e in entries.split(","))):
        module, _, attribute = entry.partition(":")
        try:
            found.append(getattr(importlib.import_module(module), attribute))
        except (ImportError, AttributeError) as err:
            raise UsageError(f"{PLUGINS}: cannot load {entry!r} ({err}).") from err
    return found


# Last, so that a module it loads may import anything above.
for _impl in _plugins(os.environ.get(PLUGINS, "")):
    register(_impl)


__all__ = ["missing_packages", "IMPLEMENTATIONS", "PEERS", "REFERENCE", "SCRATCH",
           "PLUGINS", "Implementation", "Monitor", "Predict", "SeedBatched", "Trained",
           "implementation_columns", "installed_version", "recorded_packages", "register",
           "scratch_model"]
