"""The Keras twins of groundup's from-scratch networks."""

import os

# The twins are Keras on TensorFlow; say so before keras is first imported.
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from keras_models.twins import build, gradients, keras_optimizer, train_step, twin_of  # noqa: E402

__all__ = ["build", "gradients", "keras_optimizer", "train_step", "twin_of"]
