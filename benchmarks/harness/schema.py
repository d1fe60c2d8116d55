"""Every CSV groundup writes: its columns, each with a unit and a meaning.

The runs CSVs have one row per (experiment, task, config, impl, seed): the shared
``COLUMNS``, then the experiment's own. results/README.md's schema section is
generated from here (``markdown()``), and tests/test_published.py checks every
published CSV against it.
"""

from __future__ import annotations

from fnmatch import fnmatch
from typing import TYPE_CHECKING

from benchmarks.implementations import IMPLEMENTATIONS, SCRATCH, recorded_packages

if TYPE_CHECKING:  # pandas is for the reports: a run's worker process never imports it
    import pandas as pd

# A run not trained in full keeps these only as measured_* (the worker moves them).
PREFIX_SCORES = ("final_loss", "accuracy", "bit_accuracy", "precision", "recall", "f1")
# column: (unit, meaning); unit "" is text, "bool" true/false, "JSON" a JSON value
COLUMNS = {
    "experiment": ("", "experiment name (`groundup list` names them)"),
    "task": ("", "xor, reverse4 or mnist"),
    "config": ("", "reference configuration of the task (blog, tf-tutorial; an experiment's "
                   "own, e.g. h512-float32)"),
    "impl": ("", "implementation (groundup list names them)"),
    "framework": ("", "the framework: " + ", ".join(
        sorted({impl.framework for impl in IMPLEMENTATIONS.values()}))),
    "framework_version": ("", "the framework's version"),
    "backend": ("", "what the framework ran on: cpu, or Keras' backend and its version"),
    "settings": ("JSON", "the implementation's own settings (a compiled call's epochs; a "
                         "calibration's choice, and each candidate's ms per step)"),
    "seed": ("count", "seed of the initial weights, shuffling and dropout"),
    "status": ("", "ok, differs (not the network scratch trains: see identity_rel_diff), "
                   "diverged, timeout, oom, error or refused"),
    "error": ("", "what went wrong, when status is not ok"),
    "dataset": ("", "the data trained on (mnist, or an IDX dataset's folder name)"),
    "profile": ("", "quick, full or smoke"),
    "epochs": ("count", "epochs the configuration asks for"),
    "batch_size": ("count", "samples per step"),
    "optimizer": ("", "optimizer name"),
    "learning_rate": ("1", "optimizer learning rate"),
    "optimizer_config": ("JSON", "every optimizer setting"),
    "architecture": ("", "layer sizes and activations"),
    "dtype": ("", "float32 or float64"),
    "train_samples": ("count", "training samples used per epoch"),
    "train_time_s": ("s", "training wall time, excluding warm-up and target checks "
                          "(extrapolated when extrapolated is true)"),
    "epoch_time_s": ("s", "median training time of an epoch (extrapolated when extrapolated "
                          "is true)"),
    "step_time_ms": ("ms", "median time of one training step"),
    "predict_time_s": ("s", "median time of inference on the whole test set"),
    "time_to_target_s": ("s", "training time until the task's target was first met; empty "
                              "if never"),
    "measured_train_time_s": ("s", "training time actually measured"),
    "measured_epochs": ("count", "epochs actually trained (fractional when stopped "
                                 "mid-epoch)"),
    "warmup_s": ("s", "untimed warm-up (tracing, compilation, a calibration)"),
    "final_loss": ("1", "loss of the final weights on the training set (computed by scratch's "
                        "loss for every implementation)"),
    "accuracy": ("fraction", "xor: outputs right after rounding; reverse4: patterns "
                             "reproduced exactly; mnist: test accuracy; generalisation: numbers "
                             "right on the extrapolation set"),
    "bit_accuracy": ("fraction", "xor, reverse4: output bits right after rounding"),
    "precision": ("fraction", "mnist: macro precision on the test set"),
    "recall": ("fraction", "mnist: macro recall on the test set"),
    "f1": ("fraction", "mnist: macro F1 on the test set"),
    "peak_rss_mib": ("MiB", "peak resident memory during training minus resident memory "
                            "before"),
    "traced_peak_mib": ("MiB", "what one training step allocates at its peak, by tracemalloc "
                               "(NumPy implementations only: tracemalloc does not see "
                               "TensorFlow)"),
    "identity_steps": ("count", "training steps of the identity check, run before the timer: "
                                "the implementation's own step on the run's first batches, "
                                "against scratch's; 0: not checked "
                                "(dropout: each framework draws its own masks); seed-batched "
                                "groups check their first seed"),
    "identity_rel_diff": ("1", "largest relative difference of those steps' losses from "
                               "scratch's, each step taken from scratch's weights at that "
                               "step: the loss, and the update's norm; over 0.05 (float32) or "
                               "1e-4 (float64) the status is differs"),
    "trained_in_full": ("bool", "the run trained on every sample its configuration asks for, "
                                "until its last epoch or its target (the atlas stops a seed "
                                "there); where not (the time budget stopped it, or it trained "
                                "on a prefix of the data) the scores below are empty, and the "
                                "prefix's are in their measured_* columns"),
    **{f"measured_{c}": ("fraction" if c != "final_loss" else "1",
                         f"{c} of what a run not trained in full trained (not a result; "
                         "empty where trained_in_full)")
       for c in PREFIX_SCORES},
    "extrapolated": ("bool", "the run was measured on a prefix and its times extrapolated"),
    "python": ("", "Python version"),
    **{package: ("", f"{package}'s version (empty: not installed)")
       for package in recorded_packages()},
    "cpu": ("", "CPU model"),
    "cores": ("count", "logical CPU cores"),
    "blas": ("", "BLAS NumPy uses"),
    "thread_pools": ("", "the BLAS and OpenMP thread pools in the run's process after training, "
                         "each with its threads (threadpoolctl): NumPy's OpenBLAS, SciPy's "
                         "wherever Numba ran array code (idle: the compiled engine calls NumPy's), "
                         "PyTorch's OpenMP"),
    "commit": ("", "git commit of groundup (-dirty: uncommitted changes)"),
    "timestamp": ("", "UTC time the run finished"),
}
KEY = ["experiment", "task", "config", "impl", "seed"]
# Columns newer than results/published: its CSVs lack them, the next `make results` writes them.
NEWER_THAN_PUBLISHED = frozenset({"framework", "framework_version", "backend", "settings",
                                  "identity_steps", "identity_rel_diff",
                                  "trained_in_full", "round_times_s", "ratio_low",
                                  "ratio_high", "rounds", "verdict", "numba", "thread_pools",
                                  "place", *(f"over_{c}{end}" for c in ("fastest", "scratch")
                                             for end in ("", "_low", "_high")),
                                  *(f"measured_{c}" for c in PREFIX_SCORES)})
