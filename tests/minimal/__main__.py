"""``python -m tests.minimal IMPL OUT.npz``: the weights of IMPL's minimal loop after
``CHECKS``, in a process of its own (Keras picks its backend once a process)."""

import sys

import numpy as np

from benchmarks.implementations import IMPLEMENTATIONS
from tests.minimal import TASKS, trained

if __name__ == "__main__":
    impl = IMPLEMENTATIONS[sys.argv[1]]
    impl.activate()
    np.savez(sys.argv[2], **{f"{task}/w{i}": w for task in TASKS
                             for i, w in enumerate(trained(impl.framework, task))})
