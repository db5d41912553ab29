"""The active-learning loop as a dynamic jobflow flow.

Iteration 0 labels the starting cells (and, with ``sampling.reference_md``, runs MD with the labeler itself on
some of them: its frames are labels too) and trains the committee.  Iteration k >= 1 explores the exploration
cells with the committee of iteration k-1 (MD with uncertainty and stability monitors), classifies the explored
frames with the trust windows and picks a diverse set, deduplicated against the campaign's dataset version;
then a decision job checks convergence (:func:`~mlipflow.campaign.convergence.decide`).  If the campaign goes
on, the decision job adds (``Response(addition=...)``) the labeling of the picks (capped by the label budget),
the assessment of the committee's spread against the new labels, the child dataset version, the retrained
committee (warm-started from the previous one) and iteration k+1.  When it stops, it adds the benchmark stage
on the final committee.  Every decision and its figures are stored in the campaign document.

The loop composes the stages' Makers it is given and holds no science of its own.  Resuming is running the same
campaign again: the label ledger reuses every finished label, the model registry every finished training (both
keyed by content), and MD and selection are replayed from their finished-step records.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from jobflow import Flow, Maker, Response, job
from pymatgen.core import Structure

from mlipflow.campaign.convergence import ConvergenceCriteria, decide
from mlipflow.campaign.schemas import AssessmentRecorded, CampaignStarted, IterationRecord
from mlipflow.campaign.spec import CampaignSpec
from mlipflow.data.jobs import DatasetVersionMaker
from mlipflow.labeling.jobs import LabelMaker, label_when_known
from mlipflow.sampling.jobs import CommitteeMDMaker, ReferenceMDMaker
from mlipflow.sampling.uncertainty import CalculatorFactory
from mlipflow.selection.jobs import SelectorMaker, assess_picks_job, picked_structures_job
from mlipflow.structures.jobs import StructureSetMaker
from mlipflow.training.jobs import CommitteeTrainMaker

COMMITTEE_FACTORY = "mlipflow.training.committee:committee_from_registry"


def _get(obj: Any, key: str, default: Any = None) -> Any:
    """A field of a stage document, whether it arrives as the document or as its dict."""
    if obj is None:
        return default
    if isinstance(obj, dict):
        return obj.get(key, default)
    return getattr(obj, key, default)


@dataclass
class CampaignMaker(Maker):
    """The whole campaign; every stage is a Maker given as a field (see :func:`campaign_from_spec`).

    Parameters
    ----------
    structures, explore_structures
        The cells labeled in iteration 0, and the cells explored by MD in every later iteration.
    labeler
        Labels frames (reference single points).
    reference_md
        MD with the labeler on some of iteration 0's cells (``None``: none); ``reference_md_entries`` names them.
    versions
        Freezes labels into dataset versions.
    trainer, warm_trainer
        Train a committee from scratch, and (iterations >= 1) warm-started from the previous committee
        (``None``: every committee from scratch).
    explorer
        Committee MD of the exploration iterations (``sampling_schedule`` changes it from an iteration on).
    selector
        Picks the frames to label.
    criteria
        When the campaign stops.
    benchmark
        The benchmark stage on the final committee (``None``: none).
    """

    name: str = "campaign"
    structures: StructureSetMaker = field(default_factory=StructureSetMaker)
    explore_structures: StructureSetMaker = field(default_factory=StructureSetMaker)
    labeler: LabelMaker = field(default_factory=LabelMaker)
    reference_md: ReferenceMDMaker | None = None
    reference_md_entries: list[str] | None = None
    versions: DatasetVersionMaker = field(default_factory=DatasetVersionMaker)
    trainer: CommitteeTrainMaker = field(default_factory=CommitteeTrainMaker)
    warm_trainer: CommitteeTrainMaker | None = None
    explorer: CommitteeMDMaker = field(default_factory=CommitteeMDMaker)
    selector: SelectorMaker = field(default_factory=SelectorMaker)
    criteria: ConvergenceCriteria = field(default_factory=ConvergenceCriteria)
    benchmark: Any = None
    isolated_atoms: list[Structure] = field(default_factory=list)
    sampling_schedule: list[dict[str, Any]] = field(default_factory=list)
    spec: dict[str, Any] | None = None

    def make(self) -> Flow:
        """Iteration 0 and the first exploration iteration (later ones are added as the loop decides)."""
        tags = {"campaign": self.name, "iteration": 0}
        start = _tag(start_campaign(self.name, self.spec), 0, "start")
        cells = _tag(self.structures.make(), 0, "structures")
        cells.name = "structures"
        explore_cells = _tag(self.explore_structures.make(), 0, "structures")
        explore_cells.name = "exploration structures"
        labels0 = _plans(_tag(label_when_known(self.labeler, cells.output, tags=tags), 0, "label"))
        labels0.name = "label iteration 0"
        jobs, summaries = [labels0], [labels0.output]
        if self.isolated_atoms:  # their labels are the E0s of every dataset version of the campaign
            isolated = _plans(_tag(label_when_known(self.labeler, self.isolated_atoms, tags=tags), 0, "label"))
            isolated.name = "label isolated atoms"
            jobs.append(isolated)
            summaries.append(isolated.output)
        reference = None
        if self.reference_md is not None:
            reference = _tag(self.reference_md.make(cells.output, tags=tags, entries=self.reference_md_entries),
                             0, "reference_md")
            jobs.append(reference)
            summaries.append(reference.output)
        version0 = _tag(self.versions.make(summaries, note=f"{self.name}: iteration 0"), 0, "dataset")
        committee0 = _tag(self.trainer.make(version0.output.version), 0, "train")
        explore = self.exploration(1, committee0.output, version0.output, explore_cells.output.structures,
                                   summaries, reference.output if reference is not None else None)
        flow = Flow([start, cells, explore_cells, *jobs, version0, committee0, explore], name=self.name)
        flow.update_metadata({"campaign": self.name})  # dynamic: every job the loop adds carries it too
        return flow

    def explorer_for(self, iteration: int, calculator: CalculatorFactory | None = None) -> CommitteeMDMaker:
        """The MD Maker of exploration iteration ``iteration``: ``explorer`` with the schedule's stages reached.

        ``sampling_schedule`` holds dicts with ``from_iteration`` and any of ``temperatures``, ``n_steps``,
        ``record_every``, ``timestep``, ``ensemble``; they apply in order of ``from_iteration``.
        """
        temperatures, updates = list(self.explorer.temperatures), {}
        for stage in sorted(self.sampling_schedule, key=lambda st: st["from_iteration"]):
            if stage["from_iteration"] <= iteration:
                temperatures = list(stage.get("temperatures") or temperatures)
                updates.update({k: v for k, v in stage.items() if k not in ("from_iteration", "temperatures")})
        return replace(self.explorer, calculator=calculator or self.explorer.calculator,
                       name=f"explore iteration {iteration}", temperatures=temperatures,
                       settings=self.explorer.settings.model_copy(update=updates))

    def exploration(self, iteration: int, committee: Any, version: Any, structures: Any,
                    label_summaries: list[Any], reference: Any = None) -> Flow:
        """Explore with ``committee``, select, and decide (the decision adds the rest of the iteration)."""
        factory = CalculatorFactory(COMMITTEE_FACTORY, {"model_id": _get(committee, "model_id")})
        md = _tag(self.explorer_for(iteration, factory).make(structures), iteration, "explore")
        selection = _tag(self.selector.make(md.output, _get(version, "version"), committee), iteration, "select")
        selection.name = f"select iteration {iteration}"
        decision = decide_iteration(self, iteration, selection.output, md.output, committee, version, structures,
                                    label_summaries, reference)
        # not dynamic: the jobs the decision adds belong to later stages and iterations
        _tag(decision, iteration, "decide", dynamic=False)
        decision.name = f"decide iteration {iteration}"
        return Flow([md, selection, decision], name=f"{self.name} iteration {iteration}")

    def next_iteration(self, iteration: int, selection: Any, committee: Any, version: Any, structures: Any,
                       label_summaries: list[Any], reference: Any, budget_left: int) -> Flow:
        """Label the picks, assess the spread, grow the dataset, retrain, and explore again."""
        tags = {"campaign": self.name, "iteration": iteration}
        picked = _tag(picked_structures_job(selection, campaign=self.name, iteration=iteration, limit=budget_left),
                      iteration, "pick")
        picked.name = f"picks of iteration {iteration}"
        labels = _plans(_tag(label_when_known(self.labeler, picked.output, tags=tags), iteration, "label"))
        labels.name = f"label iteration {iteration}"
        assess = _tag(assess_picks_job(selection, labels.output, iteration), iteration, "assess")
        assess.name = f"assess picks of iteration {iteration}"
        record = _tag(record_assessment(self.name, iteration, assess.output), iteration, "assess")
        record.name = f"record assessment of iteration {iteration}"
        new_version = _tag(self.versions.make([labels.output], parent=_get(version, "version"),
                                              note=f"{self.name}: iteration {iteration}"), iteration, "dataset")
        trainer = self.warm_trainer or self.trainer
        init = committee if self.warm_trainer is not None else None
        new_committee = _tag(trainer.make(new_version.output.version, init_from=init), iteration, "train")
        nxt = self.exploration(iteration + 1, new_committee.output, new_version.output, structures,
                               [*label_summaries, labels.output], reference)
        return Flow([picked, labels, assess, record, new_version, new_committee, nxt], name=f"iteration {iteration}")

    def final_benchmark(self, iteration: int, committee: Any, structures: Any, reference: Any) -> Flow | None:
        """The benchmark stage on the final committee (``None`` when the campaign has none)."""
        if self.benchmark is None:
            return None
        flow = self.benchmark.make(committee=_get(committee, "model_id"), structures=structures,
                                   reference=reference, campaign=self.name)
        return _tag(flow, iteration, "benchmark")


def _plans(wrapper: Any) -> Any:
    """Mark a job that only plans its stage (it replaces itself by the stage's jobs).

    jobflow gives the replacement's last job, ``store_inputs``, the wrapper's metadata, so a finished
    ``plans`` job named ``store_inputs`` means the whole stage finished, and the wrapper itself means nothing.
    """
    wrapper.metadata["plans"] = True
    return wrapper


def _tag(obj: Any, iteration: int, stage: str, dynamic: bool = True) -> Any:
    """Mark a job or flow (and, if dynamic, what it adds) with its iteration and stage, for status and reports."""
    obj.update_metadata({"iteration": iteration, "stage": stage}, dynamic=dynamic)
    return obj


@job(output_schema=CampaignStarted)
def start_campaign(name: str, spec: dict[str, Any] | None) -> CampaignStarted:
    """Create (or keep) the campaign document with its spec, so that it can be resumed by name."""
    from mlipflow.storage import get_stores

    campaigns = get_stores().campaigns
    campaigns.update_one({"_id": name}, {"$setOnInsert": {"name": name, "iterations": []},
                                         "$set": {"state": "running", "spec": spec}}, upsert=True)
    return CampaignStarted(campaign=name)


@job(output_schema=AssessmentRecorded)
def record_assessment(name: str, iteration: int, assessment: Any) -> AssessmentRecorded:
    """Store the assessment of iteration ``iteration``'s picks in that iteration's record."""
    from mlipflow.storage import get_stores

    doc = assessment.model_dump(mode="json") if hasattr(assessment, "model_dump") else dict(assessment)
    get_stores().campaigns.update_one({"_id": name, "iterations.iteration": iteration},
                                      {"$set": {"iterations.$.assessment": doc}})
    return AssessmentRecorded(campaign=name, iteration=iteration)


def _labels_so_far(label_summaries: list[Any]) -> int:
    """The campaign's labels: new ones and those a resumed or rerun labeling found already done."""
    total = 0
    for s in label_summaries:
        counts = _get(s, "counts")
        if counts is None:  # reference MD: every kept frame is a label
            total += len(_get(s, "frame_ids", []) or [])
        else:
            total += int(counts.get("labeled", 0)) + int(counts.get("reused", 0))
    return total


@job(output_schema=IterationRecord)
def decide_iteration(maker: CampaignMaker, iteration: int, selection: Any, sampling: Any, committee: Any,
                     version: Any, structures: Any, label_summaries: list[Any], reference: Any = None) -> Response:
    """Record the iteration's figures and decide; if the campaign goes on, add labels, retraining and k+1."""
    from mlipflow.storage import get_stores

    labels_so_far = _labels_so_far(label_summaries)
    all_errors = _get(committee, "errors") or {}
    errors_split = "test" if all_errors.get("test") else "valid"
    errors = {**(all_errors.get(errors_split) or {}), "split": errors_split}
    walkers = [{"family": w.family, "temperature_label": w.temperature_label, "stop_reason": w.stop_reason,
                "n_frames": w.n_frames, "n_steps": w.n_steps} for w in _get(sampling, "walkers", [])]
    trust = _get(selection, "trust_report") or {}
    result = decide(maker.criteria, iteration=iteration, trust_report=trust, labels_so_far=labels_so_far,
                    errors=errors, trust_by_temperature=_get(selection, "trust_by_temperature") or {},
                    walkers=walkers)
    picks = _get(selection, "picks") or []
    record = IterationRecord(
        iteration=iteration, committee=_get(committee, "model_id"), dataset=_get(version, "version"),
        counts=trust.get("all", {}), by_family={f: c for f, c in trust.items() if f != "all"},
        by_temperature=_get(selection, "trust_by_temperature") or {}, picked=len(picks),
        spot_checks=sum(1 for p in picks if _get(p, "spot_check")), decision=result,
        md_stop_reasons=[w["stop_reason"] for w in walkers], walkers=walkers,
        windows=_get(selection, "windows") or {}, committee_errors=all_errors,
        committee_spread=_get(committee, "spread") or {})
    campaigns = get_stores().campaigns
    campaigns.update_one({"_id": maker.name}, {"$pull": {"iterations": {"iteration": iteration}}})
    campaigns.update_one({"_id": maker.name}, {"$push": {"iterations": record.model_dump(mode="json")}})
    if result.decision != "continue":
        campaigns.update_one({"_id": maker.name}, {"$set": {
            "state": result.decision, "committee": _get(committee, "model_id"), "dataset": _get(version, "version")}})
        bench = maker.final_benchmark(iteration, committee, structures, reference)
        return Response(output=record, addition=bench) if bench is not None else Response(output=record)
    budget_left = max(0, maker.criteria.label_budget - labels_so_far)
    return Response(output=record, addition=maker.next_iteration(iteration, selection, committee, version, structures,
                                                                 label_summaries, reference, budget_left))


def labeler_from_spec(spec: CampaignSpec) -> Any:
    """The labeler of a campaign file (surrogate, CP2K or VASP)."""
    from mlipflow.labeling.surrogate import SurrogateLabeler

    if spec.labeler.kind == "surrogate":
        # labels computed in this process use the campaign's cores (MD walkers in processes use one each)
        threads = {"torch_threads": spec.resources.processes} if "torch_threads" not in spec.labeler.settings else {}
        return SurrogateLabeler(calculator=spec.labeler.calculator, **spec.labeler.settings, **threads)
    if spec.labeler.kind == "cp2k":
        from mlipflow.labeling.cp2k import Cp2kLabeler

        return Cp2kLabeler(**spec.labeler.settings)
    from mlipflow.labeling.vasp import VaspLabeler

    return VaspLabeler(**spec.labeler.settings)


def campaign_from_spec(spec: CampaignSpec) -> CampaignMaker:
    """Compose the stages' Makers from a campaign file."""
    from mlipflow.labeling.base import preflight_labeler
    from mlipflow.sampling.md import MDSettings
    from mlipflow.selection.uncertainty import TrustWindow, TrustWindowSelector
    from mlipflow.structures.bulk import isolated_atoms
    from mlipflow.structures.structure_set import load_spec, section_elements
    from mlipflow.training.hyperparams import MaceHyperParams
    from mlipflow.training.jobs import MaceTrainMaker

    labeler = labeler_from_spec(spec)
    base = MaceHyperParams.tiny() if spec.trainer.tiny else MaceHyperParams()
    hp = base.with_updates(seed=spec.seed, **spec.trainer.hyperparams)
    structure_section = load_spec(spec.structures).model_dump()
    explore_section = load_spec(spec.explore).model_dump()
    elements = sorted({el for section in (spec.structures, spec.explore) for el in section_elements(section)})
    preflight_labeler(labeler, elements)  # a labeler that cannot run here fails before any job is queued
    trainer = CommitteeTrainMaker(
        trainer=MaceTrainMaker(hyperparams=hp, model_name=f"{spec.name}-mace", resource=spec.resources.training),
        n_models=spec.trainer.committee_size, committee_name=f"{spec.name}-committee",
        members_per_job=spec.trainer.members_at_once or spec.resources.processes)
    warm = None
    if spec.trainer.warm_start:
        warm_hp = hp.with_updates(**spec.trainer.warm_start_hyperparams)
        warm = replace(trainer, trainer=replace(trainer.trainer, hyperparams=warm_hp))
    ref = spec.sampling.reference_md
    reference_md = None
    if ref is not None:
        reference_md = ReferenceMDMaker(
            labeler=labeler, temperatures=list(ref.temperatures), replicas=ref.replicas,
            equilibration=ref.equilibration, processes=spec.resources.processes, resource=spec.resources.labeling,
            settings=MDSettings(n_steps=ref.n_steps, record_every=ref.record_every, timestep=ref.timestep,
                                ensemble=ref.ensemble, seed=spec.seed, velocity_scale=ref.velocity_scale,
                                relax_steps=ref.relax_steps))
    maker = CampaignMaker(
        name=spec.name,
        structures=StructureSetMaker(spec=structure_section),
        explore_structures=StructureSetMaker(name="explore_set", spec=explore_section),
        labeler=LabelMaker(labeler=labeler, batch_size=spec.labeler.batch_size, max_attempts=spec.labeler.max_attempts,
                           resource=spec.resources.labeling),
        reference_md=reference_md,
        reference_md_entries=ref.entries if ref is not None else None,
        versions=DatasetVersionMaker(dataset_name=spec.name, seed=spec.seed, fractions=spec.splits.fractions,
                                     minimum=spec.splits.minimum),
        trainer=trainer,
        warm_trainer=warm,
        explorer=CommitteeMDMaker(
            temperatures=list(spec.sampling.temperatures), resource=spec.resources.md,
            processes=spec.resources.processes,
            settings=MDSettings(n_steps=spec.sampling.n_steps, record_every=spec.sampling.record_every,
                                timestep=spec.sampling.timestep, ensemble=spec.sampling.ensemble, seed=spec.seed,
                                velocity_scale=spec.sampling.velocity_scale, relax_steps=spec.sampling.relax_steps)),
        selector=SelectorMaker(
            trust=TrustWindowSelector(
                default=TrustWindow(lower=spec.selection.trust[0], upper=spec.selection.trust[1]),
                per_family={f: TrustWindow(lower=lo, upper=up)
                            for f, (lo, up) in spec.selection.trust_per_family.items()},
                mode=spec.selection.trust_mode),
            descriptor=selection_descriptor(spec, elements), method=spec.selection.method,
            budget=spec.selection.budget, budget_per_family=dict(spec.selection.budget_per_family) or None,
            seed=spec.seed, dedup_distance=spec.selection.dedup_distance, spot_checks=spec.selection.spot_checks,
            stop_frames=spec.selection.stop_frames),
        criteria=spec.convergence,
        benchmark=campaign_benchmark(spec, labeler) if spec.benchmark.enabled else None,
        isolated_atoms=isolated_atoms(elements, box=spec.labeler.isolated_atom_box) if spec.labeler.isolated_atoms
        else [],
        sampling_schedule=[stage.model_dump(exclude_none=True) for stage in spec.sampling.schedule],
        spec=spec.model_dump(mode="json"),
    )
    return maker


def selection_descriptor(spec: CampaignSpec, elements: list[str]) -> Any:
    """The descriptor named by ``selection.descriptor`` (``mace`` is built from the committee inside the job)."""
    from mlipflow.selection.descriptors import SoapDescriptor

    kind = spec.selection.descriptor
    if kind == "mace":
        from mlipflow.selection.descriptors import CommitteeMaceDescriptor

        return CommitteeMaceDescriptor(species=elements, focus_atoms=spec.selection.focus_atoms)
    average = {"soap": "frame", "soap_species": "species", "soap_focus": "focus"}[kind]
    return SoapDescriptor(species=elements, r_cut=spec.selection.soap_cutoff, n_max=4, l_max=3, average=average,
                          focus_atoms=spec.selection.focus_atoms)


def campaign_benchmark(spec: CampaignSpec, labeler: Any) -> Any:
    """The benchmark stage's Maker from the campaign file (temperatures: every sampled one)."""
    from mlipflow.benchmark.flows import CampaignBenchmarkMaker

    temperatures = sorted({float(t) for t in spec.sampling.temperatures}
                          | {float(t) for st in spec.sampling.schedule for t in (st.temperatures or [])})
    return CampaignBenchmarkMaker(labeler=labeler, temperatures=temperatures, settings=spec.benchmark.model_dump(),
                                  seed=spec.seed, processes=spec.resources.processes,
                                  md_resource=spec.resources.md, labeling_resource=spec.resources.labeling)

