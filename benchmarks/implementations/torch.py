"""Native PyTorch, as its tutorials write it: an ``nn.Sequential``, a ``torch.optim``
optimizer, and batches sliced from tensors loaded once; ``torch.compile`` on the model
where a short calibration finds it faster, with the choice recorded in the row.

The network ends in logits where the loss takes them (cross-entropy of a softmax or
sigmoid output, as ``F.cross_entropy`` and ``F.binary_cross_entropy_with_logits``
want), and in its output activation otherwise. SGD, momentum and Nesterov are
``torch.optim.SGD``, whose rule equals Keras' for a constant learning rate. Adam is
not ``torch.optim.Adam``: that one adds epsilon to the bias-corrected sqrt(v_hat), where
Keras adds it to sqrt(v), a different update rule; ``keras_adam`` is a
``torch.optim.Optimizer`` with Keras' rule. Hyperparameters are rounded as Keras rounds
them (``scratch.optimizers.keras_value``).
"""

from __future__ import annotations

import copy
import logging
import math
import time
from functools import cache

import numpy as np

from benchmarks.implementations.base import Implementation, activation, shuffled_epochs
from benchmarks.implementations.timer import Monitor
from scratch import activations, optimizers
from scratch.optimizers import keras_value

# Eager against compiled: each timed over at least this many steps and seconds, after
# one untimed step (which compiles)
CALIBRATION_STEPS, CALIBRATION_S = 5, 0.2
LOGIT_LOSSES = {("categorical_crossentropy", "softmax"), ("sparse_categorical_crossentropy",
                                                          "softmax"),
                ("binary_crossentropy", "sigmoid")}


def _torch():
    import torch

    # torch.compile's C++ toolchain check warns "No CUDA runtime is found" on every CPU run
    logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)
    return torch


def _loss(name: str, output: str):
    """The batch-mean loss of the network's output (logits where the loss takes them)."""
    F = _torch().nn.functional
    losses = {("mean_squared_error", output): F.mse_loss,
              ("categorical_crossentropy", "softmax"): F.cross_entropy,
              ("sparse_categorical_crossentropy", "softmax"): F.cross_entropy,
              ("binary_crossentropy", "sigmoid"): F.binary_cross_entropy_with_logits}
    if (name, output) not in losses:
        raise ValueError(f"The torch implementation has no {name} on a {output} output.")
    return losses[name, output]


@cache
def keras_adam():
    """``torch.optim.Optimizer`` with Keras' Adam rule (epsilon added to sqrt(v))."""
    torch = _torch()

    class KerasAdam(torch.optim.Optimizer):
        def __init__(self, params, lr: float, beta_1: float, beta_2: float, epsilon: float):
            super().__init__(params, {"lr": lr, "betas": (beta_1, beta_2), "eps": epsilon})

        @torch.no_grad()
        def step(self, closure=None):
            for group in self.param_groups:
                b1, b2 = group["betas"]
                for p in group["params"]:
                    state = self.state[p]
                    if not state:
                        state.update(t=0, m=torch.zeros_like(p), v=torch.zeros_like(p))
                    state["t"] += 1
                    t, m, v, g = state["t"], state["m"], state["v"], p.grad
                    # in float64, as scratch and Keras compute it
                    alpha = (group["lr"] * math.sqrt(1 - keras_value(b2) ** t)
                             / (1 - keras_value(b1) ** t))
                    m.add_((g - m) * (1 - b1))
                    v.add_((g * g - v) * (1 - b2))
                    p.sub_(alpha * m / (v.sqrt() + group["eps"]))

    return KerasAdam


def _optimizer(config: dict, params):
    torch = _torch()
    opt = optimizers.get(dict(config))
    lr = keras_value(opt.learning_rate)
    if isinstance(opt, optimizers.SGD):
        return torch.optim.SGD(params, lr=lr, momentum=keras_value(opt.momentum),
                               nesterov=opt.nesterov)
    return keras_adam()(params, lr, opt.beta_1, opt.beta_2, opt.epsilon)


