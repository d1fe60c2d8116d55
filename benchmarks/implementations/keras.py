"""Keras 3 on each backend: ``fit`` as the reference examples call it, and tuned.

Keras picks its backend once, when first imported: ``activate`` names it in the run's
own process before anything imports Keras.
"""

from __future__ import annotations

import os
import sys
import time

import numpy as np

from benchmarks.data.tasks import TaskConfig
from benchmarks.implementations.base import (
    Implementation,
    largest_divisor,
    package_version,
    shuffled_epochs,
)
from benchmarks.implementations.timer import Monitor, Predict

TUNED_STEPS = 50  # keras-tuned's steps_per_execution candidate on minibatch tasks
CALIBRATION_STEPS = 100  # minibatches that time a candidate (two executions of 50)
CALIBRATION_EPOCHS = 20  # epochs that time plain fit on a full batch (about 0.1 s each)
PLAIN = {"jit_compile": "auto", "steps_per_execution": 1, "repeat": False}  # Keras' defaults
BACKENDS = {"tensorflow": "tf", "jax": "jax", "torch": "torch"}
TITLES = {"tensorflow": "TensorFlow", "jax": "JAX", "torch": "PyTorch"}
BACKEND_PACKAGES = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}


# What makes each Keras peer fast, by (backend, tuned).
WHY_FAST = {
    ("tensorflow", False): "TensorFlow's compiled train step, one per execution",
    ("tensorflow", True): "the calibrated settings: XLA steps, many per execution, or a "
                          "repeated full batch",
    ("jax", False): "each train step one XLA program, Keras' trainer loop around it",
    ("jax", True): "XLA steps, and where calibrated, many per execution",
    ("torch", False): "eager PyTorch under Keras' trainer",
    ("torch", True): "eager PyTorch under Keras' trainer, calibrated",
}


