"""The active-learning loop as a dynamic jobflow flow.

Iteration 0 labels the starting cells and trains the committee.  Iteration k >= 1 explores the exploration
cells with the committee of iteration k-1 (MD with uncertainty and stability monitors), classifies the
explored frames with the trust windows and picks a diverse, deduplicated set; then a decision job checks
convergence (:func:`~mlipflow.campaign.convergence.decide`).  If the campaign goes on, the decision job adds
(``Response(addition=...)``) the labeling of the picks, the child dataset version, the retrained committee
and iteration k+1.  Every decision and its figures are stored in the campaign document.

Resuming is running the same campaign again: the label ledger reuses every finished label, the model
registry every finished training (both keyed by content), and the seeded MD and selection pick the same
frames; only unfinished steps run.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from typing import Any

from jobflow import Flow, Maker, Response, job
from monty.json import MontyEncoder
from pymatgen.core import Structure

from mlipflow.campaign.convergence import ConvergenceCriteria, decide
from mlipflow.campaign.spec import CampaignSpec
from mlipflow.data.jobs import DatasetVersionMaker
from mlipflow.labeling.jobs import LabelMaker, label_when_known
from mlipflow.sampling.jobs import CommitteeMDMaker
from mlipflow.sampling.uncertainty import CalculatorFactory
from mlipflow.selection.jobs import SelectorMaker, picked_structures_job
from mlipflow.structures.jobs import StructureSetMaker
from mlipflow.training.jobs import CommitteeTrainMaker

COMMITTEE_FACTORY = "mlipflow.training.committee:committee_from_registry"


def _plain(obj: Any) -> Any:
    return json.loads(json.dumps(obj, cls=MontyEncoder))


@dataclass
class CampaignMaker(Maker):
    """The whole campaign; every stage is a Maker given as a field (see :func:`campaign_from_spec`)."""

    name: str = "campaign"
    structures: StructureSetMaker = field(default_factory=StructureSetMaker)
    explore_structures: StructureSetMaker = field(default_factory=StructureSetMaker)
    labeler: LabelMaker = field(default_factory=LabelMaker)
    versions: DatasetVersionMaker = field(default_factory=DatasetVersionMaker)
    trainer: CommitteeTrainMaker = field(default_factory=CommitteeTrainMaker)
    explorer: CommitteeMDMaker = field(default_factory=CommitteeMDMaker)
    selector: SelectorMaker = field(default_factory=SelectorMaker)
    criteria: ConvergenceCriteria = field(default_factory=ConvergenceCriteria)
    isolated_atoms: list[Structure] = field(default_factory=list)
    sampling_schedule: list[dict[str, Any]] = field(default_factory=list)
    spec: dict[str, Any] | None = None

    def make(self) -> Flow:
        """Iteration 0 and the first exploration iteration (later ones are added as the loop decides)."""
        cells = _tag(self.structures.make(), 0, "structures")
        cells.name = "structures"
        explore_cells = _tag(self.explore_structures.make(), 0, "structures")
        explore_cells.name = "exploration structures"
        labels0 = _plans(_tag(label_when_known(self.labeler, cells.output,
                                               tags={"campaign": self.name, "iteration": 0}), 0, "label"))
        labels0.name = "label iteration 0"
        jobs, summaries = [labels0], [labels0.output]
        if self.isolated_atoms:  # their labels are the E0s of every dataset version of the campaign
            isolated = _plans(_tag(label_when_known(self.labeler, self.isolated_atoms,
                                                    tags={"campaign": self.name, "iteration": 0}), 0, "label"))
            isolated.name = "label isolated atoms"
            jobs.append(isolated)
            summaries.append(isolated.output)
        version0 = _tag(self.versions.make(summaries, note=f"{self.name}: iteration 0"), 0, "dataset")
        committee0 = _tag(self.trainer.make(version0.output["version"]), 0, "train")
        start = _tag(start_campaign(self.name, self.spec), 0, "start")
        explore = self.exploration(1, committee0.output, version0.output, explore_cells.output["structures"],
                                   summaries)
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
                    label_summaries: list[Any]) -> Flow:
        """Explore with ``committee``, select, and decide (the decision adds the rest of the iteration)."""
        factory = CalculatorFactory(COMMITTEE_FACTORY, {"model_id": committee["model_id"]})
        md = _tag(self.explorer_for(iteration, factory).make(structures), iteration, "explore")
        selection = _tag(self.selector.make(md.output), iteration, "select")
        selection.name = f"select iteration {iteration}"
        decision = decide_iteration(self, iteration, selection.output, md.output, committee, version, structures,
                                    label_summaries)
        # not dynamic: the jobs the decision adds belong to later stages and iterations
        _tag(decision, iteration, "decide", dynamic=False)
        decision.name = f"decide iteration {iteration}"
        return Flow([md, selection, decision], name=f"{self.name} iteration {iteration}")


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


@job
def start_campaign(name: str, spec: dict[str, Any] | None) -> dict[str, Any]:
    """Create (or keep) the campaign document with its spec, so that it can be resumed by name."""
    from mlipflow.storage import get_stores

    campaigns = get_stores().campaigns
    campaigns.update_one({"_id": name}, {"$setOnInsert": {"name": name, "iterations": []},
                                         "$set": {"state": "running", "spec": spec}}, upsert=True)
    return {"campaign": name}


@job
def decide_iteration(maker: CampaignMaker, iteration: int, selection: Any, sampling: Any, committee: dict[str, Any],
                     version: dict[str, Any], structures: Any, label_summaries: list[Any]) -> Response:
    """Record the iteration's figures and decide; if the campaign goes on, add labels, retraining and k+1."""
    from mlipflow.storage import get_stores

    selection, sampling = _plain(selection), _plain(sampling)
    # the campaign's labels: new ones and those a resumed or rerun labeling found already done
    labels_so_far = sum(int(c.get("labeled", 0)) + int(c.get("reused", 0))
                        for c in ((_plain(s).get("counts") or {}) for s in label_summaries))
    all_errors = committee.get("errors") or {}
    errors_split = "test" if all_errors.get("test") else "valid"
    errors = {**(all_errors.get(errors_split) or {}), "split": errors_split}
    result = decide(maker.criteria, iteration=iteration, trust_report=selection.get("trust_report") or {},
                    labels_so_far=labels_so_far, errors=errors,
                    trust_by_temperature=selection.get("trust_by_temperature") or {})
    trust = selection.get("trust_report") or {}
    record = {
        "iteration": iteration, "committee": committee.get("model_id"), "dataset": version.get("version"),
        "counts": trust.get("all", {}), "by_family": {f: c for f, c in trust.items() if f != "all"},
        "by_temperature": selection.get("trust_by_temperature") or {},
        "picked": len(selection.get("picks") or []), "decision": result,
        "md_stop_reasons": [w.get("stop_reason") for w in (sampling.get("walkers") or [])],
    }
    campaigns = get_stores().campaigns
    campaigns.update_one({"_id": maker.name}, {"$pull": {"iterations": {"iteration": iteration}}})
    campaigns.update_one({"_id": maker.name}, {"$push": {"iterations": record}})
    if result["decision"] != "continue":
        campaigns.update_one({"_id": maker.name}, {"$set": {
            "state": result["decision"], "committee": committee.get("model_id"), "dataset": version.get("version")}})
        return Response(output=record)
    picked = _tag(picked_structures_job(selection, campaign=maker.name, iteration=iteration), iteration, "pick")
    labels = _plans(_tag(label_when_known(maker.labeler, picked.output, tags={"campaign": maker.name,
                                                                              "iteration": iteration}),
                         iteration, "label"))
    labels.name = f"label iteration {iteration}"
    new_version = _tag(maker.versions.make([labels.output], parent=version["version"],
                                           note=f"{maker.name}: iteration {iteration}"), iteration, "dataset")
    new_committee = _tag(maker.trainer.make(new_version.output["version"]), iteration, "train")
    nxt = maker.exploration(iteration + 1, new_committee.output, new_version.output, structures,
                            [*label_summaries, labels.output])
    return Response(output=record,
                    addition=Flow([picked, labels, new_version, new_committee, nxt], name=f"iteration {iteration}"))


