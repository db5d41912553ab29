"""The campaign file: one YAML document, validated into pydantic models (``mlipflow campaign schema``).

Unknown keys and wrong types are reported with their key path and YAML line (:mod:`mlipflow.yamlio`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from mlipflow.campaign.convergence import ConvergenceCriteria
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
    warm_start: bool = Field(
        True, description="iteration k's members start from iteration k-1's (false: every committee from scratch)")
    warm_start_hyperparams: dict[str, Any] = Field(
        default_factory=dict, description="MaceHyperParams fields changed for warm-started trainings (e.g. fewer "
                                          "epochs, a lower lr)")


Ensemble = Literal["nvt_langevin", "nvt_nose_hoover", "npt_berendsen", "npt_nose_hoover", "nve"]


class SamplingStage(_Spec):
    """From an exploration iteration on, other temperatures, lengths or ensemble (as dpgen's model_devi_jobs)."""

    from_iteration: int = Field(ge=1)
    temperatures: list[float] | None = None
    n_steps: int | None = Field(None, ge=1)
    record_every: int | None = Field(None, ge=1)
    timestep: float | None = Field(None, gt=0)
    ensemble: Ensemble | None = None


class ReferenceMDSpec(_Spec):
    """MD with the labeler itself on cells of the ``structures`` section (AIMD, or its surrogate stand-in).

    Its frames after ``equilibration`` steps are labels of iteration 0 (one group per trajectory), and its
    trajectories are the reference of the benchmark stage (RDF, ADF, MSD).  K, fs, steps.
    """

    entries: list[str] | None = Field(None, description="entries of the structures section to run (default all)")
    temperatures: list[float] = Field(default_factory=lambda: [300.0, 900.0])
    n_steps: int = Field(100, ge=1)
    record_every: int = Field(10, ge=1)
    timestep: float = Field(1.0, gt=0)
    equilibration: int = Field(20, ge=0, description="steps whose frames are not labels")
    replicas: int = Field(1, ge=1, description="independent walkers (seeds) per cell and temperature")
    velocity_scale: float = Field(2.0, gt=0, description="initial velocities at this multiple of the temperature")
    relax_steps: int = Field(0, ge=0, description="relax each cell with the labeler first (FIRE steps at most)")
    ensemble: Ensemble = "nvt_langevin"


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
    velocity_scale: float = Field(1.0, gt=0, description="initial velocities at this multiple of the temperature")
    relax_steps: int = Field(0, ge=0, description="relax each cell with the committee first (FIRE steps at most)")
    schedule: list[SamplingStage] = Field(default_factory=list)
    reference_md: ReferenceMDSpec | None = Field(None, description="reference MD of iteration 0 (off if absent)")


class SelectionSpec(_Spec):
    """Trust windows per structure family, the diversity method, descriptor and budgets per iteration.

    ``trust_mode: absolute`` takes the bounds in eV/Å; ``relative`` as multiples of the committee's median
    largest-atom force spread on its own validation frames (per family when it has enough of them).
    ``descriptor``: ``soap`` (frame average), ``soap_species`` (average per species), ``soap_focus`` (average
    over the ``focus_atoms`` most uncertain atoms of a frame: boundary atoms are not diluted into the bulk) or
    ``mace`` (the committee's own invariant features).
    """

    trust: tuple[float, float] = (0.05, 0.5)
    trust_per_family: dict[str, tuple[float, float]] = Field(default_factory=dict)
    trust_mode: Literal["absolute", "relative"] = "absolute"
    method: Literal["fps", "kmeans", "birch"] = "fps"
    budget: int = Field(20, ge=1, description="frames labeled per iteration (spot checks included)")
    budget_per_family: dict[str, int] = Field(
        default_factory=dict, description="family -> at most this many picks per iteration (key `default` for all)")
    spot_checks: int = Field(2, ge=0, description="frames called accurate labeled per iteration (true error)")
    descriptor: Literal["soap", "soap_species", "soap_focus", "mace"] = "soap_focus"
    focus_atoms: int = Field(8, ge=1)
    soap_cutoff: float = Field(4.0, gt=0)
    dedup_distance: float | None = Field(None, gt=0, description="descriptor distance counted as a duplicate")

    @field_validator("trust", "trust_per_family")
    @classmethod
    def _ordered(cls, value: Any) -> Any:
        windows = value.values() if isinstance(value, dict) else [value]
        for lower, upper in windows:
            if not 0 <= lower < upper:
                raise ValueError(f"a trust window needs 0 <= lower < upper, got [{lower}, {upper}]")
        return value


class ResourcesSpec(_Spec):
    """Which workers take which steps (FireWorks categories come from the settings), and how wide a job may be.

    ``processes``: worker processes one job may use on its node (MD walkers run side by side, committee members
    train side by side); 1 keeps every job serial.
    """

    labeling: Literal["cpu", "gpu"] = "cpu"
    training: Literal["cpu", "gpu"] = "gpu"
    md: Literal["cpu", "gpu"] = "gpu"
    processes: int = Field(1, ge=1)


class SplitsSpec(_Spec):
    """Split fractions of new frames, reached per family by whole groups of correlated frames, and minimums."""

    train: float = Field(0.8, ge=0, le=1)
    valid: float = Field(0.1, ge=0, le=1)
    test: float = Field(0.1, ge=0, le=1)
    min_valid: int = Field(3, ge=0, description="validation frames per family first (when it has groups to spare)")
    min_test: int = Field(3, ge=0, description="test frames per family first (when test > 0)")

    @model_validator(mode="before")
    @classmethod
    def _missing_fractions_are_zero(cls, data: Any) -> Any:
        """``{train: 0.7, valid: 0.3}`` means no test split: fractions not given are 0 once one is given."""
        if isinstance(data, dict) and any(k in data for k in ("train", "valid", "test")):
            return {"train": 0.0, "valid": 0.0, "test": 0.0, **data}
        return data

    @model_validator(mode="after")
    def _sum_to_one(self) -> SplitsSpec:
        total = self.train + self.valid + self.test
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"split fractions train + valid + test must sum to 1, got {total:g}")
        if self.train <= 0:
            raise ValueError("the train fraction must be > 0")
        return self

    @property
    def fractions(self) -> dict[str, float]:
        return {"train": self.train, "valid": self.valid, "test": self.test}

    @property
    def minimum(self) -> dict[str, int]:
        return {"valid": self.min_valid, "test": self.min_test}


