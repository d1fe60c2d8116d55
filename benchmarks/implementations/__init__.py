"""The implementations registry: one module per framework on the small base in ``base``."""

from __future__ import annotations

from benchmarks.implementations.base import Implementation, Trained, scratch_model
from benchmarks.implementations.keras import Keras
from benchmarks.implementations.scratch import Scratch
from benchmarks.implementations.timer import Monitor, Predict

IMPLEMENTATIONS: dict[str, Implementation] = {
    impl.name: impl for impl in (Scratch("shortcut"), Scratch("jacobian"), Keras(tuned=False),
                                 Keras(tuned=True))
}

__all__ = ["IMPLEMENTATIONS", "Implementation", "Monitor", "Predict", "Trained", "scratch_model"]
