"""The optimizers against their update rules, written out here independently.

The Keras twins show that trajectories match Keras; these show the rules themselves,
on two parameters of different shapes (each has its own state), through both of
``apply``'s paths: gradients as computed, and gradients pre-multiplied by
``gradient_scale()`` (what the model folds in for SGD).
"""

import numpy as np
import pytest

from scratch import optimizers
from scratch.optimizers import SGD, Adam

# Values exact in float32, so that Keras' float32 rounding of them changes nothing.
LR, MU, B1, B2, EPS = 0.5, 0.75, 0.5, 0.75, 0.125


def params_and_grads(steps=3):
    rng = np.random.default_rng(0)
    params = [rng.standard_normal((2, 3)), rng.standard_normal(3)]
    grads = [[rng.standard_normal(p.shape) for p in params] for _ in range(steps)]
    return params, grads


def expected_sgd(params, grads, momentum=0.0, nesterov=False):
    params = [p.copy() for p in params]
    velocity = [np.zeros_like(p) for p in params]
    for step in grads:
        for p, m, g in zip(params, velocity, step):
            m[...] = momentum * m - LR * g
            p += momentum * m - LR * g if nesterov else m
    return params


def expected_adam(params, grads):
    params = [p.copy() for p in params]
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    for t, step in enumerate(grads, start=1):
        alpha = LR * np.sqrt(1 - B2 ** t) / (1 - B1 ** t)
        for i, (p, g) in enumerate(zip(params, step)):
            m[i] = B1 * m[i] + (1 - B1) * g
            v[i] = B2 * v[i] + (1 - B2) * g * g
            p -= alpha * m[i] / (np.sqrt(v[i]) + EPS)
    return params


CASES = {
    "sgd": (lambda: SGD(LR), lambda p, g: expected_sgd(p, g)),
    "momentum": (lambda: SGD(LR, MU), lambda p, g: expected_sgd(p, g, MU)),
    "nesterov": (lambda: SGD(LR, MU, nesterov=True), lambda p, g: expected_sgd(p, g, MU, True)),
    "momentum-1": (lambda: SGD(LR, 1.0), lambda p, g: expected_sgd(p, g, 1.0)),
    "adam": (lambda: Adam(LR, B1, B2, EPS), expected_adam),
}


# Adam's step is not linear in g: the model folds nothing in (its gradient_scale is 1).
@pytest.mark.parametrize("case, scaled", [(c, s) for c in CASES for s in (False, True)
                                          if not (c == "adam" and s)])
def test_updates_follow_the_rule(case, scaled):
    make, expected = CASES[case]
    params, grads = params_and_grads()
    want = expected(params, grads)
    opt = make()
    scale = opt.gradient_scale() if scaled else 1.0
    for step in grads:
        opt.apply(params, [g * scale for g in step], scaled=scaled)
    for got, exp in zip(params, want):
        np.testing.assert_allclose(got, exp, rtol=1e-13, atol=1e-15)
    assert opt.iterations == len(grads)


def test_apply_defaults_to_gradients_as_computed():
    params, grads = params_and_grads(1)
    SGD(LR).apply(params, grads[0])  # no ``scaled``: the learning rate is applied
    np.testing.assert_allclose(params[0], expected_sgd(params_and_grads(1)[0], grads)[0])


def test_apply_refuses_a_gradient_list_of_another_length():
    params, grads = params_and_grads(1)
    with pytest.raises(ValueError):
        SGD(LR).apply(params, grads[0][:1])


def test_defaults_and_configs_are_keras():
    """keras.optimizers.SGD() and Adam() defaults, and their configs' names."""
    assert SGD().get_config() == {"name": "sgd", "learning_rate": 0.01, "momentum": 0.0,
                                  "nesterov": False}
    assert Adam().get_config() == {"name": "adam", "learning_rate": 0.001, "beta_1": 0.9,
                                   "beta_2": 0.999, "epsilon": 1e-7}
    assert repr(SGD(0.1, 0.9, True)) == "sgd(learning_rate=0.1, momentum=0.9, nesterov=True)"
    assert optimizers.get(Adam(0.5).get_config()).get_config() == Adam(0.5).get_config()
