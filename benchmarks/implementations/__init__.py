"""The implementations registry: one module per framework on the small base in ``base``."""

from __future__ import annotations

from benchmarks.implementations.base import Implementation, Trained, scratch_model
from benchmarks.implementations.jax import Jax
from benchmarks.implementations.keras import BACKENDS, Keras
from benchmarks.implementations.scratch import Scratch
from benchmarks.implementations.timer import Monitor, Predict
from benchmarks.implementations.torch import Torch

IMPLEMENTATIONS: dict[str, Implementation] = {
    impl.name: impl for impl in (Scratch("shortcut"), Scratch("jacobian"), Keras(tuned=False),
                                 Keras(tuned=True), Keras(False, "jax"), Keras(True, "jax"),
                                 Keras(False, "torch"), Keras(True, "torch"), Jax(), Torch(),
                                 *(Keras(False, b, form="keras") for b in BACKENDS))
}
# The peers: what an experiment runs unless told; a finding runs only where named.
PEERS = [name for name, impl in IMPLEMENTATIONS.items() if not impl.finding]


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


__all__ = ["missing_packages", "IMPLEMENTATIONS", "PEERS", "Implementation", "Monitor", "Predict",
           "Trained", "implementation_columns", "scratch_model"]
