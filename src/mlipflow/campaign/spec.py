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
from mlipflow.structures.structure_set import StructureSetSpec, locate
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
    warm_start: bool = Field(
        True, description="iteration k's members start from iteration k-1's (false: every committee from scratch)")
    warm_start_hyperparams: dict[str, Any] = Field(
        default_factory=dict, description="MaceHyperParams fields changed for warm-started trainings (e.g. fewer "
                                          "epochs, a lower lr)")
    members_at_once: int | None = Field(
        None, ge=1, description="members trained side by side, one process each (default resources.processes); "
                                "e.g. 3 members at once on 2 cores take about 1.5x one member, 2 rounds take 2x")

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

    temperatures: list[Temperature] = Field(default_factory=lambda: [300.0, 900.0], min_length=1)
    n_steps: int = Field(200, ge=1, le=MAX_STEPS)
    record_every: int = Field(10, ge=1)
    timestep: float = Field(1.0, gt=0, le=MAX_TIMESTEP)
    ensemble: Ensemble = "nvt_langevin"
    velocity_scale: float = Field(1.0, gt=0, description="initial velocities at this multiple of the temperature")
    relax_steps: int = Field(0, ge=0, description="relax each cell with the committee first (FIRE steps at most)")
    schedule: list[SamplingStage] = Field(default_factory=list)
    reference_md: ReferenceMDSpec | None = Field(None, description="reference MD of iteration 0 (off if absent)")

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
    stop_frames: int = Field(1, ge=0, description="of every walker a stability monitor stopped, its last frames "
                             "the labeler accepts, labeled (the onset the committee missed)")
    descriptor: Literal["soap", "soap_species", "soap_focus", "mace"] = "soap_focus"
    focus_atoms: int = Field(8, ge=1)
    soap_cutoff: float = Field(4.0, ge=1.0, le=10.0, description="Å")
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

    train: float = Field(0.8, description="fraction of new frames, by group")
    valid: float = Field(0.1, description="fraction of new frames, by group")
    test: float = Field(0.1, description="fraction of new frames, by group")
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
        for split in ("train", "valid", "test"):
            if not 0 <= getattr(self, split) <= 1:
                raise _problem(split, f"a split fraction is between 0 and 1, not {getattr(self, split)}")
        for split in ("train", "valid"):
            if getattr(self, split) <= 0:
                raise _problem(split, f"MACE training needs {split} frames: give `{split}` a fraction above 0")
        total = self.train + self.valid + self.test
        if abs(total - 1.0) > 1e-6:
            raise _problem(None, f"the split fractions must sum to 1, they sum to {total:g}")
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
    structures: StructureSetSpec
    explore: StructureSetSpec
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
            raise _problem(("selection", "trust_mode"), "'relative' scales the trust window by the committee's "
                           "spread on its validation frames: give splits.valid > 0, or use absolute trust bounds")
        entries = {e.name for e in self.structures.entries}
        ref = self.sampling.reference_md
        unknown = sorted(set(ref.entries or []) - entries) if ref is not None else []
        if unknown:
            raise _problem(("sampling", "reference_md", "entries"), f"no structures entry named {unknown}; the "
                           f"structures section has {sorted(n for n in entries if n)}")
        return self

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
    spec = load_yaml_model(path, CampaignSpec)
    for key in ("structures", "explore"):  # material files next to the campaign file; entries know their line
        locate(getattr(spec, key), path, prefix=(key,))
    return spec
