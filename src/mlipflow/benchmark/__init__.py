"""Benchmarking and validation: errors on MLMD frames, structure, vibrations, transport, mechanics, interface
energies, stability, speed, baselines, and the HTML report (science.md §3).

Each property is a function in its module and a jobflow Maker in :mod:`mlipflow.benchmark.jobs`.
"""

from mlipflow.benchmark.errors import (
    ErrorReport,
    build_trajectory_test_set,
    compute_errors,
    evaluate_frames,
    held_out_errors,
    trajectory_errors,
)
from mlipflow.benchmark.report import report
from mlipflow.benchmark.results import load_results, save_result

__all__ = [
    "ErrorReport",
    "build_trajectory_test_set",
    "compute_errors",
    "evaluate_frames",
    "held_out_errors",
    "load_results",
    "report",
    "save_result",
    "trajectory_errors",
]
