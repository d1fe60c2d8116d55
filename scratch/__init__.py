"""groundup's from-scratch networks: NumPy only, both backprop modes side by side."""

from scratch.architectures import ARCHITECTURES, MNIST, REVERSE4, XOR, Architecture
from scratch.model import MLP, History, TrainingDiverged, epoch_order

__all__ = ["ARCHITECTURES", "MNIST", "REVERSE4", "XOR", "Architecture", "MLP", "History",
           "TrainingDiverged", "epoch_order"]
