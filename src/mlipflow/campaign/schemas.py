"""Documents of the campaign loop: the decision of an iteration and the iteration's record."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class Decision(BaseModel):
    """What an iteration decided, why, and the figures it decided on (eV/Å, eV/atom)."""

    decision: str = Field(description="converged, continue, max_iterations or label_budget")
    reason: str = ""
    iteration: int
    accurate_ratio: dict[str, float] = Field(default_factory=dict, description="family -> accurate ratio")
    accurate_ratio_by_temperature: dict[str, float] = Field(
        default_factory=dict, description="'<family> at <T>' -> accurate ratio")
    frames: dict[str, int] = Field(default_factory=dict, description="'<family> at <T>' -> explored frames")
    blocked: dict[str, str] = Field(
        default_factory=dict, description="'<family> at <T>' -> why it cannot count as converged (walkers stopped, "
                                          "too few frames)")
    labels_so_far: int = 0
    errors: dict[str, Any] = Field(default_factory=dict, description="committee errors on the split named `split`")
    targets: dict[str, Any] = Field(default_factory=dict, description="the criteria")


class IterationRecord(BaseModel):
    """One exploration iteration as stored in the campaign document (``iterations``)."""

    iteration: int
    committee: str | None = None
    dataset: str | None = None
    counts: dict[str, Any] = Field(default_factory=dict)
    by_family: dict[str, Any] = Field(default_factory=dict)
    by_temperature: dict[str, Any] = Field(default_factory=dict)
    picked: int = 0
    spot_checks: int = 0
    decision: Decision
    md_stop_reasons: list[str] = Field(default_factory=list)
    walkers: list[dict[str, Any]] = Field(default_factory=list, description="family, temperature, stop reason")
    windows: dict[str, list[float]] = Field(default_factory=dict, description="trust windows applied (eV/Å)")
    committee_errors: dict[str, Any] = Field(default_factory=dict, description="split -> errors (eV/atom, eV/Å)")
    committee_spread: dict[str, float] = Field(default_factory=dict, description="validation spread (eV/Å)")
    assessment: dict[str, Any] | None = Field(None, description="spread against true error of the labeled picks")


class CampaignStarted(BaseModel):
    """Output of the job that creates (or keeps) the campaign document."""

    campaign: str


class AssessmentRecorded(BaseModel):
    """Output of the job that stores an iteration's pick assessment in its record."""

    campaign: str
    iteration: int
