"""The worker process of a run or a group of runs:
``python -m benchmarks.experiments SPECS.json RESULTS_DIR``; of runs in interleaved
rounds: ``python -m benchmarks.experiments --serve SPECS.json RESULTS_DIR``."""

import sys

from benchmarks.experiments import EXPERIMENTS
from benchmarks.harness import worker

if sys.argv[1] == "--serve":
    sys.exit(worker.serve(EXPERIMENTS, *sys.argv[2:4]))
sys.exit(worker.main(EXPERIMENTS, *sys.argv[1:3]))