class TorchModel:
    """The ``nn.Sequential``, its loss and optimizer, and the (maybe compiled) forward."""

    def __init__(self, cfg, weights: list[np.ndarray], dtype: str, seed: int):
        torch = _torch()
        nn = torch.nn
        arch = cfg.arch
        torch.manual_seed(seed)  # dropout's masks
        self.dtype = getattr(torch, np.dtype(dtype).name)
        output = activations.get(arch.activations[-1]).name
        self.logits = (arch.loss, output) in LOGIT_LOSSES
        layers = []
        for i, act in enumerate(arch.activations):
            layers.append(nn.Linear(arch.sizes[i], arch.sizes[i + 1]))
            last = i == len(arch.activations) - 1
            if not (last and self.logits):
                layers.append(activation(act, nn, "torch")())
            if arch.dropout and not last:
                layers.append(nn.Dropout(arch.dropout))
        self.net = nn.Sequential(*layers).to(self.dtype)
        self.set_weights(weights)
        self.output = (activation(arch.activations[-1], nn, "torch")() if self.logits
                       else nn.Identity())
        self.loss = _loss(arch.loss, output)
        self.optimizer = _optimizer(cfg.optimizer, self.net.parameters())
        self.forward = self.net  # torch.compile(self.net) where calibrated faster
        self.compiled = False

    def linears(self):
        return [m for m in self.net if isinstance(m, _torch().nn.Linear)]

    def set_weights(self, weights: list[np.ndarray]) -> None:
        torch = _torch()
        with torch.no_grad():
            for layer, w, b in zip(self.linears(), weights[::2], weights[1::2]):
                layer.weight.copy_(torch.as_tensor(np.asarray(w).T))
                layer.bias.copy_(torch.as_tensor(np.asarray(b)))

    def get_weights(self) -> list[np.ndarray]:
        """[W1, b1, ...] in Keras' layout (torch keeps W transposed)."""
        return [a for layer in self.linears()
                for a in (layer.weight.detach().numpy().T.copy(), layer.bias.detach().numpy())]

    def tensors(self, x: np.ndarray, y: np.ndarray | None = None):
        """Inputs in the model's dtype, and float targets too (class labels become int64)."""
        torch = _torch()
        xt = torch.as_tensor(np.asarray(x)).to(self.dtype)
        if y is None:
            return xt
        yt = torch.as_tensor(np.asarray(y))
        return xt, yt.to(self.dtype) if yt.is_floating_point() else yt.long()

    def step(self, xb, yb):
        """One optimizer step, as the tutorials write it; the batch loss (a tensor)."""
        self.optimizer.zero_grad()
        loss = self.loss(self.forward(xb), yb)
        loss.backward()
        self.optimizer.step()
        return loss.detach()

    def epoch(self, xt, yt, batch_size: int, monitor: Monitor | None = None):
        """One epoch over the batches in order; its mean loss (a tensor)."""
        total = 0
        for i in range(0, len(xt), batch_size):
            xb, yb = xt[i:i + batch_size], yt[i:i + batch_size]
            total = total + self.step(xb, yb) * len(xb)
            if monitor is not None and monitor.batch_end():
                break
        return total / len(xt)

    def predict(self, x: np.ndarray) -> np.ndarray:
        torch = _torch()
        self.net.eval()
        try:
            with torch.no_grad():
                return self.output(self.forward(self.tensors(x))).numpy()
        finally:
            self.net.train()

    def gradients(self, x, y) -> tuple[float, list[np.ndarray]]:
        xt, yt = self.tensors(x, y)
        self.optimizer.zero_grad()
        loss = self.loss(self.forward(xt), yt)
        loss.backward()
        grads = [a for layer in self.linears()
                 for a in (layer.weight.grad.numpy().T.copy(), layer.bias.grad.numpy().copy())]
        self.optimizer.zero_grad()
        return float(loss.detach()), grads

    def snapshot(self):
        """The weights and optimizer state, to restore after warm-up steps."""
        return copy.deepcopy((self.net.state_dict(), self.optimizer.state_dict()))

    def restore(self, snap) -> None:
        weights, state = snap
        self.net.load_state_dict(weights)
        self.optimizer.load_state_dict(state)


