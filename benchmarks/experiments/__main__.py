"""The worker process of a run or a group of runs:
``python -m benchmarks.experiments SPECS.json RESULTS_DIR``."""

import sys

from benchmarks.experiments import EXPERIMENTS
from benchmarks.harness import worker

sys.exit(worker.main(EXPERIMENTS, *sys.argv[1:3]))
