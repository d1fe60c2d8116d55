"""The three task architectures, defined once; scratch and Keras both build from these."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Architecture:
    """Layer sizes, one activation per layer, a loss, all by Keras' names.

    ``dropout`` is applied after every hidden layer, as in TensorFlow's tutorial.
    """

    name: str
    sizes: tuple[int, ...]
    activations: tuple[str | dict, ...]
    loss: str
    dropout: float = 0.0
    notes: str = field(default="", compare=False)

    def replace(self, **changes) -> Architecture:
        return Architecture(**{**self.__dict__, **changes})

    def __str__(self) -> str:
        return "-".join(map(str, self.sizes))


XOR = Architecture("xor", (2, 2, 1), ("sigmoid", "sigmoid"), "mean_squared_error",
                   notes="The blog's XOR net: 9 parameters.")
REVERSE4 = Architecture("reverse4", (4, 4, 4), ("sigmoid", "sigmoid"), "mean_squared_error",
                        notes="Reverse the bits of a 4-bit number: 40 parameters.")
MNIST = Architecture("mnist", (784, 512, 10), ("relu", "softmax"), "categorical_crossentropy",
                     notes="784-512-10; the tf-tutorial configuration adds dropout 0.2.")

ARCHITECTURES = {a.name: a for a in (XOR, REVERSE4, MNIST)}