NOT_NUMBERS = {"", "JSON", "bool", "s or ms"}  # the units of columns that hold no number

# Each experiment's own columns, after COLUMNS.
GENERALISATION = {
    "variant": ("", "blog, or the variant's name (--variants)"),
    "problem": ("", "reverse (the bits reversed) or identity (Marcus' even numbers)"),
    "bits": ("count", "bits per number"),
    **{f"{s}_n": ("count", f"patterns in the {name} set") for s, name in
       (("train", "training"), ("heldout", "held-out (interpolation)"),
        ("extrap", "extrapolation (first bit 1, or odd)"))},
    "train_exact": ("count", "training patterns reproduced exactly"),
    "heldout_exact": ("count", "held-out patterns reproduced exactly"),
    "extrap_exact": ("count", "extrapolation patterns reproduced exactly"),
    "train_bitwise": ("fraction", "training output bits right after rounding"),
    "heldout_bitwise": ("fraction", "held-out output bits right after rounding"),
    "extrap_bitwise": ("fraction", "extrapolation output bits right after rounding"),
    "train_bit_accuracy": ("JSON", "per output bit: fraction right on the training set"),
    "heldout_bit_accuracy": ("JSON", "per output bit: fraction right on the held-out set"),
    "extrap_bit_accuracy": ("JSON", "per output bit: fraction right on the extrapolation set"),
    "extrap_mean_output": ("JSON", "per output bit: mean output on the extrapolation set"),
    "dead_inputs": ("JSON", "input bits that are 0 in every training pattern"),
    "dead_weight_max_move": ("1", "largest change in training of a weight leaving a dead "
                                  "input"),
    "dead_grad_max": ("1", "largest gradient on those weights, at the initial and the final "
                           "weights"),
    "live_weight_median_move": ("1", "median change of the other first-layer weights"),
    "last_unit_bias": ("1", "final bias of the output unit that should copy the dead bit"),
    "last_unit_train_mean": ("1", "that unit's mean output on the training set"),
    "last_unit_extrap_mean": ("1", "that unit's mean output on the extrapolation set"),
    "generalises": ("bool", "every extrapolation pattern reproduced exactly"),
}
JACOBIAN = {
    "hidden": ("count", "hidden width H of 784-H-10"),
    "samples_trained": ("count", "samples trained (the epoch is extrapolated from them)"),
    "time_per_sample_ms": ("ms", "training time per sample"),
    "flops_per_sample": ("FLOP", "floating-point operations per training sample, by "
                                 "scratch.cost"),
    "predicted_peak_mib": ("MiB", "one training step's peak allocation, predicted by "
                                  "scratch.cost"),
    "predicted_over_traced": ("1", "predicted_peak_mib / traced_peak_mib"),
    "grad_max_diff": ("1", "largest absolute difference between the two modes' gradients"),
    "weights_max_diff": ("1", "largest absolute difference between the two modes' weights "
                              "after the same steps"),
}
SPEED_RUNS = {
    "matmul_epoch_s": ("s", "batch 128: the epoch's matrix products alone, in the library's "
                            "shapes and calls (the matmul limit); the median of passes run "
                            "between the training epochs"),
    "matmul_gflops": ("GFLOP/s", "the rate of those products"),
    "round_times_s": ("JSON", "MNIST: the interleaved rounds the run trained in, with the "
                              "others of its task and configuration: the group's id, each "
                              "round's unit time (s: its steps' own, without a framework's "
                              "per-call setup) under epoch, the parts of an epoch a unit is "
                              "(parts; absent: 1), the matmul limit's (batch 128's scratch), "
                              "and the epoch that reached the target"),
}
SPEED = {
    "metric": ("", "what is divided by what"),
    "scratch": ("s or ms", "the scratch figure (unit as the metric says)"),
    "reference": ("s or ms", "Keras' figure, or the matmul limit"),
    "ratio": ("1", "scratch / reference (lower is better): the median of the rounds' ratios "
                   "where they pair, the figures' quotient where not"),
    "target": ("1", "the largest ratio that meets the target; empty: reported only"),
    "met": ("bool", "ratio <= target; empty where there is no target"),
    "ratio_low": ("1", "the 95% interval of the ratio, its low end: the median of the "
                       "per-round ratios' order-statistic interval; empty: not interleaved"),
    "ratio_high": ("1", "its high end"),
    "rounds": ("count", "the interleaved rounds the ratio pairs"),
    "verdict": ("", "met: the interval within the target; missed: wholly beyond it; "
                    "undecided: across it, or no interval; measurement fault: wholly below "
                    "the ratio's physical floor"),
    "cpu": COLUMNS["cpu"],
    "commit": COLUMNS["commit"],
    "timestamp": ("", "UTC time the last of its runs finished"),
}
SCALING_RUNS = {
    "hidden": ("count", "hidden width H of 784-H-10"),
    "batch": ("count", "batch size"),
    "steps": ("count", "training steps timed"),
    "us_per_sample": ("us", "step time per sample"),
    "samples_per_s": ("1/s", "training samples per second"),
    "gflops": ("GFLOP/s", "the step's matrix-product FLOPs (scratch.cost) per second"),
    "fraction_of_peak": ("fraction", "gflops / peak_gflops"),
    "peak_gflops": ("GFLOP/s", "the machine's peak: a 1024^3 float32 GEMM through NumPy's BLAS, "
                               "a unit of the cell's rounds in the reference's process, "
                               "its median (empty in the others' rows; scaling.csv has it "
                               "in every row)"),
    "round_times_s": ("JSON", "the cell's interleaved rounds: the group's id, each round's unit "
                              "time (s: its steps' own, without a framework's per-call setup), "
                              "and the peak GEMM's (the reference's row: scratch)"),
}
SCALING = {  # the runs' columns that make the map, one row per cell
    **{k: COLUMNS[k] for k in ("impl", "framework", "backend")},
    **{k: SCALING_RUNS[k] for k in ("hidden", "batch", "steps")},
    "step_time_ms": ("ms", "time of one training step: the cell's median unit over its "
                           "steps"),
    "rounds": ("count", "the cell's interleaved rounds (empty: a run from before the rounds)"),
    "over_fastest": ("1", "step time over the cell's fastest: the median of the rounds' "
                          "ratios (the step times' quotient where not interleaved)"),
    "over_fastest_low": ("1", "its 95% interval, low end (order statistics of the rounds' "
                              "ratios); empty: not interleaved"),
    "over_fastest_high": ("1", "its high end"),
    "over_scratch": ("1", "step time over the from-scratch reference's in the same cell, likewise"),
    "over_scratch_low": ("1", "its 95% interval, low end"),
    "over_scratch_high": ("1", "its high end"),
    "place": ("", "fastest: the cell's lowest step time; tied: its interval over the "
                  "fastest reaches 1; empty: slower"),
    **{k: SCALING_RUNS[k] for k in ("us_per_sample", "samples_per_s", "gflops",
                                    "fraction_of_peak")},
    "peak_rss_mib": COLUMNS["peak_rss_mib"],
    "warmup_s": ("s", "the cell's warm-up: compilation, calibration"),
    "settings": COLUMNS["settings"],
    "peak_gflops": SCALING_RUNS["peak_gflops"],
    **{k: COLUMNS[k] for k in ("cpu", "commit", "timestamp")},
}
ATLAS_RUNS = {
    "hidden": ("count", "hidden width H of the 2-H-1 net"),
    "initializer": ("", "the kernels' initializer: glorot_uniform, uniform (U(-1, 1)) or "
                        "standard_normal (N(0, 1))"),
    "converged": ("bool", "all four outputs right after rounding at the end"),
    "epochs_to_converge": ("count", "epochs done at the first check with all four right"),
    "grad_norm": ("1", "L2 norm of the final weights' gradient, every weight and bias"),
    "loss_fall": ("fraction", "relative fall of the loss over the last tenth of the epochs"),
    "failure": ("", "a seed that did not converge: local minimum, plateau or stalled "
                    "(thresholds in atlas.md)"),
}
ATLAS = {
    "impl": COLUMNS["impl"],
    "hidden": ATLAS_RUNS["hidden"],
    "learning_rate": COLUMNS["learning_rate"],
    "initializer": ATLAS_RUNS["initializer"],
    "seeds": ("count", "seeds trained"),
    "converged": ("count", "seeds that converged"),
    "rate": ("fraction", "converged / seeds"),
    "rate_low": ("fraction", "the rate's Wilson 95% interval, low end"),
    "rate_high": ("fraction", "the rate's Wilson 95% interval, high end"),
    "median_epoch": ("count", "median epochs_to_converge of the seeds that converged"),
    "local_minimum": ("count", "failed seeds in a local minimum"),
    "plateau": ("count", "failed seeds whose loss was still falling"),
    "stalled": ("count", "failed seeds neither"),
}
CURVES = {
    **{k: COLUMNS[k] for k in KEY},
    "epoch": ("count", "epochs completed when the loss was recorded"),
    "loss": ("1", "mean training loss of that epoch"),
}
CONFUSION = {
    "true_label": ("", "the digit an image shows"),
    **{str(d): ("count", f"test images of that digit predicted as {d}") for d in range(10)},
}
BENCH_STATS = {
    "group": ("", "what is timed, on which task"),
    "name": ("", "pytest's test id: the benchmark and its parameters"),
    **{f"{k}_s": ("s", f"{k} of the timed rounds") for k in
       ("median", "iqr", "mean", "stddev", "min", "max")},
    "rounds": ("count", "timed rounds"),
    "impl": COLUMNS["impl"],
    "task": COLUMNS["task"],
    "config": COLUMNS["config"],
    "operation": ("", "the operation timed"),
    "samples": ("count", "samples per call"),
    "batch_size": COLUMNS["batch_size"],
    "correct": ("bool", "the benchmark's correctness check passed"),
    "max_abs_diff_vs_scratch": ("1", "largest difference from the scratch twin's outputs"),
    "loss_before": ("1", "training loss before the timed calls"),
    "loss_after": ("1", "training loss after them"),
    "accuracy_untrained": ("fraction", "test accuracy of the untrained network"),
}

