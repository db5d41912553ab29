"""The bootstrap flow (the main job's shape) end to end on small cells with a cheap surrogate."""

from __future__ import annotations

import pytest

from mlipflow.campaign.bootstrap import BootstrapMaker
from mlipflow.data import Dataset
from mlipflow.data.jobs import DatasetVersionMaker
from mlipflow.execution import run_locally
from mlipflow.labeling.jobs import LabelMaker
from mlipflow.labeling.surrogate import SurrogateLabeler
from mlipflow.sampling.jobs import CommitteeMDMaker
from mlipflow.sampling.md import MDSettings
from mlipflow.selection.descriptors import SoapDescriptor
from mlipflow.selection.jobs import SelectorMaker
from mlipflow.selection.uncertainty import TrustWindow, TrustWindowSelector
from mlipflow.structures.jobs import StructureSetMaker
from mlipflow.training.hyperparams import MaceHyperParams
from mlipflow.training.jobs import CommitteeTrainMaker, MaceTrainMaker

SECTION = {
    "max_atoms": 40,
    "cutoff": 3.0,
    "materials": {"Li2O": {"prototype": "Li2O"}},
    "entries": [
        {"name": "strain", "kind": "strain", "material": "Li2O", "supercell": False,
         "strains": [-0.04, -0.02, 0.0, 0.02, 0.04]},
        {"name": "rattle", "kind": "rattle", "material": "Li2O", "supercell": False, "n_structures": 12,
         "stdev": 0.1, "seed": 1},
    ],
}
EXPLORE = {**SECTION, "entries": [{"name": "explore", "kind": "rattle", "material": "Li2O", "supercell": False,
                                   "n_structures": 1, "stdev": 0.02, "seed": 7}]}


@pytest.mark.slow
def test_bootstrap_flow_labels_trains_explores_selects_and_retrains(stores, tmp_path):
    calls_labeler = SurrogateLabeler(calculator="toy-morse")
    maker = BootstrapMaker(
        name="boot",
        structures=StructureSetMaker(spec=SECTION),
        explore_structures=StructureSetMaker(name="explore", spec=EXPLORE),
        labeler=LabelMaker(labeler=calls_labeler, batch_size=8),
        versions=DatasetVersionMaker(dataset_name="boot", fractions={"train": 0.7, "valid": 0.3}),
        trainer=CommitteeTrainMaker(trainer=MaceTrainMaker(hyperparams=MaceHyperParams.tiny(max_num_epochs=4,
                                                                                             lr=0.005)),
                                    n_models=2, committee_name="boot-committee"),
        explorer=CommitteeMDMaker(temperatures=[300.0, 1200.0],
                                  settings=MDSettings(n_steps=20, record_every=4, seed=0)),
        selector=SelectorMaker(trust=TrustWindowSelector(default=TrustWindow(lower=0.0, upper=100.0)),
                               descriptor=SoapDescriptor(species=["Li", "O"], r_cut=3.5, n_max=3, l_max=2),
                               method="fps", budget=3, seed=0),
    )
    flow = maker.make()
    run_locally(flow, stores, root_dir=tmp_path)
    out = stores.jobstore.get_output(flow.output.uuid)
    it0, it1 = out["iteration_0"], out["iteration_1"]
    assert it0["labels"]["counts"]["labeled"] == 17
    assert sum(it0["dataset"]["counts"].values()) == 17
    assert it1["labels"]["counts"]["labeled"] == 3
    dataset = Dataset(stores)
    child = dataset.get_version(it1["dataset"]["version"])
    assert child.parent == it0["dataset"]["version"] and child.size == 20
    assert all("(surrogate)" in k for k in child.labelers)
    assert it1["committee"]["model_id"] != it0["committee"]["model_id"]
    campaign = stores.campaigns.find_one({"_id": "boot"})
    assert campaign["dataset"] == child.id and campaign["iterations"][0]["iteration"] == 1
    assert sum(campaign["iterations"][0]["counts"][k] for k in ("accurate", "candidate", "failed")) > 0
    # the picked frames carry where they came from
    picked = [f for f in dataset.iter_frames({"provenance.iteration": 1})]
    assert len(picked) == 3 and all(f.provenance.campaign == "boot" for f in picked)
