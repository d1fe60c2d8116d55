"""pytest-benchmark settings for the operation benchmarks in bench_ops.py."""

from __future__ import annotations


def pytest_benchmark_update_machine_info(config, machine_info):
    """Record the library versions and the BLAS beside pytest-benchmark's machine info."""
    from benchmarks.harness import environment

    machine_info.update({f"groundup_{k}": v for k, v in environment.context().items()})
