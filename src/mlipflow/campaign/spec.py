"""The campaign file: one YAML document, validated into pydantic models (``mlipflow campaign schema``).

Unknown keys and wrong types are reported with their key path and YAML line (:mod:`mlipflow.yamlio`).
Everything that a run would find wrong in the file alone is found here, before any job runs: bounds on
temperatures (0 < T <= 5000 K), time steps (<= 5 fs) and run lengths, split fractions, empty structure
sections, the labeler's settings against the labeler's own parameters, the MACE hyper-parameters.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import PydanticCustomError

from mlipflow.campaign.convergence import ConvergenceCriteria
from mlipflow.yamlio import load_yaml_model


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid")


#: hottest MD temperature a campaign may ask for (K): far above the melting point of every battery material
MAX_TEMPERATURE = 5000.0
#: longest MD time step (fs): Li is light, 1-2 fs is usual and beyond 5 fs the dynamics are not stable
MAX_TIMESTEP = 5.0
#: longest MD run per temperature and iteration (steps)
MAX_STEPS = 10_000_000
Temperature = Annotated[float, Field(gt=0, le=MAX_TEMPERATURE, description="K")]


def _problem(key: str | tuple[Any, ...] | None, message: str) -> PydanticCustomError:
    """A validation error about ``key`` inside the validated value (its line is found, see mlipflow.yamlio)."""
    return PydanticCustomError("invalid_setting", message, None if key is None else {"key": key})


class LabelerSpec(_Spec):
    """Which reference labels the campaign (``surrogate`` is never reported as DFT)."""

    kind: Literal["surrogate", "cp2k", "vasp"] = "surrogate"
    calculator: str = Field("chgnet", description="surrogate only: chgnet, lj, morse, toy-morse or module:factory")
    settings: dict[str, Any] = Field(default_factory=dict, description="keyword arguments of the labeler")
    batch_size: int = Field(20, ge=1)
    max_attempts: int = Field(2, ge=1)
    isolated_atoms: bool = Field(True, description="label one atom of each element in a box for the E0s of MACE")
    isolated_atom_box: float = Field(15.0, gt=0, le=50.0, description="edge of the isolated atoms' cubic box (Å)")

    @model_validator(mode="after")
    def _settings_are_the_labelers(self) -> LabelerSpec:
        from mlipflow.labeling.parameters import settings_problems

        for key, message in settings_problems(self.kind, self.calculator, self.settings)[:1]:
            raise _problem(key, message)
        return self


class TrainerSpec(_Spec):
    """The MACE committee."""

    committee_size: int = Field(3, ge=2)
    hyperparams: dict[str, Any] = Field(default_factory=dict, description="MaceHyperParams fields over tiny()")
    tiny: bool = Field(True, description="start from MaceHyperParams.tiny() (CPU-sized) rather than defaults")

    @model_validator(mode="after")
    def _hyperparams_are_mace_ones(self) -> TrainerSpec:
        from mlipflow.training.hyperparams import MaceHyperParams

        if "seed" in self.hyperparams:
            raise _problem(("hyperparams", "seed"), "set the campaign's `seed` at the top level instead: every "
                                                    "member of the committee gets its own seed from it")
        base = MaceHyperParams.tiny() if self.tiny else MaceHyperParams()
        try:
            MaceHyperParams.model_validate({**base.model_dump(), **self.hyperparams})
        except ValidationError as exc:
            err = exc.errors()[0]
            message = str(err["msg"]).removeprefix("Value error, ")
            if err["type"] == "extra_forbidden":
                allowed = sorted(set(MaceHyperParams.model_fields) - {"seed"})
                message = f"not a MACE hyper-parameter; allowed: {', '.join(allowed)}"
            raise _problem(("hyperparams", *err["loc"]), message) from None
        return self


Ensemble = Literal["nvt_langevin", "nvt_nose_hoover", "npt_berendsen", "npt_nose_hoover", "nve"]


class SamplingStage(_Spec):
    """From an exploration iteration on, other temperatures, lengths or ensemble (as dpgen's model_devi_jobs)."""

    from_iteration: int = Field(ge=1)
    temperatures: list[Temperature] | None = Field(None, min_length=1)
    n_steps: int | None = Field(None, ge=1, le=MAX_STEPS)
    record_every: int | None = Field(None, ge=1)
    timestep: float | None = Field(None, gt=0, le=MAX_TIMESTEP)
    ensemble: Ensemble | None = None


class SamplingSpec(_Spec):
    """Committee MD of the exploration iterations (K, fs, steps); ``schedule`` changes it from iteration k on.

    Stages apply in the order of their ``from_iteration``, each over the previous ones, e.g. longer runs at
    higher temperatures once the potential has seen the basics (see ``CampaignMaker.explorer_for``).
    """

    temperatures: list[Temperature] = Field(default_factory=lambda: [300.0, 900.0], min_length=1)
    n_steps: int = Field(200, ge=1, le=MAX_STEPS)
    record_every: int = Field(10, ge=1)
    timestep: float = Field(1.0, gt=0, le=MAX_TIMESTEP)
    ensemble: Ensemble = "nvt_langevin"
    schedule: list[SamplingStage] = Field(default_factory=list)

    @model_validator(mode="after")
    def _records_frames(self) -> SamplingSpec:
        n_steps, every = self.n_steps, self.record_every
        if every > n_steps:
            raise _problem("record_every", f"record_every ({every}) is more than n_steps ({n_steps}): the MD "
                                           "would record no frame to select from")
        for i, stage in sorted(enumerate(self.schedule), key=lambda item: item[1].from_iteration):
            n_steps, every = stage.n_steps or n_steps, stage.record_every or every
            if every > n_steps:
                raise _problem(("schedule", i, "record_every" if stage.record_every else "n_steps"),
                               f"from iteration {stage.from_iteration} on, record_every ({every}) is more than "
                               f"n_steps ({n_steps}): the MD would record no frame to select from")
        return self


class SelectionSpec(_Spec):
    """Trust windows (eV/Å) per structure family, the diversity method and the budget per iteration."""

    trust: tuple[float, float] = (0.05, 0.5)
    trust_per_family: dict[str, tuple[float, float]] = Field(default_factory=dict)
    method: Literal["fps", "kmeans", "birch"] = "fps"
    budget: int = Field(20, ge=1)
    soap_cutoff: float = Field(4.0, ge=1.0, le=10.0, description="Å")

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
    structures: dict[str, Any]
    explore: dict[str, Any]
    labeler: LabelerSpec = Field(default_factory=LabelerSpec)
    trainer: TrainerSpec = Field(default_factory=TrainerSpec)
    sampling: SamplingSpec = Field(default_factory=SamplingSpec)
    selection: SelectionSpec = Field(default_factory=SelectionSpec)
    convergence: ConvergenceCriteria = Field(default_factory=ConvergenceCriteria)
    resources: ResourcesSpec = Field(default_factory=ResourcesSpec)

    @field_validator("splits")
    @classmethod
    def _fractions(cls, value: dict[str, float]) -> dict[str, float]:
        for split, fraction in value.items():
            if not 0 <= fraction <= 1:
                raise _problem(split, f"a split fraction is between 0 and 1, not {fraction}")
        for split in ("train", "valid"):
            if value.get(split, 0) <= 0:
                raise _problem(split, f"MACE training needs {split} frames: give `{split}` a fraction above 0")
        if abs(sum(value.values()) - 1) > 1e-6:
            raise _problem(None, f"the split fractions must sum to 1, they sum to {sum(value.values()):g}")
        return value

    @field_validator("structures", "explore")
    @classmethod
    def _not_empty(cls, value: dict[str, Any]) -> dict[str, Any]:
        for key in ("materials", "entries"):
            if key in value and not value[key]:
                raise _problem(key, f"`{key}` is empty: a structure section needs at least one")
        return value

    @model_validator(mode="after")
    def _box_holds_an_isolated_atom(self) -> CampaignSpec:
        if not self.labeler.isolated_atoms:
            return self
        from mlipflow.training.hyperparams import MaceHyperParams

        r_max = self.trainer.hyperparams.get("r_max") or (MaceHyperParams.tiny() if self.trainer.tiny
                                                          else MaceHyperParams()).r_max
        if self.labeler.isolated_atom_box <= r_max:
            raise _problem(("labeler", "isolated_atom_box"),
                           f"the isolated atoms' box ({self.labeler.isolated_atom_box} Å) must be wider than the "
                           f"model's cutoff r_max ({r_max} Å), or each atom would see its periodic images")
        return self


def load_campaign(path: str | Path) -> CampaignSpec:
    """Read and validate a campaign file (errors name the key and the line)."""
    return load_yaml_model(path, CampaignSpec)
