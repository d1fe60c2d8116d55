"""The columns of every results CSV: one row per (experiment, task, config, impl, seed)."""

COLUMNS = {
    "experiment": "experiment name (compare, generalisation, jacobian, speed)",
    "task": "xor, reverse4 or mnist",
    "config": "reference configuration of the task (blog, tf-tutorial)",
    "impl": "implementation: scratch-shortcut, scratch-jacobian, keras, keras-tuned",
    "seed": "seed of the initial weights, shuffling and dropout",
    "status": "ok, diverged, timeout, oom, error or refused",
    "error": "what went wrong, when status is not ok",
    "dataset": "the data trained on (mnist, or an IDX dataset's folder name)",
    "profile": "quick or full",
    "epochs": "epochs the configuration asks for",
    "batch_size": "samples per step",
    "optimizer": "optimizer name",
    "learning_rate": "optimizer learning rate",
    "optimizer_config": "every optimizer setting, as JSON",
    "architecture": "layer sizes and activations",
    "dtype": "float32 or float64",
    "train_samples": "training samples used per epoch",
    "train_time_s": "training wall time in s, excluding warm-up and target checks "
                    "(extrapolated when extrapolated is true)",
    "epoch_time_s": "median training time of an epoch in s (extrapolated when extrapolated is "
                    "true)",
    "step_time_ms": "median time of one training step in ms",
    "predict_time_s": "median time of inference on the whole test set in s",
    "time_to_target_s": "training time until the task's target was first met; empty if never",
    "measured_train_time_s": "training time actually measured in s",
    "measured_epochs": "epochs actually trained (fractional when stopped mid-epoch)",
    "warmup_s": "untimed warm-up (tracing, compilation) in s",
    "final_loss": "loss of the final weights on the training set (computed by scratch's loss "
                  "for every implementation)",
    "accuracy": "xor: outputs right after rounding; reverse4: patterns reproduced exactly; "
                "mnist: test accuracy; generalisation: numbers right on the extrapolation set",
    "bit_accuracy": "xor, reverse4: fraction of output bits right after rounding",
    "precision": "mnist: macro precision on the test set",
    "recall": "mnist: macro recall on the test set",
    "f1": "mnist: macro F1 on the test set",
    "peak_rss_mib": "peak resident memory during training minus resident memory before, MiB",
    "traced_peak_mib": "what one training step allocates at its peak, by tracemalloc, MiB "
                       "(NumPy implementations only: tracemalloc does not see TensorFlow)",
    "extrapolated": "true when the run was measured on a prefix and its times extrapolated",
    "python": "Python version",
    "numpy": "NumPy version",
    "tensorflow": "TensorFlow version",
    "keras": "Keras version",
    "cpu": "CPU model",
    "cores": "logical CPU cores",
    "blas": "BLAS NumPy uses",
    "commit": "git commit of groundup (-dirty: uncommitted changes)",
    "timestamp": "UTC time the run finished",
}
KEY = ["experiment", "task", "config", "impl", "seed"]
