"""softmax-form: the same Keras model trains a different network on each backend.

Users write ``Dense(10, activation="softmax")`` with ``"categorical_crossentropy"``. On
TensorFlow, Keras computes that cross-entropy from the softmax's logits (it reads
``output._keras_logits``, keras/src/backend/tensorflow/nn.py), so its gradient is the
fused S - y that scratch's shortcut computes. On JAX and PyTorch it normalises the
probabilities and clips them to [1e-7, 1 - 1e-7] before the log (keras/src/backend/jax/
nn.py and torch/nn.py, ``categorical_crossentropy``): a sample whose true class is below
the clip adds no gradient. The blog's MNIST configuration starts from U(-1, 1) weights,
which saturate the softmax from the first step. Each backend trains that default form
(``keras*-softmax``) beside the logits form every Keras peer uses, from the same weights
on the same batches; the identity check names the first step where a form departs.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from benchmarks.experiments.compare import measure as compare_measure
from benchmarks.harness.specs import Profile, RunSpec, Selection
from benchmarks.implementations import IMPLEMENTATIONS
from benchmarks.implementations.keras import BACKENDS, TITLES

if TYPE_CHECKING:  # pandas is for the reports: a run's worker process never imports it
    import pandas as pd

TASKS = ("mnist/blog",)
FORMS = {"": "logits (the peers' form)", "-softmax": "Dense(softmax), Keras' default"}
# Under the table on the Results page (docs/results.md): why the form is another network.
EXPLANATION = (
    "Every Keras peer above takes the softmax's logits (a linear last layer and "
    "`from_logits=True`). Keras' default form, `Dense(10, activation=\"softmax\")` with "
    "`\"categorical_crossentropy\"`, is another network off TensorFlow: TensorFlow's loss "
    "reads the softmax's logits (`output._keras_logits`, keras/src/backend/tensorflow/"
    "nn.py), while JAX's and PyTorch's clip the probabilities at 1e-7 before the log "
    "(keras/src/backend/jax/nn.py, `categorical_crossentropy`), so that a sample whose "
    "true class is below the clip adds no gradient. mnist/blog's U(-1, 1) weights "
    "saturate the softmax from the first step. The departing step is where the run's "
    "identity check first found the step's loss or update off scratch's.")
SMOKE_SAMPLES = 500


def impls() -> list[str]:
    """scratch's shortcut, then each backend's two forms."""
    suffix = {b: "" if b == "tensorflow" else f"-{BACKENDS[b]}" for b in BACKENDS}
    return ["scratch-shortcut", *(f"keras{suffix[b]}{form}" for b in BACKENDS for form in FORMS)]


def specs(profile: Profile, chosen: Selection) -> list[RunSpec]:
    """mnist/blog, seed 0, trained in full (no time budget): the quick and smoke profiles
    train one epoch, the smoke profile on SMOKE_SAMPLES samples and on JAX alone (the
    other backends' forms are checked in tests/test_identity.py)."""
    smoke = profile.name == "smoke"
    epochs = 5 if profile.name == "full" else 1
    default = ["keras-jax", "keras-jax-softmax"] if smoke else impls()
    return [RunSpec("softmax-form", "mnist", "blog", impl, seed, profile.name, epochs,
                    math.inf, profile.timeout_s, train_samples=SMOKE_SAMPLES if smoke else None,
                    data_dir=chosen.data_dir)
            for impl in chosen.impls or default for seed in range(chosen.seeds or 1)]


def backend(name: str) -> str:
    """What an implementation's maths ran on: Keras' backend, or its own framework."""
    impl = IMPLEMENTATIONS[name]
    keras_backend = getattr(impl, "backend", None)
    return TITLES[keras_backend] if keras_backend else impl.framework


def table(df: pd.DataFrame) -> str:
    """Backend x form: accuracy, final loss and where the form departs from scratch's step."""
    import pandas as pd

    rows = []
    for _, run in df.sort_values(["impl", "seed"]).iterrows():
        impl = run["impl"]
        departs = "none" if run["status"] == "ok" else (
            f"step {int(run['identity_steps']) - 1}" if run["status"] == "differs" else "")
        rows.append({
            "backend": backend(impl), "impl": impl,
            "form": FORMS["-softmax"] if IMPLEMENTATIONS[impl].finding else
            FORMS[""] if hasattr(IMPLEMENTATIONS[impl], "backend") else "the fused S - y",
            "test accuracy": f"{run['accuracy']:.4f}" if pd.notna(run.get("accuracy")) else
            "not trained in full",
            "final loss": f"{run['final_loss']:.4g}" if pd.notna(run.get("final_loss")) else "",
            "identity check": run["status"], "departs from scratch's step": departs,
            "largest relative difference": f"{run['identity_rel_diff']:.2g}"
            if pd.notna(run.get("identity_rel_diff")) else ""})
    return pd.DataFrame(rows).to_markdown(index=False)


def report(df: pd.DataFrame) -> list[str]:
    return ["## Keras' softmax form on three backends", "", table(df), "",
            "A row that says `differs` is not the network scratch trains: its accuracy is "
            "shown here as the finding, and nowhere as a result.", ""]


def measure(t) -> dict:
    """compare's scores and inference time, without the confusion matrix (compare writes
    each run's, named by task, configuration, implementation and seed)."""
    row = compare_measure(t)
    row.pop("confusion")
    return row
