"""The bootstrap flow: iteration 0 and one exploration round, composed from the stages' Makers.

structures -> labels -> dataset version -> committee -> committee MD on the exploration cells ->
trust-window + diversity selection -> labels -> child dataset version -> retrained committee.

The flow holds no science: every step is a stage's Maker, given as a field, so swapping the surrogate for
CP2K or changing MACE hyper-parameters is a change of Maker.  The active-learning loop (iterations until
convergence) repeats the exploration round; this flow is what the README's main job runs today.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from jobflow import Flow, Maker, job
from monty.json import MontyEncoder

from mlipflow.data.jobs import DatasetVersionMaker
from mlipflow.labeling.jobs import LabelMaker, label_when_known
from mlipflow.labeling.surrogate import SurrogateLabeler
from mlipflow.sampling.jobs import CommitteeMDMaker
from mlipflow.sampling.md import MDSettings
from mlipflow.sampling.uncertainty import CalculatorFactory
from mlipflow.selection.descriptors import SoapDescriptor
from mlipflow.selection.jobs import SelectorMaker, picked_structures_job
from mlipflow.selection.uncertainty import TrustWindow, TrustWindowSelector
from mlipflow.structures.jobs import StructureSetMaker
from mlipflow.training.hyperparams import MaceHyperParams
from mlipflow.training.jobs import CommitteeTrainMaker, MaceTrainMaker

COMMITTEE_FACTORY = "mlipflow.training.committee:committee_from_registry"


@job
def collect_summary(summary: dict[str, Any], name: str = "bootstrap") -> dict[str, Any]:
    """Store the small outputs of every step as the flow's output and as the campaign document ``name``.

    The campaign document holds, per exploration iteration, the accurate / candidate / failed counts of the
    explored frames overall and per structure family (from the selection's trust-window report).
    """
    from mlipflow.storage import get_stores

    # outputs arrive as the stages' document objects; work on their plain JSON form
    summary = json.loads(json.dumps(summary, cls=MontyEncoder))
    iterations = []
    for key, it in sorted(summary.items()):
        trust = (it.get("selection") or {}).get("trust_report") or {}
        if trust:
            iterations.append({"iteration": int(key.rsplit("_", 1)[1]), "counts": trust.get("all", {}),
                               "by_family": {f: c for f, c in trust.items() if f != "all"}})
    last = summary[max(summary)]
    get_stores().campaigns.replace_one(
        {"_id": name},
        {"_id": name, "name": name, "state": "bootstrapped", "dataset": last["dataset"]["version"],
         "committee": last["committee"]["model_id"], "iterations": iterations},
        upsert=True,
    )
    return summary


@dataclass
class BootstrapMaker(Maker):
    """Iteration 0 (label the starting cells, train a committee) and one exploration round.

    Parameters
    ----------
    name
        Flow name (also the campaign name in the frames' provenance).
    structures
        Starting cells to label.
    explore_structures
        Cells the committee explores with MD (``None``: no exploration round).
    labeler
        Labeling Maker (batches, retries, sanity filters).
    versions
        Dataset version Maker.
    trainer
        Committee training Maker.
    explorer
        Committee MD Maker; its calculator is set to the trained committee.
    selector
        Selection Maker (trust window, diversity, budget).
    """

    name: str = "bootstrap"
    structures: StructureSetMaker = field(default_factory=StructureSetMaker)
    explore_structures: StructureSetMaker | None = None
    labeler: LabelMaker = field(default_factory=LabelMaker)
    versions: DatasetVersionMaker = field(default_factory=DatasetVersionMaker)
    trainer: CommitteeTrainMaker = field(default_factory=CommitteeTrainMaker)
    explorer: CommitteeMDMaker = field(default_factory=CommitteeMDMaker)
    selector: SelectorMaker = field(default_factory=SelectorMaker)

    def make(self) -> Flow:
        """The flow; its output holds the dataset versions, committees, sampling and selection summaries."""
        cells = self.structures.make()
        cells.name = "structures"
        labels0 = label_when_known(self.labeler, cells.output)
        labels0.name = "label iteration 0"
        version0 = self.versions.make([labels0.output], note=f"{self.name}: iteration 0")
        committee0 = self.trainer.make(version0.output["version"])
        jobs: list[Any] = [cells, labels0, version0, committee0]
        output: dict[str, Any] = {"iteration_0": {"structures": cells.output["counts"], "labels": labels0.output,
                                                  "dataset": version0.output, "committee": committee0.output}}
        if self.explore_structures is not None:
            explore_cells = self.explore_structures.make()
            explore_cells.name = "exploration structures"
            committee = CalculatorFactory(COMMITTEE_FACTORY, {"model_id": committee0.output["model_id"]})
            explorer = self.explorer.__class__(**{**self.explorer.__dict__, "calculator": committee})
            md = explorer.make(explore_cells.output["structures"])
            selection = self.selector.make(md.output)
            picked = picked_structures_job(selection.output, campaign=self.name, iteration=1)
            labels1 = label_when_known(self.labeler, picked.output)
            labels1.name = "label iteration 1"
            version1 = self.versions.make([labels1.output], parent=version0.output["version"],
                                          note=f"{self.name}: iteration 1")
            committee1 = self.trainer.make(version1.output["version"])
            jobs += [explore_cells, md, selection, picked, labels1, version1, committee1]
            output["iteration_1"] = {"sampling": md.output, "selection": selection.output, "labels": labels1.output,
                                     "dataset": version1.output, "committee": committee1.output}
        summary = collect_summary(output, name=self.name)
        summary.name = f"{self.name} summary"
        return Flow([*jobs, summary], output=summary.output, name=self.name)


def demo_maker(path: str | Path, *, name: str = "demo-li2o", epochs: int = 8, committee_size: int = 2,
               md_steps: int = 60, budget: int = 8, seed: int = 0) -> BootstrapMaker:
    """The README's main job: the bootstrap flow of ``flows/demo_li2o.yaml`` with the CHGNet surrogate.

    Sized for 2 CPU cores: ~100-atom cells, a committee of tiny MACE models (float64, 16 channels, L=0,
    r_max 4 Å), short MD at 300 K and 900 K.  Labels are CHGNet's (kind ``surrogate``), never DFT.
    """
    spec = yaml.safe_load(Path(path).read_text())
    # lr 0.002 and a fifth of the frames for validation: with lr 0.01 and one validation frame a member
    # of the committee diverged (validation loss x100) on this data, and at 0.005 the retrained members'
    # validation errors rose again after epoch 4
    hp = MaceHyperParams.tiny(max_num_epochs=epochs, seed=seed, lr=0.002)
    return BootstrapMaker(
        name=name,
        structures=StructureSetMaker(spec=spec["structures"]),
        explore_structures=StructureSetMaker(name="explore_set", spec=spec["explore"]),
        labeler=LabelMaker(labeler=SurrogateLabeler(calculator="chgnet"), batch_size=10),
        versions=DatasetVersionMaker(dataset_name=name, seed=seed,
                                     fractions={"train": 0.7, "valid": 0.2, "test": 0.1}),
        trainer=CommitteeTrainMaker(trainer=MaceTrainMaker(hyperparams=hp, model_name=f"{name}-mace"),
                                    n_models=committee_size, committee_name=f"{name}-committee"),
        explorer=CommitteeMDMaker(temperatures=[300.0, 900.0],
                                  settings=MDSettings(n_steps=md_steps, record_every=5, timestep=1.0, seed=seed)),
        selector=SelectorMaker(trust=TrustWindowSelector(default=TrustWindow(lower=0.05, upper=1.0)),
                               descriptor=SoapDescriptor(species=["Li", "O"], r_cut=4.0, n_max=4, l_max=3),
                               method="fps", budget=budget, seed=seed),
    )
