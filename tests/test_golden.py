"""The softmax / cross-entropy golden example of the blog series, number for number.

The anchor prints its numbers to a fixed number of decimals, some of them truncated
rather than rounded (-4.608649 is printed -4.60864), so each check allows one unit
in the last printed digit.
"""

import numpy as np

from scratch import activations, losses
from scratch.layers import Dense

X = np.array([0.1, 0.5, 0.4])
W = np.array([[0.1, 0.2, 0.3, 0.4, 0.5],
              [0.6, 0.7, 0.8, 0.9, 0.1],
              [0.11, 0.12, 0.13, 0.14, 0.15]])
Y = np.eye(5)[2]
SOFTMAX = activations.get("softmax")
CCE = losses.get("categorical_crossentropy")


def test_softmax_values():
    s = SOFTMAX(W.T @ X)
    np.testing.assert_allclose(s, [0.19091352, 0.20353145, 0.21698333, 0.23132428, 0.15724743],
                               atol=1e-8)


def test_softmax_jacobian_first_row():
    j = SOFTMAX.jacobian(W.T @ X)
    np.testing.assert_allclose(j[0], [0.154465, -0.038856, -0.041425, -0.044162, -0.030020],
                               atol=1e-6)


def test_cross_entropy_and_its_gradient():
    s = SOFTMAX(W.T @ X)
    assert CCE(Y[None], s[None]) == 1.5279347484961026
    np.testing.assert_allclose(CCE.gradient(Y[None], s[None])[0], [0, 0, -4.60864, 0, 0],
                               atol=1e-5)


def test_shortcut_equals_explicit_chain():
    """dCE/dW = outer(x, S - y), and dCE/dS . dS/dZ . dZ/dW gives the same numbers."""
    s = SOFTMAX(W.T @ X)
    shortcut = np.outer(X, s - Y)
    layer = Dense(W.copy(), np.zeros(5), SOFTMAX)
    layer.forward(X[None])
    layer.zero_grads()
    layer.backward_jacobian(CCE.gradient(Y[None], s[None]), 0)
    np.testing.assert_allclose(layer.grads[0], shortcut, atol=1e-15)
    np.testing.assert_allclose(shortcut[0], [0.01909135, 0.02035315, -0.07830167, 0.02313243,
                                             0.01572474], atol=1e-8)