class BenchmarkTargets(_Spec):
    """What "good enough" means for the verdict (errors on the MLMD-trajectory test set, RDF peaks)."""

    force_rmse: float | None = Field(0.06, gt=0, description="eV/Å")
    energy_rmse: float | None = Field(0.003, gt=0, description="eV/atom")
    rdf_peak_shift: float | None = Field(0.05, gt=0, description="Å, largest first-peak shift against the reference")


class BenchmarkSpec(_Spec):
    """The benchmark stage run on the final committee when the campaign stops (K, steps, fs).

    ``test_md_steps``/``test_every``: the final committee's own MD at every sampled temperature on every
    exploration cell and on the reference-MD cells; frames every ``test_every`` steps after ``test_equilibration``
    are labeled by the reference (the MLMD-trajectory test set, evaluated for every iteration's committee).
    ``property_md_steps``: MD of the final committee next to each reference MD (RDF, ADF, MSD).
    """

    enabled: bool = True
    test_md_steps: int = Field(60, ge=1)
    test_every: int = Field(10, ge=1)
    test_equilibration: int = Field(10, ge=0)
    timestep: float = Field(1.0, gt=0)
    property_md_steps: int = Field(400, ge=1)
    stability_steps: int = Field(1000, ge=0, description="0: no stability run")
    speed_sizes: list[int] = Field(default_factory=lambda: [96, 192])
    gb_energy: bool = Field(True, description="boundary energy after relaxation against the reference")
    relax_steps: int = Field(60, ge=1, description="largest number of optimiser steps of a relaxation")
    targets: BenchmarkTargets = Field(default_factory=BenchmarkTargets)


class CampaignSpec(_Spec):
    """A whole active-learning campaign.

    ``structures`` and ``explore`` are structure sections (see ``flows/structures_preview.yaml``): the cells
    labeled in iteration 0, and the cells the committee explores with MD in every later iteration.
    """

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    seed: int = 0
    splits: SplitsSpec = Field(
        default_factory=SplitsSpec,
        description="split fractions of new frames by group (a frame keeps its split in every later version)")
    structures: dict[str, Any]
    explore: dict[str, Any]
    labeler: LabelerSpec = Field(default_factory=LabelerSpec)
    trainer: TrainerSpec = Field(default_factory=TrainerSpec)
    sampling: SamplingSpec = Field(default_factory=SamplingSpec)
    selection: SelectionSpec = Field(default_factory=SelectionSpec)
    convergence: ConvergenceCriteria = Field(default_factory=ConvergenceCriteria)
    resources: ResourcesSpec = Field(default_factory=ResourcesSpec)
    benchmark: BenchmarkSpec = Field(default_factory=BenchmarkSpec)

    @model_validator(mode="after")
    def _consistent(self) -> CampaignSpec:
        if self.selection.trust_mode == "relative" and self.splits.valid <= 0:
            raise ValueError("selection.trust_mode 'relative' scales the trust window by the committee's spread on "
                             "its validation frames: give splits.valid > 0, or use absolute trust bounds (eV/Å)")
        return self


def load_campaign(path: str | Path) -> CampaignSpec:
    """Read and validate a campaign file (errors name the key and the line)."""
    return load_yaml_model(path, CampaignSpec)
