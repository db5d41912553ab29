"""Sampling: committee MLIP-MD with uncertainty and stability monitors, chunked trajectories, AIMD.

* :func:`run_md`, :func:`run_walkers`, :class:`MDSettings`, :class:`TemperatureSchedule` (``md``);
* committee mean/spread: :func:`committee_predict`, :class:`CommitteeMeanCalculator` (``uncertainty``);
* stability monitors and :func:`check_trajectory` (``monitors``);
* :class:`TrajectoryStore` (``trajectory``);
* :class:`CommitteeMDMaker` (``jobs``); :class:`~mlipflow.sampling.aimd.AimdMaker` is imported from
  ``mlipflow.sampling.aimd`` (atomate2's CP2K/VASP modules are slow to import).
"""

from mlipflow.sampling.jobs import CommitteeMDMaker, SamplingSummary, committee_md
from mlipflow.sampling.md import MDResult, MDSettings, TemperatureSchedule, run_md, run_walkers
from mlipflow.sampling.monitors import (
    BallisticMonitor,
    DensityDriftMonitor,
    MinDistanceMonitor,
    MonitorSet,
    TemperatureMonitor,
    Verdict,
    VoidMonitor,
    check_trajectory,
    default_monitors,
)
from mlipflow.sampling.trajectory import TrajectoryStore, TrajectoryWriter
from mlipflow.sampling.uncertainty import (
    CalculatorFactory,
    CommitteeMeanCalculator,
    CommitteePrediction,
    FrameUncertainty,
    committee_predict,
    force_spread,
    score_frames,
)

__all__ = [
    "BallisticMonitor",
    "CalculatorFactory",
    "CommitteeMDMaker",
    "CommitteeMeanCalculator",
    "CommitteePrediction",
    "DensityDriftMonitor",
    "FrameUncertainty",
    "MDResult",
    "MDSettings",
    "MinDistanceMonitor",
    "MonitorSet",
    "SamplingSummary",
    "TemperatureMonitor",
    "TemperatureSchedule",
    "TrajectoryStore",
    "TrajectoryWriter",
    "Verdict",
    "VoidMonitor",
    "check_trajectory",
    "committee_md",
    "committee_predict",
    "default_monitors",
    "force_spread",
    "run_md",
    "run_walkers",
    "score_frames",
]
