"""The Keras twins of groundup's from-scratch networks."""

import os

# The twins are Keras on TensorFlow; say so before keras is first imported.
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from keras_models.twins import (  # noqa: E402
    FORMS,
    build,
    gradients,
    keras_optimizer,
    probabilities,
    train_step,
    twin_of,
)

__all__ = ["FORMS", "build", "gradients", "keras_optimizer", "probabilities", "train_step",
           "twin_of"]
