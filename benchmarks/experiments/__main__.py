"""The worker process of one run: ``python -m benchmarks.experiments SPEC.json RESULT.json``."""

import sys

from benchmarks.experiments import EXPERIMENTS
from benchmarks.harness import worker

sys.exit(worker.main(EXPERIMENTS, *sys.argv[1:3]))
