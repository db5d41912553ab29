"""Benchmarking and validation: errors on MLMD frames, structure, vibrations, transport, mechanics, interface
energies, stability, speed, baselines, and the HTML report (science.md §3).

Each property is a function in its module and a jobflow Maker in :mod:`mlipflow.benchmark.jobs`.

Names are loaded on first use (see ``mlipflow._lazy``).
"""

from __future__ import annotations

from mlipflow._lazy import lazy_exports

_EXPORTS = {
    "ErrorReport": "mlipflow.benchmark.errors",
    "build_trajectory_test_set": "mlipflow.benchmark.errors",
    "compute_errors": "mlipflow.benchmark.errors",
    "evaluate_frames": "mlipflow.benchmark.errors",
    "held_out_errors": "mlipflow.benchmark.errors",
    "trajectory_errors": "mlipflow.benchmark.errors",
    "report": "mlipflow.benchmark.report",
    "load_results": "mlipflow.benchmark.results",
    "save_result": "mlipflow.benchmark.results",
}

__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