# Path pattern (relative to a results folder) -> (description, columns, all required).
SCHEMAS = {
    "compare.csv": ("every implementation on every task", COLUMNS, True),
    "softmax-form.csv": ("Keras' default softmax form against the logits form, per backend",
                         COLUMNS, True),
    "generalisation.csv": ("the reversal failure and its variants",
                           {**COLUMNS, **GENERALISATION}, True),
    "jacobian.csv": ("explicit Jacobians against the shortcut, H = 8 ... 512",
                     {**COLUMNS, **JACOBIAN}, True),
    "speed_runs.csv": ("the runs behind the speed targets", {**COLUMNS, **SPEED_RUNS}, True),
    "speed.csv": ("the speed targets, one row per metric", SPEED, True),
    "scaling_runs.csv": ("the runs of the scaling map, one per implementation x width x batch",
                         {**COLUMNS, **SCALING_RUNS}, True),
    "scaling.csv": ("the scaling map: implementation x hidden width x batch size", SCALING,
                    True),
    "atlas_runs.csv": ("the XOR convergence atlas, one row per seed",
                       {**COLUMNS, **ATLAS_RUNS}, True),
    "atlas.csv": ("the XOR convergence atlas, one row per cell", ATLAS, True),
    "*_curves.csv": ("training-loss curves, long format", CURVES, True),
    "confusion/*.csv": ("MNIST test-set confusion matrix of one run", CONFUSION, True),
    "benchmarks/*/*.csv": ("pytest-benchmark statistics with each benchmark's extra_info "
                           "(extra_info columns appear when some benchmark sets them)",
                           BENCH_STATS, False),
}