def campaign_from_spec(spec: CampaignSpec) -> CampaignMaker:
    """Compose the stages' Makers from a campaign file."""
    from mlipflow.labeling.surrogate import SurrogateLabeler
    from mlipflow.sampling.md import MDSettings
    from mlipflow.selection.descriptors import SoapDescriptor
    from mlipflow.selection.uncertainty import TrustWindow, TrustWindowSelector
    from mlipflow.structures.bulk import isolated_atoms
    from mlipflow.structures.structure_set import load_spec, section_elements
    from mlipflow.training.hyperparams import MaceHyperParams
    from mlipflow.training.jobs import MaceTrainMaker

    if spec.labeler.kind == "surrogate":
        labeler = SurrogateLabeler(calculator=spec.labeler.calculator, **spec.labeler.settings)
    elif spec.labeler.kind == "cp2k":
        from mlipflow.labeling.cp2k import Cp2kLabeler

        labeler = Cp2kLabeler(**spec.labeler.settings)
    else:
        from mlipflow.labeling.vasp import VaspLabeler

        labeler = VaspLabeler(**spec.labeler.settings)
    base = MaceHyperParams.tiny() if spec.trainer.tiny else MaceHyperParams()
    hp = base.with_updates(seed=spec.seed, **spec.trainer.hyperparams)
    structure_section = load_spec(spec.structures).model_dump()
    explore_section = load_spec(spec.explore).model_dump()
    elements = sorted({el for section in (spec.structures, spec.explore)
                       for el in section_elements(section)})
    windows = {f: TrustWindow(lower=lo, upper=up) for f, (lo, up) in spec.selection.trust_per_family.items()}
    maker = CampaignMaker(
        name=spec.name,
        structures=StructureSetMaker(spec=structure_section),
        explore_structures=StructureSetMaker(name="explore_set", spec=explore_section),
        labeler=LabelMaker(labeler=labeler, batch_size=spec.labeler.batch_size, max_attempts=spec.labeler.max_attempts),
        versions=DatasetVersionMaker(dataset_name=spec.name, seed=spec.seed, fractions=dict(spec.splits)),
        trainer=CommitteeTrainMaker(trainer=MaceTrainMaker(hyperparams=hp, model_name=f"{spec.name}-mace"),
                                    n_models=spec.trainer.committee_size, committee_name=f"{spec.name}-committee"),
        explorer=CommitteeMDMaker(
            temperatures=list(spec.sampling.temperatures), resource=spec.resources.md,
            settings=MDSettings(n_steps=spec.sampling.n_steps, record_every=spec.sampling.record_every,
                                timestep=spec.sampling.timestep, ensemble=spec.sampling.ensemble, seed=spec.seed)),
        selector=SelectorMaker(
            trust=TrustWindowSelector(default=TrustWindow(lower=spec.selection.trust[0], upper=spec.selection.trust[1]),
                                      per_family=windows),
            descriptor=SoapDescriptor(species=elements, r_cut=spec.selection.soap_cutoff, n_max=4, l_max=3),
            method=spec.selection.method, budget=spec.selection.budget, seed=spec.seed),
        criteria=spec.convergence,
        isolated_atoms=isolated_atoms(elements, box=spec.labeler.isolated_atom_box) if spec.labeler.isolated_atoms
        else [],
        sampling_schedule=[stage.model_dump(exclude_none=True) for stage in spec.sampling.schedule],
        spec=spec.model_dump(mode="json"),
    )
    return maker
