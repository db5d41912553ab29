"""Sampling: committee MLIP-MD with uncertainty and stability monitors, chunked trajectories, AIMD.

* :func:`run_md`, :func:`run_walkers`, :class:`MDSettings`, :class:`TemperatureSchedule` (``md``);
* committee mean/spread: :func:`committee_predict`, :class:`CommitteeMeanCalculator` (``uncertainty``);
* stability monitors and :func:`check_trajectory` (``monitors``);
* :class:`TrajectoryStore` (``trajectory``);
* :class:`CommitteeMDMaker` (``jobs``); :class:`~mlipflow.sampling.aimd.AimdMaker` is imported from
  ``mlipflow.sampling.aimd`` (atomate2's CP2K/VASP modules are slow to import).

Names are loaded on first use (see ``mlipflow._lazy``).
"""

from __future__ import annotations

from mlipflow._lazy import lazy_exports

_EXPORTS = {
    "CommitteeMDMaker": "mlipflow.sampling.jobs",
    "SamplingSummary": "mlipflow.sampling.schemas",
    "committee_md": "mlipflow.sampling.jobs",
    "MDResult": "mlipflow.sampling.schemas",
    "MDSettings": "mlipflow.sampling.md",
    "TemperatureSchedule": "mlipflow.sampling.md",
    "run_md": "mlipflow.sampling.md",
    "run_walkers": "mlipflow.sampling.md",
    "BallisticMonitor": "mlipflow.sampling.monitors",
    "DensityDriftMonitor": "mlipflow.sampling.monitors",
    "MinDistanceMonitor": "mlipflow.sampling.monitors",
    "MonitorSet": "mlipflow.sampling.monitors",
    "TemperatureMonitor": "mlipflow.sampling.monitors",
    "Verdict": "mlipflow.sampling.monitors",
    "VoidMonitor": "mlipflow.sampling.monitors",
    "check_trajectory": "mlipflow.sampling.monitors",
    "default_monitors": "mlipflow.sampling.monitors",
    "TrajectoryStore": "mlipflow.sampling.trajectory",
    "TrajectoryWriter": "mlipflow.sampling.trajectory",
    "CalculatorFactory": "mlipflow.sampling.uncertainty",
    "CommitteeMeanCalculator": "mlipflow.sampling.uncertainty",
    "CommitteePrediction": "mlipflow.sampling.uncertainty",
    "FrameUncertainty": "mlipflow.sampling.uncertainty",
    "committee_predict": "mlipflow.sampling.uncertainty",
    "force_spread": "mlipflow.sampling.uncertainty",
    "score_frames": "mlipflow.sampling.uncertainty",
}

__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
