"""The campaign file: one YAML document, validated into pydantic models (``mlipflow campaign schema``).

Unknown keys and wrong types are reported with their key path and YAML line (:mod:`mlipflow.yamlio`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from mlipflow.campaign.convergence import ConvergenceCriteria
from mlipflow.structures.structure_set import StructureSetSpec, locate
from mlipflow.yamlio import load_yaml_model


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LabelerSpec(_Spec):
    """Which reference labels the campaign (``surrogate`` is never reported as DFT)."""

    kind: Literal["surrogate", "cp2k", "vasp"] = "surrogate"
    calculator: str = Field("chgnet", description="surrogate only: chgnet, lj, morse, toy-morse or module:factory")
    settings: dict[str, Any] = Field(default_factory=dict, description="keyword arguments of the labeler")
    batch_size: int = Field(20, ge=1)
    max_attempts: int = Field(2, ge=1)
    isolated_atoms: bool = Field(True, description="label one atom of each element in a box for the E0s of MACE")
    isolated_atom_box: float = Field(15.0, gt=0, description="edge of the isolated atoms' cubic box (Å)")


class TrainerSpec(_Spec):
    """The MACE committee."""

    committee_size: int = Field(3, ge=2)
    hyperparams: dict[str, Any] = Field(default_factory=dict, description="MaceHyperParams fields over tiny()")
    tiny: bool = Field(True, description="start from MaceHyperParams.tiny() (CPU-sized) rather than defaults")


Ensemble = Literal["nvt_langevin", "nvt_nose_hoover", "npt_berendsen", "npt_nose_hoover", "nve"]


class SamplingStage(_Spec):
    """From an exploration iteration on, other temperatures, lengths or ensemble (as dpgen's model_devi_jobs)."""

    from_iteration: int = Field(ge=1)
    temperatures: list[float] | None = None
    n_steps: int | None = Field(None, ge=1)
    record_every: int | None = Field(None, ge=1)
    timestep: float | None = Field(None, gt=0)
    ensemble: Ensemble | None = None


class SamplingSpec(_Spec):
    """Committee MD of the exploration iterations (K, fs, steps); ``schedule`` changes it from iteration k on.

    Stages apply in the order of their ``from_iteration``, each over the previous ones, e.g. longer runs at
    higher temperatures once the potential has seen the basics (see ``CampaignMaker.explorer_for``).
    """

    temperatures: list[float] = Field(default_factory=lambda: [300.0, 900.0])
    n_steps: int = Field(200, ge=1)
    record_every: int = Field(10, ge=1)
    timestep: float = Field(1.0, gt=0)
    ensemble: Ensemble = "nvt_langevin"
    schedule: list[SamplingStage] = Field(default_factory=list)


class SelectionSpec(_Spec):
    """Trust windows (eV/Å) per structure family, the diversity method and the budget per iteration."""

    trust: tuple[float, float] = (0.05, 0.5)
    trust_per_family: dict[str, tuple[float, float]] = Field(default_factory=dict)
    method: Literal["fps", "kmeans", "birch"] = "fps"
    budget: int = Field(20, ge=1)
    soap_cutoff: float = Field(4.0, gt=0)

    @field_validator("trust", "trust_per_family")
    @classmethod
    def _ordered(cls, value: Any) -> Any:
        windows = value.values() if isinstance(value, dict) else [value]
        for lower, upper in windows:
            if not 0 <= lower < upper:
                raise ValueError(f"a trust window needs 0 <= lower < upper, got [{lower}, {upper}]")
        return value


class ResourcesSpec(_Spec):
    """Which workers take which steps (FireWorks categories come from the settings)."""

    labeling: Literal["cpu", "gpu"] = "cpu"
    training: Literal["cpu", "gpu"] = "gpu"
    md: Literal["cpu", "gpu"] = "gpu"


class CampaignSpec(_Spec):
    """A whole active-learning campaign.

    ``structures`` and ``explore`` are structure sections (see ``flows/structures_preview.yaml``): the cells
    labeled in iteration 0, and the cells the committee explores with MD in every later iteration.
    """

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    seed: int = 0
    splits: dict[Literal["train", "valid", "test"], float] = Field(
        default_factory=lambda: {"train": 0.8, "valid": 0.1, "test": 0.1},
        description="split fractions of new frames (a frame keeps its split in every later version)")
    structures: StructureSetSpec
    explore: StructureSetSpec
    labeler: LabelerSpec = Field(default_factory=LabelerSpec)
    trainer: TrainerSpec = Field(default_factory=TrainerSpec)
    sampling: SamplingSpec = Field(default_factory=SamplingSpec)
    selection: SelectionSpec = Field(default_factory=SelectionSpec)
    convergence: ConvergenceCriteria = Field(default_factory=ConvergenceCriteria)
    resources: ResourcesSpec = Field(default_factory=ResourcesSpec)


def load_campaign(path: str | Path) -> CampaignSpec:
    """Read and validate a campaign file (errors name the key and the line)."""
    spec = load_yaml_model(path, CampaignSpec)
    for key in ("structures", "explore"):  # material files next to the campaign file; entries know their line
        locate(getattr(spec, key), path, prefix=(key,))
    return spec