class Keras(Implementation):
    """``fit`` as the reference examples call it, or (tuned) the fastest correct way here.

    Tuned: XLA-compiled steps, several steps per execution, and for the full-batch
    tasks one ``fit`` over the batch repeated, instead of one ``fit`` epoch per step.
    """

    framework = "keras"

    def __init__(self, tuned: bool, backend: str = "tensorflow", form: str = "logits"):
        self.tuned, self.backend, self.form = tuned, backend, form
        self._settings: dict[int, dict] = {}  # each model's, by id
        self._probabilities: dict[int, object] = {}  # each model's probability model, by id
        self._last: tuple[str, object] | None = None  # (what it was built for, the model)
        self._warm: dict[int, tuple] = {}  # a model's warm-up, while its compilation stands
        self._calibrated: dict[tuple, dict] = {}  # each task's calibrated settings
        self.requires = (BACKEND_PACKAGES[backend], "keras")
        self.process_backend = backend
        self.why_fast = WHY_FAST[backend, tuned]
        if backend == "torch":
            self.install = "make torch"
        suffix = "" if backend == "tensorflow" else f"-{BACKENDS[backend]}"
        self.name = "keras" + suffix + ("-tuned" if tuned else "") + (
            "-softmax" if form == "keras" else "")
        on = f" on {TITLES[backend]}" if suffix else ""
        self.description = (f"Keras{on}, the fastest settings a calibration finds" if tuned
                            else f"Keras{on}, fit() as the reference examples call it")
        if form == "keras":
            self.finding = ("Keras' default form, Dense(softmax) + categorical_crossentropy: "
                            "another network off TensorFlow where the softmax saturates")
            self.description = f"Keras{on}, Dense(softmax) + categorical_crossentropy, fit()"

    def activate(self) -> None:
        """Choose the backend; refuses once Keras is imported with another."""
        if "keras" in sys.modules:
            import keras

            if keras.backend.backend() != self.backend:
                raise RuntimeError(f"{self.name} needs Keras on {self.backend}, but Keras is "
                                   f"already imported on {keras.backend.backend()} here.")
        os.environ["KERAS_BACKEND"] = self.backend
        if self.backend == "jax":
            from benchmarks.implementations.jax import _jax

            _jax()  # 64-bit mode, for the float64 runs

    def versions(self) -> dict:
        return {"framework_version": package_version("keras"),
                "backend": f"{self.backend} {package_version(BACKEND_PACKAGES[self.backend])}"}

    def build(self, cfg, weights, dtype, seed):
        """The compiled twin of ``cfg.arch`` with ``weights``. A process that trains seed
        after seed of one configuration (an accuracy-only group) gets the previous run's
        model back, its weights set and its optimizer's state zeroed: the next warm-up then
        skips the compilation that its predecessor's already did."""
        import keras_models

        built_for = repr((cfg, dtype))
        if self._last and self._last[0] == built_for:
            model = self._last[1]
            model.set_weights(weights)
            _zero_optimizer(model)
        else:
            model = keras_models.build(cfg.arch, cfg.optimizer, dtype, form=self.form,
                                       weights=weights)
            self._warm.pop(id(model), None)  # a freed model's id, reused: not warmed up
            self._probabilities[id(model)] = keras_models.probabilities(model)
            self._last = (built_for, model)
        self._settings[id(model)] = dict(PLAIN)  # as built; warm_up calibrates (or recalls)
        return model

    @staticmethod
    def full_batch(cfg: TaskConfig, n: int) -> bool:
        return cfg.batch_size >= n and not cfg.shuffle

    @staticmethod
    def chunk(epochs: int) -> int:
        """Steps per ``fit`` epoch for a repeated full batch: the largest divisor <= 1000."""
        return largest_divisor(epochs, 1000)

    def candidates(self, cfg: TaskConfig, n: int) -> list[dict]:
        """The settings keras-tuned calibrates: the plain ones first, then XLA on or off
        (TensorFlow; JAX always compiles with XLA, PyTorch never), several steps per
        execution, and for a full-batch task the batch repeated so that one ``fit`` epoch
        runs many steps."""
        if not self.tuned:
            return [dict(PLAIN)]
        jits = ("auto", True) if self.backend == "tensorflow" else ("auto",)
        # PyTorch's trainer takes one step per execution; a repeated batch still saves
        # fit's per-epoch work.
        many = 1 if self.backend == "torch" else None
        full = self.full_batch(cfg, n)
        found = [dict(PLAIN)]
        for jit in jits:
            if full:
                found.append({"jit_compile": jit, "steps_per_execution": many or "chunk",
                              "repeat": True})
            elif not many:
                found.append({"jit_compile": jit, "steps_per_execution": TUNED_STEPS,
                              "repeat": False})
            found.append({"jit_compile": jit, "steps_per_execution": 1, "repeat": False})
        return [c for i, c in enumerate(found) if c not in found[:i]]

    def runs_as(self, cfg: TaskConfig, n: int) -> str:
        """keras-torch-tuned on minibatches has one candidate, plain fit (PyTorch's trainer
        takes one step per execution; no XLA): its run would be keras-torch's."""
        if self.tuned and self.candidates(cfg, n) == [PLAIN]:
            return self.name.removesuffix("-tuned")
        return self.name

    def _compile(self, model, settings: dict, epochs: int) -> None:
        self._warm.pop(id(model), None)
        spe = settings["steps_per_execution"]
        model.compile(optimizer=model.optimizer, loss=model.loss,
                      jit_compile=settings["jit_compile"],
                      steps_per_execution=self.chunk(epochs) if spe == "chunk" else spe)

    def _feed(self, settings: dict, x, y, cfg, epochs) -> tuple[np.ndarray, np.ndarray, int]:
        """The arrays one ``fit`` epoch takes under ``settings``, and its batch size."""
        if settings["repeat"]:
            chunk = self.chunk(epochs)
            return np.tile(x, (chunk, 1)), np.tile(y, (chunk, 1)), len(x)
        return x, y, min(cfg.batch_size, len(x))

    def _seconds_per_step(self, model, settings, x, y, cfg, epochs) -> float:
        """Compile ``settings`` (one execution's worth of fit), then time a short fit, per
        step: the repeated batch once, a full batch for CALIBRATION_EPOCHS epochs, or
        CALIBRATION_STEPS minibatches."""
        self._compile(model, settings, epochs)
        xs, ys, batch = self._feed(settings, x, y, cfg, epochs)
        spe = settings["steps_per_execution"]
        first = len(xs) if settings["repeat"] else batch * spe
        model.fit(xs[:first], ys[:first], batch_size=batch, epochs=1, shuffle=False, verbose=0)
        fit_epochs = 1
        if self.full_batch(cfg, len(x)) and not settings["repeat"]:
            fit_epochs = min(epochs, CALIBRATION_EPOCHS)
        elif not settings["repeat"]:
            xs, ys = xs[:batch * CALIBRATION_STEPS], ys[:batch * CALIBRATION_STEPS]
        start = time.perf_counter()
        model.fit(xs, ys, batch_size=batch, epochs=fit_epochs, shuffle=False, verbose=0)
        return (time.perf_counter() - start) / (fit_epochs * -(-len(xs) // batch))

    @staticmethod
    def _calibration_key(cfg, x, epochs) -> tuple:
        return (repr(cfg), len(x), x.dtype.str, epochs)

    def settle(self, cfg, x, epochs: int, settings: dict | None) -> None:
        """Take ``settings`` (one of ``candidates``) as this process's calibration for
        training on ``x`` for ``epochs``: ``warm_up`` then uses them, untimed (a test tries
        one candidate this way). ``None`` forgets them: the next warm-up calibrates."""
        key = self._calibration_key(cfg, x, epochs)
        if settings is None:
            self._calibrated.pop(key, None)
        else:
            self._calibrated[key] = dict(settings)

    def warm_up(self, model, x, y, cfg, epochs):
        """keras-tuned: calibrate (the fastest of ``candidates``, each timed on a short fit;
        the times are recorded with the choice). Then compile the settings, trace the
        train step on the training shapes, and restore the weights and the optimizer."""
        weights = model.get_weights()
        candidates = self.candidates(cfg, len(x))
        key = self._calibration_key(cfg, x, epochs)  # calibrated once a process
        if len(candidates) > 1 and key not in self._calibrated:
            timed = [(self._seconds_per_step(model, c, x, y, cfg, epochs), c) for c in candidates]
            best = min(timed, key=lambda t: t[0])[1]
            self._calibrated[key] = {**best, "calibration": [
                {**c, "ms_per_step": round(1e3 * t, 4)} for t, c in timed]}
        if key in self._calibrated:
            self._settings[id(model)] = self._calibrated[key]
        settings = self._settings[id(model)]
        warm = (key, repr(settings))
        if self._warm.get(id(model)) != warm:  # else compiled and traced for this already
            self._compile(model, settings, epochs)
            xs, ys, batch = self._feed(settings, x, y, cfg, epochs)
            first = len(xs) if settings["repeat"] else batch  # one execution's worth
            model.fit(xs[:first], ys[:first], batch_size=batch, epochs=1, shuffle=False,
                      verbose=0)
            self._warm[id(model)] = warm
        model.set_weights(weights)
        _zero_optimizer(model)
        self.predict(model, x[:2])

    def settings(self, model) -> dict:
        return self._settings[id(model)]

    def chose(self, settings):
        """A tuned run that chose plain fit runs plain Keras' settings: its gap to that row
        is the shared machine's noise between two runs, not the settings."""
        words = [w for w, on in (("XLA", settings["jit_compile"] is True),
                                 (f"{settings['steps_per_execution']} steps per execution",
                                  settings["steps_per_execution"] != 1),
                                 ("the batch repeated", settings["repeat"])) if on]
        return ", ".join(words) or "plain fit's: a gap to the plain row is run-to-run noise"

    def train(self, model, x, y, cfg, epochs, seed, monitor):
        predict = self._fast_predict(model)
        settings = self._settings[id(model)]
        if settings["repeat"]:
            xs, ys, n = self._feed(settings, x, y, cfg, epochs)
            chunk = len(xs) // n
            callback = _keras_callback(monitor, predict, epochs_per_fit_epoch=chunk)
            monitor.start()
            model.fit(xs, ys, batch_size=n, epochs=epochs // chunk, shuffle=False, verbose=0,
                      callbacks=[callback])
            return
        callback = _keras_callback(monitor, predict, epochs_per_fit_epoch=1)
        if not cfg.shuffle:
            monitor.start()
            model.fit(x, y, batch_size=cfg.batch_size, epochs=epochs, shuffle=False, verbose=0,
                      callbacks=[callback])
            return
        monitor.start()
        for _, xs, ys in shuffled_epochs(x, y, epochs, seed, monitor):
            model.fit(xs, ys, batch_size=cfg.batch_size, epochs=1, shuffle=False, verbose=0,
                      callbacks=[callback])
            if model.stop_training:
                break

    def gradients(self, model, x, y):
        import keras_models

        return keras_models.gradients(model, x, y)

    def train_step(self, model, x, y):
        import keras_models

        return keras_models.train_step(model, x, y)

    def untimed(self, cfg, x, epochs):
        """keras-tuned: its first candidate beyond plain fit's, uncalibrated."""
        candidates = self.candidates(cfg, len(x))
        if len(candidates) > 1:
            self.settle(cfg, x, epochs, candidates[1])

    def bench_step(self, model):
        return model.train_on_batch  # Keras' own float32 path

    def bench_epoch(self, model, x, y, cfg):
        """Plain Keras on TensorFlow's epoch is one fit(epochs=1) call, the blog's way; the
        others' is one compiled step (the small tasks' epoch is one full batch)."""
        if self.tuned or self.backend != "tensorflow":
            return lambda: model.train_on_batch(x, y)
        return lambda: model.fit(x, y, epochs=1, batch_size=cfg.batch_size, shuffle=False,
                                 verbose=0)

    def _fast_predict(self, model) -> Predict:
        import keras

        probabilities = self._probabilities[id(model)]
        return lambda x: keras.ops.convert_to_numpy(probabilities(x, training=False))

    def predict(self, model, x):
        """The output activation's values: the probability model's, where the twin
        returns logits."""
        probabilities = self._probabilities[id(model)]
        if self.tuned:
            return np.asarray(probabilities.predict_on_batch(x))
        return probabilities.predict(x, verbose=0)


def _zero_optimizer(model) -> None:
    """The optimizer as new: its step count and its state (momentum, moments) zero."""
    for v in model.optimizer.variables:
        if v.name != "learning_rate":
            v.assign(np.zeros(v.shape, v.dtype))


def _keras_callback(monitor: Monitor, predict: Predict, epochs_per_fit_epoch: int):
    import keras

    class MonitorCallback(keras.callbacks.Callback):
        """Keras calls on_train_batch_end once per execution, with the index its last step
        would have with a whole execution: past the epoch's end when the epoch's steps are
        no multiple of steps_per_execution, so the count stops at the epoch's steps."""

        def on_epoch_begin(self, epoch, logs=None):
            self.seen = 0

        def on_train_batch_end(self, batch, logs=None):
            done = min(batch + 1, self.params.get("steps") or batch + 1)
            steps, self.seen = done - self.seen, done
            if monitor.batch_end(steps):
                self.model.stop_training = True

        def on_epoch_end(self, epoch, logs=None):
            if monitor.epoch_end(float(logs["loss"]), predict, epochs_per_fit_epoch):
                self.model.stop_training = True

    return MonitorCallback()
