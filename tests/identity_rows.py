"""Each implementation's identity check on mnist/blog (tests/test_identity.py), in this
process or, for a Keras backend other than this process's, in one of its own: a module of
its own, so that such a process imports no more than the check needs."""

from benchmarks.data.tasks import CONFIGS, load_task
from benchmarks.harness.worker import identity
from benchmarks.implementations import IMPLEMENTATIONS, scratch_model

BLOG = CONFIGS["mnist/blog"]  # U(-1, 1) weights: the softmax saturates from the first step


def identity_rows(names: list[str]) -> dict:
    """Each implementation's identity check on mnist/blog's first batches, in float32."""
    out = {}
    for name in names:
        impl = IMPLEMENTATIONS[name]
        impl.activate()
        data = load_task(BLOG, "float32", 1000)
        initial = scratch_model(BLOG, "float32", 0).get_weights()
        out[name] = identity(impl, BLOG, "float32", 0, initial, data.x, data.y)
    return out
