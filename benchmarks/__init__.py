"""groundup's harness: datasets, runs, results and the command line."""
