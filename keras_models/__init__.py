"""The Keras twins of groundup's from-scratch networks."""

import contextlib
import os
import re
import sys
import tempfile

# The twins are Keras on TensorFlow; say so before keras is first imported.
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# What TensorFlow logs on a machine without a GPU as it loads and finds its devices, through
# absl before its log level applies (TF_CPP_MIN_LOG_LEVEL cannot stop it): "Could not find
# cuda drivers on your machine", "failed call to cuInit", and the absl warning before them.
LOAD_NOISE = re.compile(r"absl::InitializeLog\(\) is called|cudart_stub\.cc.*cuda drivers|"
                        r"cuda_platform\.cc.*failed call to cuInit")


@contextlib.contextmanager
def _without_load_noise():
    """Drop LOAD_NOISE's lines from what is written to stderr (file descriptor 2, where the
    native libraries write) inside; pass every other line on."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as caught:
        os.dup2(caught.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            caught.seek(0)
            text = caught.read().decode(errors="replace")
            sys.stderr.writelines(line for line in text.splitlines(keepends=True)
                                  if not LOAD_NOISE.search(line))


with _without_load_noise():
    import keras

    from keras_models.twins import (
        FORMS,
        build,
        gradients,
        keras_optimizer,
        probabilities,
        train_step,
        twin_of,
    )

    if keras.backend.backend() == "tensorflow":  # its devices found now, not at first use
        import tensorflow

        tensorflow.config.list_physical_devices()

__all__ = ["FORMS", "build", "gradients", "keras_optimizer", "probabilities", "train_step",
           "twin_of"]
