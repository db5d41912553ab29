"""Documents of the selection stage (what its jobs return): picks with reasons, ratios, and pick assessments."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pymatgen.core import Structure


class SelectedFrame(BaseModel):
    """One picked frame: where it is, what it is, and why it was picked (spread in eV/Å, temperature in K).

    ``category`` is ``candidate`` for frames picked to teach the committee, ``accurate`` for spot checks: frames
    the committee called accurate, labeled to measure the true error of "accurate".
    """

    trajectory_id: str
    frame: int
    family: str | None = None
    md_step: int | None = None
    temperature: float | None = None
    max_force_spread: float | None = None
    category: str = "candidate"
    spot_check: bool = False
    structure_hash: str
    reason: str


class SelectionResult(BaseModel):
    """Output of a selection: picks with reasons, trust-window ratios per family, and counts."""

    picks: list[SelectedFrame] = Field(default_factory=list)
    trust_report: dict[str, dict[str, float]] = Field(default_factory=dict)
    trust_by_temperature: dict[str, dict[str, dict[str, float]]] = Field(
        default_factory=dict, description="family -> walker temperature label (e.g. '900 K') -> counts and ratios")
    counts: dict[str, int] = Field(default_factory=dict)
    per_family: dict[str, dict[str, int]] = Field(default_factory=dict)
    windows: dict[str, list[float]] = Field(
        default_factory=dict, description="family -> trust window actually applied [lower, upper] (eV/Å)")
    trust_units: dict[str, float] = Field(
        default_factory=dict, description="relative mode: family -> the committee's validation spread unit (eV/Å)")
    reference: str | None = Field(None, description="dataset version deduplicated and diversified against")
    method: str = "fps"
    seed: int = 0
    seconds: float = 0.0

    @property
    def frame_keys(self) -> list[tuple[str, int]]:
        return [(p.trajectory_id, p.frame) for p in self.picks]


class PickedStructures(BaseModel):
    """The structures of a selection's picks, in pick order, with provenance (for a labeler)."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    structures: list[Structure] = Field(default_factory=list)
    n_spot_checks: int = 0


class PickError(BaseModel):
    """Predicted spread against true error of one labeled pick (eV/Å, eV/atom, K)."""

    frame_id: str
    family: str | None = None
    temperature: float | None = None
    category: str = "candidate"
    spot_check: bool = False
    max_force_spread: float | None = Field(None, description="committee's largest-atom force spread (eV/Å)")
    max_force_error: float = Field(description="largest-atom |F_committee - F_ref| (eV/Å)")
    rmse_f: float = Field(description="force-component RMSE of the committee mean (eV/Å)")
    energy_error_per_atom: float | None = Field(None, description="(E_committee - E_ref) / N (eV/atom)")


class PickAssessment(BaseModel):
    """How well the committee's spread predicted its true error on the frames labeled this iteration.

    ``spearman``: rank correlation of largest-atom spread and largest-atom true error over the labeled picks;
    ``error_over_spread``: median ratio of the two; ``spot_checks``: the true errors of frames called accurate.
    """

    iteration: int | None = None
    picks: list[PickError] = Field(default_factory=list)
    spearman: float | None = None
    error_over_spread: float | None = None
    spot_check_max_error: float | None = Field(None, description="largest true error of a spot check (eV/Å)")
    spot_check_rmse_f: float | None = Field(None, description="force RMSE over the spot checks (eV/Å)")
    summary: dict[str, Any] = Field(default_factory=dict)
