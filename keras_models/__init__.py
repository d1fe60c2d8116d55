"""The Keras twins of groundup's from-scratch networks."""

import contextlib
import os
import re
import sys
import threading

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
    """Pass what is written to stderr inside (file descriptor 2, where the native libraries
    write) on as it comes, line by line, but LOAD_NOISE's lines."""
    sys.stderr.flush()
    saved = os.dup(2)
    read, write = os.pipe()
    os.dup2(write, 2)
    os.close(write)

    def forward():
        with os.fdopen(read, "rb") as pipe:
            for line in pipe:
                if not LOAD_NOISE.search(line.decode(errors="replace")):
                    os.write(saved, line)

    forwarding = threading.Thread(target=forward, daemon=True)
    forwarding.start()
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)  # the pipe's last writer closed: the forwarding ends
        forwarding.join()
        os.close(saved)


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