class Torch(Implementation):
    name = "torch"
    framework = "torch"
    requires = ("torch",)
    install = "make torch"
    description = "PyTorch, nn.Sequential and torch.optim; torch.compile where faster"
    why_fast = ("eager PyTorch: one small dispatch per operation into ATen's CPU kernels, and "
                "torch.compile where the calibration found it faster")
    # torch.compile's import of triton aborts a process that has loaded TensorFlow
    process_backend = "torch"

    def build(self, cfg, weights, dtype, seed):
        return TorchModel(cfg, weights, dtype, seed)

    def chose(self, settings):
        return "torch.compile" if settings["compile"] else "eager (compile was slower)"

    def _time_steps(self, model: TorchModel, xt, yt, batch_size: int) -> float:
        """Seconds a step: one untimed step (compiles), then at least CALIBRATION_STEPS
        steps and CALIBRATION_S seconds, timed."""
        batches = [(xt[i:i + batch_size], yt[i:i + batch_size])
                   for i in range(0, len(xt), batch_size)]
        model.step(*batches[0])
        steps, start = 0, time.perf_counter()
        while steps < CALIBRATION_STEPS or time.perf_counter() - start < CALIBRATION_S:
            model.step(*batches[steps % len(batches)])
            steps += 1
        return (time.perf_counter() - start) / steps

    def warm_up(self, model, x, y, cfg, epochs):
        """Calibrate: time eager steps, then steps of ``torch.compile(net)`` (compiled for
        the full and the remainder batch); keep the faster, recorded with both times.
        The weights and the optimizer state are restored afterwards."""
        torch = _torch()
        xt, yt = model.tensors(x, y)
        batch = min(cfg.batch_size, len(x))
        snap = model.snapshot()
        eager = self._time_steps(model, xt, yt, batch)
        model.forward = torch.compile(model.net)
        compiled = self._time_steps(model, xt, yt, batch)
        if len(x) % batch:
            model.step(xt[-(len(x) % batch):], yt[-(len(x) % batch):])
        model.compiled = compiled < eager
        if not model.compiled:
            model.forward = model.net
        model.calibration = {"eager_ms_per_step": round(1e3 * eager, 4),
                             "compiled_ms_per_step": round(1e3 * compiled, 4)}
        model.restore(snap)
        model.predict(x[:2])

    def settings(self, model):
        return {"compile": model.compiled, "calibration": getattr(model, "calibration", None)}

    def train(self, model, x, y, cfg, epochs, seed, monitor: Monitor):
        batch = min(cfg.batch_size, len(x))
        if cfg.shuffle:
            monitor.start()
            for _, xs, ys in shuffled_epochs(x, y, epochs, seed, monitor):
                with monitor.paused():  # as unshuffled data are before
                    xt, yt = model.tensors(xs, ys)
                if self._epoch(model, xt, yt, batch, monitor):
                    return
            return
        xt, yt = model.tensors(x, y)
        monitor.start()
        for _ in range(epochs):
            if self._epoch(model, xt, yt, batch, monitor):
                return

    @staticmethod
    def _epoch(model: TorchModel, xt, yt, batch: int, monitor: Monitor) -> bool:
        """One epoch; True when the monitor stops training (the budget ends an epoch early)."""
        return monitor.epoch_end(float(model.epoch(xt, yt, batch, monitor)), model.predict)

    def predict(self, model, x):
        return model.predict(x)

    def gradients(self, model, x, y):
        return model.gradients(x, y)

    def train_step(self, model, x, y):
        return float(model.step(*model.tensors(x, y)))

    def get_weights(self, model):
        return model.get_weights()

    def bench_epoch(self, model, x, y, cfg):
        xt, yt = model.tensors(x, y)
        return lambda: model.epoch(xt, yt, cfg.batch_size)