def schema_for(relative_path: str) -> tuple[str, dict, bool] | None:
    """The schema of a CSV at this path inside a results folder, if it is documented."""
    for pattern, schema in SCHEMAS.items():
        if fnmatch(relative_path, pattern) and ("/" in pattern) == ("/" in relative_path):
            return schema
    return None


def trained_in_full(df: pd.DataFrame) -> pd.Series:
    """Which rows trained their configuration in full. In rows older than the
    trained_in_full column, the extrapolated ones did not."""
    import pandas as pd

    older = (~df["extrapolated"].astype(str).eq("True") if "extrapolated" in df
             else pd.Series(True, index=df.index))
    if "trained_in_full" not in df:
        return older
    said = df["trained_in_full"]  # empty in rows older than the column (a resumed folder)
    return said.astype(str).eq("True").where(said.notna(), older)


def results_only(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` with no score of a run that did not train in full: the scores of what it
    trained move to measured_* (as the worker writes them), so that no table or plot shows
    them among results."""
    import pandas as pd

    full = trained_in_full(df)
    df = df.assign(trained_in_full=full)
    for column in PREFIX_SCORES:
        if column in df:
            measured = f"measured_{column}"
            kept = df[measured] if measured in df else pd.Series(float("nan"), index=df.index)
            df[measured] = kept.fillna(df[column].where(~full))  # the worker's, or moved here
            df[column] = df[column].where(full)
    return df if "identity_steps" in df else older_differs(df)


OLDER_MNIST_TOLERANCE = 0.01  # test accuracy; the same network ends within 0.005 of scratch's


def older_differs(df: pd.DataFrame) -> pd.DataFrame:
    """Rows written before the identity check: a compare MNIST run trained in full whose test
    accuracy is more than OLDER_MNIST_TOLERANCE from scratch-shortcut's on the same
    configuration and seed trained another network (Keras' clipped softmax form on JAX and
    PyTorch did): it ``differs``, and no table shows it as a result."""
    if not {"experiment", "accuracy", "status"} <= set(df.columns):
        return df
    key = ["experiment", "task", "config", "seed"]
    scratch = df[df["impl"].eq(SCRATCH) & df["status"].eq("ok")]
    reference = scratch.set_index(key)["accuracy"].rename("scratch_accuracy")
    joined = df.join(reference, on=key)
    off = (joined["experiment"].eq("compare") & joined["task"].eq("mnist")
           & joined["status"].eq("ok")
           & ((joined["accuracy"] - joined["scratch_accuracy"]).abs() > OLDER_MNIST_TOLERANCE))
    df = df.assign(error=df["error"].astype(object) if "error" in df else None)
    df.loc[off, "status"] = "differs"
    df.loc[off, "error"] = [
        f"predates the identity check: test accuracy {a:.4f} against scratch's {r:.4f} on the "
        "same seed, so not the network scratch trains" for a, r in
        zip(joined.loc[off, "accuracy"], joined.loc[off, "scratch_accuracy"], strict=True)]
    return df


def markdown() -> str:
    """The schema tables for results/README.md."""
    lines = []
    for pattern, (what, columns, _) in SCHEMAS.items():
        lines += [f"### `{pattern}`: {what}", ""]
        shared = columns is not COLUMNS and list(columns)[:len(COLUMNS)] == list(COLUMNS)
        if shared:  # a runs CSV: the shared columns, then the experiment's own
            lines += ["The columns of `compare.csv`, then:", ""]
            columns = {k: v for k, v in columns.items() if k not in COLUMNS}
        lines += ["| column | unit | meaning |", "| --- | --- | --- |"]
        lines += [f"| {name} | {unit} | {meaning} |" for name, (unit, meaning) in columns.items()]
        lines.append("")
    return "\n".join(lines)
