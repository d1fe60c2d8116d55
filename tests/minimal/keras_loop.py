"""Keras as its guides write it: a ``Sequential``, ``compile``, ``fit``; on the backend that
KERAS_BACKEND names. MNIST's last Dense gives logits and the loss takes them, as
TensorFlow's get-started example writes it. XOR's full batch is repeated so that one
``fit`` epoch runs many steps, ``steps_per_execution`` of them per call (one on PyTorch,
which allows no more): the fast way to take many full-batch steps in Keras."""

from __future__ import annotations

import math

import keras
import numpy as np

from tests.minimal import BATCH, LEARNING_RATE

MAX_REPEATS = 1000


def make(task: str, weights: list[np.ndarray], x: np.ndarray, y: np.ndarray):
    if task == "xor":
        layers = [keras.layers.Dense(2, "sigmoid"), keras.layers.Dense(1, "sigmoid")]
        loss = "mean_squared_error"
    else:
        layers = [keras.layers.Dense(512, "relu"), keras.layers.Dense(10)]
        loss = keras.losses.CategoricalCrossentropy(from_logits=True)
    model = keras.Sequential([keras.Input((x.shape[1],)), *layers])
    model.set_weights(weights)
    model.compile(optimizer=keras.optimizers.SGD(LEARNING_RATE[task]), loss=loss)
    return KerasLoop(model, x, y, BATCH[task], repeat=task == "xor")


class KerasLoop:
    def __init__(self, model, x, y, batch: int, repeat: bool):
        self.model, self.x, self.y, self.batch, self.repeat = model, x, y, batch, repeat
        self.repeats, self.xs, self.ys = 1, x, y  # compiled for one step per call

    def run(self, epochs: int) -> None:
        if not self.repeat:
            self.model.fit(self.x, self.y, batch_size=self.batch, epochs=epochs, shuffle=False,
                           verbose=0)
            return
        repeats = math.gcd(epochs, MAX_REPEATS)  # steps per fit epoch
        if repeats != self.repeats:
            self.repeats = repeats
            per_call = 1 if keras.backend.backend() == "torch" else repeats
            self.model.compile(optimizer=self.model.optimizer, loss=self.model.loss,
                               steps_per_execution=per_call)
            self.xs, self.ys = np.tile(self.x, (repeats, 1)), np.tile(self.y, (repeats, 1))
        self.model.fit(self.xs, self.ys, batch_size=self.batch, epochs=epochs // repeats,
                       shuffle=False, verbose=0)

    def weights(self) -> list[np.ndarray]:
        return self.model.get_weights()
