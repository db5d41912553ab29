"""Documents of the sampling stage (what its jobs return): small summaries; frames live in the stores."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class MDResult(BaseModel):
    """What one walker did (a small document; the frames are in the trajectory store).

    ``stop_reason`` is ``completed``, ``uncertainty`` (spread above the upper trust bound), ``monitor:<name>``
    or ``error: <message>``.  Spreads in eV/Å, temperatures in K.
    """

    trajectory_id: str | None = None
    walker: int = 0
    family: str | None = None
    temperature: float
    max_temperature: float
    n_atoms: int
    n_frames: int
    n_steps: int
    stop_reason: str = "completed"
    stop_step: int | None = None
    verdicts: list[dict[str, Any]] = Field(default_factory=list)
    max_force_spread: float = 0.0
    mean_max_force_spread: float = 0.0
    mean_temperature: float = 0.0
    seconds: float = 0.0
    steps_per_second: float = 0.0
    metadata: dict[str, Any] = Field(default_factory=dict)

    @property
    def temperature_label(self) -> str:
        """``'900 K'`` for a constant temperature, ``'ramp to 1500 K'`` otherwise (as the selection labels it)."""
        if abs(self.max_temperature - self.temperature) < 1e-6:
            return f"{self.temperature:g} K"
        return f"ramp to {self.max_temperature:g} K"


class SamplingSummary(BaseModel):
    """Output of a sampling job: one result per walker (trajectory ids, stop reasons, spreads)."""

    walkers: list[MDResult] = Field(default_factory=list)

    @property
    def trajectory_ids(self) -> list[str]:
        return [w.trajectory_id for w in self.walkers if w.trajectory_id]

    def stop_reasons(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for w in self.walkers:
            counts[w.stop_reason] = counts.get(w.stop_reason, 0) + 1
        return counts


class ReferenceMDSummary(BaseModel):
    """Output of reference MD (the labeler's own MD, the stand-in of AIMD): its labeled frames and walkers.

    The recorded frames after ``equilibration_steps`` are stored as labeled frames of the labeler (provenance
    ``origin="reference_md"``, grouped by trajectory); the full trajectories stay in the trajectory store as the
    reference of the structural and dynamical benchmarks (RDF, MSD).
    """

    labeler: str = Field(description="labeler description (a surrogate says so)")
    labeler_hash: str = Field(description="hash of the labeler's settings")
    frame_ids: list[str] = Field(default_factory=list, description="labeled frames for the dataset")
    walkers: list[MDResult] = Field(default_factory=list, description="one per structure, temperature, replica")
    equilibration_steps: int = Field(0, description="MD steps discarded before frames are kept")
    seconds: float = Field(0.0, description="wall time (s)")

    @property
    def trajectory_ids(self) -> list[str]:
        return [w.trajectory_id for w in self.walkers if w.trajectory_id]
