"""Documents of the campaign's benchmark stage (what its jobs return).  Units in every field description."""
# Names carry their unit as in ASE's ``temperature_K`` (``rmse_f_meV_A``, ``gb_J_m2``): keep the capitals.
# ruff: noqa: N815

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pymatgen.core import Structure


class TestSetDoc(BaseModel):
    """The MLMD-trajectory test set: the final model's own MD, frames labeled by the reference."""

    model_id: str = Field(description="the model whose MD made the frames")
    frame_ids: list[str] = Field(default_factory=list, description="labeled frames (never in a dataset version)")
    trajectory_ids: list[str] = Field(default_factory=list)
    walkers: list[dict[str, Any]] = Field(default_factory=list, description="family, temperature, stop reason")
    counts: dict[str, int] = Field(default_factory=dict, description="'<family> at <T>' -> frames")
    labeler: str = ""


class ModelErrors(BaseModel):
    """Errors of one model (or committee mean) on the test set, with its iteration (meV/atom, meV/Å)."""

    iteration: int | None = None
    model: str
    kind: str = Field(description="`member` (the exported potential) or `committee` (the committee mean)")
    n_frames: int
    rmse_e_meV_atom: float
    rmse_f_meV_A: float
    mae_f_meV_A: float
    p95_f_meV_A: float
    max_f_meV_A: float
    by_group: dict[str, dict[str, float]] = Field(
        default_factory=dict,
        description="'<family> at <T>', and `boundary atoms`/`bulk atoms` of boundary cells -> rmse_f_meV_A, "
                    "mae_f_meV_A, p95_f_meV_A, max_f_meV_A, rmse_e_meV_atom (frames only), n")


class TestErrorsDoc(BaseModel):
    """Errors of every iteration's committee on the one fixed MLMD test set (the learning curve of the campaign)."""

    test_set: str = ""
    reference: str = ""
    models: list[ModelErrors] = Field(default_factory=list)

    def final(self, kind: str = "member") -> ModelErrors | None:
        rows = [m for m in self.models if m.kind == kind]
        return rows[-1] if rows else None


class PropertyComparison(BaseModel):
    """The final model's MD next to one reference MD (same cell, temperature, time step): structure and Li motion."""

    family: str | None = None
    temperature_K: float
    rdf_peaks_model_A: dict[str, float | None] = Field(default_factory=dict)
    rdf_peaks_reference_A: dict[str, float | None] = Field(default_factory=dict)
    rdf_peak_shifts_A: dict[str, float] = Field(default_factory=dict)
    rdf_max_shift_A: float | None = None
    adf_peaks_model_deg: dict[str, float | None] = Field(default_factory=dict)
    adf_peaks_reference_deg: dict[str, float | None] = Field(default_factory=dict)
    adf_max_shift_deg: float | None = None
    msd_li_model_A2: float | None = Field(None, description="Li MSD at the longest common lag (Å²)")
    msd_li_reference_A2: float | None = Field(None, description="same lag, reference MD (Å²)")
    lag_fs: float | None = None
    d_li_model_cm2_s: float | None = None
    d_li_reference_cm2_s: float | None = None
    note: str = ""
    frames_model: int = 0
    frames_reference: int = 0


class GBEnergy(BaseModel):
    """Boundary energy after relaxation, model against reference (J/m²)."""

    family: str | None = None
    formula: str
    n_atoms: int
    model_J_m2: float
    reference_J_m2: float
    difference_J_m2: float
    relaxed_rmsd_A: float | None = Field(None, description="RMSD between the model's and the reference's relaxed "
                                                           "positions (Å)")
    note: str = ""


class Verdict(BaseModel):
    """Whether the potential is good enough: each target with its measured figure."""

    passed: bool
    checks: list[dict[str, Any]] = Field(default_factory=list, description="name, target, measured, unit, passed")


class BenchmarkDoc(BaseModel):
    """Everything the campaign's benchmark stage measured, with the verdict (stored as the campaign's `benchmark`)."""

    campaign: str
    committee: str
    model: str = Field(description="the exported potential: the final committee's first member")
    reference: str = Field(description="labeler of the reference values (a surrogate says so)")
    verdict: Verdict
    trajectory_errors: dict[str, Any] = Field(
        default_factory=dict, description="final model on the MLMD test set: rmse_e_meV_atom, rmse_f_meV_A, ...")
    learning_curve: list[dict[str, Any]] = Field(default_factory=list, description="per iteration, same test set")
    properties: list[PropertyComparison] = Field(default_factory=list)
    stability: list[dict[str, Any]] = Field(default_factory=list)
    speed: list[dict[str, Any]] = Field(default_factory=list)
    gb_energy: list[GBEnergy] = Field(default_factory=list)
    seconds: dict[str, float] = Field(default_factory=dict, description="wall time per part (s)")


class TestMDDoc(BaseModel):
    """Output of the benchmark's MD job: the test set so far (no labels yet) and the structures to label."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    test_set: TestSetDoc
    structures: list[Structure] = Field(default_factory=list)


class PropertiesDoc(BaseModel):
    """The model's MD next to every reference MD."""

    comparisons: list[PropertyComparison] = Field(default_factory=list)


class StabilityDoc(BaseModel):
    """Long MD runs with the monitors: per run family, T_K, stable, stop_reason, time_ps, n_atoms, steps_per_s."""

    runs: list[dict[str, Any]] = Field(default_factory=list)


class SpeedDoc(BaseModel):
    """MD speed points: n_atoms, steps_per_s, ns_per_day, us_per_atom_step, timestep_fs, n_steps."""

    points: list[dict[str, Any]] = Field(default_factory=list)


class GBEnergyDoc(BaseModel):
    """Boundary energies after relaxation, model against reference."""

    energies: list[GBEnergy] = Field(default_factory=list)
