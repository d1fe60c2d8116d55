"""PyTorch as its tutorial writes a training loop: an ``nn.Sequential``, ``torch.optim.SGD``,
and per batch forward, loss, ``zero_grad``, ``backward``, ``step``; eager. MNIST's net
ends in logits and ``F.cross_entropy`` takes them with the class labels."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from tests.minimal import BATCH, LEARNING_RATE


def make(task: str, weights: list[np.ndarray], x: np.ndarray, y: np.ndarray):
    if task == "xor":
        net = nn.Sequential(nn.Linear(2, 2), nn.Sigmoid(), nn.Linear(2, 1), nn.Sigmoid())
        loss_fn, targets = F.mse_loss, torch.from_numpy(y)
    else:
        net = nn.Sequential(nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 10))
        loss_fn, targets = F.cross_entropy, torch.from_numpy(y.argmax(axis=1))
    with torch.no_grad():  # torch keeps W as (n_out, n_in)
        for layer, w, b in zip(net[::2], weights[::2], weights[1::2]):
            layer.weight.copy_(torch.from_numpy(w.T))
            layer.bias.copy_(torch.from_numpy(b))
    optimizer = torch.optim.SGD(net.parameters(), lr=LEARNING_RATE[task])
    return TorchLoop(net, loss_fn, optimizer, torch.from_numpy(x), targets, BATCH[task])


class TorchLoop:
    def __init__(self, net, loss_fn, optimizer, x, y, batch: int):
        self.net, self.loss_fn, self.optimizer = net, loss_fn, optimizer
        self.x, self.y, self.batch = x, y, batch

    def run(self, epochs: int) -> None:
        for _ in range(epochs):
            for i in range(0, len(self.x), self.batch):
                loss = self.loss_fn(self.net(self.x[i:i + self.batch]), self.y[i:i + self.batch])
                self.optimizer.zero_grad()
                loss.backward()
                self.optimizer.step()

    def weights(self) -> list[np.ndarray]:
        return [a for layer in self.net[::2]
                for a in (layer.weight.detach().numpy().T.copy(), layer.bias.detach().numpy())]
